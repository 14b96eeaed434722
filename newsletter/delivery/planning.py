"""Planning a day's fan-out: one pending Delivery row per active subscriber, numbered into batches.

plan() streams active subscribers (keyset pages) and inserts a pending row for each, keyed
(subscriber, date) so a rerun inserts nothing twice. Each row carries a content key (the
subscriber's language and visible repositories with thresholds), and rows are cut into numbered
batches that keep equal keys together, so identical emails can share one provider request.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..models import Delivery, DeliveryStatus, Subscriber, Subscription, utcnow
from ..reports import store
from .rows import DEFAULT_BATCH_SIZE, PAGE, active, bulk, due


def iter_content_keys(session: Session, page: int = PAGE) -> Iterator[tuple[int, str]]:
    """(subscriber id, content key) of every active subscriber with subscriptions, one keyset page
    at a time: plain rows, never all subscribers in memory, no ORM objects per subscriber."""
    last = 0
    private = store.private_repositories(session)
    while True:
        ids = session.scalars(select(Subscriber.id).where(active(), Subscriber.id > last)
                              .order_by(Subscriber.id).limit(page)).all()
        if not ids:
            return
        wanted: dict[int, list[tuple[str, str]]] = {}
        languages: dict[int, str] = {}
        rows = session.execute(
            select(Subscription.subscriber_id, Subscriber.language, Subscription.repo, Subscription.threshold,
                   Subscription.granted)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscription.subscriber_id.in_(ids)))
        for subscriber_id, language, repo, threshold, granted in rows:
            if repo in private and not granted:
                continue  # a private repository shows only to those the operator granted it
            wanted.setdefault(subscriber_id, []).append((repo, threshold.value))
            languages[subscriber_id] = language
        for subscriber_id in ids:
            if subscriber_id in wanted:
                yield subscriber_id, content_key(languages[subscriber_id], wanted[subscriber_id])
        last = ids[-1]

def content_key(language: str, subscriptions: list[tuple[str, str]]) -> str:
    """Equal for subscribers whose emails differ only in their own address and links.

    send_empty is left out: it changes whether an email goes, never what a sent one holds.
    """
    raw = f"{language}|" + ";".join(f"{r}:{t}" for r, t in sorted(subscriptions))
    return hashlib.sha1(raw.encode()).hexdigest()

@dataclass
class Plan:
    """What planning a day did: rows created, batches holding pending rows due now; ready is False
    when the day's run is not done, so nothing was planned and the emails wait; expired counts rows
    that reached the end of their retry window and were marked failed."""

    date: date
    created: int = 0
    batches: list[int] = field(default_factory=list)
    ready: bool = True
    expired: int = 0

def plan(session: Session, day: date, batch_size: int = DEFAULT_BATCH_SIZE, chunk: int = 1000) -> Plan:
    """Create the day's pending deliveries (idempotently) and number them into batches."""
    result = Plan(day)
    existing_max = session.scalar(select(func.max(Delivery.batch)).where(Delivery.date == day)) or 0
    page: list[dict[str, Any]] = []
    for subscriber_id, key in iter_content_keys(session):
        page.append({"subscriber_id": subscriber_id, "date": day, "status": DeliveryStatus.PENDING,
                     "content_key": key})
        if len(page) >= PAGE:
            result.created += _insert_missing(session, page)
            page = []
    if page:
        result.created += _insert_missing(session, page)
    session.commit()
    number_batches(session, day, batch_size, chunk, start=existing_max + 1)
    result.batches = due_batches(session, day).get(day, [])
    return result

def due_batches(session: Session, day: date | None = None) -> dict[date, list[int]]:
    """Batches holding pending rows that may be sent now, by date (one date, or all)."""
    query = select(Delivery.date, Delivery.batch).distinct().where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.batch.is_not(None), due(utcnow()))
    if day is not None:
        query = query.where(Delivery.date == day)
    found: dict[date, list[int]] = {}
    for when, batch in session.execute(query):
        if batch is not None:
            found.setdefault(when, []).append(batch)
    return {when: sorted(batches) for when, batches in sorted(found.items())}

def _insert_missing(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert rows whose (subscriber, date) has no delivery yet; the unique key guards races."""
    dialect = session.get_bind().dialect.name
    now = utcnow()
    for row in rows:
        row.setdefault("created_at", now)
        row.setdefault("updated_at", now)
        row.setdefault("attempts", 0)
    # executemany form: one cached statement, sent in batches by SQLAlchemy's insertmanyvalues.
    key = ["subscriber_id", "date"]
    if dialect == "postgresql":
        statement = pg_insert(Delivery).on_conflict_do_nothing(index_elements=key).returning(Delivery.id)
    else:
        statement = sqlite_insert(Delivery).on_conflict_do_nothing(index_elements=key).returning(Delivery.id)
    return len(session.execute(statement, rows).all())

def number_batches(session: Session, day: date, batch_size: int, chunk: int, start: int | None = None) -> list[int]:
    """Give unnumbered rows batch numbers; a content key is split only at multiples of `chunk`."""
    rows = session.execute(select(Delivery.id, Delivery.content_key).where(
        Delivery.date == day, Delivery.batch.is_(None)).order_by(Delivery.content_key, Delivery.id)
        .execution_options(yield_per=PAGE))
    if start is None:
        start = (session.scalar(select(func.max(Delivery.batch)).where(Delivery.date == day)) or 0) + 1
    batches: list[tuple[int, list[int]]] = []
    current: list[int] = []
    number = start
    previous_key: str | None = None
    run = 0
    for delivery_id, key in rows:
        run = run + 1 if key == previous_key else 1
        boundary = key != previous_key or (run - 1) % chunk == 0
        if len(current) >= batch_size and boundary:
            batches.append((number, current))
            number, current = number + 1, []
        current.append(delivery_id)
        previous_key = key
    if current:
        batches.append((number, current))
    for number, ids in batches:
        for i in range(0, len(ids), PAGE):
            session.execute(bulk(update(Delivery)).where(Delivery.id.in_(ids[i:i + PAGE])).values(batch=number))
    session.commit()
    return [number for number, _ in batches]
