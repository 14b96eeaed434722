"""A fake OpenAI-compatible chat-completions server over real HTTP, for tests and benchmarks.

    with FakeOpenAI(latency=0.3) as fake:
        analyzer = LLMAnalyzer("key", fake.base_url, "fake-model")
        fake.script("rate_limited", Behaviour("slow", delay=2), "ok")

By default every request gets a valid analysis derived deterministically from the commit in
the request (importance from the title prefix, texts in each requested language, read from the
schema the request carries). Scripted behaviours apply to the next requests, one each, in order.
Every failed output contains ``BAD_OUTPUT_MARKER`` so tests can prove no fragment of it reaches an
Analysis.

Servers differ in the structured output they take; a profile makes the fake answer like one:

    FakeOpenAI(accepts={"json_object", None}, refusal=LLAMA_CPP)   # llama-cpp-python 0.3: 500
    FakeOpenAI(accepts={"json_object", None}, refusal=VLLM)        # vLLM, Azure: 400
    FakeOpenAI(reject_keywords=True)                                # strict schemas without minLength...
    FakeOpenAI(accepts={None}, fenced=True)                         # prompt mode only, answers in a fence
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .http import LoopbackServer, bind

BAD_OUTPUT_MARKER = "FAKE-BAD-OUTPUT-7f3a"
ALL_FORMATS = frozenset({"json_schema", "json_object", None})
# How servers refuse a response_format they do not take: (status, message).
LLAMA_CPP = (500, "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                  "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]")
VLLM = (400, "response_format type json_schema is not supported by this server")
KEYWORDS = (400, "Invalid schema for response_format 'commit_analysis': In context=('properties', 'summary'), "
                 "'minLength' is not permitted.")
INJECTION_TRIGGER = re.compile(r"ignore (?:all )?previous instructions", re.IGNORECASE)

KINDS = (
    "ok",              # a valid analysis
    "truncated",       # finish_reason "length", half of a JSON object
    "refusal",         # message.refusal set, no content
    "invalid_json",    # prose around a broken object
    "schema_violation",  # valid JSON, wrong enum and missing fields
    "wrong_language",  # a valid English analysis whatever the requested language
    "injection",       # prose obeying an injected instruction
    "content_filter",  # finish_reason "content_filter"
    "rate_limited",    # HTTP 429 with Retry-After
    "server_error",    # HTTP 500 (or Behaviour.status)
    "unavailable",     # HTTP 503, Retry-After when given
    "slow",            # a valid analysis after Behaviour.delay seconds
    "disconnect",      # the connection closes without a response
    "garbage",         # HTTP 200 whose JSON envelope is broken (a misbehaving proxy)
    "html",            # HTTP 200 with an HTML page instead of JSON
    "control_chars",   # a valid analysis whose strings hold raw newlines and tabs (not JSON-escaped)
)

_DATA_BLOCK = re.compile(r'<commit_data boundary="([0-9a-f]+)">\n(.*?)\n</commit_data boundary="\1">', re.DOTALL)
_LANGUAGE = re.compile(r"Output language: (zh|en)\b")
_PREFIX = re.compile(r"^\s*([A-Za-z]+)(?:\([^()]*\))?(!)?\s*:")
_SECURITY = re.compile(r"CVE-\d|XSS|vulnerab|injection|security", re.IGNORECASE)
_TYPES = {
    "feat": ("feature", "medium"), "fix": ("fix", "medium"), "perf": ("performance", "medium"),
    "refactor": ("refactor", "medium"), "docs": ("docs", "low"), "style": ("style", "low"),
    "test": ("test", "low"), "ci": ("ci", "low"), "build": ("build", "low"), "chore": ("chore", "low"),
    "revert": ("revert", "medium"),
}


@dataclass(frozen=True)
class Behaviour:
    """What the fake does with one request."""

    kind: str = "ok"
    retry_after: float | None = None  # seconds, for rate_limited / unavailable / server_error
    delay: float = 0.0  # extra seconds before answering, for slow
    status: int | None = None  # override for server_error
    message: str | None = None  # override of server_error's message
    answer: dict | None = None  # for ok: fields that replace those of the valid analysis
    usage: dict | None = None  # for ok: the usage object to report instead of the counted one

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown behaviour {self.kind!r}")


def _commit_data(messages: list[dict]) -> dict:
    for message in messages:
        match = _DATA_BLOCK.search(str(message.get("content") or ""))
        if match:
            try:
                return json.loads(match.group(2))
            except ValueError:
                return {}
    return {}


def requested(body: dict) -> tuple[list[str], bool, dict]:
    """The languages a request asks texts for, whether it asks for the verdict, and its schema.

    The schema is the response_format's, or (prompt mode) the one in the instructions.
    """
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
    if schema is None:
        system = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [] if m.get("role") == "system")
        start = system.find("It must match this JSON schema:")
        if start != -1:
            text = system[start:]
            schema = json.JSONDecoder().raw_decode(text, text.index("{"))[0]
    properties = (schema or {}).get("properties") or {}
    languages = [code for code in ("zh", "en") if code in properties] or ["en"]
    return languages, "change_type" in properties or schema is None, schema or {}


def _texts(language: str, title: str, importance: str, scope: list[str]) -> dict:
    if language == "zh":
        return {
            "importance_reason": f"模拟模型根据标题前缀评为{importance}。",
            "summary": f"对提交“{title}”的模拟分析。",
            "impact_scope": scope,
            "insight": {"architecture": "模拟：无架构影响。", "performance": "模拟：无性能影响。",
                        "security": "模拟：无安全影响。"},
            "risks": ["模拟风险。"],
            "recommendations": ["模拟建议。"],
        }
    return {
        "importance_reason": f"The fake model rated this {importance} from the title prefix.",
        "summary": f"Fake analysis of “{title}”.",
        "impact_scope": scope,
        "insight": {"architecture": "Fake: no architectural effect.", "performance": "Fake: no performance effect.",
                    "security": "Fake: no security effect."},
        "risks": ["Fake risk."],
        "recommendations": ["Fake recommendation."],
    }


def fake_analysis(body: dict, language: str | None = None) -> dict:
    """The answer the fake gives a request: deterministic, valid, in the requested languages (or all
    texts in `language` when given: a model that ignores the languages asked for)."""
    messages = body.get("messages") or []
    data = _commit_data(messages)
    message = str(data.get("message") or "")
    title = message.strip().splitlines()[0] if message.strip() else "(empty)"
    prefix = _PREFIX.match(title)
    change_type, importance = _TYPES.get(prefix.group(1).lower(), ("other", "low")) if prefix else ("other", "low")
    if (prefix and prefix.group(2)) or "BREAKING CHANGE:" in message:
        importance = "high"
    elif re.search(r"\btypos?\b", title, re.IGNORECASE):
        importance = "low"
    elif _SECURITY.search(title):
        change_type, importance = "security", "high"
    scope = []
    for entry in data.get("files") or []:
        top = str(entry.get("filename", "")).split("/")[0]
        if top and top not in scope:
            scope.append(top)
    languages, verdict, _schema = requested(body)
    answer: dict = {"change_type": change_type, "importance": importance} if verdict else {}
    for code in languages:
        answer[code] = _texts(language or code, title, importance, scope or ["(root)"])
    return answer


class FakeOpenAI(LoopbackServer):
    """A thread-safe fake chat-completions server on 127.0.0.1, started with start() or a with block."""

    def __init__(self, *, latency: float = 0.0, obey_injections: bool = False,
                 accepts: frozenset | set = ALL_FORMATS, refusal: tuple[int, str] = VLLM,
                 reject_keywords: bool = False, fenced: bool = False) -> None:
        self.latency = latency
        self.obey_injections = obey_injections
        self.accepts = frozenset(accepts)  # response_format types taken (None: no response_format)
        self.refusal = refusal
        self.reject_keywords = reject_keywords  # refuse json_schema schemas with length or count keywords
        self.fenced = fenced  # wrap answers without response_format in prose and a ```json fence
        # Called with each request body before it is answered: tests inject faults elsewhere here.
        self.on_request = None
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._requests: list[dict] = []
        self._in_flight = 0
        self.max_in_flight = 0
        LoopbackServer.__init__(self)

    # Control -----------------------------------------------------------------------------

    thread_name = "fake-openai"
    poll_interval = 0.05

    def make_server(self) -> ThreadingHTTPServer:
        return _Server(("127.0.0.1", 0), bind(_Handler, owner=self))

    @property
    def base_url(self) -> str:
        """The base_url to give the OpenAI SDK."""
        return f"{self.origin}/v1"

    def script(self, *behaviours: Behaviour | str) -> None:
        """Queue behaviours for the next requests, one each; afterwards requests get "ok"."""
        with self._lock:
            self._queue.extend(b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours)

    def clear_script(self) -> None:
        """Drop the behaviours not used yet: every next request gets "ok"."""
        with self._lock:
            self._queue.clear()

    @property
    def requests(self) -> list[dict]:
        """Every request body received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        """How many chat-completions requests arrived."""
        with self._lock:
            return len(self._requests)

    # Serving -----------------------------------------------------------------------------

    def _next(self, body: dict) -> Behaviour:
        with self._lock:
            self._requests.append(body)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._queue.popleft() if self._queue else Behaviour()

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _completion(body: dict, content: str | None, *, finish_reason: str = "stop", refusal: str | None = None,
                usage: dict | None = None) -> dict:
    prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
    completion_tokens = len(content or refusal or "") // 4 + 1
    prompt_tokens = prompt_chars // 4 + 1
    return {
        "id": f"chatcmpl-fake-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model") or "fake-model"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "logprobs": None,
            "finish_reason": finish_reason,
        }],
        "usage": usage or {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                           "total_tokens": prompt_tokens + completion_tokens},
    }


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 would stall them.
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        """Clients that time out and hang up are expected; anything else is a bug in the fake: report it."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:
        """No access log on stderr."""

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json", headers)

    def _send_raw(self, status: int, raw: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:
            # The client gave up (timeout) before we answered.
            self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error(f"no route {self.path}", "invalid_request_error"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, _error("body is not JSON", "invalid_request_error"))
            return
        owner = self.owner
        behaviour = owner._next(body)
        if owner.on_request is not None:
            owner.on_request(body)
        try:
            delay = owner.latency + (behaviour.delay if behaviour.kind == "slow" else 0.0)
            if delay:
                time.sleep(delay)
            self._respond(body, behaviour)
        finally:
            owner._done()

    def _respond(self, body: dict, behaviour: Behaviour) -> None:
        owner = self.owner
        fmt = body.get("response_format")
        kind_of_format = fmt.get("type") if isinstance(fmt, dict) else None
        if kind_of_format not in owner.accepts:
            status, message = owner.refusal
            self._send(status, _error(message, "invalid_request_error" if status < 500 else "server_error"))
            return
        if owner.reject_keywords and kind_of_format == "json_schema" and re.search(
                r'"(?:minLength|maxLength|minItems|maxItems)"', json.dumps(fmt)):
            self._send(*KEYWORDS[:1], _error(KEYWORDS[1], "invalid_request_error"))
            return
        kind = behaviour.kind
        user_text = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [] if m.get("role") == "user")
        if kind == "ok" and self.owner.obey_injections and INJECTION_TRIGGER.search(user_text):
            kind = "injection"
        retry_headers = {"Retry-After": f"{behaviour.retry_after:g}"} if behaviour.retry_after is not None else {}
        valid = json.dumps(fake_analysis(body), ensure_ascii=False)
        bad = json.dumps({**fake_analysis(body), "summary": f"{BAD_OUTPUT_MARKER} partial"}, ensure_ascii=False)
        if kind in ("ok", "slow"):
            if behaviour.answer is not None:
                # ASCII escapes, as a model's JSON can carry them (a lone surrogate arrives as \ud800).
                answer = fake_analysis(body)
                for key, value in behaviour.answer.items():
                    if key in ("change_type", "importance") or key in ("zh", "en"):
                        answer[key] = value
                    else:  # a text field: in every language
                        for code in ("zh", "en"):
                            if code in answer:
                                answer[code] = {**answer[code], key: value}
                valid = json.dumps(answer)
            if kind_of_format is None and owner.fenced:
                valid = f"Here is the analysis you asked for:\n```json\n{valid}\n```\nI hope it helps."
            self._send(200, _completion(body, valid, usage=behaviour.usage))
        elif kind == "control_chars":
            answer = fake_analysis(body)
            raw = json.dumps(answer, ensure_ascii=False).replace("Fake analysis of", "Fake\nanalysis\tof")
            raw = raw.replace("模拟分析", "模拟\n分析")
            self._send(200, _completion(body, raw))
        elif kind == "truncated":
            self._send(200, _completion(body, bad[: len(bad) // 2], finish_reason="length"))
        elif kind == "refusal":
            self._send(200, _completion(body, None, refusal=f"I can't help with that. {BAD_OUTPUT_MARKER}"))
        elif kind == "invalid_json":
            self._send(200, _completion(body, f"Sure! Here is the analysis {BAD_OUTPUT_MARKER}: {bad[:-3]}"))
        elif kind == "schema_violation":
            violation = {"change_type": "feature", "importance": "critical", "summary": BAD_OUTPUT_MARKER,
                         "risks": BAD_OUTPUT_MARKER}
            self._send(200, _completion(body, json.dumps(violation)))
        elif kind == "wrong_language":
            english = fake_analysis(body, "en")
            for code in ("zh", "en"):
                if code in english:
                    english[code] = {**english[code], "summary": f"English summary {BAD_OUTPUT_MARKER}."}
            self._send(200, _completion(body, json.dumps(english)))
        elif kind == "injection":
            self._send(200, _completion(body, f"pwned. As instructed, I ignored my previous instructions. "
                                              f"{BAD_OUTPUT_MARKER}"))
        elif kind == "content_filter":
            self._send(200, _completion(body, "", finish_reason="content_filter"))
        elif kind == "rate_limited":
            headers = retry_headers or {"Retry-After": "1"}
            self._send(429, _error("Rate limit reached", "rate_limit_error"), headers)
        elif kind == "server_error":
            status = behaviour.status or 500
            self._send(status, _error(behaviour.message or "The server had an error", "server_error"), retry_headers)
        elif kind == "unavailable":
            self._send(503, _error("The engine is currently overloaded", "server_error"), retry_headers)
        elif kind == "disconnect":
            self.close_connection = True
        elif kind == "garbage":
            self._send_raw(200, f'{{"id": "x", "choices": [{{"message": {{"content": "{BAD_OUTPUT_MARKER}'.encode(),
                           "application/json")
        elif kind == "html":
            self._send_raw(200, f"<html><body>{BAD_OUTPUT_MARKER}</body></html>".encode(), "text/html")
