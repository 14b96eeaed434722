"""The daily run: fetch each watched repository's new commits, analyze each once, assemble its report.

Every step of a run lives here; the RQ jobs, the CLI, the demo and the benchmarks call them.

1. `open_run`: the run guard (one DailyRun row per report date: a second trigger does nothing) and
   a pending RepoRun for every repository some active subscriber watches.
2. Per repository, three steps: `collect` (commit lists, and the details of commits not seen
   before), `analyze` (every (commit, language) without a cached analysis), `assemble` (one report
   per language). `run_repository` does all three for one repository: the RQ job's work.
3. `close_run`: repositories still pending failed with the run; returns the summary.

`run_sync` runs the same steps in the foreground, collecting every repository first and then
analyzing all pending commits in one pool, so the LLM concurrency applies to the whole run.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..analysis.analyzer import Analyzer, make_analyzer
from ..analysis.facts import commit_facts
from ..analysis.result import AnalysisSet
from ..errors import SourceError, ValidationError, failure_kind
from ..models import (
    CommitAnalysis,
    DailyRun,
    FetchedCommit,
    Report,
    ReportStatus,
    RepoRun,
    RepoRunStatus,
    Repository,
    RunStatus,
    aware,
    utcnow,
)
from ..sources.commit import CommitRecord, FileChange, MergedCommits
from ..sources.protocol import CommitSource
from ..sources.router import SourceRouter
from ..subscribers.subscriptions import languages_for, watched_repositories
from ..text import plain, storable, storable_json
from . import days
from .markdown import render_markdown
from .model import DailyReport, build_report
from .store import cached_analyses as _cached

log = logging.getLogger(__name__)

# Patches are kept for re-analysis (--retry-fallbacks) but bounded: a prompt never holds more.
STORED_PATCH_CHARS = 120_000
ERROR_CHARS = 2000
DEFAULT_LEASE = timedelta(minutes=40)
LEASE_MARGIN = timedelta(minutes=10)


# What a run needs from outside -------------------------------------------------------------------

@dataclass
class Services:
    """FetchedCommit sources and the analyzer, built from the config."""

    config: Mapping[str, Any]
    analyzer: Analyzer
    sources: SourceRouter

    @property
    def timezone(self) -> str:
        return str(self.config["DIGEST_TIMEZONE"])

    def close(self) -> None:
        self.sources.close()
        self.analyzer.close()


def make_services(config: Mapping[str, Any], **analyzer_overrides: Any) -> Services:
    """Sources and analyzer for config (OPENAI_* unset: the heuristic analyzer)."""
    return Services(config=config, analyzer=make_analyzer(config, **analyzer_overrides),
                    sources=SourceRouter(config))


# 1. Open a run --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OpenedRun:
    """A run ready for work: its id, date, whether it is a backfill, the RepoRun ids still to do, and
    whether it resumes a failed or stale attempt (whose finished repositories are kept)."""

    run_id: int
    date: date
    backfill: bool
    repo_run_ids: tuple[int, ...]
    resumed: bool = False


def resolve_day(day: date | None, timezone: str, now: datetime | None = None) -> tuple[date, bool]:
    """The report date and whether it is a backfill (a day before the default one)."""
    default = days.default_report_date(timezone, now)
    if day is None:
        return default, False
    if day > default:
        raise ValidationError("date_not_over", day=day.isoformat(), last=default.isoformat())
    return day, day < default


def run_lease(config: Mapping[str, Any]) -> timedelta:
    """How long a running run may go without a heartbeat before it counts as stale: one repository
    job's time limit (RQ stops the job by then) and a margin."""
    return timedelta(seconds=int(config.get("JOB_TIMEOUT") or 1800)) + LEASE_MARGIN


def is_stale(run: DailyRun, lease: timedelta, now: datetime | None = None) -> bool:
    """A running run whose last sign of life is older than the lease: its worker is gone."""
    last = run.heartbeat_at or run.started_at
    return run.status is RunStatus.RUNNING and (now or utcnow()) - aware(last) > lease


def open_run(session: Session, day: date | None, trigger: str, timezone: str, now: datetime | None = None,
             lease: timedelta = DEFAULT_LEASE) -> OpenedRun | None:
    """The day's run, committed and ready for work; None when it is done or running within its lease.

    A new day gets a run and a pending RepoRun per watched repository. A failed or stale run is
    resumed: repositories that have their report keep it, the others (and repositories watched
    since) are pending again.
    """
    day, backfill = resolve_day(day, timezone, now)
    run = session.scalar(select(DailyRun).where(DailyRun.date == day))
    resumed = run is not None
    if run is None:
        run = DailyRun(date=day, trigger=trigger, backfill=backfill, status=RunStatus.RUNNING, heartbeat_at=utcnow())
        try:
            with session.begin_nested():
                session.add(run)
        except IntegrityError:  # another trigger created it a moment ago
            session.rollback()
            return None
    elif run.status is RunStatus.DONE or (run.status is RunStatus.RUNNING and not is_stale(run, lease)):
        session.rollback()
        return None
    else:
        log.warning("resuming the %s run of %s (attempt %d; last error: %s)",
                    "stale" if run.status is RunStatus.RUNNING else "failed", day, run.attempts + 1, run.error)
        run.status, run.error, run.heartbeat_at, run.finished_at = RunStatus.RUNNING, None, utcnow(), None
        run.attempts += 1
    existing = {r.repository_id: r for r in session.scalars(select(RepoRun).where(RepoRun.run_id == run.id))}
    todo = []
    for name in sorted(watched_repositories(session)):
        repository = session.scalar(select(Repository).where(Repository.name == name))
        if repository is None:
            repository = Repository(name=name)
            session.add(repository)
            session.flush()
        repo_run = existing.pop(repository.id, None)
        if repo_run is None:
            repo_run = RepoRun(run_id=run.id, repository_id=repository.id, status=RepoRunStatus.PENDING)
            session.add(repo_run)
        if repo_run.status is RepoRunStatus.PENDING:
            todo.append(repo_run)
    # A repository nobody watches any more but that was part of the run is still owed its report.
    todo += [r for r in existing.values() if r.status is RepoRunStatus.PENDING]
    session.flush()
    session.commit()
    return OpenedRun(run.id, day, backfill, tuple(r.id for r in todo), resumed)


def fail_run(session: Session, run_id: int, error: str) -> None:
    """Record that the run stopped before it was done (committed, in a fresh transaction): resumable."""
    session.rollback()
    run = session.get_one(DailyRun, run_id)
    if run.status is not RunStatus.DONE:
        run.status, run.error = RunStatus.FAILED, plain(error, ERROR_CHARS)
        session.commit()
        log.error("the run of %s failed: %s", run.date, error)


def heartbeat(session: Session, run_id: int) -> None:
    """Show the run is alive (part of the caller's transaction)."""
    session.execute(update(DailyRun).where(DailyRun.id == run_id).values(heartbeat_at=utcnow()))


def unfinished_days(session: Session, since: date, lease: timedelta) -> list[date]:
    """Days from since on whose run failed or went stale: the scheduler resumes them."""
    runs = session.scalars(select(DailyRun).where(DailyRun.date >= since, DailyRun.status != RunStatus.DONE)
                           .order_by(DailyRun.date))
    return [r.date for r in runs if r.status is RunStatus.FAILED or is_stale(r, lease)]


# 2a. Collect ---------------------------------------------------------------------------------------

@dataclass
class Collected:
    """One repository's commits for the day, and what fetching them cost."""

    repository_id: int
    commits: list[FetchedCommit] = field(default_factory=list)
    head_sha: str | None = None
    new_watermark: str | None = None
    github_requests: int = 0
    new_commits: int = 0


def _capped(record: CommitRecord) -> dict[str, Any]:
    """The record as JSON with patches bounded in total, for storage."""
    budget = STORED_PATCH_CHARS
    files = []
    for change in record.files:
        patch = change.patch
        if patch is not None:
            if len(patch) > budget:
                patch = None
            else:
                budget -= len(patch)
        files.append(FileChange(change.filename, change.status, change.additions, change.deletions, patch))
    data = record.to_dict()
    data["files"] = [f.__dict__ for f in files]
    # Commit text is outside text: NUL and lone surrogates would be refused by the database.
    return storable_json(data)  # type: ignore[return-value]


def collect(session: Session, services: Services, repository: Repository, day: date | None, backfill: bool,
            now: datetime | None = None) -> Collected:
    """Fetch the commits new since the watermark (or of the day's window) and store those not seen before.

    New commits are stamped first seen at `now` (default: the current time). With a day (the daily
    run), the commits fetched and those first seen before the day ended that no report holds yet
    belong to that day's report. Without one (the hourly ingestion) they wait for the report of the
    day they were first seen on; a repository fetched for the first time then takes the last 24 hours.
    """
    now = (now or utcnow()).astimezone(UTC)  # stored and compared in UTC (SQLite keeps no zone)
    # Committed before anything is stamped: a window planned while the commits below are not stored
    # and analysed yet ends before `now` (window.cutoff), so they go to readers' next emails, with
    # their analyses, not to none. The caller clears it in the commit that stores the analyses
    # (_finish_repository, ingest) or in its failure path (stop_collecting).
    repository.collecting_since = now
    session.commit()
    source = services.sources.source_for(repository.name)
    before = source.requests
    info = source.resolve(repository.name)
    repository.default_branch = info.default_branch
    # Private on GitHub, or local and not made public: no public archive, and only granted subscribers.
    repository.private = info.private
    shas: list[str] | None = None
    if not backfill and repository.watermark_sha and info.head_sha:
        shas = source.new_commit_shas(repository.name, info.head_sha, repository.watermark_sha)
        if shas is None:
            log.warning("%s: watermark %s is gone (force-push?); taking the day's commits",
                        repository.name, repository.watermark_sha[:12])
    if shas is None:
        start, end = days.day_bounds(day, services.timezone) if day is not None else (now - timedelta(days=1), now)
        shas = source.day_commit_shas(repository.name, info.default_branch, start, end) if info.head_sha else []
    collected = Collected(repository_id=repository.id, head_sha=info.head_sha)
    known = {c.sha: c for c in session.scalars(
        select(FetchedCommit).where(FetchedCommit.repository_id == repository.id, FetchedCommit.sha.in_(shas)))} if shas else {}
    for sha in shas:
        row = known.get(sha)
        if row is None:
            record = source.commit(repository.name, sha)
            # Facts come from the whole patch, before storage caps it; analyses read them from the record.
            record = replace(record, facts=commit_facts(record).to_dict())
            if len(record.parents) == 2:
                record = replace(record, merged=_merged_commits(source, repository.name, record,
                                                                _report_day_start(services, day, now)))
            row = FetchedCommit(repository_id=repository.id, sha=sha, committed_at=record.committed_at,
                                record=_capped(record), first_seen_at=now)
            session.add(row)
            collected.new_commits += 1
        if day is None:
            if row.report_date is None:
                collected.commits.append(row)
            continue
        if row.report_date is None:
            row.report_date = day
        if row.report_date == day:  # a commit already in another day's report stays there
            collected.commits.append(row)
    if day is not None and not backfill:
        # Commits the hourly ingestion saw during the day belong to it too.
        end = days.day_bounds(day, services.timezone)[1].astimezone(UTC)
        fetched = {c.sha for c in collected.commits}
        for row in session.scalars(select(FetchedCommit).where(
                FetchedCommit.repository_id == repository.id, FetchedCommit.report_date.is_(None),
                FetchedCommit.first_seen_at < end).order_by(FetchedCommit.committed_at)):
            if row.sha not in fetched:
                row.report_date = day
                collected.commits.append(row)
    session.flush()
    if not backfill:
        if repository.watermark_sha is None and shas and day is not None:
            # First run: the day's newest commit, so commits pushed after the day are in the next report.
            collected.new_watermark = shas[-1]
        else:
            collected.new_watermark = info.head_sha
    collected.github_requests = source.requests - before
    return collected


def _report_day_start(services: Services, day: date | None, now: datetime) -> datetime:
    """When the day of the report a commit collected now goes to began: day's, or (the hourly ingestion)
    that of the day now is in, the day whose report takes the commits first seen now."""
    if day is None:
        day = now.astimezone(ZoneInfo(services.timezone)).date()
    return days.day_bounds(day, services.timezone)[0]


def _merged_commits(source: CommitSource, repo: str, record: CommitRecord, day_start: datetime) -> MergedCommits | None:
    """What a merge brings (its commits, and how many are of days before its report's), or None when the
    source cannot say: a failure here costs the report one line, never the commit or the day.

    Octopus merges (more than two parents) are not asked: a count over the second parent alone would
    understate them.
    """
    try:
        return source.merged_commits(repo, record.parents[0], record.parents[1], day_start)
    except SourceError as exc:
        log.warning("%s: could not count what merge %s brings: %s", repo, record.sha[:12], exc)
    except Exception:
        log.exception("%s: could not count what merge %s brings", repo, record.sha[:12])
    return None


TYPICAL_SAMPLE = 200
TYPICAL_MINIMUM = 5


# 2b. Analyse ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pending:
    """A commit whose analysis lacks some languages (all of them when it has none yet)."""

    commit: FetchedCommit
    languages: tuple[str, ...]
    row: CommitAnalysis | None  # the analysis it has, whose verdict the new texts keep


def pending_analyses(session: Session, commits: list[FetchedCommit], languages: Iterable[str],
                     model: str) -> list[Pending]:
    """Commits whose analysis is missing or lacks a language; merge commits are shown, not analyzed."""
    wanted = tuple(sorted(set(languages)))
    cache = _cached(session, [c.id for c in commits], model)
    pending = []
    for commit in commits:
        if len(commit.record.get("parents") or ()) > 1:
            continue
        row = cache.get(commit.id)
        have = set((row.analysis.get("texts") or {}) if row is not None else ())
        missing = tuple(language for language in wanted if language not in have)
        if missing:
            pending.append(Pending(commit, missing, row))
    return pending


def typical_lines(session: Session, repository_id: int) -> int | None:
    """Changed lines of the repository's typical commit: the median over its latest TYPICAL_SAMPLE stored
    non-merge commits (None with fewer than TYPICAL_MINIMUM), what "large" means for this repository."""
    record = FetchedCommit.record
    # Only three values of each stored record, not its patches.
    rows = session.execute(select(record["additions"].as_integer(), record["deletions"].as_integer(), record["parents"])
                           .where(FetchedCommit.repository_id == repository_id)
                           .order_by(FetchedCommit.committed_at.desc()).limit(TYPICAL_SAMPLE)).all()
    sizes = sorted((additions or 0) + (deletions or 0) for additions, deletions, parents in rows
                   if len(parents or ()) <= 1)
    if len(sizes) < TYPICAL_MINIMUM:
        return None
    return max(sizes[len(sizes) // 2], 1)


def analyze_pending(session: Session, services: Services, pending: list[Pending]) -> dict[int, int]:
    """Analyze and store every pending commit (one request each, whatever the languages); returns the
    LLM HTTP requests made, per repository id."""
    if not pending:
        return {}
    analyzer = services.analyzer
    known = [AnalysisSet.from_dict(p.row.analysis) if p.row is not None else None for p in pending]
    typical = {rid: typical_lines(session, rid) for rid in {p.commit.repository_id for p in pending}}
    records = [replace(CommitRecord.from_dict(p.commit.record), typical_lines=typical[p.commit.repository_id])
               for p in pending]
    results = analyzer.analyze_many([(record, p.languages, k) for record, p, k in zip(records, pending, known, strict=True)])
    requests: dict[int, int] = {}
    for item, before, result in zip(pending, known, results, strict=True):
        _store_analysis(session, item.commit, analyzer.model, result, existing=item.row)
        made = result.requests - (before.requests if before is not None else 0)
        requests[item.commit.repository_id] = requests.get(item.commit.repository_id, 0) + made
    session.flush()
    return requests


def _store_analysis(session: Session, commit: FetchedCommit, model: str, analysis: AnalysisSet,
                    existing: CommitAnalysis | None = None) -> CommitAnalysis:
    row = existing or CommitAnalysis(commit_id=commit.id, model=model, prompt_version=analysis.prompt_version)
    row.analysis = storable_json(analysis.to_dict())  # type: ignore[assignment]
    row.fallback = analysis.fallback
    row.prompt_tokens = analysis.prompt_tokens
    row.completion_tokens = analysis.completion_tokens
    row.updated_at = utcnow()
    if existing is None:
        session.add(row)
    return row


# 2c. Assemble --------------------------------------------------------------------------------------

def assemble(session: Session, services: Services, repository: Repository, day: date, languages: Iterable[str],
             commits: list[FetchedCommit] | None = None, error: str | None = None,
             error_kind: str | None = None) -> list[Report]:
    """Build and store the report of repository for day in each language."""
    if commits is None:
        commits = list(session.scalars(select(FetchedCommit).where(
            FetchedCommit.repository_id == repository.id, FetchedCommit.report_date == day)))
    model = services.analyzer.model
    cache = _cached(session, [c.id for c in commits], model)
    stored = []
    sets = {commit_id: AnalysisSet.from_dict(row.analysis) for commit_id, row in cache.items()}
    for language in languages:
        pairs = []
        for commit in commits:
            found = sets.get(commit.id)
            analysis = found.language(language) if found is not None and language in found.texts else None
            pairs.append((CommitRecord.from_dict(commit.record), analysis))
        report = build_report(repository.name, day, language, pairs, timezone=services.timezone, analyzer=model,
                              status="failed" if error else "ok", error=error,
                              error_kind=(error_kind or "other") if error else None)
        stored.append(_store_report(session, repository, report))
    session.flush()
    return stored


def _store_report(session: Session, repository: Repository, report: DailyReport) -> Report:
    row = session.scalar(select(Report).where(Report.repository_id == repository.id, Report.date == report.date,
                                              Report.language == report.language))
    if row is None:
        row = Report(repository_id=repository.id, date=report.date, language=report.language)
        session.add(row)
    counts = report.counts()
    row.status = ReportStatus.FAILED if report.failed else ReportStatus.OK
    row.analyzer = report.analyzer
    row.data = storable_json(report.to_json())  # type: ignore[assignment]
    row.markdown = storable(render_markdown(report))
    row.total, row.high, row.medium, row.low = counts["total"], counts["high"], counts["medium"], counts["low"]
    row.merges, row.unanalyzed = counts["merge"], counts["unanalyzed"]
    row.prompt_tokens = report.prompt_tokens()
    row.completion_tokens = report.completion_tokens()
    row.updated_at = utcnow()
    return row


# One repository, start to end (the RQ job's work) -------------------------------------------------

def run_repository(session: Session, services: Services, repo_run_id: int) -> RepoRun:
    """Collect, analyze and assemble one repository of a run; a failure marks it failed, not the run."""
    repo_run = session.get_one(RepoRun, repo_run_id)
    run = session.get_one(DailyRun, repo_run.run_id)
    repository = repo_run.repository
    languages = languages_for(session, repository.name)
    try:
        collected = collect(session, services, repository, run.date, run.backfill)
        pending = pending_analyses(session, collected.commits, languages, services.analyzer.model)
        repo_run.llm_calls = sum(analyze_pending(session, services, pending).values())
        assemble(session, services, repository, run.date, languages, collected.commits)
        _finish_repository(repository, repo_run, run.date, collected)
    except SourceError as exc:
        session.rollback()
        _fail_repository(session, services, repo_run_id, str(exc), failure_kind(exc))
        repo_run = session.get_one(RepoRun, repo_run_id)
    except Exception as exc:
        # Not the repository's fault (the database, a bug): it stays pending, so the run cannot be
        # done and a rerun builds its report.
        session.rollback()
        _record_crash(session, repo_run_id, exc)
        raise
    heartbeat(session, repo_run.run_id)
    session.commit()
    return repo_run


def stop_collecting(session: Session, repository_id: int) -> None:
    """A fetch that failed stored nothing: windows need not end before it any more (in the caller's
    transaction)."""
    session.execute(update(Repository).where(Repository.id == repository_id).values(collecting_since=None)
                    .execution_options(synchronize_session=False))


def _record_crash(session: Session, repo_run_id: int, exc: BaseException) -> None:
    try:
        repo_run = session.get_one(RepoRun, repo_run_id)
        stop_collecting(session, repo_run.repository_id)
        repo_run.error = plain(f"{type(exc).__name__}: {exc}", ERROR_CHARS)
        session.commit()
    except Exception:  # the database may be what failed; the run's lease covers that case
        session.rollback()
        log.exception("could not record the crash of repository run %s", repo_run_id)


def _finish_repository(repository: Repository, repo_run: RepoRun, day: date, collected: Collected) -> None:
    if collected.new_watermark:
        repository.watermark_sha = collected.new_watermark
        repository.watermark_date = day
    repository.last_error = repository.last_error_kind = None
    repository.collecting_since = None  # stored and analysed: windows may take its commits now
    repo_run.status = RepoRunStatus.OK
    repo_run.new_commits = collected.new_commits
    repo_run.github_requests = collected.github_requests
    repo_run.finished_at = utcnow()


def _fail_repository(session: Session, services: Services, repo_run_id: int, error: str, kind: str) -> None:
    repo_run = session.get_one(RepoRun, repo_run_id)
    run = session.get_one(DailyRun, repo_run.run_id)
    repository = repo_run.repository
    log.error("%s failed for %s: %s", repository.name, run.date, error)
    repository.last_error, repository.last_error_kind = error[:ERROR_CHARS], kind
    repository.collecting_since = None
    repo_run.status = RepoRunStatus.FAILED
    repo_run.error = error[:ERROR_CHARS]
    repo_run.finished_at = utcnow()
    assemble(session, services, repository, run.date, languages_for(session, repository.name), error=error[:500],
             error_kind=kind)


# 3. Close the run -----------------------------------------------------------------------------------

def close_run(session: Session, run_id: int) -> dict[str, Any]:
    """Mark the run done when every repository has its report, else failed (resumable); its summary."""
    run = session.get_one(DailyRun, run_id)
    unfinished = list(session.scalars(select(RepoRun).where(RepoRun.run_id == run_id,
                                                           RepoRun.status == RepoRunStatus.PENDING)))
    if unfinished:
        names = ", ".join(r.repository.name for r in unfinished[:5])
        run.status = RunStatus.FAILED
        run.error = plain(f"{len(unfinished)} repositories have no report yet ({names}): "
                          f"{unfinished[0].error or 'their job did not finish'}", ERROR_CHARS)
        log.error("the run of %s failed: %s", run.date, run.error)
    else:
        run.status = RunStatus.DONE
        run.finished_at = utcnow()
    session.commit()
    return run_summary(session, run)


def run_summary(session: Session, run: DailyRun) -> dict[str, Any]:
    """Counts of a run: repositories ok and failed (with errors), new commits, requests, LLM calls."""
    repo_runs = list(session.scalars(select(RepoRun).where(RepoRun.run_id == run.id)))
    return {
        "date": run.date.isoformat(),
        "status": run.status.value,
        "backfill": run.backfill,
        "repositories": len(repo_runs),
        "ok": sum(r.status is RepoRunStatus.OK for r in repo_runs),
        "failed": {r.repository.name: r.error for r in repo_runs if r.status is RepoRunStatus.FAILED},
        "unfinished": [r.repository.name for r in repo_runs if r.status is RepoRunStatus.PENDING],
        "error": run.error,
        "new_commits": sum(r.new_commits for r in repo_runs),
        "github_requests": sum(r.github_requests for r in repo_runs),
        "llm_calls": sum(r.llm_calls for r in repo_runs),
    }


# A whole run in the foreground ----------------------------------------------------------------------

def run_sync(session: Session, services: Services, day: date | None = None, trigger: str = "manual",
             progress: Callable[[str, int, int], None] | None = None,
             now: datetime | None = None) -> dict[str, Any] | None:
    """Run day (default: yesterday) to the end in this process, resuming it if it failed; None when
    there is nothing to do (done, or running elsewhere within its lease).

    progress(message, done, total) is called after each step. Any failure that is not one
    repository's (the database, a bug) marks the run failed before it is raised, so a rerun resumes.
    """
    opened = open_run(session, day, trigger, services.timezone, now, run_lease(services.config))
    if opened is None:
        return None
    try:
        _run_repositories(session, services, opened, progress, now)
    except Exception as exc:
        try:
            fail_run(session, opened.run_id, f"{type(exc).__name__}: {exc}")
        except Exception:  # the database may be what failed; the run's lease covers that case
            log.exception("could not mark the run of %s failed", opened.date)
        raise
    return close_run(session, opened.run_id)


def _run_repositories(session: Session, services: Services, opened: OpenedRun,
                      progress: Callable[[str, int, int], None] | None, now: datetime | None = None) -> None:
    repo_runs = [session.get_one(RepoRun, i) for i in opened.repo_run_ids]
    total, done = 2 * len(repo_runs) + 1, 0

    def step(message: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(message, done, total)

    collected: dict[int, Collected] = {}
    languages: dict[int, list[str]] = {}
    pending: list[Pending] = []
    for repo_run in repo_runs:
        repository = repo_run.repository
        languages[repo_run.id] = languages_for(session, repository.name)
        try:
            collected[repo_run.id] = result = collect(session, services, repository, opened.date, opened.backfill,
                                                      now)
            heartbeat(session, opened.run_id)
            session.commit()
            pending += pending_analyses(session, result.commits, languages[repo_run.id], services.analyzer.model)
        except SourceError as exc:
            session.rollback()
            _fail_repository(session, services, repo_run.id, str(exc), failure_kind(exc))
            session.commit()
        step(f"fetched {repository.name}")
    requests = analyze_pending(session, services, pending)
    heartbeat(session, opened.run_id)
    session.commit()
    step(f"analyzed {len(pending)} commits with {sum(requests.values())} LLM requests")
    for repo_run in repo_runs:
        if repo_run.id not in collected:
            continue
        repository = repo_run.repository
        assemble(session, services, repository, opened.date, languages[repo_run.id], collected[repo_run.id].commits)
        _finish_repository(repository, repo_run, opened.date, collected[repo_run.id])
        repo_run.llm_calls = requests.get(repository.id, 0)
        heartbeat(session, opened.run_id)
        session.commit()
        step(f"reported {repository.name}")


def retry_fallbacks(session: Session, services: Services, day: date) -> dict[str, Any]:
    """Ask the model again for day's flagged fallback analyses and rebuild those reports."""
    model = services.analyzer.model
    rows = list(session.execute(
        select(CommitAnalysis, FetchedCommit).join(FetchedCommit, FetchedCommit.id == CommitAnalysis.commit_id)
        .where(FetchedCommit.report_date == day, CommitAnalysis.fallback.is_(True), CommitAnalysis.model == model)))
    if not rows:
        return {"date": day.isoformat(), "retried": 0, "still_fallback": 0}
    items = [(CommitRecord.from_dict(c.record), tuple(sorted(a.analysis.get("texts") or {})) or ("en",), None)
             for a, c in rows]
    analyses = services.analyzer.analyze_many(items)
    for (row, commit), analysis in zip(rows, analyses, strict=True):
        row.prompt_version = analysis.prompt_version
        _store_analysis(session, commit, model, analysis, existing=row)
    session.flush()
    for repository_id in sorted({commit.repository_id for _, commit in rows}):
        repository = session.get_one(Repository, repository_id)
        assemble(session, services, repository, day, languages_for(session, repository.name))
    session.commit()
    return {"date": day.isoformat(), "retried": len(rows), "still_fallback": sum(a.fallback for a in analyses)}
