"""Benchmark of a day of the fan-out: 100,000 subscribers over 24 delivery hours and 30 time zones.

Setup, in a throwaway PostgreSQL database: 50 repositories whose commits (bench/render.py's synthetic
day, analysed in en and zh) are first seen through the two days around the benchmark's day, and
100,000 confirmed subscribers with Zipf subscriptions of 1-5 repositories, mixed thresholds and
languages, each in one of 30 time zones (half-hour offsets and daylight-saving zones among them) at
an hour from 0 to 23; nine in ten daily, one in ten weekly on a random weekday. Each already had
their previous email (yesterday's slot, or last week's) and has their next slot set, so the day is
a steady one.

Then the day, 2026-03-10 (UTC): at each of 24 hourly ticks (hh:05) the planner process plans the
emails due (`jobs.deliver.start_delivery(now)`: delivery rows and batch jobs) and waits until two RQ
workers on the `email` queue have sent them to the fake SendGrid (in this process, counts only).
Prints each hour's emails and wall time, the busiest hour, the whole day, SendGrid requests against
the bound (the sum over distinct contents of ceil(recipients / 1000)), PostgreSQL commits per
SendGrid request, and every process's peak memory (VmHWM). Targets: the whole day in at most 300 s,
every process at most 200 MB.

    .venv/bin/python bench/delivery.py [--subscribers 100000] [--workers 2] [--hours 24]
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgresql+psycopg://127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DAY = datetime.datetime(2026, 3, 10, tzinfo=datetime.UTC)
ZONES = (
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Moscow", "Europe/Istanbul", "Africa/Cairo",
    "Africa/Lagos", "Africa/Johannesburg", "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata", "Asia/Kathmandu",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Singapore", "Asia/Tokyo", "Asia/Seoul",
    "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland", "Pacific/Honolulu", "America/Anchorage",
    "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York", "America/Sao_Paulo",
    "America/St_Johns",
)


def peak_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def app_from_env():
    from newsletter import create_app

    return create_app()


def setup(count: int) -> None:
    """Commits with analyses, subscribers with their clocks and their previous email, in bulk."""
    import render as day  # bench/render.py: the synthetic day
    from sqlalchemy import insert, select

    from newsletter.analysis.result import HEURISTIC_MODEL, PROMPT_VERSION, AnalysisSet
    from newsletter.clock import WEEKDAYS, Clock
    from newsletter.models import (
        CommitAnalysis,
        Delivery,
        DeliveryStatus,
        FetchedCommit,
        Frequency,
        Repository,
        Subscriber,
        SubscriberStatus,
        Subscription,
    )
    from newsletter.reports.model import DailyReport

    rng = random.Random(7)
    app = app_from_env()
    repos, reports = day.make_reports(rng)
    session = app.extensions["db"].session()
    for repo in repos:
        session.add(Repository(name=repo, watermark_sha="0" * 40, default_branch="main"))
    session.flush()
    ids = dict(session.execute(select(Repository.name, Repository.id)).all())
    seen = random.Random(11)
    for repo in repos:
        english = DailyReport.from_json(reports[(repo, "en")]).entries
        chinese = {e.commit.sha: e for e in DailyReport.from_json(reports[(repo, "zh")]).entries}
        for entry in english:
            first_seen = DAY - datetime.timedelta(days=1) + datetime.timedelta(minutes=seen.randint(0, 2 * 1440 - 1))
            commit = FetchedCommit(repository_id=ids[repo], sha=entry.commit.sha, committed_at=entry.commit.committed_at,
                                   record=entry.commit.to_dict(), first_seen_at=first_seen)
            session.add(commit)
            session.flush()
            other = chinese[entry.commit.sha].analysis
            if entry.analysis is not None and other is not None:
                analysis = AnalysisSet.of({"en": entry.analysis, "zh": other})
                session.add(CommitAnalysis(commit_id=commit.id, model=HEURISTIC_MODEL, prompt_version=PROMPT_VERSION,
                                           analysis=analysis.to_dict()))
    session.commit()
    popularity = [1 / (rank + 1) ** 1.1 for rank in range(len(repos))]
    confirmed = DAY - datetime.timedelta(days=30)
    for start in range(0, count, 5000):
        people, subs, previous = [], [], []
        for i in range(start, min(count, start + 5000)):
            weekly = rng.random() < 0.1
            zone, hour, weekday = rng.choice(ZONES), rng.randrange(24), rng.randrange(7)
            clock = Clock(zone, hour, "weekly" if weekly else "daily", weekday)
            slot = clock.latest_slot(DAY - datetime.timedelta(minutes=1))
            people.append({"next_slot_at": clock.next_slot(slot), "id": i + 1, "email": f"reader{i}@example.org", "email_key": f"reader{i}@example.org",
                           "status": SubscriberStatus.CONFIRMED, "language": rng.choices(("en", "zh"), (60, 40))[0],
                           "paused": False, "send_empty": rng.random() < 0.1, "timezone": zone, "hour": hour,
                           "frequency": Frequency.WEEKLY if weekly else Frequency.DAILY, "weekday": weekday,
                           "confirmed_at": confirmed})
            chosen: set[str] = set()
            wanted = rng.choices((1, 2, 3, 4, 5), weights=(35, 25, 18, 12, 10))[0]
            while len(chosen) < wanted:
                chosen.add(rng.choices(repos, weights=popularity)[0])
            subs += [{"subscriber_id": i + 1, "repo": repo,
                      "threshold": rng.choices(("high", "medium", "low"), (30, 50, 20))[0]} for repo in chosen]
            # Their previous email, planned at the tick (hh:05) after their last slot before the day
            # began; the planner then set their next slot, as it does.
            planned = slot.replace(minute=5, second=0) + datetime.timedelta(hours=1 if slot.minute >= 5 else 0)
            previous.append({"subscriber_id": i + 1, "date": clock.local_date(slot), "slot": slot,
                             "window_start": planned - datetime.timedelta(days=7 if weekly else 1),
                             "window_end": planned, "status": DeliveryStatus.SENT,
                             "content_key": "", "attempts": 1, "created_at": slot, "updated_at": slot,
                             "sent_at": slot})
        session.execute(insert(Subscriber), people)
        session.execute(insert(Subscription), subs)
        session.execute(insert(Delivery), previous)
        session.commit()
    assert WEEKDAYS
    print(f"setup: {len(repos)} repositories, {count} subscribers in {len(ZONES)} zones; peak {peak_mb():.0f} MB",
          flush=True)


def count_commits(app) -> list[int]:
    """A counter of the database commits this process makes (SQLAlchemy's commit event)."""
    from sqlalchemy import event

    counter = [0]
    engine = app.extensions["db"].engine

    @event.listens_for(engine, "commit")
    def _commit(_connection) -> None:
        counter[0] += 1

    return counter


def plan(hours: int) -> None:
    """The day's ticks: plan at hh:05, then wait until the workers have sent everything due."""
    if os.environ.get("BENCH_PROFILE"):  # a cProfile of the planner in /tmp/planner.prof
        import cProfile

        cProfile.runctx("_plan(hours)", globals(), {"hours": hours}, "/tmp/planner.prof")
    else:
        _plan(hours)


def _plan(hours: int) -> None:
    import redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from jobs.deliver import start_delivery

    app = app_from_env()
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    queue = Queue("email", connection=connection)
    started_jobs = StartedJobRegistry("email", connection=connection)
    commits = count_commits(app)
    with app.app_context():
        for hour in range(hours):
            now = DAY + datetime.timedelta(hours=hour, minutes=5)
            started = time.perf_counter()
            line = start_delivery(now.isoformat())
            planned = time.perf_counter() - started
            time.sleep(0.05)
            while queue.count or started_jobs.count:
                time.sleep(0.05)
            print(f"HOUR {hour} {time.perf_counter() - started:.2f} {planned:.2f} {line}", flush=True)
    print(f"COMMITS planner {commits[0]}", flush=True)
    print(f"PEAK planner {peak_mb():.1f}", flush=True)


def work(name: str) -> None:
    import redis
    from rq import Queue
    from rq.worker import SimpleWorker

    app = app_from_env()
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    commits = count_commits(app)
    with app.app_context():
        # SimpleWorker runs jobs in this process, so its peak is the peak of every batch it sent.
        worker = SimpleWorker([Queue("email", connection=connection)], connection=connection, name=name)
        if os.environ.get("BENCH_PROFILE"):  # a cProfile of the worker in /tmp/<name>.prof
            import cProfile

            cProfile.runctx("worker.work(burst=False, logging_level='WARNING')", globals(), locals(),
                            f"/tmp/{name}.prof")
        else:
            worker.work(burst=False, logging_level="WARNING")
    print(f"COMMITS {name} {commits[0]}", flush=True)
    print(f"PEAK {name} {peak_mb():.1f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from newsletter.db import upgrade
    from tests.fakes.sendgrid import FakeSendGrid

    name = f"repo_daily_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(SERVER), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    redis.Redis.from_url(REDIS).flushdb()
    instance = Path(f"/tmp/{name}")
    watcher = create_engine(url)
    try:
        upgrade(url)
        with FakeSendGrid(keep_bodies=False) as fake:
            env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "SECRET_KEY": "bench" * 10,
                   "INSTANCE_PATH": str(instance), "BASE_URL": "https://daily.example.com",
                   "MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": fake.api_key, "SENDGRID_API_HOST": fake.url,
                   "LOG_LEVEL": "WARNING", "DELIVERY_BATCH_SIZE": os.environ.get("DELIVERY_BATCH_SIZE", "500")}
            me = [sys.executable, __file__]
            subprocess.run([*me, "_setup", str(args.subscribers)], env=env, check=True)
            workers = [subprocess.Popen([*me, "_work", f"worker{i + 1}"], env=env, stdout=subprocess.PIPE, text=True)
                       for i in range(args.workers)]
            started = time.perf_counter()
            planner = subprocess.run([*me, "_plan", str(args.hours)], env=env, check=True, capture_output=True,
                                     text=True)
            wall = time.perf_counter() - started
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            outputs = [w.communicate(timeout=120)[0] for w in workers]
            with Session(watcher) as session:
                keys = session.execute(text("SELECT content_key, count(*) FROM delivery WHERE status = 'sent' "
                                            "AND content_key <> '' GROUP BY content_key")).all()
            by_key = sum(math.ceil(n / 1000) for _key, n in keys)
            bound = sum(math.ceil(n / 1000) for n in fake.recipients_by_content.values())
            recipients = sum(fake.recipients_by_content.values())
            requests = fake.accepted
            attempts = fake.attempts
            contents = len(fake.recipients_by_content)
        hours = [line.split(maxsplit=4)[1:] for line in planner.stdout.splitlines() if line.startswith("HOUR")]
        peaks = [line.split(maxsplit=2)[1:] for out in [planner.stdout, *outputs] for line in out.splitlines()
                 if line.startswith("PEAK")]
        commits = {line.split()[1]: int(line.split()[2]) for out in [planner.stdout, *outputs]
                   for line in out.splitlines() if line.startswith("COMMITS")}
        worker_commits = sum(n for process, n in commits.items() if process != "planner")
        print("hour (UTC)  seconds  planning  what was planned")
        for hour, seconds, planning, line in hours:
            print(f"{int(hour):02d}:05  {float(seconds):8.1f}  {float(planning):8.1f}  {line}")
        busiest = max(hours, key=lambda h: int(h[3].split(": ", 1)[1].split()[0]))
        print(f"busiest hour {int(busiest[0]):02d}:05: {busiest[3].split(': ', 1)[1]} in {float(busiest[1]):.1f} s")
        print(f"{args.subscribers} subscribers, {args.workers} workers: the whole day {wall:.1f} s "
              f"({sum(float(h[1]) for h in hours):.1f} s of ticks), {recipients} emails to SendGrid "
              f"({recipients / max(wall, 1e-9):.0f}/s): {'ok' if wall <= 300 else 'OVER 300 s'}")
        print(f"SendGrid requests {requests} (attempts {attempts}) for {len(keys)} content keys (readers of the same "
              f"repositories, thresholds, language, frequency and window): bound sum(ceil(readers/1000)) = {by_key}: "
              f"{'ok' if requests <= by_key else 'OVER'}; {contents} byte-distinct contents (bound {bound})")
        print(f"database commits: workers {worker_commits} ({worker_commits / max(requests, 1):.2f} per SendGrid "
              f"request), planner {commits.get('planner', 0)} ({args.hours} ticks)")
        print(f"fake SendGrid + driver process peak: {peak_mb():.1f} MB")
        for process, mb in peaks:
            print(f"peak memory {process}: {float(mb):.1f} MB ({'ok' if float(mb) <= 200 else 'OVER 200 MB'})")
    finally:
        watcher.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        command = sys.argv[1]
        if command == "_setup":
            setup(int(sys.argv[2]))
        elif command == "_plan":
            plan(int(sys.argv[2]))
        elif command == "_work":
            work(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
