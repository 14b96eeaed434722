"""Recovery: rows a killed worker left in flight, rows past their retry window, and the scheduler's sweep.

A row left in `sending` belonged to the chunk a killed worker was handing to the backend when it
died: the backend may or may not have taken it, so recover() marks it failed ("interrupted") and it
is never sent again — at most one chunk is affected, reported, not repeated. sweep() is the
scheduler's periodic pass (jobs.deliver.sweep): it recovers interrupted rows, fails rows past their
retry window and lists the batches holding due pending rows, so retries happen and a fan-out whose
worker was killed finishes without anyone running `deliver`.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Delivery, DeliveryStatus, utcnow
from .mailers import Mailer
from .planning import due_batches, number_batches
from .rows import aware, batch_size, finish, gave_up, retry_window

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=10)  # the shortest claim lease, whatever the backend

INTERRUPTED = "interrupted while being handed to the mail backend; not resent to avoid a duplicate"


def claim_lease(mailer: Mailer) -> timedelta:
    """How old a claim must be before it counts as abandoned: longer than the backend's longest hand-off."""
    handoff = timedelta(seconds=float(getattr(mailer, "longest_handoff", 0.0)) + 60)
    return max(DEFAULT_LEASE, handoff)

def recover(session: Session, day: date | None, lease: timedelta = DEFAULT_LEASE) -> int:
    """Mark deliveries stuck in `sending` by a dead worker as failed ("interrupted"); never resend them.

    A row is stuck when its claimant process is gone (same host) or its claim is older than lease.
    day None: every day.
    """
    now = utcnow()
    stuck = []
    host = socket.gethostname()
    query = select(Delivery.id, Delivery.claimed_by, Delivery.updated_at).where(
        Delivery.status == DeliveryStatus.SENDING)
    if day is not None:
        query = query.where(Delivery.date == day)
    for delivery_id, claimed_by, updated_at in session.execute(query):
        claimant_host, _, pid = (claimed_by or "").partition(":")
        dead = claimant_host == host and pid.isdigit() and not process_alive(int(pid))
        if dead or now - aware(updated_at) > lease:
            stuck.append(delivery_id)
    if stuck:
        finish(session, stuck, DeliveryStatus.FAILED, error=INTERRUPTED)
        log.warning("%d deliveries were in flight when their worker died; marked failed", len(stuck))
    return len(stuck)

def process_alive(pid: int) -> bool:
    """Whether pid runs on this host; a zombie (killed, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

def expire(session: Session, config: Mapping[str, Any], day: date | None = None) -> int:
    """Fail rows still waiting for a retry once their retry window is over; day None: every day."""
    window = retry_window(config)
    cutoff = utcnow() - window
    query = select(Delivery.id, Delivery.error, Delivery.attempts).where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at.is_not(None), Delivery.created_at < cutoff)
    if day is not None:
        query = query.where(Delivery.date == day)
    rows = session.execute(query).all()
    for delivery_id, error, attempts in rows:
        finish(session, [delivery_id], DeliveryStatus.FAILED,
                error=gave_up(error or "failed for a transient reason", window, attempts))
    if rows:
        log.warning("%d deliveries still failing at the end of their retry window; marked failed", len(rows))
    return len(rows)

@dataclass
class Sweep:
    """What one sweep did, and the batches, by date, that hold pending rows due now."""

    recovered: int = 0
    expired: int = 0
    batches: dict[date, list[int]] = field(default_factory=dict)

def sweep(session: Session, config: Mapping[str, Any], mailer: Mailer) -> Sweep:
    """The scheduler's pass over every day: recover interrupted rows, fail rows past their retry window,
    number rows a killed planner left unnumbered, and list the batches with pending rows due now."""
    result = Sweep(recovered=recover(session, None, lease=claim_lease(mailer)), expired=expire(session, config))
    unnumbered = session.scalars(select(Delivery.date).distinct().where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.batch.is_(None))).all()
    for day in unnumbered:
        number_batches(session, day, batch_size(config), max(1, mailer.max_recipients))
    result.batches = due_batches(session)
    return result
