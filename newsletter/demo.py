"""`newsletter demo`: the whole day end to end, offline, on a local git repository.

It uses a database of its own (instance/demo.sqlite3, made anew each time) so it never touches real
subscribers, the heuristic analyzer (no keys, no network) and the outbox mailer.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import daily, delivery, migrate, subscriptions
from .db import Database
from .mailers import OutboxMailer
from .models import Repository, Threshold


@dataclass
class DemoResult:
    repo: str
    days: list[date]
    reports: dict[date, dict] = field(default_factory=dict)
    emails: list[Path] = field(default_factory=list)
    database_url: str = ""
    outbox: str = ""


def commit_days(path: str, timezone: str, count: int) -> list[date]:
    """The last `count` calendar days (in timezone) with commits on the checked-out branch, oldest first."""
    output = subprocess.run(["git", "-C", path, "log", "--format=%cI", "-n", "2000"], capture_output=True,
                            text=True, check=True).stdout
    zone = ZoneInfo(timezone)
    days = sorted({datetime.fromisoformat(line).astimezone(zone).date() for line in output.split()})
    return days[-count:]


def run_demo(config: dict, path: str, email: str, language: str, count: int) -> DemoResult:
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
        OPENAI_API_KEY=None, OPENAI_BASE_URL=None,  # the heuristic analyzer: no keys, no network
        MAIL_BACKEND="outbox", OUTBOX_DIR=str(instance / "outbox" / "demo"),
    )
    migrate.upgrade(settings["DATABASE_URL"])
    database = Database(settings["DATABASE_URL"])
    result = DemoResult(repo=name, days=commit_days(path, settings["DIGEST_TIMEZONE"], count),
                        database_url=settings["DATABASE_URL"], outbox=settings["OUTBOX_DIR"])
    services = daily.make_services(settings)
    mailer = OutboxMailer(settings["OUTBOX_DIR"], settings["MAIL_FROM"])
    before = set(Path(settings["OUTBOX_DIR"]).glob("*.eml")) if Path(settings["OUTBOX_DIR"]).exists() else set()
    try:
        with database.transaction() as session:
            subscriptions.subscribe_confirmed(session, email, [(name, Threshold.LOW)], language)
        session = database.session()
        repository = Repository(name=name)
        session.add(repository)
        session.commit()
        for day in result.days:
            # Each day as a backfill: its own commits, analysed and reported, then the day's emails.
            collected = daily.collect(session, services, repository, day, backfill=True)
            daily.analyse(session, services, daily.pending_analyses(session, collected.commits, [language],
                                                                      services.analyzer.model))
            (report,) = daily.assemble(session, services, repository, day, [language], collected.commits)
            session.commit()
            result.reports[day] = {"total": report.total, "high": report.high, "medium": report.medium,
                                   "low": report.low}
            delivery.deliver_sync(session, settings, mailer, day)
    finally:
        services.close()
        database.dispose()
    result.emails = sorted(set(Path(settings["OUTBOX_DIR"]).glob("*.eml")) - before)
    return result
