"""The daily fan-out: once-only deliveries, batching for SendGrid, retries, SMTP, and a killed worker."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from jobs.deliver import start_delivery
from newsletter.delivery import fanout, planning, recovery, rows
from newsletter.delivery.mailers import SendGridMailer, make_mailer
from newsletter.models import (
    DailyRun,
    Delivery,
    DeliveryStatus,
    RunStatus,
    Subscriber,
    SubscriberStatus,
    Threshold,
    utcnow,
)
from newsletter.reports import run
from newsletter.subscribers import links, subscriptions

from .conftest import body_html, body_text
from .factories import subscriber
from .fakes.seed_day import SEED_DATE, SEED_REPO, SEED_TIMEZONE, load_into
from .fakes.sendgrid import FakeSendGrid
from .helpers import descendants, path_of, raw_header


@pytest.fixture
def config(config, github):
    """Every delivery test reports the seed day from the fake GitHub, a day in the seed's time zone."""
    load_into(github)
    return {**config, "DIGEST_TIMEZONE": SEED_TIMEZONE}


def _report_day(app, session):
    run.run_sync(session, run.make_services(app.config), SEED_DATE)


def _later():
    """A day from now: every subscriber made by a test has had a slot since, and the seed day's commits,
    first seen by the run just made, are in the window of that first email."""
    return utcnow() + timedelta(days=1)


def _deliver(session, config, mailer, now=None):
    return fanout.deliver_sync(session, config, mailer, now or _later())


def _statuses(session):
    session.expire_all()
    return Counter(d.status.value for d in session.scalars(select(Delivery)))


def _rows(session):
    session.expire_all()
    return {d.subscriber.email: d for d in session.scalars(select(Delivery))}


def _time_passes(session):
    """The retry time of every waiting row arrives (what an hour or so of waiting would do)."""
    session.execute(update(Delivery).where(Delivery.status == DeliveryStatus.PENDING)
                    .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def _smtp_mailer(app, port):
    return make_mailer({**app.config, "MAIL_BACKEND": "smtp", "SMTP_URL": f"smtp://127.0.0.1:{port}", "SMTP_TIMEOUT": 5})


class SmtpSink:
    """An aiosmtpd handler that records what arrives on the wire and refuses the addresses it is told to."""

    def __init__(self, refuse=(), delay=0.0):
        self.refuse = set(refuse)
        self.delay = delay
        self.received: list[str] = []
        self.raw: list[bytes] = []

    async def handle_RCPT(self, server, session_, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session_, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received.extend(envelope.rcpt_tos)
        self.raw.append(envelope.original_content)
        return "250 OK"


@contextmanager
def smtp_sink(port=None, **options):
    """A real SMTP server on loopback (aiosmtpd), on `port` when given."""
    handler = SmtpSink(**options)
    controller = Controller(handler, hostname="127.0.0.1", port=port or _free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def test_every_active_subscriber_gets_one_email_once(app, session, outbox):
    subscriber(session, "high@example.com", threshold="high")
    subscriber(session, "all@example.com", threshold="low", lang="zh")
    paused = subscriber(session, "paused@example.com")
    paused.paused = True
    gone = subscriber(session, "gone@example.com")
    subscriptions.unsubscribe(session, gone)
    subscriptions.request_subscription(session, "pending@example.com", [(SEED_REPO, Threshold.LOW)], "en")
    session.commit()
    _report_day(app, session)
    result = _deliver(session, app.config, make_mailer(app.config))
    assert result["sent"] == 2 and result["planned"] == 2
    messages = {m["To"]: m for m in outbox.messages()}
    assert set(messages) == {"high@example.com", "all@example.com"}
    high = body_text(messages["high@example.com"])
    assert "event plane apis" in high and "incremental build" not in high  # medium commit filtered out
    assert "本日共 15 个提交" in body_text(messages["all@example.com"])
    # A rerun sends nothing twice.
    again = _deliver(session, app.config, make_mailer(app.config))
    assert again["sent"] == 0 and len(outbox.messages()) == 2


def test_email_headers_and_one_click_from_the_real_header(app, session, outbox, client):
    subscriber(session, "reader@example.com", threshold="medium")
    _report_day(app, session)
    _deliver(session, app.config, make_mailer(app.config))
    message = outbox.last()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"].startswith("Repo Daily <")
    # Dated the day of the email in the reader's zone (their slot's local date).
    assert message["Subject"].startswith(f"[Repo Daily] {session.scalars(select(Delivery)).one().date}")
    url = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
    assert "/unsubscribe/" in url
    assert "/preferences/" in body_html(message) and "/preferences/" in body_text(message)
    response = app.test_client(use_cookies=False).post(
        path_of(url), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    session.expire_all()
    reader = session.scalar(select(Subscriber).where(Subscriber.email_key == "reader@example.com"))
    assert reader.status is SubscriberStatus.UNSUBSCRIBED


def test_nothing_at_threshold_means_no_email_unless_asked(app, session, outbox, github):
    quiet = subscriber(session, "quiet@example.com", ("rq/rq", "high"))
    loud = subscriber(session, "loud@example.com", ("rq/rq", "high"))
    loud.send_empty = True
    session.commit()
    github.add_repo("rq/rq")
    _report_day(app, session)
    result = _deliver(session, app.config, make_mailer(app.config))
    assert result["sent"] == 1 and result["skipped"] == 1
    assert [m["To"] for m in outbox.messages()] == ["loud@example.com"]
    assert quiet.id in {d.subscriber_id for d in session.scalars(select(Delivery).where(
        Delivery.status == DeliveryStatus.SKIPPED))}


def test_sendgrid_batches_identical_content_with_per_recipient_links(app, session):
    same = [subscriber(session, f"same{i}@example.com", threshold="medium") for i in range(5)]
    subscriber(session, "zh@example.com", threshold="medium", lang="zh")
    subscriber(session, "other@example.com", threshold="high")
    _report_day(app, session)
    with FakeSendGrid() as fake:
        mailer = SendGridMailer(fake.api_key, "Repo Daily <news@example.com>", host=fake.url, sleep=lambda _s: None)
        result = _deliver(session, app.config, mailer)
        bodies = fake.requests
    assert result["sent"] == 7 and len(bodies) == 3  # three distinct contents, one request each
    batch = next(b for b in bodies if len(b["personalizations"]) == 5)
    html = batch["content"][1]["value"]
    assert "/unsubscribe/" not in html and "same0@example.com" not in batch["content"][0]["value"]
    by_email = {p["to"][0]["email"]: p for p in batch["personalizations"]}
    assert set(by_email) == {s.email for s in same}
    for reader in same:
        personalization = by_email[reader.email]
        own = links.unsubscribe_token(app.config["SECRET_KEY"], reader).split(".")[0]  # the payload part
        (key,) = [k for k, v in personalization["substitutions"].items() if own in v and "-unsubscribe-h-" in k]
        assert key in html and re.fullmatch(r"-rd-[0-9a-f]{16}-unsubscribe-h-", key)
        assert own in personalization["headers"]["List-Unsubscribe"]
        assert personalization["custom_args"]["delivery_id"].isdigit()
        # What SendGrid does with the substitutions gives the reader their own email.
        filled = _as_sendgrid_fills(batch["content"][1]["value"], personalization)
        # The token's payload, not the whole token: its timestamp is the second it was signed.
        assert f"/unsubscribe/{own}." in filled
        assert reader.email in _as_sendgrid_fills(batch["content"][0]["value"], personalization)


def _as_sendgrid_fills(content: str, personalization: dict) -> str:
    """A personalization's substitutions applied as SendGrid applies them: every occurrence of every key."""
    for key, value in personalization.get("substitutions", {}).items():
        content = content.replace(key, value)
    return content


# Outside text that looks like a placeholder ------------------------------------------------------

EVIL = "https://evil.example/steal?t=-rd-preferences-&u=-rd-unsubscribe-&e=-rd-email-"


def _evil_day(app, session, github, *addresses):
    """A repository whose one commit quotes placeholder look-alikes and the first reader's address."""
    github.add_repo("evil/repo")
    github.add_commit("evil/repo", f"docs: see {EVIL} or write to {addresses[0]}",
                      date=datetime(2026, 1, 24, 9, tzinfo=UTC))
    readers = [subscriber(session, address, ("evil/repo", "low")) for address in addresses]
    _report_day(app, session)
    return readers


def _assert_no_secret_near_evil(app, reader, content):
    tokens = [links.preferences_token(app.config["SECRET_KEY"], reader),
              links.unsubscribe_token(app.config["SECRET_KEY"], reader)]
    near = re.findall(r"evil\.example[^\s\"<>]*", content)
    assert near, content[:2000]
    for found in near:
        assert "-rd-preferences-" in found and "-rd-unsubscribe-" in found and "-rd-email-" in found, found
        assert not any(token.split(".")[0] in found for token in tokens), found
        assert "/preferences/" not in found and "/unsubscribe/" not in found and "@" not in found, found


def _has_own_link(app, reader, content: str, purpose: str) -> bool:
    """content holds the reader's own preferences (or unsubscribe) link. Tokens sign their time, so one
    made now may differ from the sent one by a second: compare what they carry."""
    path = "preferences" if purpose == links.PREFERENCES else "unsubscribe"
    secret = app.config["SECRET_KEY"]
    own = links.read_token(secret, purpose, (links.preferences_token if path == "preferences"
                                            else links.unsubscribe_token)(secret, reader))
    found = re.findall(re.escape(f"{app.config['BASE_URL']}/{path}/") + r"([A-Za-z0-9_.-]+)", content)
    return any(links.read_token(secret, purpose, token) == own for token in found)


def test_placeholder_lookalikes_in_commit_text_stay_literal_in_the_outbox(app, session, outbox, github):
    (reader,) = _evil_day(app, session, github, "victim@example.com")
    result = _deliver(session, app.config, make_mailer(app.config))
    assert result["sent"] == 1
    message = outbox.last()
    for content in (body_html(message), body_text(message)):
        _assert_no_secret_near_evil(app, reader, content)
        assert "write to victim@example.com" in content
    # The renderer's own positions still carry the reader's own links.
    assert _has_own_link(app, reader, body_text(message), links.PREFERENCES)
    assert _has_own_link(app, reader, body_html(message), links.UNSUBSCRIBE)


def test_placeholder_lookalikes_in_commit_text_stay_literal_at_sendgrid(app, session, github):
    readers = _evil_day(app, session, github, "victim@example.com", "other@example.com")
    with FakeSendGrid() as fake:
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=lambda _s: None)
        result = _deliver(session, app.config, mailer)
        bodies = fake.requests
    # Identical content: one request; the reader's address in the commit text is not templated away.
    assert result["sent"] == 2 and len(bodies) == 1
    (body,) = bodies
    text, html = body["content"][0]["value"], body["content"][1]["value"]
    assert "write to victim@example.com" in text and "-rd-preferences-" in text
    by_email = {p["to"][0]["email"]: p for p in body["personalizations"]}
    for reader in readers:
        personalization = by_email[reader.email]
        assert not any(key in EVIL for key in personalization["substitutions"])
        for content in (text, html):
            _assert_no_secret_near_evil(app, reader, _as_sendgrid_fills(content, personalization))
        assert _has_own_link(app, reader, _as_sendgrid_fills(text, personalization), links.PREFERENCES)


def test_sendgrid_retries_429_and_5xx_and_isolates_a_4xx_batch(app, session):
    subscriber(session, "a@example.com", threshold="medium")
    subscriber(session, "b@example.com", threshold="high")
    _report_day(app, session)
    waits = []
    with FakeSendGrid() as fake:
        fake.fail_next(429, headers={"Retry-After": "3"})
        fake.fail_next(503)
        fake.fail_next(400)  # after the retries, one batch is refused for good
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=waits.append, backoff=0.5)
        result = _deliver(session, app.config, mailer)
        assert fake.attempts == 4 and len(fake.requests) == 1
    assert waits == [3.0, 1.0]
    assert result["sent"] == 1 and result["failed"] == 1
    failed = session.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED))
    assert "HTTP 400" in failed.error


def test_smtp_delivery_to_a_real_server(app, session):
    received = []

    class Handler:
        async def handle_DATA(self, server, session_, envelope):
            received.append(envelope.rcpt_tos[0])
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        subscriber(session, "smtp1@example.com")
        subscriber(session, "smtp2@example.com", threshold="high")
        _report_day(app, session)
        mailer = make_mailer({**app.config, "MAIL_BACKEND": "smtp", "SMTP_URL": f"smtp://127.0.0.1:{port}"})
        result = _deliver(session, app.config, mailer)
    finally:
        controller.stop()
    assert result["sent"] == 2 and sorted(received) == ["smtp1@example.com", "smtp2@example.com"]


def test_batches_keep_identical_contents_together(app, session):
    for i in range(7):
        subscriber(session, f"x{i}@example.com", threshold="medium")
    for i in range(5):
        subscriber(session, f"y{i}@example.com", threshold="high")
    _report_day(app, session)
    planned = planning.plan(session, _later(), batch_size=4, chunk=3)
    rows = list(session.scalars(select(Delivery)))
    by_key = {}
    for row in rows:
        by_key.setdefault(row.content_key, set()).add(row.batch)
    # A content key spans batches only in whole chunks of 3: 7 → 3+3+1 at most three batches.
    assert all(len(batches) <= 3 for batches in by_key.values())
    assert planned.batch_count == len({r.batch for r in rows})
    assert planning.plan(session, _later()).created == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


CLI = [sys.executable, "-c", "from newsletter.cli import main; main()"]
# How long the fan-out may take to finish once a new worker and the scheduler run (README: "If a
# worker is killed"): the scheduler's first sweep runs when it starts, and every email left is sent.
RESTART_BOUND = 30


def _process_env(app, **extra) -> dict:
    """The environment a worker or scheduler process needs to build the same app."""
    keys = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "BASE_URL", "GITHUB_API_URL")
    return {**os.environ, **{k: str(app.config[k]) for k in keys}, **extra}


def _start(app, env, name, *args) -> subprocess.Popen:
    os.makedirs(app.config["INSTANCE_PATH"], exist_ok=True)
    log = open(os.path.join(app.config["INSTANCE_PATH"], f"{name}.log"), "w")
    # A session of its own, as a container's processes have: killing it spares the test.
    process = subprocess.Popen([*CLI, *args], env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    return process


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL a worker and its work horse together, as `kill -9` of a container would. RQ starts the
    horse in a session of its own, so killing the worker's process group alone would spare it."""
    for pid in [*descendants(process.pid), process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)
    process.log.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _kill(process)
    process.log.close()


def _log(process: subprocess.Popen) -> str:
    with open(process.log.name) as handle:
        return handle.read()[-4000:]


def _wait_for(condition, seconds, *processes) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError("timed out; logs:\n" + "\n---\n".join(_log(p) for p in processes))
        time.sleep(0.05)
    return time.monotonic() - started


def _settled(session) -> bool:
    statuses = _statuses(session)
    return statuses["pending"] == statuses["sending"] == 0


def _restart_and_finish(app, session, env) -> float:
    """Start only a new worker and the scheduler (no `newsletter deliver`); the seconds until every row settled."""
    worker = _start(app, env, "worker2", "worker", "email")
    scheduler = _start(app, env, "scheduler", "scheduler")
    try:
        return _wait_for(lambda: _settled(session), RESTART_BOUND, worker, scheduler)
    finally:
        _stop(scheduler)
        _stop(worker)


@pytest.mark.kill
def test_killed_worker_neither_loses_nor_repeats(app, session, redis_url):
    """SIGKILL a real worker mid-fan-out, then start only a new worker and the scheduler: every email
    arrives once, except at most the one message in flight at the kill, marked failed (interrupted)."""
    total = 40
    with smtp_sink(delay=0.15) as (sink, port):
        for i in range(total):
            subscriber(session, f"k{i:02d}@example.com", threshold="low" if i % 2 else "medium")
        _report_day(app, session)
        env = _process_env(app, MAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}", DELIVERY_BATCH_SIZE="8")
        started = subprocess.run([*CLI, "deliver", "--now", _later().isoformat()], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert started.returncode == 0 and "5 batches enqueued" in started.stdout, started.stderr
        worker = _start(app, env, "worker", "worker", "email")
        _wait_for(lambda: len(sink.received) >= 12, 60, worker)
        _kill(worker)
        before = len(sink.received)
        assert 0 < before < total, _log(worker)
        in_flight = _statuses(session)["sending"]
        assert in_flight <= 1 and _statuses(session)["pending"] > 0
        took = _restart_and_finish(app, session, env)
    counts = Counter(sink.received)
    assert max(counts.values()) == 1, "an email was sent twice"
    statuses = _statuses(session)
    assert statuses["sent"] + statuses["failed"] == total and statuses["failed"] == in_flight
    # Every subscriber got their email, except possibly the one that was in flight at the kill (which
    # the sink may or may not have received before the worker died: it is marked failed either way).
    assert statuses["sent"] <= len(counts) <= statuses["sent"] + in_flight and statuses["sent"] >= total - in_flight
    interrupted = session.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)).all()
    assert all("interrupted" in d.error for d in interrupted)
    assert took < RESTART_BOUND


@pytest.mark.kill
def test_killed_worker_with_a_sendgrid_request_in_flight(app, session, redis_url):
    """SIGKILL a worker while SendGrid holds a request of 8 recipients: the 8 are reported failed
    (interrupted), never resent; a new worker and the scheduler send everyone else exactly once."""
    with FakeSendGrid() as fake:
        for lang in ("en", "zh"):
            for threshold in ("high", "medium", "low"):
                for i in range(8):
                    subscriber(session, f"{lang}-{threshold}-{i}@example.com", threshold=threshold, lang=lang)
        _report_day(app, session)
        total = 48
        # Six contents of eight readers, batches of 16: three batches of two requests each; the third
        # request (the first of the second batch) is read by SendGrid and never answered.
        fake.hang_next(count=1, after=2)
        env = _process_env(app, MAIL_BACKEND="sendgrid", SENDGRID_API_KEY=fake.api_key, SENDGRID_API_HOST=fake.url,
                           SENDGRID_TIMEOUT="120", DELIVERY_BATCH_SIZE="16")
        started = subprocess.run([*CLI, "deliver", "--now", _later().isoformat()], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert started.returncode == 0 and "3 batches enqueued" in started.stdout, started.stdout + started.stderr
        worker = _start(app, env, "worker", "worker", "email")
        _wait_for(lambda: fake.hanging == 1, 60, worker)
        _kill(worker)
        assert _statuses(session)["sending"] == 8 and len(fake.requests) == 2
        (hung,) = fake.hung
        in_flight = {p["to"][0]["email"] for p in hung["personalizations"]}
        took = _restart_and_finish(app, session, env)
        accepted = fake.recipients()
    counts = Counter(accepted)
    assert max(counts.values()) == 1, "an email was sent twice"
    assert set(counts) | in_flight == {d.subscriber.email for d in session.scalars(select(Delivery))}
    assert not set(counts) & in_flight and len(in_flight) == 8
    rows = _rows(session)
    assert {a for a, r in rows.items() if r.status is DeliveryStatus.SENT} == set(counts)
    assert {a for a, r in rows.items() if r.status is DeliveryStatus.FAILED} == in_flight
    assert all("interrupted" in rows[a].error for a in in_flight)
    assert len(counts) == total - 8 and took < RESTART_BOUND


def test_unused_date_has_no_deliveries(app, session):
    assert rows.summary(session, date(2026, 1, 1))["sent"] == 0


# Emails follow each reader's clock, not the daily reports ---------------------------------------------

def test_emails_hold_what_was_fetched_whatever_the_daily_run(app, session, outbox, runner):
    """A daily report still being built does not hold emails back: an email holds the commits first
    seen in its window, analysed or not. deliver --date is gone, with a message saying what replaced it."""
    subscriber(session, "early@example.com")
    _report_day(app, session)
    session.execute(update(DailyRun).where(DailyRun.date == SEED_DATE).values(status=RunStatus.RUNNING))
    session.commit()
    before = _deliver(session, app.config, make_mailer(app.config), utcnow())
    assert before["planned"] == 0 and outbox.messages() == []  # confirmed just now: the first slot is ahead
    done = _deliver(session, app.config, make_mailer(app.config))
    assert done["planned"] == done["sent"] == 1 and len(outbox.messages()) == 1
    row = session.scalars(select(Delivery)).one()
    assert rows.aware(row.window_end) > rows.aware(row.slot) > rows.aware(row.window_start)
    with app.app_context():
        assert "0 emails planned" in start_delivery(_later().isoformat())
    printed = runner.invoke(args=["deliver", "--date", "2026-01-24", "--sync"])
    assert printed.exit_code != 0 and "--date is gone" in printed.output
    again = runner.invoke(args=["deliver", "--sync", "--now", _later().isoformat()])
    assert again.exit_code == 0 and "0 emails planned, 0 sent" in again.output, again.output


def test_a_subscriber_whose_repositories_have_no_report_is_told_apart(app, session, outbox):
    subscriber(session, "reader@example.com", (SEED_REPO, "high"))
    _report_day(app, session)
    # Subscribed after the day's run: their repository has no report for that day.
    subscriber(session, "late@example.com", ("newly/watched", "low"))
    result = _deliver(session, app.config, make_mailer(app.config))
    assert result["skipped"] == 1 and result["sent"] == 1
    late = _rows(session)["late@example.com"]
    assert late.status is DeliveryStatus.SKIPPED
    assert late.error == "their repositories have not been fetched yet"


# List-Unsubscribe on the wire ---------------------------------------------------------------------

@pytest.fixture
def news_config(config):
    """A real site's BASE_URL and a mailto target: List-Unsubscribe longer than one header line."""
    config.update(BASE_URL="https://news.example.com", LIST_UNSUBSCRIBE_MAILTO="unsubscribe@news.example.com")
    return config


def _raw_header(raw: bytes, name: bytes) -> list[bytes]:
    lines = raw_header(raw, name)
    assert lines, f"no {name!r} header in {raw[:1500]!r}"
    return lines


def _assert_raw_list_headers(raw: bytes, unsubscribe_url: str, secret: str) -> None:
    lines = _raw_header(raw, b"List-Unsubscribe")
    assert all(line.isascii() and b"=?" not in line and len(line) <= 998 for line in lines), lines
    unfolded = b"".join(line if i == 0 else line[1:] for i, line in enumerate(lines)).decode()
    # Folded only between the <...> items, never inside one.
    assert all(line.rstrip().endswith((b">", b">,")) for line in lines), lines
    assert all(line.startswith(b" <") for line in lines[1:]), lines
    match = re.fullmatch(r"List-Unsubscribe: <(https://[^>]+)>, "
                         r"<mailto:unsubscribe@news\.example\.com\?subject=unsubscribe>", unfolded.replace(",<", ", <"))
    assert match, unfolded
    # The token signs its time, so one made now may differ from the sent one by a second: compare what they carry.
    sent, expected = match.group(1).rsplit("/", 1), unsubscribe_url.rsplit("/", 1)
    assert sent[0] == expected[0]
    assert links.read_token(secret, links.UNSUBSCRIBE, sent[1]) == links.read_token(secret, links.UNSUBSCRIBE, expected[1])
    assert _raw_header(raw, b"List-Unsubscribe-Post") == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]


def test_list_unsubscribe_is_raw_ascii_in_the_eml(news_config, app, session, outbox):
    reader = subscriber(session, "reader@example.com", threshold="high")
    _report_day(app, session)
    assert _deliver(session, app.config, make_mailer(app.config))["sent"] == 1
    (path,) = sorted(outbox.directory.glob("*.eml"))
    url = links.unsubscribe_url(app.config, reader)
    assert url.startswith("https://news.example.com/unsubscribe/") and len(url) > 100
    _assert_raw_list_headers(path.read_bytes(), url, app.config["SECRET_KEY"])


def test_list_unsubscribe_is_raw_ascii_on_the_smtp_wire(news_config, app, session):
    reader = subscriber(session, "reader@example.com", threshold="high")
    _report_day(app, session)
    with smtp_sink() as (sink, port):
        assert _deliver(session, app.config, _smtp_mailer(app, port))["sent"] == 1
    (raw,) = sink.raw
    _assert_raw_list_headers(raw, links.unsubscribe_url(app.config, reader), app.config["SECRET_KEY"])


# Transient failures wait and are retried; permanent ones are final -------------------------------------

def test_smtp_outage_leaves_every_email_for_a_later_deliver(app, session):
    for i in range(6):
        subscriber(session, f"o{i}@example.com")
    _report_day(app, session)
    port = _free_port()  # nothing listens: connection refused
    first = _deliver(session, app.config, _smtp_mailer(app, port))
    assert (first["sent"], first["failed"], first["retrying"]) == (0, 0, 6)
    rows = _rows(session).values()
    now = utcnow()
    assert all(r.status is DeliveryStatus.PENDING for r in rows)
    # SQLite gives timestamps back without their zone (UTC, as stored).
    assert all(r.next_attempt_at is not None and r.next_attempt_at.replace(tzinfo=UTC) > now for r in rows)
    assert all("refused" in r.error.lower() for r in rows), [r.error for r in rows]
    # The server is down: once it refused one email, the rest of the batch waits without trying it.
    assert sum(r.attempts for r in rows) == 1
    # Too early: a rerun leaves them waiting.
    early = _deliver(session, app.config, _smtp_mailer(app, port))
    assert early["sent"] == 0 and early["retrying"] == 6
    assert sum(r.attempts for r in _rows(session).values()) == 1
    with smtp_sink(port) as (sink, _port):
        _time_passes(session)
        later = _deliver(session, app.config, _smtp_mailer(app, port))
    assert (later["sent"], later["failed"], later["retrying"]) == (6, 0, 0)
    assert sorted(sink.received) == [f"o{i}@example.com" for i in range(6)]
    assert all(r.status is DeliveryStatus.SENT and r.next_attempt_at is None for r in _rows(session).values())


def test_sendgrid_outage_past_the_in_request_retries_is_retried_later(app, session):
    for i in range(3):
        subscriber(session, f"s{i}@example.com", threshold="medium")
    for i in range(2):
        subscriber(session, f"t{i}@example.com", threshold="high")
    _report_day(app, session)
    app.config["DELIVERY_BATCH_SIZE"] = 2  # two batches, one per content, whichever content key sorts first
    with FakeSendGrid() as fake:
        fake.fail_next(500, count=6)  # 1 + 5 retries, about 31 s of backoff in production
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=lambda _s: None)
        first = _deliver(session, app.config, mailer)
        # One request's retries tell the backend is down: the other batch waits without trying.
        assert (first["batches"], first["sent"], first["failed"], first["retrying"]) == (2, 0, 0, 5)
        assert fake.attempts == 6
        assert _deliver(session, app.config, mailer)["sent"] == 0 and fake.attempts == 6
        _time_passes(session)
        later = _deliver(session, app.config, mailer)
        assert later["sent"] == 5 and len(fake.requests) == 2
        assert sorted(fake.recipients()) == ["s0@example.com", "s1@example.com", "s2@example.com",
                                             "t0@example.com", "t1@example.com"]


def test_transient_failures_end_failed_after_the_retry_window(app, session):
    subscriber(session, "far@example.com")
    _report_day(app, session)
    port = _free_port()
    assert _deliver(session, app.config, _smtp_mailer(app, port))["retrying"] == 1
    # A day later (DELIVERY_RETRY_HOURS, 24 by default) the server is still down.
    session.execute(update(Delivery).values(created_at=utcnow() - timedelta(hours=25)))
    session.commit()
    _time_passes(session)
    result = _deliver(session, app.config, _smtp_mailer(app, port))
    assert result["failed"] == 1 and result["retrying"] == 0
    row = _rows(session)["far@example.com"]
    assert row.status is DeliveryStatus.FAILED and "refused" in row.error.lower() and "24 h" in row.error


def test_sendgrid_400_naming_one_bad_address_fails_only_that_recipient(app, session):
    addresses = ["g0@example.com", "g1@example.com", "bad@example.com", "g3@example.com"]
    for address in addresses:
        subscriber(session, address, threshold="medium")
    _report_day(app, session)
    with FakeSendGrid() as fake:
        fake.invalid_addresses.add("bad@example.com")  # SendGrid's own check is stricter than ours
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=lambda _s: None)
        result = _deliver(session, app.config, mailer)
        assert len(fake.refusals) == 1 and len(fake.refusals[0]["personalizations"]) == 4
        assert sorted(fake.recipients()) == ["g0@example.com", "g1@example.com", "g3@example.com"]
        assert len(fake.requests) == 1
    assert (result["sent"], result["failed"], result["retrying"]) == (3, 1, 0)
    bad = _rows(session)["bad@example.com"]
    assert bad.status is DeliveryStatus.FAILED and bad.next_attempt_at is None
    assert "Does not contain a valid address" in bad.error
    assert all(r.status is DeliveryStatus.SENT for a, r in _rows(session).items() if a != "bad@example.com")


def test_smtp_refused_recipient_fails_alone_and_for_good(app, session):
    for address in ("ok1@example.com", "gone@example.com", "ok2@example.com"):
        subscriber(session, address)
    _report_day(app, session)
    with smtp_sink(refuse={"gone@example.com"}) as (sink, port):
        result = _deliver(session, app.config, _smtp_mailer(app, port))
        assert _deliver(session, app.config, _smtp_mailer(app, port))["sent"] == 0
    assert (result["sent"], result["failed"], result["retrying"]) == (2, 1, 0)
    assert sorted(sink.received) == ["ok1@example.com", "ok2@example.com"]
    gone = _rows(session)["gone@example.com"]
    assert gone.status is DeliveryStatus.FAILED and "550" in gone.error and gone.next_attempt_at is None


def test_the_scheduler_sweep_retries_waiting_rows_through_rq(app, session, redis_url):
    import redis
    from rq import Queue
    from rq.worker import SimpleWorker

    from jobs.deliver import EMAIL_QUEUE, sweep

    subscriber(session, "w1@example.com")
    subscriber(session, "w2@example.com", threshold="high")
    _report_day(app, session)
    port = _free_port()
    app.config.update(MAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}", SMTP_TIMEOUT=5)
    assert _deliver(session, app.config, make_mailer(app.config))["retrying"] == 2
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(EMAIL_QUEUE, connection=connection)
    with app.app_context():
        assert sweep().endswith("0 batches enqueued")  # not due yet
        _time_passes(session)
        assert sweep().endswith("1 batches enqueued")
        assert sweep().endswith("0 batches enqueued")  # its job is still queued: not enqueued twice
        assert len(queue) == 1
        with smtp_sink(port) as (sink, _port):
            SimpleWorker([queue], connection=connection).work(burst=True)
    assert sorted(sink.received) == ["w1@example.com", "w2@example.com"]
    assert _statuses(session) == Counter({"sent": 2})


# Timeouts --------------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_a_sendgrid_server_that_never_answers_times_out_and_the_rows_wait(app, session):
    subscriber(session, "h1@example.com", threshold="medium")
    subscriber(session, "h2@example.com", threshold="medium")
    _report_day(app, session)
    with FakeSendGrid() as fake:
        fake.hang_next(count=10)
        mailer = make_mailer({**app.config, "MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": fake.api_key,
                              "SENDGRID_API_HOST": fake.url, "SENDGRID_TIMEOUT": 0.3})
        mailer._backoff = dataclasses.replace(mailer._backoff, sleep=lambda _s: None)
        outcome = {}

        def deliver():
            try:
                outcome.update(_deliver(session, app.config, mailer))
            finally:
                session.remove()  # this thread's own session (the session is scoped per thread)

        worker = threading.Thread(target=deliver, daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), "deliver hung on a server that never answers"
        assert time.monotonic() - started < 20
    assert (outcome["sent"], outcome["failed"], outcome["retrying"]) == (0, 0, 2)
    assert all(r.status is DeliveryStatus.PENDING and "timed out" in r.error for r in _rows(session).values())


def test_the_claim_lease_outlasts_the_longest_hand_off(app, session):
    reader = subscriber(session, "slow@example.com")
    _report_day(app, session)
    planning.plan(session, _later())
    # Claimed 40 minutes ago by a process on another host, which may still be waiting for SendGrid.
    session.execute(update(Delivery).values(status=DeliveryStatus.SENDING, claimed_by="elsewhere:4242",
                                            updated_at=utcnow() - timedelta(minutes=40)))
    session.commit()
    slow = make_mailer({**app.config, "MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": "SG.x",
                        "SENDGRID_API_HOST": "http://127.0.0.1:9", "SENDGRID_TIMEOUT": 300.0})
    assert recovery.claim_lease(slow) > timedelta(seconds=300 * 6)
    assert recovery.recover(session, None, lease=recovery.claim_lease(slow)) == 0
    quick = make_mailer({**app.config, "MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": "SG.x",
                         "SENDGRID_API_HOST": "http://127.0.0.1:9", "SENDGRID_TIMEOUT": 30.0})
    assert recovery.recover(session, None, lease=recovery.claim_lease(quick)) == 1
    assert _rows(session)[reader.email].status is DeliveryStatus.FAILED


def test_a_private_repository_reaches_only_the_subscribers_it_was_granted_to(app, session, outbox, github):
    """A repository private on GitHub (readable with the operator's token) shows only to granted readers,
    and nobody's email links to its archive, which answers 404."""
    github.repo(SEED_REPO).private = True
    app.config["GITHUB_TOKEN"] = "operator-token"
    subscriber(session, "granted@example.com")  # the operator's `newsletter subscribe`: granted
    outsider = subscriptions.request_subscription(session, "outsider@example.com",
                                                  [(SEED_REPO, Threshold.LOW), ("rq/rq", Threshold.LOW)], "en")
    subscriptions.confirm_request(session, outsider.request.id)  # a web signup from before the repository went private
    session.commit()
    github.add_repo("rq/rq")
    github.add_commits("rq/rq", 1, start=datetime(2026, 1, 24, 9, tzinfo=UTC), message="feat: queue things")
    _report_day(app, session)
    _deliver(session, app.config, make_mailer(app.config))
    by_reader = {m["To"]: m for m in outbox.messages()}
    granted, outside = body_html(by_reader["granted@example.com"]), body_html(by_reader["outsider@example.com"])
    assert "event plane apis" in granted and "event plane apis" not in outside
    assert "queue things" in outside
    assert f"/r/{SEED_REPO}/" not in granted and f"/r/{SEED_REPO}/" not in body_text(by_reader["granted@example.com"])
    assert app.test_client().get(f"/r/{SEED_REPO}/{SEED_DATE}").status_code == 404


def test_commit_times_are_in_each_readers_zone(app, session, outbox):
    """One compiled window serves readers of every zone; each email shows commit times in its reader's."""
    from zoneinfo import ZoneInfo

    from newsletter.models import FetchedCommit
    from newsletter.subscribers.validation import parse_schedule

    for address, zone in (("sh@example.com", "Asia/Shanghai"), ("ny@example.com", "America/New_York")):
        reader = subscriber(session, address, threshold="high")
        subscriptions.set_schedule(reader, parse_schedule("en", zone))
    session.commit()
    _report_day(app, session)
    assert _deliver(session, app.config, make_mailer(app.config))["sent"] == 2
    committed = {c.committed_at.replace(tzinfo=UTC) for c in session.scalars(select(FetchedCommit))}
    instants = {}
    for message in outbox.messages():
        zone = "Asia/Shanghai" if message["To"].startswith("sh@") else "America/New_York"
        text, html = body_text(message), body_html(message)
        assert "\ue000" not in text + html and f"({zone})" in text and f"({zone})" in html
        other = "America/New_York" if zone == "Asia/Shanghai" else "Asia/Shanghai"
        assert f"({other})" not in text + html
        times = re.findall(r"🕒 (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) \(" + re.escape(zone), text)
        instants[zone] = {datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
                          for t in times}
    # The same commits' instants, each shown in its reader's zone: 5 high commits on the seed day.
    assert len(instants["Asia/Shanghai"]) == 5 and instants["Asia/Shanghai"] == instants["America/New_York"]
    assert instants["Asia/Shanghai"] <= committed


def test_readers_of_different_zones_share_one_request_with_their_own_times(app, session):
    """Same repositories, thresholds, language, local date and window, different zones: one SendGrid
    request, each personalization carrying its reader's local commit times."""
    from newsletter.models import FetchedCommit
    from newsletter.subscribers.validation import parse_schedule

    now = datetime.combine(utcnow().date() + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=2)
    # Addresses of one length: the text footer is wrapped as each reader's own address reads.
    for address, zone in (("sh@example.com", "Asia/Shanghai"), ("tk@example.com", "Asia/Tokyo")):
        reader = subscriber(session, address, threshold="high")
        subscriptions.set_schedule(reader, parse_schedule("en", zone))
        reader.confirmed_at = now - timedelta(days=10)
        yesterday = now.replace(hour=0) - timedelta(days=1) - timedelta(hours=1 if zone == "Asia/Tokyo" else 0)
        session.add(Delivery(subscriber_id=reader.id, date=yesterday.date(), slot=yesterday,
                             window_start=now - timedelta(days=2), window_end=now - timedelta(days=1),
                             status=DeliveryStatus.SENT))
    session.commit()
    _report_day(app, session)
    session.execute(update(FetchedCommit).values(first_seen_at=now - timedelta(hours=2)))
    session.commit()
    with FakeSendGrid() as fake:
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=lambda _s: None)
        result = _deliver(session, app.config, mailer, now)
        requests = list(fake.requests)
    assert len(requests) == 1, (result, [(d.subscriber.email, d.slot, d.status, d.error) for d in _rows(session).values()])
    (request,) = requests
    assert result["sent"] == 2 and result["requests"] == 1
    times = {p["to"][0]["email"]: [v for v in p["substitutions"].values() if v.endswith(")") and "Asia/" in v]
             for p in request["personalizations"]}
    assert len(times["sh@example.com"]) == len(times["tk@example.com"]) == 5
    assert all(v.endswith("(Asia/Shanghai)") for v in times["sh@example.com"])
    assert all(v.endswith("(Asia/Tokyo)") for v in times["tk@example.com"])
    # The same instants, an hour apart on the clock.
    shanghai = sorted(datetime.strptime(v[:19], "%Y-%m-%d %H:%M:%S") for v in times["sh@example.com"])
    tokyo = sorted(datetime.strptime(v[:19], "%Y-%m-%d %H:%M:%S") for v in times["tk@example.com"])
    assert [t - s for s, t in zip(shanghai, tokyo, strict=True)] == [timedelta(hours=1)] * 5
    assert "\ue000" not in request["content"][0]["value"]


def test_a_changed_clock_is_planned_from_its_new_hour_once_a_day(app, session):
    """next_slot_at only narrows what the planner reads: a clock change resets it, and the new hour
    gets the next email without a second one the same day."""
    from newsletter.subscribers.validation import parse_schedule

    reader = subscriber(session, "clock@example.com")
    reader.confirmed_at = datetime(2026, 3, 1, tzinfo=UTC)
    session.commit()
    day = datetime(2026, 3, 10, tzinfo=UTC)
    assert planning.plan(session, day + timedelta(hours=8, minutes=5)).created == 1
    session.expire_all()
    assert rows.aware(reader.next_slot_at) == day + timedelta(days=1, hours=8)
    subscriptions.update_preferences(session, reader, [(SEED_REPO, Threshold.LOW)], "en", False, False,
                                     schedule=parse_schedule("en", "UTC", 20))
    session.commit()
    assert reader.next_slot_at is None
    # 20:00 the same day: one email per local day, so nothing; the next is tomorrow at 20:00.
    assert planning.plan(session, day + timedelta(hours=20, minutes=5)).created == 0
    assert planning.plan(session, day + timedelta(days=1, hours=8, minutes=5)).created == 0
    assert planning.plan(session, day + timedelta(days=1, hours=20, minutes=5)).created == 1
    second = session.scalars(select(Delivery).order_by(Delivery.slot)).all()[-1]
    assert rows.aware(second.slot) == day + timedelta(days=1, hours=20)
    assert rows.aware(second.window_start) == day + timedelta(hours=8, minutes=5)


@pytest.mark.parametrize("slow", ["github", "model"])
def test_a_commit_stored_while_an_email_is_planned_goes_in_the_next_email(app, session, github, outbox, slow):
    """A fetch stamps its new commits first seen when it starts, and stores them and then their analyses.
    An email planned in between (here: the hourly ingestion held up by a slow GitHub, or by a slow
    model after the commits are stored, while delivery runs in another process) ends its window before
    that fetch, so its commits are in the next email, analysed, not in none (or in one unanalysed)."""
    from newsletter.models import FetchedCommit, Repository
    from newsletter.reports import ingest

    from .fakes.openai import FakeOpenAI

    reader = subscriber(session, "race@example.com")
    _report_day(app, session)
    now = utcnow()
    reader.timezone, reader.hour = "UTC", (now - timedelta(hours=1)).hour  # their slot has come
    reader.confirmed_at, reader.next_slot_at = now - timedelta(days=3), None
    session.commit()
    late = github.add_commit(SEED_REPO, "fix: drop the stale lease before the scheduler retries",
                             date=now - timedelta(minutes=5))
    model = FakeOpenAI(latency=2.0 if slow == "model" else 0.0).start()
    if slow == "github":
        github.delay(f"/commits/{late}$", seconds=2)
    services = run.make_services({**app.config, "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "sk-test",
                                  "OPENAI_MODEL": "test-model"})

    def fetch() -> None:
        with app.app_context():
            own = app.extensions["db"].session
            try:
                ingest.ingest(own, services, due_at=now + timedelta(days=30))
            finally:
                own.remove()

    fetching = threading.Thread(target=fetch)
    fetching.start()
    repository = session.scalar(select(Repository).where(Repository.name == SEED_REPO))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # stamped and not stored (slow GitHub), or stored and not analysed
        session.expire_all()
        stored = session.scalar(select(FetchedCommit.id).where(FetchedCommit.sha == late))
        if repository.collecting_since is not None and (slow == "github" or stored is not None):
            break
        time.sleep(0.02)
    assert repository.collecting_since is not None
    first = fanout.deliver_sync(session, app.config, make_mailer(app.config))
    fetching.join(timeout=30)
    model.stop()
    assert first["sent"] == 1 and not fetching.is_alive()
    session.expire_all()
    stored = session.scalar(select(FetchedCommit).where(FetchedCommit.sha == late))
    assert stored is not None and repository.collecting_since is None
    cut = session.scalar(select(Delivery.window_end))
    assert rows.aware(cut) < rows.aware(stored.first_seen_at)

    second = fanout.deliver_sync(session, app.config, make_mailer(app.config), now=_later())
    assert second["sent"] == 1, second
    emails = [body_text(m) for m in outbox.messages()]
    assert len(emails) == 2
    assert sum("stale lease" in text for text in emails) == 1
