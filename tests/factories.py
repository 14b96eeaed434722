"""Factories for rows the tests need: subscribers (through the same service the CLI uses) and stored reports."""
from __future__ import annotations

from sqlalchemy import select

from newsletter.models import Report, ReportStatus, Repository, Subscriber, Threshold
from newsletter.reports.markdown import render_markdown
from newsletter.reports.model import DailyReport
from newsletter.subscribers import subscriptions
from newsletter.subscribers.validation import email_key

SEED_REPO = "ai-dynamo/dynamo"


def subscriber(session, email: str, *repos: tuple[str, str] | str, threshold: str = "low", lang: str = "en",
               paused: bool = False) -> Subscriber:
    """A confirmed subscriber, committed: repos are owner/name (at `threshold`) or (owner/name, threshold)."""
    wanted = [(r, Threshold(threshold)) if isinstance(r, str) else (r[0], Threshold(r[1])) for r in repos]
    row = subscriptions.subscribe_confirmed(session, email, wanted or [(SEED_REPO, Threshold(threshold))], lang)
    row.paused = paused
    session.commit()
    return row


def find_subscriber(session, email: str) -> Subscriber | None:
    """The subscriber row of an address as the database has it now."""
    session.expire_all()
    return session.scalar(select(Subscriber).where(Subscriber.email_key == email_key(email)))


def stored_report(session, report: DailyReport) -> Report:
    """Save a report the way the daily run does."""
    repository = session.scalar(select(Repository).where(Repository.name == report.repo))
    if repository is None:
        repository = Repository(name=report.repo)
        session.add(repository)
        session.flush()
    counts = report.counts()
    row = Report(repository_id=repository.id, date=report.date, language=report.language,
                 status=ReportStatus(report.status), analyzer=report.analyzer, data=report.to_json(),
                 markdown=render_markdown(report), total=counts["total"], high=counts["high"],
                 medium=counts["medium"], low=counts["low"], merges=counts["merge"],
                 unanalyzed=counts["unanalyzed"], prompt_tokens=report.prompt_tokens(),
                 completion_tokens=report.completion_tokens())
    session.add(row)
    session.commit()
    return row
