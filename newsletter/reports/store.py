"""Stored reports, and the state of a day's run, read back: for the email, the web archive, the feed and
`newsletter report`. Light on purpose: the fan-out imports it without the GitHub and LLM clients."""
from __future__ import annotations

import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only

from ..analysis.result import PROMPT_VERSION
from ..i18n import LANGUAGES
from ..models import CommitAnalysis, DailyRun, Report, Repository, RunStatus
from .model import DailyReport


def find_repository(session: Session, name: str) -> Repository | None:
    """The repository row of owner/name (lower-cased) or a local path."""
    return session.scalar(select(Repository).where(Repository.name == name))


def reports_of_day(session: Session, repository: Repository, day: datetime.date) -> dict[str, Report]:
    """The repository's reports of day, by language."""
    return {row.language: row for row in session.scalars(
        select(Report).where(Report.repository_id == repository.id, Report.date == day))}


def day_reports(session: Session, day: datetime.date) -> dict[tuple[str, str], DailyReport]:
    """Every report of the day as the model, by (repository, language): what the day's emails render."""
    rows = session.execute(select(Repository.name, Report.language, Report.data)
                           .join(Repository, Repository.id == Report.repository_id).where(Report.date == day))
    return {(name, language): DailyReport.from_json(data) for name, language, data in rows}


def day_stamp(session: Session, day: datetime.date) -> datetime.datetime | None:
    """When the day's reports last changed: a renderer built before then is stale."""
    return session.scalar(select(func.max(Report.updated_at)).where(Report.date == day))


def day_index(session: Session, repository: Repository, before: datetime.date | None,
              limit: int) -> tuple[list[datetime.date], bool, dict[datetime.date, dict[str, Report]]]:
    """The repository's report days newest first (before a date, at most limit), whether older ones
    exist, and each day's reports by language, with only their counts loaded."""
    query = (select(Report.date).where(Report.repository_id == repository.id).distinct()
             .order_by(Report.date.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(Report.date < before)
    dates = list(session.scalars(query))
    more, dates = len(dates) > limit, dates[:limit]
    by_date: dict[datetime.date, dict[str, Report]] = {}
    if dates:
        # Only the counts: the stored report data is large and not needed here.
        rows = session.scalars(
            select(Report).options(load_only(Report.date, Report.language, Report.status, Report.total,
                                             Report.high, Report.medium, Report.low, Report.merges,
                                             Report.unanalyzed))
            .where(Report.repository_id == repository.id, Report.date.in_(dates)))
        for row in rows:
            by_date.setdefault(row.date, {})[row.language] = row
    return dates, more, by_date


def nearest_days(session: Session, repository: Repository, day: datetime.date) -> tuple[datetime.date | None,
                                                                                   datetime.date | None]:
    """The closest days before and after day that have a report of the repository."""
    where = Report.repository_id == repository.id
    before = session.scalar(select(func.max(Report.date)).where(where, Report.date < day))
    after = session.scalar(select(func.min(Report.date)).where(where, Report.date > day))
    return before, after


def newest_reports(session: Session, repository: Repository, language: str | None, limit: int) -> list[Report]:
    """The repository's newest reports, in one language or in all (limit per language)."""
    query = select(Report).where(Report.repository_id == repository.id).order_by(Report.date.desc())
    if language:
        return list(session.scalars(query.where(Report.language == language).limit(limit)))
    return list(session.scalars(query.limit(limit * len(LANGUAGES))))


def run_status(session: Session, day: datetime.date) -> RunStatus | None:
    """The state of the day's run, or None when there is none."""
    return session.scalar(select(DailyRun.status).where(DailyRun.date == day))


def day_is_ready(session: Session, day: datetime.date) -> bool:
    """Whether every repository has its report for day: only then may the day's emails go."""
    return run_status(session, day) is RunStatus.DONE


def private_repositories(session: Session) -> frozenset[str]:
    """Names of the repositories known to be private: only granted subscriptions may show them."""
    return frozenset(session.scalars(select(Repository.name).where(Repository.private.is_(True))))


def cached_analyses(session: Session, commit_ids: list[int], model: str) -> dict[int, CommitAnalysis]:
    """Each commit's analysis by model: the current prompt version's, else the newest older one
    (a report of a day analyzed before the prompt changed is rebuilt from what it showed)."""
    if not commit_ids:
        return {}
    rows = session.scalars(select(CommitAnalysis).where(
        CommitAnalysis.commit_id.in_(commit_ids), CommitAnalysis.model == model)
        .order_by(CommitAnalysis.updated_at))
    found: dict[int, CommitAnalysis] = {}
    for row in rows:
        current = found.get(row.commit_id)
        if current is None or current.prompt_version != PROMPT_VERSION:
            found[row.commit_id] = row
    return found
