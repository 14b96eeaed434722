"""Delivery rows: the queries and state changes the planner, the senders and the recovery share.

A row is pending → sending → sent | failed, or skipped (models.DeliveryStatus). A pending row with a
next_attempt_at waits for a retry after a transient failure; it is due once that time has come.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Executable, Table, Update, func, or_, select, update
from sqlalchemy.orm import Session

from ..models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus, aware, utcnow

__all__ = ["aware"]  # rows.aware: the fan-out's modules and tests read stored timestamps with it

PAGE = 1000  # rows read or updated per statement
DEFAULT_BATCH_SIZE = 500  # deliveries per RQ job
DEFAULT_RETRY_HOURS = 24  # DELIVERY_RETRY_HOURS

RETRY_BASE = 60.0  # seconds before the first retry after a transient failure; doubles with each attempt

RETRY_CAP = 3600.0  # longest wait between two attempts


def active() -> ColumnElement[bool]:
    return (Subscriber.status == SubscriberStatus.CONFIRMED) & Subscriber.paused.is_(False)

def due(now: datetime) -> ColumnElement[bool]:
    """A pending row may be sent now: never failed for a transient reason, or its retry time has come."""
    return or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)

_Statement = TypeVar("_Statement", bound=Executable)

def bulk(statement: _Statement) -> _Statement:
    # The rows are not needed back in the session: evaluating the WHERE clause against every object
    # the session holds would make each update cost O(batch size).
    return statement.execution_options(synchronize_session=False)

def update_rows() -> Update:
    """An UPDATE of delivery rows as a Core statement: the fan-out's per-chunk updates skip the ORM's
    bookkeeping (the rows are not needed back in the session)."""
    table = Delivery.__table__
    assert isinstance(table, Table)
    return update(table)

def moved(ids: list[int], status: DeliveryStatus, now: datetime, **values: Any) -> Update:
    """The UPDATE moving rows (at most PAGE ids) to status at now: a sent row records when, a row
    leaving `pending` no longer waits for a retry."""
    if status is DeliveryStatus.SENT:
        values["sent_at"] = now
    if status is not DeliveryStatus.PENDING:
        values.setdefault("next_attempt_at", None)
    return update_rows().where(Delivery.id.in_(ids)).values(status=status, updated_at=now, **values)

def finish(session: Session, ids: list[int], status: DeliveryStatus, commit: bool = True, **values: Any) -> None:
    """Move rows to status; commit=False leaves the change to the caller's next commit."""
    now = utcnow()
    for i in range(0, len(ids), PAGE):
        session.execute(moved(ids[i:i + PAGE], status, now, **values))
    if commit:
        session.commit()

def retry_window(config: Mapping[str, Any]) -> timedelta:
    """How long after a row was planned transient failures are still retried (DELIVERY_RETRY_HOURS)."""
    return timedelta(hours=float(config.get("DELIVERY_RETRY_HOURS") or DEFAULT_RETRY_HOURS))

def retry_delay(attempts: int) -> float:
    """Seconds to wait after the attempts-th failed attempt: RETRY_BASE doubling, capped at RETRY_CAP."""
    return float(min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP))

def gave_up(error: str, window: timedelta, attempts: int | None = None) -> str:
    tries = f" after {attempts} attempts" if attempts else ""
    hours = f"{window.total_seconds() / 3600:g}"
    return (f"{error} — gave up{tries}: still failing at the end of the {hours} h retry window "
            "(DELIVERY_RETRY_HOURS)")[-2000:]

def summary(session: Session, day: date) -> dict[str, int]:
    """How many of day's rows are in each state."""
    rows = session.execute(select(Delivery.status, func.count()).where(Delivery.date == day).group_by(Delivery.status))
    counts = {s.value: 0 for s in DeliveryStatus}
    counts.update({status.value: n for status, n in rows})
    return counts

def waiting_for_retry(session: Session, day: date | None = None) -> int:
    """Rows (of day, or of every day) pending with a retry time still to come."""
    query = select(func.count()).select_from(Delivery).where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at > utcnow())
    if day is not None:
        query = query.where(Delivery.date == day)
    return session.scalar(query) or 0


def batch_size(config: Mapping[str, Any]) -> int:
    """Deliveries per RQ job (DELIVERY_BATCH_SIZE)."""
    return int(config.get("DELIVERY_BATCH_SIZE") or DEFAULT_BATCH_SIZE)
