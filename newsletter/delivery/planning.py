"""Planning the fan-out: one pending Delivery row per subscriber whose slot has come, numbered into batches.

plan(now) streams active subscribers (keyset pages) with their clocks and their latest email, and
inserts a pending row for each one whose slot is due (clock.py): keyed (subscriber, slot)
and (subscriber, local date), so a rerun or a concurrent planner inserts nothing twice. A row's window
runs from the previous email's cut-off to now, the instant it is planned. Each row carries a content
key (language, clock, window and visible repositories with thresholds), and rows are cut into
numbered batches (per local date) that keep equal keys together, so identical emails can share one
provider request.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..clock import Clock, clock_of, due_slot, window_start
from ..models import Delivery, DeliveryStatus, Subscriber, Subscription, utcnow
from ..reports import store
from ..reports.window import cutoff
from .rows import DEFAULT_BATCH_SIZE, PAGE, active, aware, bulk, due

# How far back a subscriber's previous email is looked for; one older than this (a long pause) no
# longer bounds the window, and the next email covers the period before its slot as a first one does.
LOOKBACK = timedelta(days=15)
DEFAULT_FETCH_TIMEOUT = timedelta(seconds=1800)  # JOB_TIMEOUT's default: no fetch outlives its job


@dataclass(frozen=True)
class DueEmail:
    """A subscriber's email to plan now."""

    subscriber_id: int
    date: date
    slot: datetime
    window_start: datetime
    window_end: datetime
    content_key: str


def iter_due(session: Session, now: datetime, page: int = PAGE, end: datetime | None = None) -> Iterator[DueEmail]:
    """Every active subscriber with subscriptions whose slot is due at now, one keyset page at a time:
    plain rows, never all subscribers in memory, no ORM objects per subscriber. Windows end at end
    (default: now).

    Only subscribers whose next_slot_at has come (or is unknown) are looked at; each one's
    next_slot_at moves to their next slot, in the transaction that inserts their delivery.
    """
    last = 0
    end = now if end is None else end
    private = store.private_repositories(session)
    while True:
        people = session.execute(
            select(Subscriber.id, Subscriber.language, Subscriber.timezone, Subscriber.hour, Subscriber.frequency,
                   Subscriber.weekday, Subscriber.confirmed_at)
            .where(active(), Subscriber.id > last,
                   or_(Subscriber.next_slot_at.is_(None), Subscriber.next_slot_at <= now))
            .order_by(Subscriber.id).limit(page)).all()
        if not people:
            return
        ids = [p.id for p in people]
        previous: dict[int, tuple[datetime, datetime]] = {}
        for subscriber_id, slot, previous_end in session.execute(
                select(Delivery.subscriber_id, Delivery.slot, Delivery.window_end)
                .where(Delivery.subscriber_id.in_(ids), Delivery.slot > now - LOOKBACK)
                .order_by(Delivery.slot)):
            previous[subscriber_id] = (aware(slot), aware(previous_end))
        wanted: dict[int, list[tuple[str, str]]] = {}
        for subscriber_id, repo, threshold, granted in session.execute(
                select(Subscription.subscriber_id, Subscription.repo, Subscription.threshold, Subscription.granted)
                .where(Subscription.subscriber_id.in_(ids))):
            if repo in private and not granted:
                continue  # a private repository shows only to those the operator granted it
            wanted.setdefault(subscriber_id, []).append((repo, threshold.value))
        upcoming: list[dict[str, Any]] = []
        for person in people:
            clock = clock_of(person)
            before = previous.get(person.id)
            due = due_slot(clock, now, person.confirmed_at, before[0] if before else None)
            upcoming.append({"key": person.id, "next": clock.next_slot(due or now)})
            if due is None or person.id not in wanted:
                continue
            start = min(window_start(clock, due, before[1] if before else None), end)
            local = clock.local_date(due)
            key = content_key(person.language, wanted[person.id], clock, local, start, end)
            yield DueEmail(person.id, local, due, start, end, key)
        # Part of the caller's transaction, committed with the deliveries inserted for this page.
        table = Subscriber.__table__
        assert isinstance(table, Table)
        session.execute(update(table).where(table.c.id == bindparam("key")).values(next_slot_at=bindparam("next")),
                        upcoming)
        last = ids[-1]


def content_key(language: str, subscriptions: list[tuple[str, str]], clock: Clock | None = None,
                day: date | None = None, start: datetime | None = None, end: datetime | None = None) -> str:
    """Equal for subscribers whose emails differ only in their own address, links and local commit
    times (placeholders filled per recipient): same language, repositories and thresholds, frequency
    (layout), local date and window. The zone is left out: readers of every zone share a content.

    send_empty is left out: it changes whether an email goes, never what a sent one holds.
    """
    when = ""
    if clock is not None:
        when = f"{clock.frequency}|{day}|{start and start.isoformat()}|{end and end.isoformat()}|"
    raw = f"{language}|{when}" + ";".join(f"{r}:{t}" for r, t in sorted(subscriptions))
    return hashlib.sha1(raw.encode()).hexdigest()

@dataclass
class Plan:
    """What planning at an instant did: rows created, and the batches (by date) holding pending rows
    due now; expired counts rows that reached the end of their retry window and were marked failed."""

    now: datetime
    created: int = 0
    batches: dict[date, list[int]] = field(default_factory=dict)
    expired: int = 0

    @property
    def batch_count(self) -> int:
        return sum(len(numbers) for numbers in self.batches.values())

def plan(session: Session, now: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
         chunk: int = 1000, fetch_timeout: timedelta = DEFAULT_FETCH_TIMEOUT) -> Plan:
    """Create the pending deliveries due at now (idempotently) and number them into batches.

    Their windows end at now, or just before a fetch still storing its commits (window.cutoff;
    fetch_timeout: how long a fetch may take before its mark is taken for one whose process died).
    """
    moment = (now or utcnow()).astimezone(UTC)
    result = Plan(moment)
    page: list[dict[str, Any]] = []
    created: dict[date, list[tuple[int, str]]] = {}  # the rows inserted now, by date: (id, content key)
    for email in iter_due(session, moment, end=cutoff(session, moment, fetch_timeout)):
        page.append({"subscriber_id": email.subscriber_id, "date": email.date, "slot": email.slot,
                     "window_start": email.window_start, "window_end": email.window_end,
                     "status": DeliveryStatus.PENDING, "content_key": email.content_key})
        if len(page) >= PAGE:
            _insert_missing(session, page, created)
            page = []
    if page:
        _insert_missing(session, page, created)
    session.commit()
    result.created = sum(len(rows) for rows in created.values())
    for day in sorted(created):
        number_batches(session, day, batch_size, chunk, rows=created[day])
    result.batches = due_batches(session)
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

def _insert_missing(session: Session, rows: list[dict[str, Any]], created: dict[date, list[tuple[int, str]]]) -> None:
    """Insert rows whose (subscriber, slot) and (subscriber, date) have no delivery yet (the unique
    keys guard races); add the ones inserted to created."""
    dialect = session.get_bind().dialect.name
    now = utcnow()
    for row in rows:
        row.setdefault("created_at", now)
        row.setdefault("updated_at", now)
        row.setdefault("attempts", 0)
    # executemany form: one cached statement, sent in batches by SQLAlchemy's insertmanyvalues.
    # No conflict target: a row that meets either unique key is left out.
    insert = pg_insert(Delivery) if dialect == "postgresql" else sqlite_insert(Delivery)
    statement = insert.on_conflict_do_nothing().returning(Delivery.id, Delivery.date, Delivery.content_key)
    for delivery_id, day, key in session.execute(statement, rows):
        created.setdefault(day, []).append((delivery_id, key))

def number_batches(session: Session, day: date, batch_size: int, chunk: int, start: int | None = None,
                   rows: list[tuple[int, str]] | None = None) -> list[int]:
    """Give unnumbered rows batch numbers; a content key is split only at multiples of `chunk`.

    rows: the (id, content key) of the rows to number, when the caller has them (the planner, for the
    rows it just inserted); otherwise every unnumbered row of day is read (the sweep, after a planner died).
    """
    if rows is not None:
        rows = sorted(rows, key=lambda row: (row[1], row[0]))
    else:
        rows = [(delivery_id, key) for delivery_id, key in session.execute(
            select(Delivery.id, Delivery.content_key).where(Delivery.date == day, Delivery.batch.is_(None))
            .order_by(Delivery.content_key, Delivery.id))]
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
