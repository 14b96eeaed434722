"""The hourly ingestion (INGEST_CRON): every watched repository's new commits, fetched and analysed.

Apart from the daily reports and from delivery: each hour the commits new since a repository's
watermark are stored (stamped first seen at that instant) and analysed in the languages their
readers read, so analyses are ready before anyone's delivery hour. The daily run of a day then
finds them there (run.collect takes the commits first seen during the day that no report holds yet).

One IngestRun row per INGEST_CRON fire time: a second tick for the same fire does nothing; a missed
fire needs no catching up, since the next one takes everything from the watermark.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import SourceError, failure_kind
from ..models import IngestRun, Repository, aware, utcnow
from ..subscribers.subscriptions import languages_for, watched_repositories
from ..text import plain
from .run import ERROR_CHARS, Collected, Pending, Services, analyze_pending, collect, pending_analyses

log = logging.getLogger(__name__)

# An ingestion whose row is older than this and still unfinished died with its process: run it again.
STALE = timedelta(minutes=50)


def _open(session: Session, due_at: datetime, now: datetime) -> IngestRun | None:
    row = session.scalar(select(IngestRun).where(IngestRun.due_at == due_at))
    if row is not None:
        if row.finished_at is not None or utcnow() - aware(row.started_at) < STALE:
            return None
        row.started_at = utcnow()  # its process died: this tick does it
        session.commit()
        return row
    row = IngestRun(due_at=due_at, started_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another tick took this fire a moment ago
        session.rollback()
        return None
    session.commit()
    return row


def ingest(session: Session, services: Services, now: datetime | None = None,
           due_at: datetime | None = None) -> dict[str, Any] | None:
    """Fetch and analyse every watched repository's new commits, stamped first seen at now.

    due_at: the INGEST_CRON fire this serves (default: now); None is returned when it was served.
    A repository that cannot be fetched keeps its watermark and records why (Repository.last_error
    and last_error_kind, what readers' emails say about it); the others go on.
    """
    now = (now or utcnow()).astimezone(UTC)
    row = _open(session, (due_at or now).astimezone(UTC), now)
    if row is None:
        return None
    watched = sorted(watched_repositories(session))
    fetched: list[tuple[Repository, Collected]] = []
    pending: list[Pending] = []
    failed: dict[str, str] = {}
    for name in watched:
        repository = session.scalar(select(Repository).where(Repository.name == name))
        if repository is None:
            repository = Repository(name=name)
            session.add(repository)
            session.commit()  # kept when its first fetch fails: the failure is recorded on it
        try:
            collected = collect(session, services, repository, None, False, now)
            session.commit()
        except SourceError as exc:
            session.rollback()
            repository = session.get_one(Repository, repository.id)
            repository.last_error = plain(str(exc), ERROR_CHARS)
            repository.last_error_kind = failure_kind(exc)
            repository.collecting_since = None
            session.commit()
            failed[name] = repository.last_error_kind
            log.error("ingest %s failed: %s", name, exc)
            continue
        fetched.append((repository, collected))
        pending += pending_analyses(session, collected.commits, languages_for(session, name), services.analyzer.model)
    requests = analyze_pending(session, services, pending)
    for repository, collected in fetched:
        # The watermark moves only once the commits are stored and analysed: an ingestion that dies
        # before is redone from the same place, and finds the commits it stored.
        if collected.new_watermark:
            repository.watermark_sha = collected.new_watermark
        repository.last_error = repository.last_error_kind = None
        repository.collecting_since = None  # stored and analysed: windows may take its commits now
    row.finished_at = utcnow()
    row.repositories = len(watched)
    row.new_commits = sum(c.new_commits for _, c in fetched)
    row.failed = len(failed)
    session.commit()
    summary = {"due_at": aware(row.due_at).isoformat(),
               "repositories": len(watched), "new_commits": row.new_commits, "analyzed": len(pending),
               "llm_requests": sum(requests.values()),
               "github_requests": sum(c.github_requests for _, c in fetched), "failed": failed}
    log.info("ingestion at %s: %s", now.isoformat(), summary)
    return summary
