"""The scheduler's tick and the daily run as RQ jobs.

tick (every hour, at INGEST_CRON's minutes): ingest if due, start the due daily run (one job per
watched repository, then a follow-up once all finished or failed), then plan the emails due and
enqueue their batches on the email queue (newsletter/tick.py does the same in the foreground).
"""
from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from rq import Queue
from rq.job import Dependency

from newsletter import tick as clock_tick
from newsletter.models import RunStatus
from newsletter.reports import days, ingest, run, store

from .context import job_session, redis_connection
from .deliver import start_delivery

log = logging.getLogger(__name__)

ANALYSIS_QUEUE = "analysis"
DAY = 24 * 3600



def tick(now_iso: str | None = None) -> str:
    """The cron entry: ingest if INGEST_CRON fired, start (or resume) the due daily runs, then plan
    and enqueue the emails due now."""
    now = datetime.fromisoformat(now_iso) if now_iso else datetime.now(UTC)
    with job_session() as (config, session):
        services = run.make_services(config)
        try:
            fire = days.last_fire(config["INGEST_CRON"], config["DIGEST_TIMEZONE"], now)
            ingested = ingest.ingest(session, services, now, due_at=fire)
        finally:
            services.close()
        behind = clock_tick.days_to_build(session, config, now)
    messages = [f"ingested {ingested['new_commits']} new commits" if ingested else "ingestion not due"]
    messages += [start_daily(d.isoformat(), trigger="cron") for d in behind]
    messages.append(start_delivery(now.isoformat()))
    return "; ".join(messages)


def start_daily(day_iso: str | None = None, trigger: str = "manual") -> str:
    """Create the day's run (or resume it when it failed or went stale) and enqueue its jobs."""
    with job_session() as (config, session):
        day = date.fromisoformat(day_iso) if day_iso else None
        opened = run.open_run(session, day, trigger, config["DIGEST_TIMEZONE"], lease=run.run_lease(config))
        if opened is None:
            day = day or run.resolve_day(None, config["DIGEST_TIMEZONE"])[0]
            if store.run_status(session, day) is RunStatus.RUNNING:
                log.info("the run for %s is in progress; nothing to do", day)
                return f"{day}: in progress"
            log.info("the run for %s exists already; nothing to do", day)
            return f"{day}: already ran"
        try:
            enqueue_run(config, opened)
        except Exception as exc:
            # Redis is unreachable, say: without jobs the run would wait forever; a rerun resumes it.
            run.fail_run(session, opened.run_id, f"could not enqueue the repository jobs: {type(exc).__name__}: {exc}")
            raise
        verb = "resumed" if opened.resumed else "enqueued"
        return f"{opened.date}: {len(opened.repo_run_ids)} repositories {verb}"


def job_id(*parts: object) -> str:
    """RQ job ids allow only [A-Za-z0-9_-]."""
    return "-".join(str(p) for p in parts)


def enqueue_run(config: Any, opened: run.OpenedRun) -> list[str]:
    queue = Queue(ANALYSIS_QUEUE, connection=redis_connection(config))
    jobs = [queue.enqueue(process_repository, repo_run_id, job_id=job_id("repo", opened.date, opened.run_id, repo_run_id),
                          job_timeout=config["JOB_TIMEOUT"], result_ttl=DAY, failure_ttl=7 * DAY,
                          description=f"daily {opened.date}: repository run {repo_run_id}")
            for repo_run_id in opened.repo_run_ids]
    # allow_failure: the follow-up runs once every repository job finished *or* failed.
    dependency = Dependency(jobs=jobs, allow_failure=True) if jobs else None
    follow_up = queue.enqueue(finish_daily, opened.run_id, depends_on=dependency,
                              job_id=job_id("finish", opened.date, opened.run_id),
                              result_ttl=7 * DAY, failure_ttl=7 * DAY, description=f"daily {opened.date}: finish")
    return [job.id for job in jobs] + [follow_up.id]


def process_repository(repo_run_id: int) -> str:
    with job_session() as (config, session):
        services = run.make_services(config)
        try:
            repo_run = run.run_repository(session, services, repo_run_id)
            return f"{repo_run.repository.name}: {repo_run.status.value}"
        finally:
            services.close()


def finish_daily(run_id: int) -> dict[str, Any]:
    """Close the run (emails do not wait for it: they follow each subscriber's clock)."""
    with job_session() as (_config, session):
        summary = run.close_run(session, run_id)
    if summary["status"] != RunStatus.DONE.value:
        log.error("daily run %s is not done (%s); a rerun or the next tick resumes it",
                  summary["date"], summary["error"])
        return summary
    log.info("daily run %s done: %s", summary["date"], summary)
    return summary
