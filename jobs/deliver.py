"""The email fan-out as RQ jobs on the `email` queue: bounded batches, each sent once."""
from __future__ import annotations

import time
from dataclasses import asdict
from datetime import date
from typing import Any

from rq import Queue

from newsletter.delivery import fanout
from newsletter.delivery.mailers import make_mailer

from .context import job_session, redis_connection

EMAIL_QUEUE = "email"
DAY = 24 * 3600


def start_delivery(day_iso: str) -> str:
    """Plan the day's deliveries and enqueue one job per batch still holding pending rows."""
    day = date.fromisoformat(day_iso)
    with job_session() as (config, session):
        planned = fanout.prepare(session, config, make_mailer(config), day)
        queue = Queue(EMAIL_QUEUE, connection=redis_connection(config))
        stamp = int(time.time())
        for batch in planned.batches:
            # RQ job ids allow only [A-Za-z0-9_-]; the stamp keeps a rerun's jobs apart from the last.
            queue.enqueue(send_batch, day_iso, batch, job_id=f"send-{day_iso}-b{batch}-{stamp}",
                          job_timeout=config["JOB_TIMEOUT"], result_ttl=DAY, failure_ttl=7 * DAY,
                          description=f"deliver {day_iso}: batch {batch}")
    return f"{day_iso}: {planned.created} deliveries planned, {len(planned.batches)} batches enqueued"


def send_batch(day_iso: str, batch: int) -> dict[str, Any]:
    with job_session() as (config, session):
        result = fanout.send_batch(session, config, make_mailer(config), date.fromisoformat(day_iso), batch)
    return asdict(result)
