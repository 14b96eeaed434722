"""A reader's email window as reports: each repository's commits first seen in (start, end].

The email renderer reads reports by (repository, language); WindowReports builds each one the
first time it is asked for, from the stored commits and their analyses, so a renderer shared by
every reader of the same window queries each repository once, whatever the number of readers.
"""
from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..analysis.result import AnalysisSet
from ..models import FetchedCommit, Repository, aware
from ..sources.commit import CommitRecord
from .model import DailyReport, build_report
from .store import cached_analyses as _cached


def cutoff(session: Session, now: datetime.datetime, fetch_timeout: datetime.timedelta) -> datetime.datetime:
    """Where a window planned at now ends: now, or just before the earliest fetch still in progress.

    A fetch stamps its new commits first seen at the instant it started (Repository.collecting_since)
    and stores them when it is done; ending the window before that instant sends them in the next
    email instead of losing them to a window already cut. A mark older than fetch_timeout is left
    by a process that died (its commits were never stored) and is ignored.
    """
    now = now.astimezone(UTC)
    since = session.scalar(select(func.min(Repository.collecting_since)).where(
        Repository.collecting_since > now - fetch_timeout, Repository.collecting_since <= now))
    if since is None:
        return now
    return min(now, aware(since) - datetime.timedelta(microseconds=1))


@dataclass(frozen=True)
class _Commit:
    id: int
    record: CommitRecord
    report_date: datetime.date | None
    analysis: AnalysisSet | None


@dataclass(frozen=True)
class _Commits:
    """A repository's commits of the window, as plain values (kept across jobs and sessions)."""

    known: bool  # fetched at least once (or tried): False means no report, "not fetched yet"
    failure: str | None  # the kind of its latest fetch's failure
    commits: list[_Commit]


class WindowReports(Mapping[tuple[str, str], DailyReport]):
    """Reports of the commits first seen in (start, end], built on demand per (repository, language).

    A repository never fetched has no report (the email says so); one whose latest fetch failed and
    that has nothing in the window gets a failed report carrying the kind of failure only.
    """

    def __init__(self, session: Session, start: datetime.datetime, end: datetime.datetime, model: str,
                 day: datetime.date, timezone: str):
        self.session = session  # replaced by the caller's for each job: nothing here holds ORM objects
        self.start, self.end = start.astimezone(UTC), end.astimezone(UTC)
        self.model = model
        self.day = day
        self.timezone = timezone
        self._built: dict[tuple[str, str], DailyReport | None] = {}
        self._sets: dict[str, _Commits] = {}

    def _commits(self, repo: str) -> _Commits:
        found = self._sets.get(repo)
        if found is None:
            repository = self.session.scalar(select(Repository).where(Repository.name == repo))
            rows: list[FetchedCommit] = []
            if repository is not None:
                rows = list(self.session.scalars(select(FetchedCommit).where(
                    FetchedCommit.repository_id == repository.id, FetchedCommit.first_seen_at > self.start,
                    FetchedCommit.first_seen_at <= self.end).order_by(FetchedCommit.committed_at, FetchedCommit.id)))
            cache = _cached(self.session, [c.id for c in rows], self.model)
            found = self._sets[repo] = _Commits(
                known=repository is not None and (repository.watermark_sha is not None or bool(rows)
                                                  or bool(repository.last_error)),
                failure=(repository.last_error_kind or "other") if repository is not None and repository.last_error
                else None,
                commits=[_Commit(c.id, CommitRecord.from_dict(c.record), c.report_date,
                                 AnalysisSet.from_dict(cache[c.id].analysis) if c.id in cache else None)
                         for c in rows])
        return found

    def _build(self, repo: str, language: str) -> DailyReport | None:
        found = self._commits(repo)
        if not found.known:
            return None  # never fetched yet
        pairs = [(c.record, c.analysis.language(language) if c.analysis is not None and language in c.analysis.texts
                  else None) for c in found.commits]
        failed = found.failure is not None and not pairs
        return build_report(repo, self.day, language, pairs, timezone=self.timezone, analyzer=self.model,
                            status="failed" if failed else "ok", error_kind=found.failure if failed else None)

    def get_report(self, key: tuple[str, str]) -> DailyReport | None:
        if key not in self._built:
            self._built[key] = self._build(*key)
        return self._built[key]

    def __getitem__(self, key: tuple[str, str]) -> DailyReport:
        report = self.get_report(key)
        if report is None:
            raise KeyError(key)
        return report

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and self.get_report(key) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter([key for key, report in self._built.items() if report is not None])

    def __len__(self) -> int:
        return sum(1 for report in self._built.values() if report is not None)

    def report_days(self, repo: str) -> list[datetime.date]:
        """The days of the daily reports that hold the window's commits of repo, oldest first; a
        commit whose day is not built yet has none (unreported counts those)."""
        return sorted({c.report_date for c in self._commits(repo).commits if c.report_date is not None})

    def unreported(self, repo: str) -> int:
        """How many of the window's commits of repo belong to no built daily report yet."""
        return sum(1 for c in self._commits(repo).commits if c.report_date is None)
