"""The daily fan-out: once-only deliveries, batching for SendGrid, retries, SMTP, and a killed worker."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import date

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from newsletter.delivery import fanout
from newsletter.delivery.mailers import SendGridMailer, make_mailer
from newsletter.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus, Threshold
from newsletter.reports import run
from newsletter.subscribers import links, subscriptions

from .conftest import body_html, body_text
from .factories import subscriber
from .fakes.seed_day import SEED_DATE, SEED_REPO, load_into
from .fakes.sendgrid import FakeSendGrid
from .helpers import path_of


@pytest.fixture
def config(config, github):
    """Every delivery test reports the seed day from the fake GitHub."""
    load_into(github)
    return config


def _report_day(app, session):
    run.run_sync(session, run.make_services(app.config), SEED_DATE)


def _statuses(session):
    session.expire_all()
    return Counter(d.status.value for d in session.scalars(select(Delivery)))


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
    result = fanout.deliver_sync(session, app.config, make_mailer(app.config), SEED_DATE)
    assert result["sent"] == 2 and result["planned"] == 2
    messages = {m["To"]: m for m in outbox.messages()}
    assert set(messages) == {"high@example.com", "all@example.com"}
    high = body_text(messages["high@example.com"])
    assert "event plane apis" in high and "incremental build" not in high  # medium commit filtered out
    assert "本日共 15 个提交" in body_text(messages["all@example.com"])
    # A rerun sends nothing twice.
    again = fanout.deliver_sync(session, app.config, make_mailer(app.config), SEED_DATE)
    assert again["sent"] == 0 and len(outbox.messages()) == 2


def test_email_headers_and_one_click_from_the_real_header(app, session, outbox, client):
    subscriber(session, "reader@example.com", threshold="medium")
    _report_day(app, session)
    fanout.deliver_sync(session, app.config, make_mailer(app.config), SEED_DATE)
    message = outbox.last()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"].startswith("Repo Daily <")
    assert message["Subject"].startswith("[Repo Daily] 2026-01-24")
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
    result = fanout.deliver_sync(session, app.config, make_mailer(app.config), SEED_DATE)
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
        result = fanout.deliver_sync(session, app.config, mailer, SEED_DATE)
        bodies = fake.requests
    assert result["sent"] == 7 and len(bodies) == 3  # three distinct contents, one request each
    batch = next(b for b in bodies if len(b["personalizations"]) == 5)
    html = batch["content"][1]["value"]
    assert "-rd-unsubscribe-" in html and "/unsubscribe/" not in html
    by_email = {p["to"][0]["email"]: p for p in batch["personalizations"]}
    assert set(by_email) == {s.email for s in same}
    for reader in same:
        personalization = by_email[reader.email]
        own = links.unsubscribe_token(app.config["SECRET_KEY"], reader).split(".")[0]  # the payload part
        assert own in personalization["substitutions"]["-rd-unsubscribe-"]
        assert own in personalization["headers"]["List-Unsubscribe"]
        assert personalization["custom_args"]["delivery_id"].isdigit()


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
        result = fanout.deliver_sync(session, app.config, mailer, SEED_DATE)
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
        result = fanout.deliver_sync(session, app.config, mailer, SEED_DATE)
    finally:
        controller.stop()
    assert result["sent"] == 2 and sorted(received) == ["smtp1@example.com", "smtp2@example.com"]


def test_batches_keep_identical_contents_together(app, session):
    for i in range(7):
        subscriber(session, f"x{i}@example.com", threshold="medium")
    for i in range(5):
        subscriber(session, f"y{i}@example.com", threshold="high")
    _report_day(app, session)
    planned = fanout.plan(session, SEED_DATE, batch_size=4, chunk=3)
    rows = list(session.scalars(select(Delivery)))
    by_key = {}
    for row in rows:
        by_key.setdefault(row.content_key, set()).add(row.batch)
    # A content key spans batches only in whole chunks of 3: 7 → 3+3+1 at most three batches.
    assert all(len(batches) <= 3 for batches in by_key.values())
    assert len(planned.batches) == len({r.batch for r in rows})
    assert fanout.plan(session, SEED_DATE).created == 0


def _descendants(pid: int) -> list[int]:
    """Child processes of pid (and theirs), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.kill
def test_killed_worker_neither_loses_nor_repeats(app, session, redis_url):
    """SIGKILL a real worker mid-fan-out, restart: every email arrives once, except at most the one
    message in flight at the kill, which is marked failed (interrupted) and never resent."""
    received = []

    class SlowHandler:
        async def handle_DATA(self, server, session_, envelope):
            await asyncio.sleep(0.15)
            received.append(envelope.rcpt_tos[0])
            return "250 OK"

    port = _free_port()
    controller = Controller(SlowHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    total = 40
    try:
        for i in range(total):
            subscriber(session, f"k{i:02d}@example.com", threshold="low" if i % 2 else "medium")
        _report_day(app, session)
        env = {**os.environ, **{k: str(app.config[k]) for k in (
            "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "BASE_URL", "GITHUB_API_URL")},
            "MAIL_BACKEND": "smtp", "SMTP_URL": f"smtp://127.0.0.1:{port}", "DELIVERY_BATCH_SIZE": "8"}
        cli = [sys.executable, "-c", "from newsletter.cli import main; main()"]
        started = subprocess.run([*cli, "deliver", "--date", SEED_DATE.isoformat()], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert started.returncode == 0 and "5 batches enqueued" in started.stdout, started.stderr
        os.makedirs(app.config["INSTANCE_PATH"], exist_ok=True)
        log = open(os.path.join(app.config["INSTANCE_PATH"], "worker.log"), "w")
        worker = subprocess.Popen([*cli, "worker", "email"], env=env, start_new_session=True,
                                  stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(received) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        # The worker and its work horse together, as `kill -9` of a container would. RQ starts the
        # horse in a session of its own, so killing the worker's process group alone would spare it.
        for pid in [*_descendants(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
        before = len(received)
        log.close()
        with open(log.name) as handle:
            assert 0 < before < total, handle.read()[:4000]
        in_flight = _statuses(session)["sending"]
        assert in_flight <= 1
        # Restart: recovery plus the remaining batches, as `newsletter deliver --date D` does.
        again = subprocess.run([*cli, "deliver", "--date", SEED_DATE.isoformat(), "--sync"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    finally:
        controller.stop()
    counts = Counter(received)
    assert max(counts.values()) == 1, "an email was sent twice"
    statuses = _statuses(session)
    assert statuses["sending"] == statuses["pending"] == 0
    assert statuses["sent"] + statuses["failed"] == total and statuses["failed"] == in_flight
    # Every subscriber got their email, except possibly the one that was in flight at the kill.
    assert total - in_flight <= len(counts) <= total
    interrupted = session.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)).all()
    assert all("interrupted" in d.error for d in interrupted)


def test_unused_date_has_no_deliveries(app, session):
    assert fanout.summary(session, date(2026, 1, 1))["sent"] == 0
