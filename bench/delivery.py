"""Benchmark of the email fan-out: 100,000 subscribers through RQ to the fake SendGrid.

A throwaway PostgreSQL database gets 50 repositories' synthetic reports (bench/render.py's day) and
100,000 confirmed subscribers with Zipf-distributed subscriptions of 1-5 repositories, mixed
thresholds and languages. Then, each in its own process: the planner (`jobs.deliver.start_delivery`:
delivery rows and batch jobs) and two RQ workers on the `email` queue sending to the fake SendGrid,
which runs in this process and keeps only counts. Prints wall time, SendGrid requests against the
bound (the sum over distinct contents of ceil(recipients / 1000)) and every process's peak memory
(VmHWM). Target: requests within the bound, every process under 256 MB.

    .venv/bin/python bench/delivery.py [--subscribers 100000] [--workers 2]
"""
from __future__ import annotations

import argparse
import math
import os
import random
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
    """Reports and subscribers, inserted in bulk."""
    import render as day  # bench/render.py: the synthetic day
    from sqlalchemy import insert, select

    from newsletter.models import (
        DailyRun,
        Report,
        ReportStatus,
        Repository,
        RunStatus,
        Subscriber,
        SubscriberStatus,
        Subscription,
        utcnow,
    )

    rng = random.Random(7)
    app = app_from_env()
    repos, reports = day.make_reports(rng)
    session = app.extensions["db"].session()
    for repo in repos:
        session.add(Repository(name=repo))
    session.flush()
    ids = dict(session.execute(select(Repository.name, Repository.id)).all())
    for (repo, lang), data in reports.items():
        counts = data["counts"]
        session.add(Report(repository_id=ids[repo], date=day.DATE, language=lang, analyzer="bench-model",
                           status=ReportStatus(data["status"]), data=data, markdown="", total=counts["total"],
                           high=counts["high"], medium=counts["medium"], low=counts["low"]))
    # The day's run is done (every repository has its report): only then does the fan-out plan it.
    session.add(DailyRun(date=day.DATE, status=RunStatus.DONE, trigger="manual", finished_at=utcnow()))
    session.commit()
    popularity = [1 / (rank + 1) ** 1.1 for rank in range(len(repos))]
    for start in range(0, count, 5000):
        people, subs = [], []
        for i in range(start, min(count, start + 5000)):
            people.append({"id": i + 1, "email": f"reader{i}@example.org", "email_key": f"reader{i}@example.org",
                           "status": SubscriberStatus.CONFIRMED, "language": rng.choices(("en", "zh"), (60, 40))[0],
                           "paused": False, "send_empty": rng.random() < 0.1})
            chosen: set[str] = set()
            wanted = rng.choices((1, 2, 3, 4, 5), weights=(35, 25, 18, 12, 10))[0]
            while len(chosen) < wanted:
                chosen.add(rng.choices(repos, weights=popularity)[0])
            subs += [{"subscriber_id": i + 1, "repo": repo,
                      "threshold": rng.choices(("high", "medium", "low"), (30, 50, 20))[0]} for repo in chosen]
        session.execute(insert(Subscriber), people)
        session.execute(insert(Subscription), subs)
        session.commit()
    print(f"setup: {len(repos)} repositories, {count} subscribers; peak {peak_mb():.0f} MB", flush=True)


def plan() -> None:
    from jobs.deliver import start_delivery

    app = app_from_env()
    with app.app_context():
        print(start_delivery("2026-01-24"), flush=True)
    print(f"PEAK planner {peak_mb():.1f}", flush=True)


def work(name: str) -> None:
    import redis
    from rq import Queue
    from rq.worker import SimpleWorker

    app = app_from_env()
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    with app.app_context():
        # SimpleWorker runs jobs in this process, so its peak is the peak of every batch it sent.
        worker = SimpleWorker([Queue("email", connection=connection)], connection=connection, name=name)
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            cProfile.runctx("worker.work(burst=True, logging_level='WARNING')", globals(), locals(),
                            f"/tmp/{name}.prof")
        else:
            worker.work(burst=True, logging_level="WARNING")
    print(f"PEAK {name} {peak_mb():.1f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from newsletter.db import upgrade
    from tests.fakes.sendgrid import FakeSendGrid

    name = f"repo_daily_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(SERVER), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    redis.Redis.from_url(REDIS).flushdb()
    instance = Path(f"/tmp/{name}")
    try:
        upgrade(url)
        with FakeSendGrid(keep_bodies=False) as fake:
            env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "SECRET_KEY": "bench" * 10,
                   "INSTANCE_PATH": str(instance), "BASE_URL": "https://daily.example.com",
                   "MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": fake.api_key, "SENDGRID_API_HOST": fake.url,
                   "LOG_LEVEL": "WARNING", "DELIVERY_BATCH_SIZE": os.environ.get("DELIVERY_BATCH_SIZE", "500")}
            me = [sys.executable, __file__]
            subprocess.run([*me, "_setup", str(args.subscribers)], env=env, check=True)
            started = time.perf_counter()
            planner = subprocess.run([*me, "_plan"], env=env, check=True, capture_output=True, text=True)
            planned = time.perf_counter() - started
            workers = [subprocess.Popen([*me, "_work", f"worker{i + 1}"], env=env, stdout=subprocess.PIPE, text=True)
                       for i in range(args.workers)]
            outputs = [w.communicate()[0] for w in workers]
            wall = time.perf_counter() - started
            bound = sum(math.ceil(n / 1000) for n in fake.recipients_by_content.values())
            recipients = sum(fake.recipients_by_content.values())
            attempts = fake.attempts
            requests = fake.accepted
            contents = len(fake.recipients_by_content)
        peaks = [line.split(maxsplit=2)[1:] for out in [planner.stdout, *outputs] for line in out.splitlines()
                 if line.startswith("PEAK")]
        print(planner.stdout.splitlines()[0])
        print(f"{args.subscribers} subscribers, {args.workers} workers: fan-out {wall:.1f} s "
              f"(planning {planned:.1f} s), {recipients} emails to SendGrid "
              f"({recipients / (wall - planned):.0f}/s while sending)")
        print(f"SendGrid requests {requests} (attempts {attempts}); distinct contents {contents}; "
              f"bound sum(ceil(recipients/1000)) = {bound}: {'ok' if requests <= bound else 'OVER'}")
        print(f"fake SendGrid + driver process peak: {peak_mb():.1f} MB")
        for process, mb in peaks:
            print(f"peak memory {process}: {float(mb):.1f} MB ({'ok' if float(mb) < 256 else 'OVER 256 MB'})")
    finally:
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
            plan()
        elif command == "_work":
            work(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
