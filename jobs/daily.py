"""The daily run as RQ jobs: one per watched repository, then a follow-up once all finished or failed."""
from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from rq import Queue
from rq.job import Dependency

from newsletter import daily, schedule

from .context import job_session, redis_connection

log = logging.getLogger(__name__)

ANALYSIS_QUEUE = "analysis"
DAY = 24 * 3600


def tick() -> str:
    """The cron entry: start the daily run if DIGEST_CRON fired in DIGEST_TIMEZONE just now."""
    with job_session() as (config, _session):
        day = schedule.due_report_date(config["DIGEST_CRON"], config["DIGEST_TIMEZONE"], datetime.now(UTC))
    if day is None:
        return "not due"
    return start_daily(day.isoformat(), trigger="cron")


def start_daily(day_iso: str | None = None, trigger: str = "manual") -> str:
    """Create the day's run (once: the database guard) and enqueue its jobs."""
    with job_session() as (config, session):
        day, backfill = daily.resolve_day(date.fromisoformat(day_iso) if day_iso else None, config["DIGEST_TIMEZONE"])
        run = daily.start_run(session, day, trigger, backfill)
        if run is None:
            session.rollback()
            log.info("the run for %s exists already; nothing to do", day)
            return f"{day}: already ran"
        repo_runs = daily.prepare_repositories(session, run, daily.watched_repositories(session))
        session.commit()
        enqueue_run(config, run.id, day, [r.id for r in repo_runs])
        return f"{day}: {len(repo_runs)} repositories enqueued"


def job_id(*parts) -> str:
    """RQ job ids allow only [A-Za-z0-9_-]."""
    return "-".join(str(p) for p in parts)


def enqueue_run(config: dict, run_id: int, day: date, repo_run_ids: list[int]) -> list[str]:
    queue = Queue(ANALYSIS_QUEUE, connection=redis_connection(config))
    jobs = [queue.enqueue(process_repository, repo_run_id, job_id=job_id("repo", day, run_id, repo_run_id),
                          job_timeout=config["JOB_TIMEOUT"], result_ttl=DAY, failure_ttl=7 * DAY,
                          description=f"daily {day}: repository run {repo_run_id}")
            for repo_run_id in repo_run_ids]
    # allow_failure: the follow-up runs once every repository job finished *or* failed.
    dependency = Dependency(jobs=jobs, allow_failure=True) if jobs else None
    follow_up = queue.enqueue(finish_daily, run_id, depends_on=dependency, job_id=job_id("finish", day, run_id),
                              result_ttl=7 * DAY, failure_ttl=7 * DAY, description=f"daily {day}: finish")
    return [job.id for job in jobs] + [follow_up.id]


def process_repository(repo_run_id: int) -> str:
    with job_session() as (config, session):
        services = daily.make_services(config)
        try:
            repo_run = daily.process_repository(session, services, repo_run_id)
            return f"{repo_run.repository.name}: {repo_run.status.value}"
        finally:
            services.close()


def finish_daily(run_id: int) -> dict:
    """Close the run, then start the email fan-out for its date."""
    from .deliver import start_delivery

    with job_session() as (_config, session):
        summary = daily.finish_run(session, run_id)
    log.info("daily run %s finished: %s", summary["date"], summary)
    summary["delivery"] = start_delivery(summary["date"])
    return summary
