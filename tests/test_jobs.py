"""The daily run through real RQ: jobs enqueued in Redis, run by a real `newsletter worker` process."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import redis
from rq import Queue
from sqlalchemy import select

from jobs.daily import start_daily
from jobs.schedule import ENTRIES
from newsletter.models import DailyRun, Report, RepoRun, RunStatus, Threshold
from newsletter.subscribers import subscriptions

from .fakes.seed_day import SEED_DATE, SEED_REPO, SEED_TIMEZONE, load_into


def worker_env(app) -> dict:
    """The environment a worker process needs to build the same app."""
    keys = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "OUTBOX_DIR", "BASE_URL", "GITHUB_API_URL",
            "DIGEST_TIMEZONE")
    env = {**os.environ, **{k: str(app.config[k]) for k in keys}}
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(key, None)
    return env


def run_worker_burst(app, timeout=120):
    cmd = [sys.executable, "-c", "from newsletter.cli import main; main()", "worker", "--burst"]
    result = subprocess.run(cmd, env=worker_env(app), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_daily_run_through_rq_worker(app, session, github):
    app.config["DIGEST_TIMEZONE"] = SEED_TIMEZONE  # the seed's 15 commits are one day there; the worker gets it too
    load_into(github)
    subscriptions.subscribe_confirmed(session, "a@example.com", [(SEED_REPO, Threshold.LOW)], "en")
    subscriptions.subscribe_confirmed(session, "b@example.com", [("ghost/missing", Threshold.LOW)], "zh")
    session.commit()
    with app.app_context():
        message = start_daily(SEED_DATE.isoformat())
        assert message == "2026-01-24: 2 repositories enqueued"
        assert start_daily(SEED_DATE.isoformat()) == "2026-01-24: in progress"
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    queue = Queue("analysis", connection=connection)
    job_ids = queue.job_ids
    assert len(job_ids) == 2 and all(j.startswith("repo-2026-01-24-") for j in job_ids)
    run_worker_burst(app)
    session.expire_all()
    run = session.scalar(select(DailyRun).where(DailyRun.date == SEED_DATE))
    assert run.status is RunStatus.DONE and run.finished_at is not None
    statuses = {r.repository.name: r.status.value for r in session.scalars(select(RepoRun))}
    assert statuses == {SEED_REPO: "ok", "ghost/missing": "failed"}
    reports = {(r.repository.name, r.language): r for r in session.scalars(select(Report))}
    assert reports[(SEED_REPO, "en")].total == 15
    assert reports[("ghost/missing", "zh")].status.value == "failed"


def test_schedule_is_data_with_a_valid_job_id_free_entry():
    (entry,) = ENTRIES
    assert entry["func"].__module__ == "jobs.daily" and entry["queue_name"] == "default"
    # Every hour at INGEST_CRON's minute (5), whatever zone rq reads it in.
    minutes, hours = entry["cron"].split()[:2]
    assert "5" in minutes.split(",") and hours.count(",") == 23


def test_tick_ingests_when_due_starts_the_due_run_once_and_plans_emails(app, session, github):
    from datetime import UTC, datetime

    from jobs.daily import tick
    from newsletter.models import IngestRun
    from newsletter.reports.days import default_report_date

    load_into(github)
    subscriptions.subscribe_confirmed(session, "a@example.com", [(SEED_REPO, Threshold.LOW)], "en")
    session.commit()
    now = datetime.now(UTC)
    with app.app_context():
        app.config["DIGEST_CRON"] = "0 0 1 1 *"  # New Year's midnight: long past, not caught up
        first = tick(now.isoformat())
        assert first.startswith("ingested 0 new commits; ") and first.endswith("0 emails planned, 0 batches enqueued")
        # The same INGEST_CRON fire is served once; the reader confirmed just now, so no slot yet.
        assert tick(now.isoformat()).startswith("ingestion not due; ")
        app.config["DIGEST_CRON"] = "* * * * *"  # every minute: the day just over is due
        day = default_report_date(app.config["DIGEST_TIMEZONE"], now)
        assert f"{day}: 1 repositories enqueued" in tick(now.isoformat())
        assert f"{day}" not in tick(now.isoformat())  # running within its lease: not started again
    assert session.scalar(select(DailyRun)).trigger == "cron"
    assert len(session.scalars(select(IngestRun)).all()) == 1


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _redis_server(port: int, folder) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def test_the_scheduler_outlives_a_redis_restart(app, tmp_path):
    """A Redis restart must not leave the service without daily runs and delivery sweeps."""
    port = _free_port()
    server = _redis_server(port, tmp_path)
    env = {**worker_env(app), "REDIS_URL": f"redis://127.0.0.1:{port}/0", "DELIVERY_SWEEP_SECONDS": "1",
           "LOG_LEVEL": "INFO"}
    log = open(tmp_path / "scheduler.log", "w")
    scheduler = subprocess.Popen([sys.executable, "-c", "from newsletter.cli import main; main()", "scheduler"],
                                 env=env, stdout=log, stderr=subprocess.STDOUT)
    email = Queue("email", connection=redis.Redis(port=port))
    try:
        deadline = time.monotonic() + 30
        while not email.job_ids and time.monotonic() < deadline:  # the sweep at start, then every second
            time.sleep(0.1)
        assert email.job_ids, (tmp_path / "scheduler.log").read_text()[-2000:]
        server.terminate()
        server.wait(timeout=10)
        time.sleep(3)
        assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()[-2000:]
        server = _redis_server(port, tmp_path)  # an empty Redis, as after a restart without persistence
        deadline = time.monotonic() + 60
        while not email.job_ids and time.monotonic() < deadline:
            time.sleep(0.1)
        assert email.job_ids, (tmp_path / "scheduler.log").read_text()[-2000:]
        assert "Redis is unreachable" in (tmp_path / "scheduler.log").read_text()
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=10)
        log.close()
        server.terminate()
        server.wait(timeout=10)
