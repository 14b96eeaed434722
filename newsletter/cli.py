"""The `newsletter` command: a Flask group built around create_app. Commands parse arguments and call
the same services as the site and the jobs.

`flask --app wsgi ...` has the same commands: pyproject.toml lists them as Flask command plugins
(the `flask.commands` entry points), so create_app never imports this module.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import click
import redis
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from rq import Queue, Worker
from rq.cron import CronScheduler
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import jobs
from jobs.daily import start_daily
from jobs.deliver import start_delivery

from . import create_app, db
from . import tick as clock_tick
from .clock import WEEKDAYS, clock_line
from .config import ROOT
from .delivery import fanout
from .delivery.confirmations import send_confirmation
from .delivery.mailers import make_mailer
from .demo import run_demo
from .email.digest import localize_times
from .errors import NewsletterError, ValidationError
from .models import RunStatus
from .reports import run, store
from .sources.router import is_local_repository
from .subscribers import subscriptions
from .subscribers.smtputf8 import Smtputf8Support
from .subscribers.validation import parse_repo, parse_repo_spec, parse_schedule

_DATE = click.DateTime(formats=["%Y-%m-%d"])
SCHEDULER_MAX_WAIT = 30.0  # seconds between two attempts to reach Redis again
log = logging.getLogger(__name__)


def _session() -> Session:
    database: db.Database = current_app.extensions["db"]
    return database.session()


def _config() -> dict[str, Any]:
    return current_app.config


# Database ------------------------------------------------------------------------------------------

@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    db.upgrade(_config()["DATABASE_URL"], revision)
    click.echo(f"database at {revision}: {make_url(_config()['DATABASE_URL']).render_as_string(hide_password=True)}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    db.downgrade(_config()["DATABASE_URL"], revision)


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    db.revision(_config()["DATABASE_URL"], message)


# Subscribers ---------------------------------------------------------------------------------------

@click.command("subscribe")
@click.argument("email")
@click.option("--repo", "repos", multiple=True, required=True, metavar="OWNER/NAME[:high|medium|low]",
              help="A repository and its threshold (default medium); repeat for more.")
@click.option("--lang", "language", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--confirmed", is_flag=True, help="Confirm at once and send no confirmation email.")
@click.option("--timezone", default=None, metavar="IANA-ZONE",
              help="The subscriber's time zone (default: Asia/Shanghai for --lang zh, UTC for en).")
@click.option("--hour", default=None, type=click.IntRange(0, 23), help="Delivery hour, local (default 8).")
@click.option("--frequency", default=None, type=click.Choice(["daily", "weekly"]), help="Default daily.")
@click.option("--weekday", default=None, type=click.Choice(list(WEEKDAYS)),
              help="The weekly email's day (default mon).")
@with_appcontext
def subscribe_command(email: str, repos: tuple[str, ...], language: str, confirmed: bool, timezone: str | None,
                      hour: int | None, frequency: str | None, weekday: str | None) -> None:
    """Subscribe EMAIL (double opt-in unless --confirmed); the operator may name private repositories."""
    database = current_app.extensions["db"]
    # No check of the repositories: the operator grants them (private and local ones too).
    smtputf8 = Smtputf8Support(_config())
    signup = None
    try:
        parsed = [parse_repo_spec(spec) for spec in repos]
        asked = (timezone, hour, frequency, weekday) != (None, None, None, None)
        schedule = parse_schedule(language, timezone, hour, frequency, weekday) if asked else None
        with database.transaction() as session:
            if confirmed:
                subscriber = subscriptions.subscribe_confirmed(session, email, parsed, language, smtputf8,
                                                               schedule=schedule)
            else:
                outcome = subscriptions.request_subscription(session, email, parsed, language, source="cli",
                                                             smtputf8=smtputf8, schedule=schedule)
                subscriber, signup = outcome.subscriber, outcome.request
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    if confirmed:
        click.echo(f"{subscriber.email} confirmed: " + ", ".join(f"{r}:{t.value}" for r, t in parsed)
                   + f"; {clock_line(subscriber)}")
    elif signup is None:
        raise click.ClickException(f"{subscriber.email} is suppressed; no confirmation email was sent.")
    else:
        config = _config()
        if not send_confirmation(config, make_mailer(config), signup):
            raise click.ClickException("the confirmation email could not be sent; see the log")
        click.echo(f"confirmation email sent to {subscriber.email} through {config['MAIL_BACKEND']}")


# The daily run -------------------------------------------------------------------------------------

@click.command("run-daily")
@click.option("--date", "day", type=_DATE, help="Report date (default: yesterday in DIGEST_TIMEZONE). "
              "A past date is a backfill: that day's commits, the watermark stays.")
@click.option("--sync", is_flag=True, help="Run to the end in the foreground instead of enqueueing RQ jobs.")
@click.option("--retry-fallbacks", is_flag=True, help="Ask the model again for the day's flagged fallback analyses.")
@with_appcontext
def run_daily_command(day: datetime | None, sync: bool, retry_fallbacks: bool) -> None:
    """Trigger the daily run: fetch, analyse and report every watched repository."""
    config = _config()
    session = _session()
    when = day.date() if day else None
    try:
        if retry_fallbacks:
            if when is None:
                raise click.UsageError("--retry-fallbacks needs --date")
            services = run.make_services(config)
            try:
                result = run.retry_fallbacks(session, services, when)
            finally:
                services.close()
            click.echo(f"{result['date']}: {result['retried']} fallback analyses retried, "
                       f"{result['still_fallback']} still fall back")
            return
        if not sync:
            try:
                click.echo(start_daily(when.isoformat() if when else None, trigger="manual"))
            except redis.exceptions.RedisError as exc:
                raise click.ClickException(f"Redis is unreachable ({exc}); the run is left failed and resumes "
                                           "when `newsletter run-daily` runs again") from None
            return
        services = run.make_services(config)
        try:
            with click.progressbar(length=1, label="daily run", file=sys.stderr, show_pos=True) as bar:
                def progress(message: str, done: int, total: int) -> None:
                    bar.length = total
                    bar.label = message[:60]
                    bar.update(1)

                summary = run.run_sync(session, services, when, trigger="manual", progress=progress)
        finally:
            services.close()
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    if summary is None:
        which = when or run.resolve_day(None, config["DIGEST_TIMEZONE"])[0]
        if store.run_status(session, which) is RunStatus.RUNNING:
            click.echo(f"the run for {which} is in progress elsewhere; nothing to do")
        else:
            click.echo(f"the run for {which} has already been made; nothing to do")
        return
    click.echo(f"{summary['date']}: {summary['ok']}/{summary['repositories']} repositories reported, "
               f"{summary['new_commits']} new commits, {summary['github_requests']} GitHub requests, "
               f"{summary['llm_calls']} LLM calls")
    for name, error in summary["failed"].items():
        click.echo(f"  failed: {name}: {error}", err=True)
    if summary["status"] != RunStatus.DONE.value:
        raise click.ClickException(f"the run for {summary['date']} is not done: {summary['error']}; "
                                   "run it again to resume it")


@click.command("report")
@click.argument("repo")
@click.option("--date", "day", type=_DATE, required=True)
@click.option("--lang", "language", type=click.Choice(["zh", "en"]), default=None,
              help="Default: English if there is an English report, else the one there is.")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@with_appcontext
def report_command(repo: str, day: datetime, language: str | None, fmt: str) -> None:
    """Print the daily report of REPO (owner/name) for --date."""
    session = _session()
    try:
        name = repo if is_local_repository(repo) else parse_repo(repo)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    repository = store.find_repository(session, name)
    reports = {} if repository is None else store.reports_of_day(session, repository, day.date())
    if not reports:
        raise click.ClickException(f"no report for {name} on {day.date()}; run `newsletter run-daily --date "
                                   f"{day.date()} --sync` first")
    if language is None:
        language = "en" if "en" in reports else sorted(reports)[0]
    if language not in reports:
        raise click.ClickException(f"no {language} report for {name} on {day.date()} "
                                   f"(there is: {', '.join(sorted(reports))})")
    report = reports[language]
    if fmt == "json":
        click.echo(json.dumps(report.data, ensure_ascii=False, indent=2))
    else:
        click.echo(report.markdown)


# Delivery ------------------------------------------------------------------------------------------

class _Instant(click.ParamType):  # type: ignore[type-arg]
    """An ISO-8601 instant; without an offset it is read as UTC."""

    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            except ValueError:
                self.fail(f"{value!r} is not an ISO-8601 instant (e.g. 2026-03-08T13:00:00Z)", param, ctx)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


_NOW = _Instant()


def _echo_delivery(result: dict[str, Any]) -> None:
    click.echo(f"{result['now']}: {result['planned']} emails planned, {result['sent']} sent, {result['skipped']} "
               f"skipped, {result['failed']} failed ({result['batches']} batches, {result['requests']} requests to "
               f"the {_config()['MAIL_BACKEND']} backend; {result['retrying']} waiting for a retry)")


@click.command("deliver")
@click.option("--now", "now", type=_NOW, default=None,
              help="The instant to deliver at (default: the current time); replays a time for operators.")
@click.option("--sync", is_flag=True, help="Send in the foreground instead of enqueueing jobs on the email queue.")
@click.option("--date", "day", type=_DATE, hidden=True)
@with_appcontext
def deliver_command(now: datetime | None, sync: bool, day: datetime | None) -> None:
    """Plan and send every email whose subscriber's slot has come and that has not gone (no ingestion;
    reruns send nothing twice)."""
    if day is not None:
        raise click.UsageError("--date is gone: emails follow each subscriber's clock now; use --now, or "
                               "`newsletter tick --now`")
    if sync:
        config = _config()
        _echo_delivery(fanout.deliver_sync(_session(), config, make_mailer(config), now))
    else:
        click.echo(start_delivery(now.isoformat() if now else None))


@click.command("tick")
@click.option("--now", "now", type=_NOW, default=None,
              help="The instant to act at (default: the current time): operators replay time, tests travel through it.")
@with_appcontext
def tick_command(now: datetime | None) -> None:
    """Do in the foreground what the scheduler does at an instant: ingest if INGEST_CRON fired, build
    the due daily reports, then plan and send every email due."""
    config = _config()
    summary = clock_tick.tick(_session(), config, make_mailer(config), now)
    ingested = summary["ingest"]
    click.echo(f"{summary['now']}: " + (f"ingested {ingested['new_commits']} new commits of "
                                        f"{ingested['repositories']} repositories" if ingested else "ingestion not due"))
    for report in summary["reports"]:
        click.echo(f"  daily reports of {report['date']}: {report['ok']}/{report['repositories']} repositories")
    _echo_delivery(summary["delivery"])


@click.command("preview")
@click.argument("email")
@click.option("--now", "now", type=_NOW, default=None,
              help="Preview the email as if planned at this instant (default: the current time).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder to write preview.html and preview.txt into (default: the instance folder).")
@with_appcontext
def preview_command(email: str, now: datetime | None, out_dir: str | None) -> None:
    """Write the HTML and text of EMAIL's next email: what is new since their last one, up to --now."""
    config = _config()
    session = _session()
    subscriber = subscriptions.find_subscriber(session, email)
    if subscriber is None:
        raise click.ClickException(f"no subscriber {email}")
    view = fanout.subscriber_view(config, subscriber, store.private_repositories(session))
    preview = fanout.preview(session, config, subscriber, now)
    when = preview.date
    digest = preview.renderer.render(view)
    if digest is not None:
        digest = localize_times(digest, subscriber.timezone)
    if digest is None:
        click.echo(f"{subscriber.email} would get no email now: nothing at or above their thresholds since "
                   f"{preview.start.isoformat()}")
        return
    folder = Path(out_dir or Path(config["INSTANCE_PATH"]) / "preview")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{when}-{subscriber.id}"
    (folder / f"{stem}.html").write_text(digest.html, encoding="utf-8")
    (folder / f"{stem}.txt").write_text(f"Subject: {digest.subject}\n\n{digest.text}", encoding="utf-8")
    click.echo(f"subject: {digest.subject}")
    click.echo(f"html: {(folder / f'{stem}.html').resolve()}")
    click.echo(f"text: {(folder / f'{stem}.txt').resolve()}")


# Processes -----------------------------------------------------------------------------------------

@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool) -> None:
    """Start an RQ worker (with its scheduler) on the analysis, email and default queues."""
    connection = redis.Redis.from_url(_config()["REDIS_URL"])
    names = queues or ("analysis", "email", "default")
    worker = Worker([Queue(n, connection=connection) for n in names], connection=connection)
    worker.work(with_scheduler=True, burst=burst, logging_level=_config()["LOG_LEVEL"])


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Start `rq cron` with the schedule in jobs/schedule.py (the daily run at DIGEST_CRON)."""
    # Read cron in UTC whatever the host's zone; jobs/schedule.py widens DIGEST_CRON to match.
    os.environ["TZ"] = "UTC"
    time.tzset()
    connection = redis.Redis.from_url(_config()["REDIS_URL"])
    scheduler = CronScheduler(connection=connection, logging_level=_config()["LOG_LEVEL"])
    scheduler.load_config_from_file(str(Path(jobs.__file__).resolve().parent / "schedule.py"))
    click.echo(f"scheduler: {_config()['DIGEST_CRON']} in {_config()['DIGEST_TIMEZONE']}")
    wait = 1.0
    while True:
        try:
            scheduler.start()  # type: ignore[no-untyped-call]  # rq's CronScheduler.start() is unannotated
            return
        except redis.exceptions.ConnectionError as exc:
            # Redis restarting must not leave the service without daily runs and delivery sweeps.
            log.warning("Redis is unreachable (%s); the scheduler starts again in %.0f s", exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, SCHEDULER_MAX_WAIT)


@click.command("demo")
@click.option("--repo-path", type=click.Path(exists=True, file_okay=False), default=None,
              help="A local git repository (default: this project's own history).")
@click.option("--days", "count", default=3, show_default=True, help="How many of its last days with commits to report.")
@click.option("--email", default="demo@example.com", show_default=True)
@click.option("--lang", "language", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@with_appcontext
def demo_command(repo_path: str | None, count: int, email: str, language: str) -> None:
    """Run whole days end to end offline: local git → heuristic analysis → reports → emails in the outbox."""
    path = repo_path or str(ROOT)
    result = run_demo(_config(), path, email, language, count)
    if not result.days:
        raise click.ClickException(f"{path} has no commits to report")
    click.echo(f"demo: {result.repo} ({Path(path).resolve()}), heuristic analysis, database {result.database_url}")
    for day, counts in result.reports.items():
        click.echo(f"  {day}: {counts['total']} commits | high {counts['high']} | medium {counts['medium']} | "
                   f"low {counts['low']}")
    for eml in result.emails:
        message = message_from_bytes(eml.read_bytes(), policy=email_policy.default)
        html = eml.with_suffix(".html")
        html.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")  # type: ignore[union-attr]
        click.echo(f"  email: {message['Subject']}")
        click.echo(f"    open {html}  (the message itself: {eml})")
    # The emails' links point at BASE_URL: they work on a site that serves the demo's own database.
    click.echo(f"the emails' links work on the site serving this database: make demo-site (or DATABASE_URL="
               f"{result.database_url} {sys.argv[0]} run), then {_config()['BASE_URL']}/r/{result.repo}/")


COMMANDS = (db_group, subscribe_command, run_daily_command, report_command, worker_command, scheduler_command,
            deliver_command, tick_command, preview_command, demo_command)

cli = FlaskGroup(create_app=create_app, add_version_option=False, load_dotenv=False,
                 help="Repo Daily: the daily GitHub-commit newsletter.")
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    try:
        cli.main(prog_name="newsletter")
    except NewsletterError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
