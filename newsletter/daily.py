"""The daily run: fetch each watched repository's new commits, analyse each once, assemble its report.

A run is per report date and has three steps per repository: collect (fetch commit lists and the
details of commits not seen before), analyse (every (commit, language) without a cached analysis),
assemble (one report per language). RQ jobs do all three for one repository each; a --sync run
collects every repository first and then analyses all pending commits in one pool, so the LLM
concurrency applies to the whole run.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import schedule
from .analysis import PROMPT_VERSION, Analysis
from .analysis.bots import DEFAULT_BOT_LOGINS
from .analysis.llm import make_analyzer
from .commits import CommitRecord, FileChange
from .errors import SourceError, ValidationError
from .models import (
    Commit,
    CommitAnalysis,
    DailyRun,
    Report,
    ReportStatus,
    RepoRun,
    RepoRunStatus,
    Repository,
    RunStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    utcnow,
)
from .report_render import ReportData, ReportEntry, render_json, render_markdown

log = logging.getLogger(__name__)

# Patches are kept for re-analysis (--retry-fallbacks) but bounded: a prompt never holds more.
STORED_PATCH_CHARS = 120_000


# Services ---------------------------------------------------------------------------------------

def is_local_repository(name: str) -> bool:
    """A path (a local git repository) rather than GitHub's owner/name."""
    return name.startswith(("/", "./", "../", "~"))


@dataclass
class Services:
    """What a run needs from outside: commit sources and the analyzer, built from the config."""

    config: dict
    analyzer: object
    _github: object | None = None

    @property
    def timezone(self) -> str:
        return self.config["DIGEST_TIMEZONE"]

    def source_for(self, name: str):
        from .config import local_repositories
        from .sources import GitHubSource, GitSource

        local = local_repositories(self.config)
        if name in local:
            return GitSource(local[name], name=name)
        if is_local_repository(name):
            return GitSource(name)
        if self._github is None:
            self._github = GitHubSource(self.config["GITHUB_API_URL"], self.config.get("GITHUB_TOKEN"))
        return self._github

    def close(self) -> None:
        if self._github is not None:
            self._github.close()
        self.analyzer.close()


def bot_logins(config: dict) -> frozenset[str]:
    configured = {s.strip().lower() for s in (config.get("BOT_LOGINS") or "").split(",") if s.strip()}
    return frozenset(configured) | DEFAULT_BOT_LOGINS


def make_services(config: dict, **analyzer_overrides) -> Services:
    """Sources and analyzer for config (OPENAI_* unset: the heuristic analyzer)."""
    options = dict(timeout=config["LLM_TIMEOUT"], max_retries=config["LLM_MAX_RETRIES"],
                   concurrency=config["LLM_CONCURRENCY"], diff_token_budget=config["DIFF_TOKEN_BUDGET"],
                   bot_logins=bot_logins(config))
    options.update(analyzer_overrides)
    if not config.get("OPENAI_API_KEY") and not config.get("OPENAI_BASE_URL"):
        options = {"bot_logins": options["bot_logins"]}
    analyzer = make_analyzer(config.get("OPENAI_API_KEY"), config.get("OPENAI_BASE_URL"),
                             config.get("OPENAI_MODEL"), **options)
    return Services(config=config, analyzer=analyzer)


# Who reads what ---------------------------------------------------------------------------------

def watched_repositories(session: Session) -> dict[str, set[str]]:
    """Each repository some active subscriber watches, with the languages they read."""
    rows = session.execute(
        select(Subscription.repo, Subscriber.language)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscriber.status == SubscriberStatus.CONFIRMED, Subscriber.paused.is_(False))
    )
    watched: dict[str, set[str]] = {}
    for repo, language in rows:
        watched.setdefault(repo, set()).add(language)
    return watched


def languages_for(session: Session, repository: Repository) -> list[str]:
    """The languages active subscribers of repository read (English when nobody does any more)."""
    languages = set(session.scalars(
        select(Subscriber.language).distinct()
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.repo == repository.name, Subscriber.status == SubscriberStatus.CONFIRMED,
               Subscriber.paused.is_(False))))
    return sorted(languages) or ["en"]


# The run guard ----------------------------------------------------------------------------------

def resolve_day(day: date | None, timezone: str, now: datetime | None = None) -> tuple[date, bool]:
    """The report date and whether it is a backfill (a day before the default one)."""
    default = schedule.default_report_date(timezone, now)
    if day is None:
        return default, False
    if day > default:
        raise ValidationError("date_not_over", day=day.isoformat(), last=default.isoformat())
    return day, day < default


def start_run(session: Session, day: date, trigger: str, backfill: bool) -> DailyRun | None:
    """Create the run for day, or return None when one exists: a second trigger does nothing."""
    run = DailyRun(date=day, trigger=trigger, backfill=backfill, status=RunStatus.RUNNING)
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    return run


def prepare_repositories(session: Session, run: DailyRun, names: Iterable[str]) -> list[RepoRun]:
    """A Repository row (created on first sight) and a pending RepoRun for each name."""
    repo_runs = []
    for name in sorted(set(names)):
        repository = session.scalar(select(Repository).where(Repository.name == name))
        if repository is None:
            repository = Repository(name=name)
            session.add(repository)
            session.flush()
        repo_run = RepoRun(run_id=run.id, repository_id=repository.id, status=RepoRunStatus.PENDING)
        session.add(repo_run)
        repo_runs.append(repo_run)
    session.flush()
    return repo_runs


# Collect ----------------------------------------------------------------------------------------

@dataclass
class Collected:
    """One repository's commits for the day and the analyses still missing."""

    repository_id: int
    commits: list[Commit] = field(default_factory=list)
    head_sha: str | None = None
    new_watermark: str | None = None
    github_requests: int = 0
    new_commits: int = 0


def _capped(record: CommitRecord) -> dict:
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
    return data


def collect(session: Session, services: Services, repository: Repository, day: date, backfill: bool) -> Collected:
    """Fetch the commits of day (watermark range, or the day's window) and store those not seen before."""
    source = services.source_for(repository.name)
    before = source.requests
    info = source.resolve(repository.name)
    repository.default_branch = info.default_branch
    shas: list[str] | None = None
    if not backfill and repository.watermark_sha and info.head_sha:
        shas = source.new_commit_shas(repository.name, info.head_sha, repository.watermark_sha)
        if shas is None:
            log.warning("%s: watermark %s is gone (force-push?); taking the day's commits",
                        repository.name, repository.watermark_sha[:12])
    if shas is None:
        start, end = schedule.day_bounds(day, services.timezone)
        shas = source.day_commit_shas(repository.name, info.default_branch, start, end) if info.head_sha else []
    collected = Collected(repository_id=repository.id, head_sha=info.head_sha)
    known = {c.sha: c for c in session.scalars(
        select(Commit).where(Commit.repository_id == repository.id, Commit.sha.in_(shas)))} if shas else {}
    for sha in shas:
        row = known.get(sha)
        if row is None:
            record = source.commit(repository.name, sha)
            row = Commit(repository_id=repository.id, sha=sha, committed_at=record.committed_at,
                         record=_capped(record))
            session.add(row)
            collected.new_commits += 1
        if row.report_date is None:
            row.report_date = day
        if row.report_date == day:  # a commit already in another day's report stays there
            collected.commits.append(row)
    session.flush()
    if not backfill:
        if repository.watermark_sha is None and shas:
            # First run: the day's newest commit, so commits pushed after the day are in the next report.
            collected.new_watermark = shas[-1]
        else:
            collected.new_watermark = info.head_sha
    collected.github_requests = source.requests - before
    return collected


# Analyse ----------------------------------------------------------------------------------------

def cached_analyses(session: Session, commit_ids: list[int], model: str) -> dict[tuple[int, str], CommitAnalysis]:
    if not commit_ids:
        return {}
    rows = session.scalars(select(CommitAnalysis).where(
        CommitAnalysis.commit_id.in_(commit_ids), CommitAnalysis.model == model,
        CommitAnalysis.prompt_version == PROMPT_VERSION))
    return {(row.commit_id, row.language): row for row in rows}


def pending_analyses(session: Session, commits: list[Commit], languages: list[str], model: str) -> list[tuple[Commit, str]]:
    """(commit, language) pairs without a cached analysis; merge commits are shown, not analysed."""
    cache = cached_analyses(session, [c.id for c in commits], model)
    return [(commit, language) for commit in commits for language in languages
            if len(commit.record.get("parents") or ()) <= 1 and (commit.id, language) not in cache]


def analyse(session: Session, services: Services, pending: list[tuple[Commit, str]]) -> int:
    """Analyse and store every pending pair; returns the LLM calls made."""
    if not pending:
        return 0
    analyzer = services.analyzer
    calls_before = analyzer.calls
    analyses = analyzer.analyze_many([(CommitRecord.from_dict(c.record), lang) for c, lang in pending])
    for (commit, language), analysis in zip(pending, analyses, strict=True):
        store_analysis(session, commit, language, analyzer.model, analysis)
    session.flush()
    return analyzer.calls - calls_before


def store_analysis(session: Session, commit: Commit, language: str, model: str, analysis: Analysis,
                   existing: CommitAnalysis | None = None) -> CommitAnalysis:
    row = existing or CommitAnalysis(commit_id=commit.id, language=language, model=model,
                                     prompt_version=PROMPT_VERSION)
    row.analysis = analysis.to_dict()
    row.fallback = analysis.fallback
    row.prompt_tokens = analysis.prompt_tokens
    row.completion_tokens = analysis.completion_tokens
    row.updated_at = utcnow()
    if existing is None:
        session.add(row)
    return row


# Assemble ---------------------------------------------------------------------------------------

def assemble(session: Session, services: Services, repository: Repository, day: date, languages: list[str],
             commits: list[Commit] | None = None, error: str | None = None) -> list[Report]:
    """Build and store the report of repository for day in each language."""
    if commits is None:
        commits = list(session.scalars(select(Commit).where(
            Commit.repository_id == repository.id, Commit.report_date == day)))
    model = services.analyzer.model
    cache = cached_analyses(session, [c.id for c in commits], model)
    reports = []
    for language in languages:
        entries = []
        for commit in commits:
            row = cache.get((commit.id, language))
            entries.append(ReportEntry(CommitRecord.from_dict(commit.record),
                                       Analysis.from_dict(row.analysis) if row else None))
        data = ReportData(repo=repository.name, date=day, language=language, entries=tuple(entries),
                          timezone=services.timezone, analyzer=model,
                          status="failed" if error else "ok", error=error)
        reports.append(_store_report(session, repository, data))
    session.flush()
    return reports


def _store_report(session: Session, repository: Repository, data: ReportData) -> Report:
    report = session.scalar(select(Report).where(Report.repository_id == repository.id, Report.date == data.date,
                                                 Report.language == data.language))
    if report is None:
        report = Report(repository_id=repository.id, date=data.date, language=data.language)
        session.add(report)
    counts = data.counts()
    report.status = ReportStatus.FAILED if data.status == "failed" else ReportStatus.OK
    report.analyzer = data.analyzer
    report.data = render_json(data)
    report.markdown = render_markdown(data)
    report.total, report.high, report.medium, report.low = (counts["total"], counts["high"], counts["medium"],
                                                            counts["low"])
    report.prompt_tokens = data.prompt_tokens()
    report.completion_tokens = data.completion_tokens()
    report.updated_at = utcnow()
    return report


# One repository, start to end (the RQ job's work) ----------------------------------------------

def process_repository(session: Session, services: Services, repo_run_id: int) -> RepoRun:
    """Collect, analyse and assemble one repository of a run; a failure marks it failed, not the run."""
    repo_run = session.get(RepoRun, repo_run_id)
    run = session.get(DailyRun, repo_run.run_id)
    repository = repo_run.repository
    languages = languages_for(session, repository)
    try:
        collected = collect(session, services, repository, run.date, run.backfill)
        pending = pending_analyses(session, collected.commits, languages, services.analyzer.model)
        repo_run.llm_calls = analyse(session, services, pending)
        assemble(session, services, repository, run.date, languages, collected.commits)
        _finish_repository(repository, repo_run, collected)
    except SourceError as exc:
        session.rollback()
        _fail_repository(session, services, repo_run_id, str(exc))
        repo_run = session.get(RepoRun, repo_run_id)
    session.commit()
    return repo_run


def _finish_repository(repository: Repository, repo_run: RepoRun, collected: Collected) -> None:
    if collected.new_watermark:
        repository.watermark_sha = collected.new_watermark
        repository.watermark_date = repo_run.run.date
    repository.last_error = None
    repo_run.status = RepoRunStatus.OK
    repo_run.new_commits = collected.new_commits
    repo_run.github_requests = collected.github_requests
    repo_run.finished_at = utcnow()


def _fail_repository(session: Session, services: Services, repo_run_id: int, error: str) -> None:
    repo_run = session.get(RepoRun, repo_run_id)
    run = session.get(DailyRun, repo_run.run_id)
    repository = repo_run.repository
    log.error("%s failed for %s: %s", repository.name, run.date, error)
    repository.last_error = error[:2000]
    repo_run.status = RepoRunStatus.FAILED
    repo_run.error = error[:2000]
    repo_run.finished_at = utcnow()
    assemble(session, services, repository, run.date, languages_for(session, repository), error=error[:500])


def finish_run(session: Session, run_id: int) -> dict:
    """Mark the run finished (repositories still pending failed with it) and return its summary."""
    run = session.get(DailyRun, run_id)
    session.execute(update(RepoRun).where(RepoRun.run_id == run_id, RepoRun.status == RepoRunStatus.PENDING)
                    .values(status=RepoRunStatus.FAILED, error="the repository job did not finish",
                            finished_at=utcnow()))
    run.status = RunStatus.FINISHED
    run.finished_at = utcnow()
    session.commit()
    return run_summary(session, run)


def run_summary(session: Session, run: DailyRun) -> dict:
    repo_runs = list(session.scalars(select(RepoRun).where(RepoRun.run_id == run.id)))
    return {
        "date": run.date.isoformat(),
        "status": run.status.value,
        "backfill": run.backfill,
        "repositories": len(repo_runs),
        "ok": sum(r.status is RepoRunStatus.OK for r in repo_runs),
        "failed": {r.repository.name: r.error for r in repo_runs if r.status is RepoRunStatus.FAILED},
        "new_commits": sum(r.new_commits for r in repo_runs),
        "github_requests": sum(r.github_requests for r in repo_runs),
        "llm_calls": sum(r.llm_calls for r in repo_runs),
    }


# A whole run in the foreground ------------------------------------------------------------------

def run_sync(session: Session, services: Services, day: date | None = None, trigger: str = "manual",
             progress: Callable[[str, int, int], None] | None = None, now: datetime | None = None) -> dict | None:
    """Run day (default: yesterday) to the end in this process; None when it already ran.

    progress(message, done, total) is called after each step.
    """
    day, backfill = resolve_day(day, services.timezone, now)
    run = start_run(session, day, trigger, backfill)
    if run is None:
        session.rollback()
        return None
    watched = watched_repositories(session)
    repo_runs = prepare_repositories(session, run, watched)
    session.commit()
    total, done = 2 * len(repo_runs) + 1, 0

    def step(message: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(message, done, total)

    collected: dict[int, Collected] = {}
    pending: list[tuple[Commit, str]] = []
    for repo_run in repo_runs:
        repository = repo_run.repository
        try:
            collected[repo_run.id] = result = collect(session, services, repository, day, backfill)
            session.commit()
            pending += pending_analyses(session, result.commits, sorted(watched[repository.name]),
                                        services.analyzer.model)
        except SourceError as exc:
            session.rollback()
            _fail_repository(session, services, repo_run.id, str(exc))
            session.commit()
        step(f"fetched {repository.name}")
    calls = analyse(session, services, pending)
    session.commit()
    step(f"analysed {len(pending)} commit-languages with {calls} LLM calls")
    by_repo_calls = {}
    for commit, _language in pending:
        by_repo_calls[commit.repository_id] = by_repo_calls.get(commit.repository_id, 0) + 1
    for repo_run in repo_runs:
        if repo_run.id not in collected:
            continue
        repository = repo_run.repository
        assemble(session, services, repository, day, sorted(watched[repository.name]),
                 collected[repo_run.id].commits)
        _finish_repository(repository, repo_run, collected[repo_run.id])
        repo_run.llm_calls = by_repo_calls.get(repository.id, 0) if calls else 0
        session.commit()
        step(f"reported {repository.name}")
    return finish_run(session, run.id)


def retry_fallbacks(session: Session, services: Services, day: date) -> dict:
    """Ask the model again for day's flagged fallback analyses and rebuild those reports."""
    model = services.analyzer.model
    rows = list(session.execute(
        select(CommitAnalysis, Commit).join(Commit, Commit.id == CommitAnalysis.commit_id)
        .where(Commit.report_date == day, CommitAnalysis.fallback.is_(True), CommitAnalysis.model == model,
               CommitAnalysis.prompt_version == PROMPT_VERSION)))
    if not rows:
        return {"date": day.isoformat(), "retried": 0, "still_fallback": 0}
    analyses = services.analyzer.analyze_many([(CommitRecord.from_dict(c.record), a.language) for a, c in rows])
    for (row, commit), analysis in zip(rows, analyses, strict=True):
        store_analysis(session, commit, row.language, model, analysis, existing=row)
    session.flush()
    for repository in {commit.repository_id: session.get(Repository, commit.repository_id) for _, commit in rows}.values():
        languages = sorted({r.language for r, c in rows if c.repository_id == repository.id}
                           | set(languages_for(session, repository)))
        assemble(session, services, repository, day, languages)
    session.commit()
    return {"date": day.isoformat(), "retried": len(rows), "still_fallback": sum(a.fallback for a in analyses)}
