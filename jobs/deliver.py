"""The email fan-out as RQ jobs on the `email` queue: bounded batches, each sent once.

start_delivery plans the emails due at an instant and enqueues their batches; sweep, run by the scheduler every
DELIVERY_SWEEP_SECONDS, recovers rows a killed worker left behind, retries rows whose retry time
has come and enqueues every batch still holding due pending rows whose job is gone. A batch's
last job id is kept in Redis, so neither enqueues a batch whose job is still queued or running.
"""
from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from newsletter.delivery import fanout, recovery
from newsletter.delivery.mailers import make_mailer

from .context import job_session, redis_connection

log = logging.getLogger(__name__)

EMAIL_QUEUE = "email"
DAY = 24 * 3600
DEFAULT_SWEEP_SECONDS = 60  # DELIVERY_SWEEP_SECONDS
_BATCH_JOB = "repo-daily:delivery-batch:{day}:{batch}"  # the id of the job last enqueued for a batch


def start_delivery(now_iso: str | None = None) -> str:
    """Plan the emails due at now (default: the current time) and enqueue one job per batch still
    holding due pending rows."""
    now = datetime.fromisoformat(now_iso) if now_iso else None
    with job_session() as (config, session):
        planned = fanout.prepare(session, config, make_mailer(config), now)
        enqueued = enqueue_batches(config, planned.batches)
    return f"{planned.now.isoformat()}: {planned.created} emails planned, {enqueued} batches enqueued"


def sweep() -> str:
    """The scheduler's periodic pass: recover, expire, and enqueue every batch with due pending rows."""
    with job_session() as (config, session):
        swept = recovery.sweep(session, config, make_mailer(config))
        enqueued = enqueue_batches(config, swept.batches)
    return f"{swept.recovered} interrupted, {swept.expired} past their retry window, {enqueued} batches enqueued"


def send_batch(day_iso: str, batch: int) -> dict[str, Any]:
    """Send the batch's pending rows that are due (fanout.send_batch); the counts."""
    with job_session() as (config, session):
        result = fanout.send_batch(session, config, make_mailer(config), date.fromisoformat(day_iso), batch)
    return asdict(result)


def enqueue_batches(config: Mapping[str, Any], batches: Mapping[date, list[int]]) -> int:
    """Enqueue a send job for each batch, unless its last job is still queued or running; how many."""
    connection = redis_connection(config)
    queue = Queue(EMAIL_QUEUE, connection=connection)
    enqueued = 0
    for day, numbers in batches.items():
        for batch in numbers:
            key = _BATCH_JOB.format(day=day.isoformat(), batch=batch)
            if _outstanding(connection, key):
                continue
            # RQ job ids allow only [A-Za-z0-9_-]; the suffix keeps a rerun's jobs apart from the last.
            job = queue.enqueue(send_batch, day.isoformat(), batch,
                                job_id=f"send-{day.isoformat()}-b{batch}-{uuid.uuid4().hex[:12]}",
                                job_timeout=config["JOB_TIMEOUT"], result_ttl=DAY, failure_ttl=7 * DAY,
                                description=f"deliver {day.isoformat()}: batch {batch}")
            connection.set(key, job.id, ex=7 * DAY)
            enqueued += 1
    return enqueued


def _outstanding(connection: redis.Redis, key: str) -> bool:
    """Whether the batch's last job will still run: queued, or running in a live worker.

    A job RQ still calls started may belong to a worker that was killed (RQ notices only minutes
    later, and does not run it again): its worker's key has expired, or its process is gone from
    this host. Such a job no longer covers its batch. When in doubt the batch is enqueued again:
    a second job sends nothing twice, because rows are claimed before they are sent.
    """
    stored = connection.get(key)
    if stored is None:
        return False
    try:
        job = Job.fetch(stored.decode() if isinstance(stored, bytes) else str(stored), connection=connection)
        status = job.get_status()
    except NoSuchJobError:
        return False
    if status == JobStatus.QUEUED:
        # Still waiting in its queue; a worker killed right after taking it leaves it QUEUED elsewhere.
        return connection.lpos(Queue(job.origin, connection=connection).key, job.id) is not None
    if status in (JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return True
    if status != JobStatus.STARTED or not job.worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=connection)
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid and not recovery.process_alive(worker.pid):
        return False
    return True
