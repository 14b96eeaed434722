"""Chaos bench: every fault of the delivery issue, run against the real processes.

Each fault gets a throwaway PostgreSQL database (dropped at the end), a private `redis-server` on a
free port (so a fault can stop and restart it), the fake GitHub holding the 15 real commits of
ai-dynamo/dynamo on 2026-01-24, the fake OpenAI server, and either an aiosmtpd SMTP sink on 127.0.0.1
or the fake SendGrid. The service runs as in production: `newsletter subscribe`, `run-daily` and
`deliver` as CLI processes, `newsletter worker` (RQ) and, where recovery relies on it,
`newsletter scheduler`. Emails follow each reader's clock (the default: 08:00 daily in the reader's
zone), so a fault builds the day with `run-daily --date D` (reports, and the commits stamped first
seen; it sends nothing) and then starts the fan-out with `deliver --now T+1d`, T the latest
confirmation: exactly one slot of every reader lies in (T, T+1d], and that first email's window,
(slot - 1 day, now], holds the commits first seen when the day was built. `deliver` enqueues the
batches on the `email` queue for the workers, as the scheduler's tick does. Faults are injected only
at the edges: the fake servers (scripted answers, 500s, hangs, 400s), PostgreSQL's
pg_terminate_backend, a stopped redis-server, a port nobody listens on, SIGKILL. Subprocesses log at
LOG_LEVEL=WARNING (the token-in-logs fault at DEBUG) into a temp folder; a failed fault prints the
tail of its logs.

One row per fault: emails expected, sent (distinct recipients that received the email at the SMTP
sink or the fake SendGrid), duplicated (received it more than once), lost (expected - sent), rows
left non-final (delivery rows still pending or sending) and the fault's own property. The faults
that wait out the one-minute retry backoff (5, 6, 7) run alongside the others: three to four
minutes in all on two cores. Fault 4 keeps a worker and the scheduler running through the Redis
outage; whether the scheduler survives it is shown in the check (NOTE), the row's property is the
run's resumption. Exit status 1 when any property did not hold.

    .venv/bin/python bench/chaos.py [--only 1,9] [--sequential] [--keep-logs]
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.parser import BytesHeaderParser
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from newsletter.config import load_config, setting_names  # noqa: E402
from newsletter.db import upgrade  # noqa: E402
from newsletter.models import (  # noqa: E402
    CommitAnalysis,
    DailyRun,
    Delivery,
    SignupRequest,
    Subscriber,
    Threshold,
)
from newsletter.subscribers import links, subscriptions  # noqa: E402
from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.openai import Behaviour, FakeOpenAI  # noqa: E402
from tests.fakes.seed_day import SEED_REPO, SEED_TIMEZONE, load_into  # noqa: E402
from tests.fakes.sendgrid import FakeSendGrid  # noqa: E402
from tests.helpers import csrf_token, descendants, link_in, path_of, raw_header, subscribe_form  # noqa: E402

SERVER = os.environ.get("CHAOS_DATABASE_SERVER", "postgresql+psycopg://127.0.0.1:5432/test")
DAY = "2026-01-24"
DAY_DATE = date(2026, 1, 24)
SECRET = "chaos-secret-" + "0123456789abcdef" * 3
CLI = [sys.executable, "-c", "from newsletter.cli import main; main()"]
READERS = 20
SWEEP_SECONDS = 5  # DELIVERY_SWEEP_SECONDS of every scheduler started here
RESTART_BOUND = 30  # README: the fan-out finishes within this once a new worker and the scheduler run
DELIVERY_ID_HEADER = "X-Repo-Daily-delivery_id"  # custom arg every digest carries (confirmations do not)
EVIL = "https://evil.example/steal?t=-rd-preferences-&u=-rd-unsubscribe-&e=-rd-email-"
GUESS = "-rd-0123456789abcdef-unsubscribe-t-"  # a guess at the per-process placeholder form
NO_PUBLIC = "There is no public GitHub repository {repo}."
ROW_ERROR = re.compile(r'<p class="error" id="repos-(\d+)-repo-error">([^<]*)</p>')
# A link path whose token is not masked: itsdangerous tokens are payload.timestamp.signature.
UNMASKED = re.compile(r"/(?:confirm|preferences|unsubscribe)/(?!\[token\])"
                      r"[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
MASKED = re.compile(r"/(?:confirm|preferences|unsubscribe)/\[token\]")

MIGRATE_LOCK = threading.Lock()  # Alembic's module-level context is not for concurrent use
TOKENS_LOCK = threading.Lock()
TOKENS: set[str] = set()  # payload part of every link token of every stage's subscribers and signups
LIVE_LOCK = threading.Lock()
LIVE: list[Stage] = []  # stages still holding processes, servers or a database (for Ctrl-C)
STOPPING = threading.Event()  # set on Ctrl-C or SIGTERM: no new stage opens


class Failure(Exception):
    """A step of a fault went wrong; logs are the files to show."""

    def __init__(self, message: str, logs: Iterable[Path] = ()):
        super().__init__(message)
        self.logs = list(logs)


def require(condition: object, message: str, logs: Iterable[Path] = ()) -> None:
    if not condition:
        raise Failure(message, logs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sigkill(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a process and its descendants together (an RQ work horse runs in a session of its own)."""
    sigkill([*descendants(process.pid), process.pid])
    process.wait(timeout=10)


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after grace; no descendant outlives it."""
    family = descendants(process.pid)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            family += descendants(process.pid)
            kill_tree(process)
    sigkill(pid for pid in family if alive(pid))


def tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"  (cannot read {path}: {exc})"
    return "\n".join("  | " + line[:300] for line in content[-lines:]) or "  | (empty)"


def quiet_cron() -> str:
    """A DIGEST_CRON twelve hours away (in DIGEST_TIMEZONE): the scheduler's daily tick stays out of the way."""
    return f"0 {(datetime.now(ZoneInfo(SEED_TIMEZONE)).hour + 12) % 24} * * *"


def quiet_ingest_cron() -> str:
    """An INGEST_CRON half an hour away: the scheduler's hourly tick (ingest, reports, planning at the
    wall clock) stays out of a fault's few minutes; the fan-out comes from `deliver --now` and the sweep."""
    return f"{(datetime.now(UTC).minute + 30) % 60} * * * *"


def fill_all(content: str, substitutions: dict[str, str]) -> str:
    """What SendGrid does with a personalization's substitutions: every occurrence of every key."""
    for key, value in substitutions.items():
        content = content.replace(key, value)
    return content


# Servers ---------------------------------------------------------------------------------------------

class RedisServer:
    """A private redis-server on a free loopback port, which a fault may stop and start again."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Failure("no redis-server on PATH")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            for _ in range(250):
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None:
                        break
                    time.sleep(0.02)
        finally:
            client.close()
        raise Failure(f"redis-server on port {self.port} did not start", [self.folder / "redis.log"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


class Sink:
    """An aiosmtpd handler keeping every message as it arrived on the wire: envelope recipients, raw DATA."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.lock = threading.Lock()
        self.messages: list[tuple[tuple[str, ...], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow server; a client that dies meanwhile loses the message
        with self.lock:
            self.messages.append((tuple(envelope.rcpt_tos), bytes(envelope.original_content or b"")))
        return "250 OK"

    def snapshot(self) -> list[tuple[tuple[str, ...], bytes]]:
        with self.lock:
            return list(self.messages)


def is_digest(raw: bytes) -> bool:
    return BytesHeaderParser(policy=email.policy.default).parsebytes(raw).get(DELIVERY_ID_HEADER) is not None


def parts_of(raw: bytes) -> tuple[str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return (message.get_body(preferencelist=("plain",)).get_content(),
            message.get_body(preferencelist=("html",)).get_content())


# One fault's world -----------------------------------------------------------------------------------

@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log: Path
    stopped: bool = False  # stopped or killed on purpose: its exit is no failure


class Stage:
    """Database, Redis, fakes, processes and logs of one fault; everything is undone by close()."""

    def __init__(self, root: Path, label: str, *, backend: str = "smtp", sink_delay: float = 0.0,
                 start_sink: bool = True, github_token: str | None = None, log_level: str = "WARNING",
                 env: dict[str, str] | None = None):
        self.label = label
        self.dir = root / label
        self.logs = self.dir / "logs"
        self.backend = backend
        self.sink_delay = sink_delay
        self.start_sink_now = start_sink
        self.github_token = github_token
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.processes: list[Proc] = []
        self.cli_count = 0
        self.db_name: str | None = None
        self.url = ""
        self.engine: Any = None
        self.redis: RedisServer | None = None
        self.github: FakeGitHub | None = None
        self.llm: FakeOpenAI | None = None
        self.sendgrid: FakeSendGrid | None = None
        self.sink: Sink | None = None
        self.controller: Controller | None = None
        self.smtp_port = 0
        self.env: dict[str, str] = {}
        self.closers: list[Callable[[], None]] = []
        self.closed = False

    # lifecycle

    def __enter__(self) -> Stage:
        with LIVE_LOCK:
            LIVE.append(self)
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind, exc, _traceback) -> None:
        if exc is not None and not isinstance(exc, Failure):
            exc.stage_logs = self.log_files()  # type: ignore[union-attr]
        elif isinstance(exc, Failure):
            exc.logs = list(dict.fromkeys([*exc.logs, *self.log_files()]))
        self.close()

    def _open(self) -> None:
        if STOPPING.is_set():
            raise Failure("interrupted")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.db_name = f"repo_daily_chaos_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(SERVER), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        admin.dispose()
        self.url = make_url(SERVER).set(database=self.db_name).render_as_string(hide_password=False)
        with MIGRATE_LOCK:
            upgrade(self.url)
        self.engine = create_engine(self.url, poolclass=NullPool)
        self.redis = RedisServer(self.dir / "redis")
        self.redis.start()
        self.github = FakeGitHub(token=self.github_token).start()
        load_into(self.github)
        self.llm = FakeOpenAI().start()
        env = {k: v for k, v in os.environ.items()
               if k not in setting_names() and not k.startswith(("TEST_", "BENCH_", "CHAOS_"))}
        env.update({
            "PYTHONUNBUFFERED": "1", "PYTHONUTF8": "1",
            "SECRET_KEY": SECRET, "DATABASE_URL": self.url, "REDIS_URL": self.redis.url,
            "INSTANCE_PATH": str(self.dir / "instance"), "BASE_URL": "https://daily.example.com",
            "LOG_LEVEL": self.log_level, "MAIL_FROM": "Repo Daily <news@daily.example.com>",
            "GITHUB_API_URL": self.github.url, "OPENAI_BASE_URL": self.llm.base_url,
            "OPENAI_API_KEY": "sk-chaos", "OPENAI_MODEL": "chaos-model", "LLM_TIMEOUT": "20",
            # The seed's 15 commits are one day in its time zone (two days in UTC).
            "DIGEST_TIMEZONE": SEED_TIMEZONE,
            "DIGEST_CRON": quiet_cron(), "INGEST_CRON": quiet_ingest_cron(),
            "DELIVERY_SWEEP_SECONDS": str(SWEEP_SECONDS), "JOB_TIMEOUT": "300",
            "RATELIMIT_ENABLED": "0",
        })
        if self.github_token:
            env["GITHUB_TOKEN"] = self.github_token
        if self.backend == "smtp":
            self.smtp_port = free_port()
            self.sink = Sink(self.sink_delay)
            env.update({"MAIL_BACKEND": "smtp", "SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}",
                        "SMTP_TIMEOUT": "5"})
            if self.start_sink_now:
                self.start_sink()
        else:
            self.sendgrid = FakeSendGrid().start()
            env.update({"MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": self.sendgrid.api_key,
                        "SENDGRID_API_HOST": self.sendgrid.url, "SENDGRID_TIMEOUT": "10"})
        env.update(self.extra_env)
        self.env = env

    def start_sink(self) -> None:
        assert self.sink is not None
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.smtp_port)
        self.controller.start()

    def settings(self) -> dict[str, Any]:
        """The settings, read as a process reads its environment, for an in-process app (the site)."""
        return load_config({k: v for k, v in self.env.items() if k in setting_names()})

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        steps: list[tuple[str, Callable[[], None]]] = [
            *[(f"stop {p.name}", lambda p=p: stop_process(p.process)) for p in reversed(self.processes)],
            *[("closer", closer) for closer in self.closers],
            ("collect tokens", self.collect_tokens),
            ("stop SMTP sink", lambda: self.controller.stop() if self.controller else None),
            ("stop fake SendGrid", lambda: self.sendgrid.stop() if self.sendgrid else None),
            ("stop fake OpenAI", lambda: self.llm.stop() if self.llm else None),
            ("stop fake GitHub", lambda: self.github.stop() if self.github else None),
            ("stop redis-server", lambda: self.redis.stop() if self.redis else None),
            ("dispose engine", lambda: self.engine.dispose() if self.engine is not None else None),
            ("drop database", self._drop),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep undoing the rest
                print(f"[{self.label}] cleanup: {what} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        with LIVE_LOCK:
            if self in LIVE:
                LIVE.remove(self)

    def _drop(self) -> None:
        if self.db_name is None:
            return
        admin = create_engine(make_url(SERVER), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        admin.dispose()

    def collect_tokens(self) -> None:
        """Every subscriber's and signup's link token payload, for the token-in-logs check."""
        if self.engine is None:
            return
        found = set()
        with Session(self.engine) as session:
            for subscriber in session.scalars(select(Subscriber)):
                found.add(links.preferences_token(SECRET, subscriber).split(".")[0])
            for signup in session.scalars(select(SignupRequest)):
                found.add(links.confirm_token(SECRET, signup).split(".")[0])
        with TOKENS_LOCK:
            TOKENS.update(found)

    # processes

    def log_files(self) -> list[Path]:
        return sorted(self.logs.glob("*.log"), key=lambda p: p.stat().st_mtime) if self.logs.exists() else []

    def cli(self, *args: str, ok: bool = True, timeout: float = 180) -> tuple[int, str]:
        """Run `newsletter ARGS` to the end; its output (stdout and stderr) and exit status."""
        self.cli_count += 1
        log_path = self.logs / f"cli-{self.cli_count:02d}-{args[0]}.log"
        with open(log_path, "w") as out:
            try:
                done = subprocess.run([*CLI, *args], env=self.env, cwd=ROOT, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise Failure(f"`newsletter {' '.join(args)}` still running after {timeout:g} s",
                              [log_path]) from None
        output = log_path.read_text(errors="replace")
        if ok and done.returncode != 0:
            raise Failure(f"`newsletter {' '.join(args)}` exited {done.returncode}", [log_path])
        return done.returncode, output

    def start(self, name: str, *args: str, command: list[str] | None = None) -> subprocess.Popen:
        log_path = self.logs / f"{name}.log"
        with open(log_path, "w") as out:
            # A session of its own, as a container's processes have: a kill spares this script.
            process = subprocess.Popen(command or [*CLI, *args], env=self.env, cwd=ROOT, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(Proc(name, process, log_path))
        return process

    def proc(self, name: str) -> Proc:
        return next(p for p in self.processes if p.name == name)

    def wait(self, condition: Callable[[], object], seconds: float, what: str) -> float:
        """Seconds until condition holds; a Failure (with the logs) after `seconds` or when a process died."""
        started = time.monotonic()
        while True:
            if condition():
                return time.monotonic() - started
            dead = [p for p in self.processes if p.process.poll() is not None and not p.stopped]
            if dead:
                raise Failure(f"{dead[0].name} exited ({dead[0].process.returncode}) "
                              f"while waiting for {what}", [dead[0].log])
            if time.monotonic() - started > seconds:
                raise Failure(f"timed out after {seconds:g} s waiting for {what}", self.log_files())
            if STOPPING.is_set():
                raise Failure("interrupted")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        entry = self.proc(name)
        entry.stopped = True
        kill_tree(entry.process)

    def stop(self, name: str) -> None:
        entry = self.proc(name)
        entry.stopped = True
        stop_process(entry.process)

    # the database, as the fault left it

    def query(self, read: Callable[[Session], Any]) -> Any:
        for attempt in range(5):
            try:
                with Session(self.engine) as session:
                    return read(session)
            except OperationalError:  # PostgreSQL just terminated our connection (fault 3)
                if attempt == 4:
                    raise
                time.sleep(0.3)
        return None

    def add_readers(self, readers: Iterable[tuple[str, str, str]], repos: tuple[str, ...] = ()) -> None:
        """Confirmed subscribers, as `newsletter subscribe --confirmed` makes them (in one transaction)."""
        with Session(self.engine) as session:
            for reader in readers:
                address, threshold, language = reader
                wanted = [(repo, Threshold(threshold)) for repo in (repos or (SEED_REPO,))]
                subscriptions.subscribe_confirmed(session, address, wanted, language)
            session.commit()

    def statuses(self) -> Counter:
        rows = self.query(lambda s: s.execute(select(Delivery.status, func.count())
                                              .group_by(Delivery.status)).all())
        return Counter({status.value: count for status, count in rows})

    def rows(self) -> dict[str, dict[str, Any]]:
        def read(session: Session) -> dict[str, dict[str, Any]]:
            found = session.execute(
                select(Subscriber.email, Delivery.status, Delivery.error, Delivery.next_attempt_at,
                       Delivery.attempts).join(Subscriber, Subscriber.id == Delivery.subscriber_id))
            return {address: {"status": status.value, "error": error or "", "next": next_at,
                              "attempts": tries} for address, status, error, next_at, tries in found}
        return self.query(read)

    def day_run(self) -> tuple[str, int, str] | None:
        found = self.query(lambda s: s.execute(select(DailyRun.status, DailyRun.attempts, DailyRun.error)
                                               .where(DailyRun.date == DAY_DATE)).first())
        return None if found is None else (found[0].value, found[1], found[2] or "")

    def non_final(self) -> int:
        counts = self.statuses()
        return counts["pending"] + counts["sending"]

    def settled(self, expected_rows: int) -> bool:
        counts = self.statuses()
        return sum(counts.values()) >= expected_rows and counts["pending"] == counts["sending"] == 0

    def all_waiting(self, expected_rows: int) -> bool:
        """Every row pending with a retry time (a transient failure put the fan-out off)."""
        rows = self.rows()
        return len(rows) >= expected_rows and all(r["status"] == "pending" and r["next"] is not None
                                                  for r in rows.values())

    # what reached the backend

    def digests(self) -> list[tuple[str, str, str]]:
        """(recipient, text, html) of every digest the backend took, SendGrid's substitutions applied."""
        found = []
        if self.sink is not None:
            for recipients, raw in self.sink.snapshot():
                if is_digest(raw):
                    plain, html = parts_of(raw)
                    found += [(to, plain, html) for to in recipients]
        if self.sendgrid is not None:
            for body in self.sendgrid.requests:
                plain, html = body["content"][0]["value"], body["content"][1]["value"]
                for personalization in body["personalizations"]:
                    if "delivery_id" in (personalization.get("custom_args") or {}):
                        subs = personalization.get("substitutions") or {}
                        found += [(to["email"], fill_all(plain, subs), fill_all(html, subs))
                                  for to in personalization["to"]]
        return found

    def received(self) -> Counter:
        """Recipients of digests as the backend saw them (SMTP: RCPT TO on the wire)."""
        if self.sink is not None:
            return Counter(to for recipients, raw in self.sink.snapshot() if is_digest(raw)
                           for to in recipients)
        assert self.sendgrid is not None
        return Counter(to["email"] for body in self.sendgrid.requests for p in body["personalizations"]
                       if "delivery_id" in (p.get("custom_args") or {}) for to in p["to"])


# Rows ----------------------------------------------------------------------------------------------

@dataclass
class Row:
    number: int
    fault: str
    expected: int | None = None
    sent: int | None = None
    duplicated: int | None = None
    lost: int | None = None
    non_final: int | None = None
    check: str = ""
    ok: bool = False
    logs: list[Path] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # fault 14: found before its logs are read at the end


def measure(row: Row, expected: Iterable[str], received: Counter, non_final: int,
            allowed_lost: Iterable[str] = ()) -> list[str]:
    """Fill the row's counts; the generic problems (duplicates, rows left, losses beyond allowed_lost)."""
    wanted = set(expected)
    row.expected = len(wanted)
    row.sent = len(received)
    row.duplicated = sum(1 for count in received.values() if count > 1)
    missing = wanted - set(received)
    row.lost = len(missing)
    row.non_final = non_final
    problems = []
    if row.duplicated:
        problems.append(f"{row.duplicated} got it twice")
    if non_final:
        problems.append(f"{non_final} rows left pending/sending")
    if missing - set(allowed_lost):
        problems.append(f"lost {sorted(missing - set(allowed_lost))[:3]}")
    if set(received) - wanted:
        problems.append(f"unexpected recipients {sorted(set(received) - wanted)[:3]}")
    return problems


def verdict(row: Row, claim: str, problems: list[str], stage_logs: Iterable[Path] = ()) -> Row:
    row.ok = not problems
    row.check = f"{claim}: ok" if row.ok else f"{claim}: FAILED ({'; '.join(problems)})"
    if not row.ok:
        row.logs = list(dict.fromkeys([*row.logs, *stage_logs]))
    return row


def readers(count: int = READERS, prefix: str = "reader", mix: bool = False) -> list[tuple[str, str, str]]:
    """count readers of the seed repository; mix: two thresholds (two contents), else all at low."""
    return [(f"{prefix}{i:02d}@example.com", "medium" if mix and i % 2 else "low", "en")
            for i in range(count)]


def run_over(st: Stage, seconds: float, what: str = "the day's run to end") -> tuple[str, int, str]:
    """Wait until the day's run is done or failed; (status, attempts, error)."""
    st.wait(lambda: (st.day_run() or ("",))[0] in ("done", "failed"), seconds, what)
    found = st.day_run()
    assert found is not None
    return found


def build_day(st: Stage, *, scheduler: bool = False, seconds: float = 150) -> None:
    """`newsletter run-daily --date D` (RQ), a worker (and the scheduler), until the run is done: the
    reports are built and the day's commits stamped first seen; nothing is sent."""
    _rc, output = st.cli("run-daily", "--date", DAY)
    require("repositories enqueued" in output, f"run-daily did not enqueue: {output.strip()[-200:]}",
            st.log_files())
    st.start("worker", "worker")
    if scheduler:
        st.start("scheduler", "scheduler")
    status, attempts, error = run_over(st, seconds)
    require(status == "done", f"the day's run {status} on attempt {attempts}: {error[:160]}", st.log_files())


def deliver_now(st: Stage) -> str:
    """T + 1 day, T the latest confirmation, in ISO-8601: the --now at which every reader's first email
    is due. With the default clock (08:00 daily in the reader's zone) exactly one slot lies in
    (T, T + 1 day], and that first email's window, (slot - 1 day, now], holds the commits first seen
    when the day was built (after T)."""
    latest = st.query(lambda s: s.scalar(select(func.max(Subscriber.confirmed_at))))
    require(latest is not None, "no confirmed subscriber to deliver to")
    moment = (latest if latest.tzinfo else latest.replace(tzinfo=UTC)) + timedelta(days=1)
    return moment.astimezone(UTC).isoformat()


def start_fanout(st: Stage, planned: int | None = None) -> str:
    """`newsletter deliver --now T+1d` (RQ): plans the emails due then and enqueues their batches on the
    email queue for the workers; planned: how many emails it must plan. Its output."""
    _rc, output = st.cli("deliver", "--now", deliver_now(st))
    wanted = "emails planned" if planned is None else f": {planned} emails planned"
    require(wanted in output and "batches enqueued" in output,
            f"deliver did not plan {planned if planned is not None else 'any'} emails and enqueue their "
            f"batches: {output.strip()[-200:]}", st.log_files())
    return output


def run_day(st: Stage, expected_rows: int, *, scheduler: bool = False, seconds: float = 150) -> float:
    """build_day, then start_fanout (one email per reader): seconds from `deliver` until every row settled."""
    build_day(st, scheduler=scheduler)
    start_fanout(st, expected_rows)
    return st.wait(lambda: st.settled(expected_rows), seconds, "every delivery row to settle")


def addresses(people: list[tuple[str, str, str]]) -> list[str]:
    return [p[0] for p in people]


# The faults ----------------------------------------------------------------------------------------

def evil_problems(contents: list[tuple[str, str, str]], victim: str) -> tuple[int, list[str]]:
    """Tokens near evil.example (the count), and anything else wrong with the hostile text in the emails."""
    with TOKENS_LOCK:
        known = set(TOKENS)
    carried, problems = 0, []
    for recipient, *parts in contents:
        for part in parts:
            near = re.findall(r"evil\.example[^\s\"'<>]*", part)
            if not near:
                problems.append(f"{recipient}: the evil link is not shown")
            for found in near:
                leaked = (any(token in found for token in known) or "/preferences/" in found
                          or "/unsubscribe/" in found or "@" in found or "-rd-preferences-" not in found)
                carried += leaked
            flat = " ".join(part.split())
            if f"write to {victim}" not in flat:
                problems.append(f"{recipient}: {victim} in the commit text was not kept literal")
            if GUESS not in flat:
                problems.append(f"{recipient}: the guessed placeholder was replaced")
    return carried, problems


def fault_hostile(root: Path, row: Row) -> Row:
    people = readers()
    victim = people[0][0]
    # A high commit (feat!): its card shows the whole title and the model's summary (the fake repeats
    # the title there); a low commit is one line cut at 90 characters, which would drop the rest.
    message = f"feat!: see {EVIL} or {GUESS} or write to {victim}"
    received: Counter = Counter()
    expected: list[str] = []
    non_final, carried, problems, logs, keys_in_text = 0, 0, [], [], 0
    for backend in ("smtp", "sendgrid"):
        with Stage(root, f"01-hostile-{backend}", backend=backend) as st:
            assert st.github is not None
            st.github.add_commit(SEED_REPO, message, date=datetime(2026, 1, 24, 11, 0, tzinfo=UTC),
                                 author="Mallory", login="mallory")
            st.add_readers(people)
            run_day(st, len(people))
            st.collect_tokens()
            found, wrong = evil_problems(st.digests(), victim)
            carried += found
            problems += [f"{backend}: {w}" for w in wrong[:3]]
            if st.sendgrid is not None:
                # The request bodies: no substitution key occurs in the commit's text.
                keys_in_text += sum(1 for body in st.sendgrid.requests for p in body["personalizations"]
                                    for key in (p.get("substitutions") or {}) if key in message)
            received.update(Counter({f"{backend}:{k}": v for k, v in st.received().items()}))
            expected += [f"{backend}:{a}" for a in addresses(people)]
            non_final += st.non_final()
            logs += st.log_files()
    problems = measure(row, expected, received, non_final) + problems
    if carried:
        problems.append(f"{carried} evil links carried a token or address")
    if keys_in_text:
        problems.append(f"{keys_in_text} SendGrid substitution keys occur in the commit text")
    return verdict(row, f"evil link carried a token: {carried} (SMTP + SendGrid, filled); "
                        f"{victim.split('@')[0]}'s address literal", problems, logs)


def fault_surrogate(root: Path, row: Row) -> Row:
    people = readers()
    with Stage(root, "02-surrogate") as st:
        assert st.llm is not None
        # Every answer (64: more than the day's requests), whichever commit each request is for: the
        # summaries an email shows (high and medium commits; a low one is a line without) all carry it.
        st.llm.script(*[Behaviour(answer={"summary": "bad \ud800"})] * 64)
        st.add_readers(people)
        run_day(st, len(people))
        status, attempts, _error = st.day_run() or ("?", 0, "")
        replaced = sum(1 for _to, plain, _html in st.digests() if "bad \ufffd" in plain)
        problems = measure(row, addresses(people), st.received(), st.non_final())
        if (status, attempts) != ("done", 1):
            problems.append(f"run {status} on attempt {attempts}")
        if replaced != len(people):
            problems.append(f"U+FFFD summary in {replaced} emails")
        return verdict(row, f"run {status} on attempt {attempts}; summary shown as 'bad \\ufffd' "
                            f"in {replaced} emails", problems, st.log_files())


def fault_database_lost(root: Path, row: Row) -> Row:
    """The repository job fails and the run is `failed`, nothing sent; `run-daily --date D` again
    resumes it (attempt 2) with the analyses attempt 1 stored, asking the model only for the others;
    then `deliver --now` sends every reader exactly one email (none twice, none lost).

    The readers also watch a small second repository, whose job runs first (jobs go in name order)
    and is done before the kill: its analyses are what attempt 2 must reuse rather than ask again.
    """
    people = readers(mix=True)
    gadgets, marker = "acme/gadgets", "gadget change"
    with Stage(root, "03-postgres-terminated") as st:
        assert st.llm is not None and st.github is not None
        st.github.add_repo(gadgets)
        st.github.add_commits(gadgets, 4, start=datetime(2026, 1, 24, 9, tzinfo=UTC), message=f"feat: {marker}")
        killer = create_engine(st.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        st.closers.append(killer.dispose)
        lock, terminated = threading.Lock(), []

        def terminate_everyone_else(body: dict) -> None:
            # As a failover or a restart would: PostgreSQL drops every other connection to the database,
            # at the first analysis request of the seed repository (the second job).
            if marker in str(body):
                return
            with lock:
                if terminated:
                    return
                with killer.connect() as connection:
                    terminated.append(connection.execute(text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar())
            assert st.llm is not None
            st.llm.on_request = None

        st.llm.on_request = terminate_everyone_else
        st.add_readers(people, repos=(SEED_REPO, gadgets))
        _rc, output = st.cli("run-daily", "--date", DAY)
        require("2 repositories enqueued" in output, f"run-daily: {output.strip()[-200:]}", st.log_files())
        st.start("worker", "worker")
        first = run_over(st, 90, "the run to fail")

        def analyses(session: Session) -> int:
            return session.scalar(select(func.count()).select_from(CommitAnalysis)) or 0

        kept, asked_first = st.query(analyses), st.llm.calls
        quiet = sum(st.statuses().values()) == 0 and not st.received()  # nothing planned or sent
        _rc, again = st.cli("run-daily", "--date", DAY)
        require("1 repositories resumed" in again, f"the second run-daily did not resume the failed "
                f"repository alone: {again.strip()[-200:]}", st.log_files())
        status, attempts, error = run_over(st, 150, "the resumed run to end")
        require(status == "done", f"the resumed run {status} on attempt {attempts}: {error[:160]}",
                st.log_files())
        second = st.llm.requests[asked_first:]
        missing, asked_again = st.query(analyses) - kept, len(second)
        asked_twice = sum(marker in str(body) for body in second)
        start_fanout(st, len(people))
        st.wait(lambda: st.settled(len(people)), 150, "every delivery row to settle")
        status, attempts, _ = st.day_run() or ("?", 0, "")
        problems = measure(row, addresses(people), st.received(), st.non_final())
        if not terminated or not terminated[0]:
            problems.append("no connection was terminated")
        if first[0] != "failed":
            problems.append(f"first run {first[0]} on attempt {first[1]}")
        if not quiet:
            problems.append("emails were planned or sent while the run was failed")
        if not kept or asked_twice or asked_again != missing:
            problems.append(f"attempt 2 asked the model {asked_again} times ({asked_twice} for analyses kept) "
                            f"for {missing} missing analyses; {kept} kept from attempt 1")
        if (status, attempts) != ("done", 2):
            problems.append(f"run {status} on attempt {attempts}")
        shown = {to: plain for to, plain, _html in st.digests()}
        if any(gadgets not in shown.get(to, "") for to in addresses(people)):
            problems.append(f"an email misses {gadgets}")
        killed = terminated[0] if terminated else 0
        return verdict(row, f"{killed} connections killed, run failed, nothing sent; rerun resumed on attempt "
                            f"{attempts}: {kept} cached analyses reused, {asked_again} asked; "
                            "`deliver --now` sent each once", problems, st.log_files())


def fault_redis_down(root: Path, row: Row) -> Row:
    people = readers(mix=True)
    with Stage(root, "04-redis-down") as st:
        assert st.redis is not None
        st.add_readers(people)
        # A worker and the scheduler are up when Redis goes away, as in production.
        st.start("worker", "worker")
        st.start("scheduler", "scheduler")
        probe = redis.Redis.from_url(st.redis.url)
        st.wait(lambda: probe.zcard("rq:finished:email") >= 1, 60, "the scheduler's first sweep to run")
        probe.close()
        st.proc("scheduler").stopped = True  # whether it survives the outage is reported, not waited on
        st.redis.stop()
        rc, output = st.cli("run-daily", "--date", DAY, ok=False)
        first = st.day_run()
        deadline = time.monotonic() + 10
        while st.proc("scheduler").process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        scheduler_exit = st.proc("scheduler").process.poll()
        worker_up = st.proc("worker").process.poll() is None
        st.redis.start()  # empty: Redis kept nothing (--save "", no AOF)
        if scheduler_exit is not None:  # as a supervisor with a restart policy would
            st.start("scheduler2", "scheduler")
        _rc, again = st.cli("run-daily", "--date", DAY)
        resumed = run_over(st, 150, "the resumed run to end")
        require(resumed[0] == "done", f"the resumed run {resumed[0]} on attempt {resumed[1]}: {resumed[2][:160]}",
                st.log_files())
        start_fanout(st, len(people))
        st.wait(lambda: st.settled(len(people)), 150, "every delivery row to settle")
        status, attempts, _ = st.day_run() or ("?", 0, "")
        problems = measure(row, addresses(people), st.received(), st.non_final())
        if rc == 0:
            problems.append(f"run-daily with Redis down exited 0: {output.strip()[-120:]}")
        if first is None or first[0] != "failed" or "could not enqueue" not in first[2]:
            problems.append(f"no failed run left: {first}")
        if "resumed" not in again:
            problems.append(f"rerun said {again.strip()[-120:]!r}")
        if (status, attempts) != ("done", 2):
            problems.append(f"run {status} on attempt {attempts}")
        if not worker_up:
            problems.append("the worker died with Redis")
        scheduler = ("scheduler survived" if scheduler_exit is None
                     else f"NOTE scheduler exited {scheduler_exit}, restarted")
        return verdict(row, f"run-daily exit {rc}, run failed; worker rode it out; resumed on attempt "
                            f"{attempts} ({scheduler})", problems, st.log_files())


def fault_smtp_refused(root: Path, row: Row) -> Row:
    people = readers(mix=True)
    with Stage(root, "05-smtp-refused", start_sink=False) as st:
        assert st.sink is not None
        st.add_readers(people)
        build_day(st)
        start_fanout(st, len(people))
        st.wait(lambda: st.all_waiting(len(people)), 120, "every row to wait for a retry")
        rows = st.rows()
        retry_at = max(r["next"] for r in rows.values())
        refused = all("refused" in r["error"].lower() for r in rows.values())
        tried = sum(r["attempts"] for r in rows.values())
        st.start_sink()  # the SMTP server is back
        wait = (retry_at - datetime.now(UTC)).total_seconds()
        st.wait(lambda: datetime.now(UTC) > retry_at, 200, "the retry time")
        deliver = start_fanout(st, 0)  # the same instant again: nothing new to plan, the waiting rows go
        st.wait(lambda: st.settled(len(people)), 60, "every delivery row to settle")
        problems = measure(row, addresses(people), st.received(), st.non_final())
        if not refused:
            problems.append("some waiting rows do not say the connection was refused")
        if tried != 1:
            problems.append(f"{tried} attempts while the server was down (1 expected: the rest wait)")
        if "batches enqueued" not in deliver:
            problems.append(f"deliver said {deliver.strip()[-120:]!r}")
        return verdict(row, f"{len(rows)} rows waited (1 attempt, retry in {wait:.0f} s), "
                            "sent by `newsletter deliver`", problems, st.log_files())


def fault_sendgrid_500(root: Path, row: Row) -> Row:
    people = readers(mix=True)
    with Stage(root, "06-sendgrid-500", backend="sendgrid") as st:
        fake = st.sendgrid
        assert fake is not None
        fake.fail_next(500, count=6)  # the first request and its 5 in-request retries
        st.add_readers(people)
        build_day(st, scheduler=True)
        start_fanout(st, len(people))
        st.wait(lambda: fake.attempts >= 1, 120, "the first SendGrid request")
        spent = st.wait(lambda: st.all_waiting(len(people)), 90, "every row to wait for a retry")
        later = st.wait(lambda: st.settled(len(people)), 150, "every delivery row to settle")
        problems = measure(row, addresses(people), st.received(), st.non_final())
        failed_attempts = fake.attempts - len(fake.requests)
        if failed_attempts != 6:
            problems.append(f"{failed_attempts} failed attempts (6 scripted)")
        if later < 50:
            problems.append(f"resent after {later:.0f} s, before the one-minute backoff")
        return verdict(row, f"6x500 over {spent:.0f} s, rows waited, the sweep resent after {later:.0f} s",
                       problems, st.log_files())


def fault_sendgrid_hang(root: Path, row: Row) -> Row:
    people = readers(mix=True)
    with Stage(root, "07-sendgrid-hang", backend="sendgrid", env={"SENDGRID_TIMEOUT": "1"}) as st:
        fake = st.sendgrid
        assert fake is not None
        fake.hang_next(count=6)  # read and never answered: the request and its 5 retries
        st.add_readers(people)
        build_day(st, scheduler=True)
        start_fanout(st, len(people))
        st.wait(lambda: fake.hanging >= 1, 120, "the first hung SendGrid request")
        # The worker's job must give up by itself: 6 timeouts of 1 s plus 31 s of backoff.
        released = st.wait(lambda: st.all_waiting(len(people)), 60,
                           "the rows to be released after the timeouts")
        rows = st.rows()
        timed_out = sum("timed out" in r["error"] for r in rows.values())
        later = st.wait(lambda: st.settled(len(people)), 150, "every delivery row to settle")
        problems = measure(row, addresses(people), st.received(), st.non_final())
        if len(fake.hung) != 6:
            problems.append(f"{len(fake.hung)} hung requests (6 scripted)")
        if not timed_out:
            problems.append("no row says the request timed out")
        if any(p.process.poll() is not None for p in st.processes):
            problems.append("a process died")
        return verdict(row, f"6 hung requests, worker free after {released:.0f} s, "
                            f"all sent {later:.0f} s later; no process hung", problems, st.log_files())


def fault_sendgrid_400(root: Path, row: Row) -> Row:
    bad = "refused@example.com"
    people = [*readers(READERS - 1), (bad, "low", "en")]
    with Stage(root, "08-sendgrid-400", backend="sendgrid") as st:
        fake = st.sendgrid
        assert fake is not None
        fake.invalid_addresses.add(bad)  # SendGrid's own check is stricter than ours
        st.add_readers(people)
        run_day(st, len(people))
        rows = st.rows()
        problems = measure(row, addresses(people), st.received(), st.non_final(),
                           allowed_lost=[bad])
        refused = rows[bad]
        if not (refused["status"] == "failed" and refused["next"] is None
                and "Does not contain a valid address" in refused["error"]):
            problems.append(f"{bad}: {refused['status']} {refused['error'][:80]!r}")
        others = [a for a, r in rows.items() if a != bad and r["status"] != "sent"]
        if others:
            problems.append(f"{len(others)} valid rows not sent")
        if len(fake.refusals) != 1 or len(fake.requests) != 1:
            problems.append(f"{len(fake.refusals)} refusals, {len(fake.requests)} accepted requests "
                            "(1 and 1 expected)")
        valid_lost = len(set(addresses(people)) - {bad} - set(st.received()))
        return verdict(row, f"expected but refused: {bad} (failed for good, no retry); "
                            f"lost of the {len(people) - 1} valid: {valid_lost}", problems, st.log_files())


def restart_after_kill(st: Stage, expected_rows: int) -> float:
    """Only a new worker and the scheduler (no `newsletter deliver`): seconds until every row settled."""
    st.start("worker2", "worker")
    st.start("scheduler", "scheduler")
    return st.wait(lambda: st.settled(expected_rows), RESTART_BOUND + 30,
                   "the fan-out to finish after the kill")


def kill_checks(st: Stage, row: Row, people: list[str], in_flight: set[str], took: float,
                accepted: Counter) -> list[str]:
    rows = st.rows()
    problems = measure(row, people, accepted, st.non_final(),
                       allowed_lost=in_flight)
    failed = {a for a, r in rows.items() if r["status"] == "failed"}
    if failed != in_flight:
        problems.append(f"failed rows {sorted(failed)[:3]} are not the in-flight ones "
                        f"{sorted(in_flight)[:3]}")
    if not all("interrupted" in rows[a]["error"] for a in failed):
        problems.append("a failed row does not say interrupted")
    sent = {a for a, r in rows.items() if r["status"] == "sent"}
    if sent != set(people) - in_flight:
        problems.append(f"{len(sent)} rows sent, {len(people) - len(in_flight)} expected")
    if took > RESTART_BOUND:
        problems.append(f"finished {took:.0f} s after the restart (bound {RESTART_BOUND} s)")
    return problems


def fault_kill_smtp(root: Path, row: Row) -> Row:
    people = readers(mix=True)
    with Stage(root, "09-kill-smtp", sink_delay=0.3, env={"DELIVERY_BATCH_SIZE": "5"}) as st:
        st.add_readers(people)
        build_day(st)
        start_fanout(st, len(people))
        st.wait(lambda: sum(st.received().values()) >= 6, 150, "six emails at the sink")
        st.kill("worker")
        before = sum(st.received().values())
        in_flight = {a for a, r in st.rows().items() if r["status"] == "sending"}
        pending = st.statuses()["pending"]
        took = restart_after_kill(st, len(people))
        problems = kill_checks(st, row, addresses(people), in_flight, took, st.received())
        if len(in_flight) > 1 or not pending or not 0 < before < len(people):
            problems.append(f"at the kill: {before} at the sink, {len(in_flight)} in flight, "
                            f"{pending} pending")
        reached = " (reached the sink)" if in_flight & set(st.received()) else ""
        who = ", ".join(a.split("@")[0] for a in sorted(in_flight)) or "none"
        return verdict(row, f"killed after {before}; in flight: {who} -> failed 'interrupted'{reached}; "
                            f"rest once, {took:.0f} s after restart", problems, st.log_files())


def fault_kill_sendgrid(root: Path, row: Row) -> Row:
    # Four contents (language x threshold) of five readers, one batch each: four requests of five.
    people = [(f"{lang}-{threshold}-{i}@example.com", threshold, lang)
              for lang in ("en", "zh") for threshold in ("medium", "low") for i in range(5)]
    with Stage(root, "10-kill-sendgrid", backend="sendgrid",
               env={"DELIVERY_BATCH_SIZE": "5", "SENDGRID_TIMEOUT": "120"}) as st:
        fake = st.sendgrid
        assert fake is not None
        fake.hang_next(count=1, after=1)  # the second request is read and never answered
        st.add_readers(people)
        build_day(st)
        start_fanout(st, len(people))
        st.wait(lambda: fake.hanging == 1, 150, "a SendGrid request in flight")
        st.kill("worker")
        sending = st.statuses()["sending"]
        (hung,) = fake.hung
        in_flight = {to["email"] for p in hung["personalizations"] for to in p["to"]}
        took = restart_after_kill(st, len(people))
        problems = kill_checks(st, row, addresses(people), in_flight, took, st.received())
        if sending != len(in_flight) or len(in_flight) != 5:
            problems.append(f"{sending} rows sending at the kill, {len(in_flight)} recipients "
                            "in the hung request")
        return verdict(row, f"{len(in_flight)} recipients in flight -> failed 'interrupted', never resent; "
                            f"rest once, {took:.0f} s after restart", problems, st.log_files())


def fault_list_unsubscribe(root: Path, row: Row) -> Row:
    people = readers()
    mailto = "unsubscribe@news.example.com"
    with Stage(root, "11-list-unsubscribe",
               env={"BASE_URL": "https://news.example.com", "LIST_UNSUBSCRIBE_MAILTO": mailto}) as st:
        assert st.sink is not None
        st.add_readers(people)
        run_day(st, len(people))
        own = st.query(lambda s: {x.email: links.unsubscribe_token(SECRET, x).split(".")[0]
                                  for x in s.scalars(select(Subscriber))})
        wrong, folded = [], 0
        for recipients, raw in st.sink.snapshot():
            if not is_digest(raw):
                continue
            lines = raw_header(raw, b"List-Unsubscribe")
            folded += len(lines) > 1
            unfolded = b"".join(line if i == 0 else line[1:] for i, line in enumerate(lines))
            unfolded_text = unfolded.decode("ascii", "replace")
            items = re.findall(r"<([^<>]*)>", unfolded_text)
            good = (lines and all(line.isascii() and b"=?" not in line and len(line) <= 998 for line in lines)
                    and all(line.rstrip().endswith((b">", b">,")) for line in lines)
                    and all(line.startswith(b" <") for line in lines[1:])
                    and len(items) == 2 and items[0].startswith("https://news.example.com/unsubscribe/")
                    and items[0].split("/unsubscribe/")[1].split(".")[0] == own[recipients[0]]
                    and items[1] == f"mailto:{mailto}?subject=unsubscribe"
                    and raw_header(raw, b"List-Unsubscribe-Post")
                    == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"])
            if not good:
                wrong.append(f"{recipients[0]}: {b' / '.join(lines)[:200]!r}")
        problems = measure(row, addresses(people), st.received(), st.non_final())
        problems += wrong[:2]
        total = sum(st.received().values())
        return verdict(row, f"List-Unsubscribe raw ASCII on the wire, folded only between <...> "
                            f"({folded}/{total} folded), own URL", problems, st.log_files())


def fault_international(root: Path, row: Row) -> Row:
    people = readers(READERS - 1)
    unicode_address, ascii_address = "a@bücher.de", "a@xn--bcher-kva.de"
    with Stage(root, "12-international-address") as st:
        st.add_readers(people)
        _rc, first = st.cli("subscribe", unicode_address, "--repo", f"{SEED_REPO}:low", "--confirmed")
        _rc, second = st.cli("subscribe", ascii_address, "--repo", f"{SEED_REPO}:low", "--confirmed")
        same = st.query(lambda s: s.scalar(select(func.count()).select_from(Subscriber)
                                           .where(Subscriber.email_key == ascii_address)))
        total = st.query(lambda s: s.scalar(select(func.count()).select_from(Subscriber)))
        run_day(st, len(people) + 1)
        received = st.received()
        problems = measure(row, [*addresses(people), ascii_address], received,
                           st.non_final())
        if received[ascii_address] != 1:
            problems.append(f"RCPT TO {ascii_address} x{received[ascii_address]}")
        if any(not to.isascii() for to in received):
            problems.append("a non-ASCII RCPT TO")
        if same != 1 or total != len(people) + 1:
            problems.append(f"{same} subscribers for the address, {total} in all")
        shown = [plain for to, plain, _html in st.digests() if to == ascii_address]
        if not shown or unicode_address not in shown[0]:
            problems.append("the footer does not show a@bücher.de")
        return verdict(row, f"RCPT TO {ascii_address} x{received[ascii_address]}; subscribing the xn-- "
                            f"form again: {same} subscriber", problems, st.log_files())


def site_signup(client: Any, st: Stage, address: str, repos: list[tuple[str, str]]) -> tuple[int, str]:
    page = client.get("/")
    form = subscribe_form(address, repos, "en", csrf_token(page.get_data(as_text=True)))
    response = client.post("/", data=form)
    return response.status_code, response.get_data(as_text=True)


def site_confirm(client: Any, st: Stage, address: str) -> int:
    assert st.sink is not None
    raw = [raw for recipients, raw in st.sink.snapshot() if address in recipients and not is_digest(raw)]
    require(raw, f"no confirmation email for {address}", st.log_files())
    path = path_of(link_in(parts_of(raw[-1])[0], "confirm"))
    page = client.get(path)
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))}).status_code


def fault_private(root: Path, row: Row) -> Row:
    from newsletter import create_app

    vault = "acme/vault"
    with Stage(root, "13-private-repository", github_token="operator-token",
               env={"BASE_URL": "http://localhost"}) as st:
        assert st.github is not None
        st.github.add_repo(vault)
        st.github.add_commits(vault, 3, start=datetime(2026, 1, 24, 9, tzinfo=UTC),
                              message="feat: vault-only change")
        problems: list[str] = []
        # A reader signs up on the site while the repository is still public ...
        before = create_app(st.settings())
        st.closers.append(before.extensions["db"].dispose)
        early = before.test_client()
        status, _page = site_signup(early, st, "early@example.com", [(vault, "low"), (SEED_REPO, "low")])
        problems += [] if status == 302 else [f"signup while public: {status}"]
        problems += [] if site_confirm(early, st, "early@example.com") == 200 else ["early confirm failed"]
        # ... then it goes private. A fresh site process asks GitHub again.
        st.github.repo(vault).private = True
        site = create_app(st.settings())
        st.closers.append(site.extensions["db"].dispose)
        client = site.test_client()
        answers = {}
        for repo in (vault, "acme/missing"):
            status, page = site_signup(client, st, "probe@example.com", [(repo, "low")])
            errors = {int(i): unescape(m) for i, m in ROW_ERROR.findall(page)}
            answers[repo] = (status, errors.get(0, "").replace(repo, "{repo}"))
        alike = answers[vault] == answers["acme/missing"] == (400, NO_PUBLIC)
        if not alike:
            problems.append(f"site answers {answers}")
        status, _page = site_signup(client, st, "outsider@example.com", [(SEED_REPO, "low")])
        problems += [] if status == 302 and site_confirm(client, st, "outsider@example.com") == 200 else [
            "outsider signup failed"]
        st.cli("subscribe", "granted@example.com", "--repo", f"{vault}:low", "--repo", f"{SEED_REPO}:low",
               "--confirmed")
        people = ["granted@example.com", "early@example.com", "outsider@example.com"]
        run_day(st, len(people))
        problems = measure(row, people, st.received(), st.non_final()) + problems
        shown = {to: plain + html for to, plain, html in st.digests()}
        if "vault-only" not in shown.get("granted@example.com", ""):
            problems.append("the granted reader did not get the private commits")
        leaked = [to for to in people[1:] if "vault-only" in shown.get(to, "")]
        if leaked:
            problems.append(f"private commits reached {leaked}")
        if any(f"/r/{vault}" in content for content in shown.values()):
            problems.append("an email links to the private archive")
        if any("event plane" not in shown.get(to, "") for to in people):
            problems.append("a reader missed the public repository's commits")
        paths = (f"/r/{vault}/{DAY}", f"/r/{vault}/", f"/r/{vault}/feed.atom", f"/r/{SEED_REPO}/{DAY}")
        archive = {path: client.get(path).status_code for path in paths}
        if list(archive.values()) != [404, 404, 404, 200]:
            problems.append(f"archive answers {archive}")
        return verdict(row, "site refuses it like a missing one; granted reader gets it, site readers "
                            f"(one signed up while public) don't; /r/... {archive[f'/r/{vault}/{DAY}']}",
                       problems, st.log_files())


def wait_http(url: str, seconds: float, st: Stage, what: str) -> None:
    def up() -> bool:
        try:
            return requests.get(url, timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False
    st.wait(up, seconds, what)


def fault_tokens_in_logs(root: Path, row: Row) -> Row:
    """Real link tokens travel through both sites and every process at DEBUG; the logs are read at the end."""
    gport, dport = free_port(), free_port()
    gunicorn_url, dev_url = f"http://127.0.0.1:{gport}", f"http://127.0.0.1:{dport}"
    people = ["t0@example.com", "t1@example.com", "t2@example.com"]
    with Stage(root, "14-tokens-in-logs", log_level="DEBUG", env={"BASE_URL": gunicorn_url}) as st:
        assert st.sink is not None
        for address in people:  # double opt-in: a confirmation email with a token
            st.cli("subscribe", address, "--repo", f"{SEED_REPO}:low")
        st.start("gunicorn", command=[sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{gport}",
                                      "--workers", "1",
                                      "--logger-class", "newsletter.web.access_log.MaskedLogger",
                                      "--access-logfile", str(st.logs / "gunicorn-access.log"),
                                      "--error-logfile", str(st.logs / "gunicorn-error.log"),
                                      "--log-level", "debug", "wsgi:app"])
        st.start("devserver", "run", "--host", "127.0.0.1", "--port", str(dport))
        wait_http(f"{gunicorn_url}/healthz", 60, st, "gunicorn")
        wait_http(f"{dev_url}/healthz", 60, st, "the development server")
        problems: list[str] = []
        for i, address in enumerate(people):
            base = dev_url if i == 1 else gunicorn_url
            raw = [raw for recipients, raw in st.sink.snapshot() if address in recipients]
            require(raw, f"no confirmation email for {address}", st.log_files())
            path = path_of(link_in(parts_of(raw[-1])[0], "confirm"))
            browser = requests.Session()
            page = browser.get(base + path, timeout=10)
            answer = browser.post(base + path, data={"csrf_token": csrf_token(page.text)}, timeout=10)
            if answer.status_code != 200:
                problems.append(f"confirming {address}: {answer.status_code}")
        run_day(st, len(people), scheduler=True)
        for i, (address, plain, _html) in enumerate(sorted(st.digests())):
            base = dev_url if i == 1 else gunicorn_url
            preferences = path_of(link_in(plain, "preferences"))
            unsubscribe = path_of(link_in(plain, "unsubscribe"))
            codes = [requests.get(base + preferences, timeout=10).status_code,
                     requests.get(base + unsubscribe, timeout=10).status_code,
                     requests.get(base + preferences[:-3] + "xyz", timeout=10).status_code]  # a bad signature
            if i == 2:
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                codes.append(requests.post(base + unsubscribe, data="List-Unsubscribe=One-Click",
                                           headers=form, timeout=10).status_code)
            if codes[:2] != [200, 200] or codes[2] != 400 or codes[3:] not in ([], [200]):
                problems.append(f"{address}: answers {codes}")
        st.stop("devserver")
        st.stop("gunicorn")
        row.problems = measure(row, people, st.received(), st.non_final()) + problems
        row.logs = st.log_files()
    return row


def scan_logs(root: Path, row: Row) -> Row:
    """Row 14's property, over every log of the whole run: no real link token anywhere."""
    with TOKENS_LOCK:
        known = set(TOKENS)
    files = sorted(p for p in root.rglob("*.log") if p.is_file())
    leaks, masked_site, lines = [], 0, 0
    for path in files:
        content = path.read_text(errors="replace")
        lines += content.count("\n")
        for number, line in enumerate(content.splitlines(), 1):
            if UNMASKED.search(line) or any(token in line for token in known):
                leaks.append(f"{path.relative_to(root)}:{number}")
        if "14-tokens-in-logs" in str(path) and path.name.startswith(("gunicorn", "devserver")):
            masked_site += len(MASKED.findall(content))
    problems = list(row.problems)
    if row.check.startswith("FAILED"):  # the fault itself did not get through
        problems.insert(0, row.check.removeprefix("FAILED: "))
    if leaks:
        problems.append(f"real tokens at {', '.join(leaks[:4])}")
        row.logs = [root / leak.rsplit(":", 1)[0] for leak in leaks[:3]]
    if not known:
        problems.append("no tokens collected")
    if not masked_site:
        problems.append("the site logs show no masked link line: nothing was checked")
    return verdict(row, f"real link tokens in {len(files)} logs ({lines} lines, {len(known)} known tokens; "
                        f"site at DEBUG masked {masked_site} link lines): {len(leaks)}", problems)


FAULTS: list[tuple[int, str, Callable[[Path, Row], Row], bool]] = [
    # number, fault, function, waits out the retry backoff (runs alongside the others)
    (1, "hostile commit text (evil link, own address)", fault_hostile, False),
    (2, "LLM answer with a lone surrogate", fault_surrogate, False),
    (3, "PostgreSQL connections killed mid-analysis", fault_database_lost, False),
    (4, "Redis down after the run rows commit", fault_redis_down, False),
    (5, "SMTP refused during the fan-out", fault_smtp_refused, True),
    (6, "SendGrid 500 for ~31 s", fault_sendgrid_500, True),
    (7, "SendGrid never answers (timeout 1 s)", fault_sendgrid_hang, True),
    (8, "SendGrid 400 naming one recipient", fault_sendgrid_400, False),
    (9, "worker SIGKILLed mid fan-out (SMTP)", fault_kill_smtp, False),
    (10, "worker SIGKILLed, SendGrid request in flight", fault_kill_sendgrid, False),
    (11, "List-Unsubscribe on the SMTP wire", fault_list_unsubscribe, False),
    (12, "international address a@bücher.de", fault_international, False),
    (13, "private repository", fault_private, False),
    (14, "link tokens in logs", fault_tokens_in_logs, False),
]


def run_fault(root: Path, number: int, fault: str, function: Callable[[Path, Row], Row]) -> Row:
    row = Row(number, fault)
    started = time.monotonic()
    try:
        row = function(root, row)
    except Failure as exc:
        row.ok, row.check, row.logs = False, f"FAILED: {exc}", exc.logs
    except Exception as exc:
        row.ok, row.check = False, f"FAILED: {type(exc).__name__}: {str(exc)[:200]}"
        row.logs, row.detail = getattr(exc, "stage_logs", []), traceback.format_exc()
    row.seconds = time.monotonic() - started
    mark = "logs read at the end" if number == 14 and not row.check else ("ok" if row.ok else "FAILED")
    print(f"  fault {number:2d} finished in {row.seconds:5.1f} s: {mark}", flush=True)
    return row


def show(value: int | None) -> str:
    return "-" if value is None else str(value)


def print_table(rows: list[Row]) -> None:
    headers = ("#", "fault", "expected", "sent", "duplicated", "lost", "non-final", "check")
    cells = [(str(r.number), r.fault, show(r.expected), show(r.sent), show(r.duplicated), show(r.lost),
              show(r.non_final), r.check) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers[:-1])]
    right = {0, 2, 3, 4, 5, 6}

    def line(values: tuple[str, ...]) -> str:
        out = [v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values[:-1])]
        return "  ".join([*out, values[-1]])

    print(line(headers))
    print("  ".join("-" * w for w in widths) + "  " + "-" * 5)
    for values in cells:
        print(line(values))


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated fault numbers (default: all)")
    parser.add_argument("--sequential", action="store_true", help="no fault alongside another")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the log folder even when every fault held")
    args = parser.parse_args()
    chosen = {int(n) for n in args.only.split(",")} if args.only else {f[0] for f in FAULTS}
    root = Path(tempfile.mkdtemp(prefix="repo-daily-chaos-"))
    # The driver's own log (the in-process site of fault 13 included), checked for tokens like the rest;
    # a handler on the root logger first keeps the app's basicConfig from printing to the terminal.
    handler = logging.FileHandler(root / "driver.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command lines: the sink, not us
    started = time.monotonic()
    print(f"chaos: {len(chosen)} faults, logs in {root}", flush=True)
    results: dict[int, Row] = {}
    background = []
    try:
        for number, fault, function, waits in FAULTS:
            if number in chosen and waits and not args.sequential:
                def lane(number=number, fault=fault, function=function) -> None:
                    results[number] = run_fault(root, number, fault, function)
                thread = threading.Thread(target=lane, name=f"fault-{number}", daemon=True)
                thread.start()
                background.append(thread)
                time.sleep(2)  # their start-up work does not all land at once
        for number, fault, function, waits in FAULTS:
            if number in chosen and (not waits or args.sequential):
                results[number] = run_fault(root, number, fault, function)
        for thread in background:
            thread.join()
    except KeyboardInterrupt:
        print("interrupted: stopping every process and dropping the databases", file=sys.stderr)
        STOPPING.set()
        for thread in background:
            thread.join(timeout=30)  # a lane stops at its next wait and closes its stage itself
        with LIVE_LOCK:
            stages = list(LIVE)
        for stage in stages:
            stage.close()
        return 130
    if 14 in results:
        results[14] = scan_logs(root, results[14])
    rows = [results[n] for n in sorted(results)]
    held = sum(r.ok for r in rows)
    print()
    print_table(rows)
    for row in rows:
        if row.ok:
            continue
        print(f"\nfault {row.number} ({row.fault}): {row.check}")
        if row.detail:
            print(row.detail.rstrip())
        for path in row.logs[-4:]:
            print(f"  --- {path}")
            print(tail(path))
    if held == len(rows) and not args.keep_logs:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\nlogs kept in {root}")
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    print(f"{held}/{len(rows)} faults handled")
    return 0 if held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
