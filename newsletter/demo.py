"""`newsletter demo`: whole days end to end, offline, on a local git repository.

It uses a database of its own (instance/demo.sqlite3, made anew each time) so it never touches real
subscribers, the heuristic analyzer (no keys, no network) and the outbox mailer. Each day goes
through the same daily run and fan-out as production, as a backfill of that day's commits.
"""
from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from . import db
from .clock import Clock
from .delivery.fanout import deliver_sync
from .delivery.mailers import OutboxMailer
from .models import FetchedCommit, Threshold
from .reports import run, store
from .reports.days import day_bounds
from .subscribers import subscriptions


@dataclass
class DemoResult:
    repo: str
    days: list[date]
    reports: dict[date, dict[str, int]] = field(default_factory=dict)
    emails: list[Path] = field(default_factory=list)
    database_url: str = ""
    outbox: str = ""


DEMO_HOUR = 8  # the demo subscriber's delivery hour, in DIGEST_TIMEZONE


def commit_days(path: str, timezone: str, count: int) -> list[date]:
    """The last `count` calendar days (in timezone) with commits on the checked-out branch, oldest first."""
    output = subprocess.run(["git", "-C", path, "log", "--format=%cI", "-n", "2000"], capture_output=True,
                            text=True, check=True).stdout
    zone = ZoneInfo(timezone)
    found = sorted({datetime.fromisoformat(line).astimezone(zone).date() for line in output.split()})
    return found[-count:]


def run_demo(config: Mapping[str, Any], path: str, email: str, language: str, count: int) -> DemoResult:
    """Report the last days of the repository at path and email them to a demo subscriber's outbox."""
    instance = Path(config["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    database_file = instance / "demo.sqlite3"
    for stale in instance.glob("demo.sqlite3*"):
        stale.unlink()
    name = "local/" + (Path(path).resolve().name.lower().replace("_", "-") or "repo")
    settings = dict(config)
    settings.update(
        DATABASE_URL=f"sqlite:///{database_file}",
        LOCAL_REPOSITORIES=f"{name}={Path(path).resolve()}",
        PUBLIC_LOCAL_REPOSITORIES=True,  # the demo's reports are meant to be browsed
        OPENAI_API_KEY=None, OPENAI_BASE_URL=None,  # the heuristic analyzer: no keys, no network
        MAIL_BACKEND="outbox", OUTBOX_DIR=str(instance / "outbox" / "demo"),
    )
    db.upgrade(settings["DATABASE_URL"])
    database = db.Database(settings["DATABASE_URL"])
    zone = ZoneInfo(settings["DIGEST_TIMEZONE"])
    result = DemoResult(repo=name, days=commit_days(path, settings["DIGEST_TIMEZONE"], count),
                        database_url=settings["DATABASE_URL"], outbox=settings["OUTBOX_DIR"])
    services = run.make_services(settings)
    mailer = OutboxMailer(settings["OUTBOX_DIR"], settings["MAIL_FROM"])
    outbox = Path(settings["OUTBOX_DIR"])
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    try:
        clock = Clock(settings["DIGEST_TIMEZONE"], DEMO_HOUR)
        with database.transaction() as session:
            subscriber = subscriptions.subscribe_confirmed(
                session, email, [(name, Threshold.LOW)], language,
                schedule={"timezone": clock.timezone, "hour": clock.hour, "frequency": "daily", "weekday": 0})
            if result.days:  # confirmed the day before the first email, so every day has one
                subscriber.confirmed_at = clock.slot_on(result.days[0]) - timedelta(hours=1)
        session = database.session()
        # "Now" is two days after the last day, so every day is a backfill of its own commits
        # (the newest one may be today, which a real run would not report yet).
        now = datetime.combine(result.days[-1] + timedelta(days=2), time(12), zone).astimezone(UTC) \
            if result.days else None
        for day in result.days:
            run.run_sync(session, services, day, trigger="manual", now=now)
            repository = store.find_repository(session, name)
            assert repository is not None
            report = store.reports_of_day(session, repository, day)[language]
            result.reports[day] = {key: report.counts()[key] for key in ("total", "high", "medium", "low")}
            # Replayed time: the day's commits count as first seen as the day ended, and the
            # subscriber's email goes at their hour the next morning, covering them.
            slot = clock.slot_on(day + timedelta(days=1))
            session.execute(update(FetchedCommit).where(
                FetchedCommit.repository_id == repository.id, FetchedCommit.report_date == day)
                .values(first_seen_at=min(slot, day_bounds(day, clock.timezone)[1].astimezone(UTC))))
            session.commit()
            deliver_sync(session, settings, mailer, slot)
    finally:
        services.close()
        database.dispose()
    result.emails = sorted(set(outbox.glob("*.eml")) - before)
    return result
