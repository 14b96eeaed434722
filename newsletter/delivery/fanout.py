"""The daily fan-out: one Delivery row per (subscriber, report date), sent once.

Life of a day's delivery:
0. Nothing is planned before the day's run is done (every repository has its report): until
   then the day's emails wait, so no subscriber is skipped for a report still being made.
1. plan(): stream active subscribers (keyset pages) and insert a pending Delivery row for each,
   keyed (subscriber, date) so a rerun inserts nothing twice; each row carries a content key (the
   subscriber's language, repositories, thresholds), and rows are cut into numbered batches that
   keep equal keys together, so identical emails can share one provider request.
2. send_batch(): one RQ job per batch renders each subscriber's email (assembly of sections rendered
   once per day) and hands it to the mailer in chunks: up to 1000 recipients of identical content
   for SendGrid, one message for SMTP and the outbox. Each chunk is claimed (pending → sending) in
   its own transaction right before the hand-off and marked sent (or failed) right after.
3. A transient failure (connection refused or reset, timeout, 429, 5xx once the mailer's own
   retries are spent) puts the chunk's rows back to pending with a next attempt time, backing off
   from RETRY_BASE to RETRY_CAP, and the day's other due rows wait as long; only rows whose
   next_attempt_at is unset or past are sent. DELIVERY_RETRY_HOURS after a row was planned it stops
   being retried and is marked failed with its last error. A permanent failure is final at once.
4. A rerun, a retried job or a restarted worker sends only rows still pending. A row left in
   `sending` belonged to the one chunk a killed worker was handing to the backend when it died: the
   backend may or may not have taken it, so recover() marks it failed ("interrupted") and it is
   never sent again — at most one chunk is affected, reported, not repeated.
5. sweep() is the scheduler's periodic pass (jobs.deliver.sweep): it recovers interrupted rows,
   fails rows past their retry window and lists the batches holding due pending rows, so retries
   happen and a fan-out whose worker was killed finishes without anyone running `deliver`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Executable, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from ..email.digest import DigestRenderer
from ..email.headers import SubscriberView
from ..errors import DeliveryError
from ..models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus, Subscription, utcnow
from ..reports import store
from ..subscribers import links
from .mailers import Mailer, PartialDelivery, Recipient, TransientDeliveryError

log = logging.getLogger(__name__)

PAGE = 1000  # subscribers read per keyset page
DEFAULT_BATCH_SIZE = 500  # deliveries per RQ job
DEFAULT_RETRY_HOURS = 24  # DELIVERY_RETRY_HOURS
RETRY_BASE = 60.0  # seconds before the first retry after a transient failure; doubles with each attempt
RETRY_CAP = 3600.0  # longest wait between two attempts
DEFAULT_LEASE = timedelta(minutes=10)  # the shortest claim lease, whatever the backend
INTERRUPTED = "interrupted while being handed to the mail backend; not resent to avoid a duplicate"


def _active() -> ColumnElement[bool]:
    return (Subscriber.status == SubscriberStatus.CONFIRMED) & Subscriber.paused.is_(False)


def _due(now: datetime) -> ColumnElement[bool]:
    """A pending row may be sent now: never failed for a transient reason, or its retry time has come."""
    return or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; every timestamp stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iter_content_keys(session: Session, page: int = PAGE) -> Iterator[tuple[int, str]]:
    """(subscriber id, content key) of every active subscriber with subscriptions, one keyset page
    at a time: plain rows, never all subscribers in memory, no ORM objects per subscriber."""
    last = 0
    private = store.private_repositories(session)
    while True:
        ids = session.scalars(select(Subscriber.id).where(_active(), Subscriber.id > last)
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
    _number_batches(session, day, batch_size, chunk, start=existing_max + 1)
    result.batches = due_batches(session, day).get(day, [])
    return result


def due_batches(session: Session, day: date | None = None) -> dict[date, list[int]]:
    """Batches holding pending rows that may be sent now, by date (one date, or all)."""
    query = select(Delivery.date, Delivery.batch).distinct().where(
        Delivery.status == DeliveryStatus.PENDING, Delivery.batch.is_not(None), _due(utcnow()))
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


def _number_batches(session: Session, day: date, batch_size: int, chunk: int, start: int | None = None) -> list[int]:
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
            session.execute(_bulk(update(Delivery)).where(Delivery.id.in_(ids[i:i + PAGE])).values(batch=number))
    session.commit()
    return [number for number, _ in batches]


# Rendering -------------------------------------------------------------------------------------

_renderers: dict[tuple[str, date, datetime | None, frozenset[str]], DigestRenderer] = {}


def renderer_for(session: Session, config: Mapping[str, Any], day: date) -> DigestRenderer:
    """The day's renderer, kept per worker process so sections are rendered once, not once per job."""
    private = store.private_repositories(session)
    key = (config["BASE_URL"], day, store.day_stamp(session, day), private)
    renderer = _renderers.get(key)
    if renderer is None:
        _renderers.clear()
        renderer = _renderers[key] = DigestRenderer(config, day, store.day_reports(session, day), private)
    return renderer


def subscriber_view(config: Mapping[str, Any], subscriber: Subscriber, private: frozenset[str]) -> SubscriberView:
    """What the renderer needs of a subscriber; private repositories only through granted subscriptions."""
    return SubscriberView(
        email=subscriber.email, language=subscriber.language,
        subscriptions=tuple(sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions
                                   if s.granted or s.repo not in private)),
        preferences_url=links.preferences_url(config, subscriber),
        unsubscribe_url=links.unsubscribe_url(config, subscriber),
        send_empty=subscriber.send_empty)


@dataclass
class Group:
    """Recipients whose email is the same once their own address and links fill the placeholders."""

    subject: str
    html: str
    text: str
    recipients: list[Recipient] = field(default_factory=list)


# Sending ---------------------------------------------------------------------------------------

_Statement = TypeVar("_Statement", bound=Executable)


def _bulk(statement: _Statement) -> _Statement:
    # The rows are not needed back in the session: evaluating the WHERE clause against every object
    # the session holds would make each update cost O(batch size).
    return statement.execution_options(synchronize_session=False)


def _claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    retrying: int = 0  # rows put back to wait for a retry after a transient failure


@dataclass
class _Batch:
    """What a batch job carries along: its outcome and, once the backend failed for now, when to retry."""

    result: BatchResult
    window: timedelta
    halted: tuple[datetime, str] | None = None  # (retry at, why): the rest of the batch waits too


def retry_window(config: Mapping[str, Any]) -> timedelta:
    """How long after a row was planned transient failures are still retried (DELIVERY_RETRY_HOURS)."""
    return timedelta(hours=float(config.get("DELIVERY_RETRY_HOURS") or DEFAULT_RETRY_HOURS))


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the attempts-th failed attempt: RETRY_BASE doubling, capped at RETRY_CAP."""
    return float(min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP))


def send_batch(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date, batch: int) -> BatchResult:
    """Render and send the pending deliveries of one batch that are due, one claimed chunk at a time.

    Rows come in content-key order, so recipients of identical content arrive together and only
    one group's content is held in memory at a time. Once the backend fails for now, the batch stops
    and the day's other due rows wait for the same retry time.
    """
    work = _Batch(BatchResult(), retry_window(config))
    rows = list(session.scalars(select(Delivery).where(
        Delivery.date == day, Delivery.batch == batch, Delivery.status == DeliveryStatus.PENDING, _due(utcnow()))
        .options(selectinload(Delivery.subscriber).selectinload(Subscriber.subscriptions))
        .order_by(Delivery.content_key, Delivery.id)))
    if not rows:
        return work.result
    renderer = renderer_for(session, config, day)
    private = store.private_repositories(session)
    size = max(1, mailer.max_recipients)
    group: Group | None = None
    for delivery in rows:
        subscriber = delivery.subscriber
        if not subscriber.receives_email or not subscriber.subscriptions:
            _skip(session, delivery.id, "subscriber no longer receives email", work.result)
            continue
        view = subscriber_view(config, subscriber, private)
        try:
            # Shared: placeholders where the subscriber's own address and links go, so identical
            # emails compare equal and one provider request can carry them all.
            digest = renderer.render(view, shared=True)
        except ValueError as exc:  # one subscriber's bad data must not stop the batch
            log.error("delivery %s cannot be rendered: %s", delivery.id, exc)
            _finish(session, [delivery.id], DeliveryStatus.FAILED, error=f"cannot render: {exc}"[:2000])
            work.result.failed += 1
            continue
        if digest is None:
            _skip(session, delivery.id, _nothing_to_send(renderer, view, day), work.result)
            continue
        content = (digest.subject, digest.html, digest.text)
        if group is not None and (content != (group.subject, group.html, group.text)
                                  or len(group.recipients) >= size):
            _send_chunk(session, mailer, group, work)
            group = None
            if work.halted is not None:
                break
        if group is None:
            group = Group(*content)
        group.recipients.append(Recipient(delivery.id, subscriber.email, digest.substitutions, dict(digest.headers)))
    if group is not None:
        _send_chunk(session, mailer, group, work)
    if work.halted is not None:
        # The backend is down: the day's other due rows (this batch's rest, other batches') wait as
        # long, rather than each batch job spending its own timeouts and retries on it.
        _postpone(session, day, *work.halted, work)
    session.commit()
    session.expire_all()  # the bulk updates bypassed the loaded rows
    return work.result


def _nothing_to_send(renderer: DigestRenderer, view: SubscriberView, day: date) -> str:
    """Why a subscriber gets no email: nothing notable, or no report yet for their repositories."""
    missing = renderer.missing(view)
    if missing and len(missing) == len({repo for repo, _threshold in view.subscriptions}):
        return f"no report for their repositories on {day.isoformat()}"
    if missing:
        return f"nothing at or above the thresholds (no report on {day.isoformat()} for {', '.join(missing)})"
    return "nothing at or above the thresholds"


def _skip(session: Session, delivery_id: int, reason: str, result: BatchResult) -> None:
    session.execute(_bulk(update(Delivery)).where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.SKIPPED, error=reason[:2000], updated_at=utcnow()))
    result.skipped += 1


def _finish(session: Session, ids: list[int], status: DeliveryStatus, **values: Any) -> None:
    now = utcnow()
    if status is DeliveryStatus.SENT:
        values["sent_at"] = now
    if status is not DeliveryStatus.PENDING:
        values.setdefault("next_attempt_at", None)
    for i in range(0, len(ids), PAGE):
        session.execute(_bulk(update(Delivery)).where(Delivery.id.in_(ids[i:i + PAGE]))
                        .values(status=status, updated_at=now, **values))
    session.commit()


def _send_chunk(session: Session, mailer: Mailer, group: Group, work: _Batch) -> None:
    """Claim the group's rows (pending → sending), hand them to the mailer, record the outcome."""
    ids = [r.delivery_id for r in group.recipients]
    # Claim: only rows still pending and due are ours; a concurrent or retried job claims none twice.
    claimed = set(session.scalars(
        _bulk(update(Delivery)).where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING, _due(utcnow()))
        .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, claimed_by=_claimant(),
                updated_at=utcnow())
        .returning(Delivery.id)))
    session.commit()  # also commits the skips recorded before this chunk
    chunk = [r for r in group.recipients if r.delivery_id in claimed]
    if not chunk:
        return
    mine = [r.delivery_id for r in chunk]
    work.result.requests += 1
    try:
        message_id = mailer.send_group(group.subject, group.html, group.text, chunk)
    except PartialDelivery as exc:
        log.warning("delivery of %d emails: %s", len(chunk), exc)
        _record_partial(session, mine, exc, work)
        return
    except TransientDeliveryError as exc:
        log.warning("delivery of %d emails failed for now: %s", len(chunk), exc)
        retry_at = _retry(session, mine, str(exc), exc.retry_after, work)
        if exc.whole_backend and retry_at is not None:
            work.halted = (retry_at, f"not tried: the mail backend failed for now on an earlier email: {exc}")
        return
    except DeliveryError as exc:
        log.error("delivery of %d emails failed: %s", len(chunk), exc)
        _finish(session, mine, DeliveryStatus.FAILED, error=str(exc)[:2000])
        work.result.failed += len(chunk)
        return
    _finish(session, mine, DeliveryStatus.SENT, message_id=(message_id or "")[:200], error=None)
    work.result.sent += len(chunk)


def _record_partial(session: Session, ids: list[int], outcome: PartialDelivery, work: _Batch) -> None:
    """Some of a chunk accepted, some refused for good, some to be tried again."""
    accepted = [i for i in ids if i not in outcome.refused and i not in outcome.deferred]
    if accepted:
        _finish(session, accepted, DeliveryStatus.SENT, message_id=outcome.message_id[:200], error=None)
        work.result.sent += len(accepted)
    by_reason: dict[str, list[int]] = {}
    for delivery_id, why in outcome.refused.items():
        if delivery_id in ids:
            by_reason.setdefault(why, []).append(delivery_id)
    for why, refused in by_reason.items():
        _finish(session, refused, DeliveryStatus.FAILED, error=why[:2000])
        work.result.failed += len(refused)
    deferred: dict[str, list[int]] = {}
    for delivery_id, why in outcome.deferred.items():
        if delivery_id in ids:
            deferred.setdefault(why, []).append(delivery_id)
    for why, waiting in deferred.items():
        _retry(session, waiting, why, outcome.retry_after, work)


def _retry(session: Session, ids: list[int], error: str, retry_after: float | None, work: _Batch) -> datetime | None:
    """Claimed rows that failed for now go back to pending with a next attempt time, with backoff;
    rows past their retry window fail with the error. Returns the latest next attempt time set."""
    now = utcnow()
    waiting: dict[datetime, list[int]] = {}
    expired: list[int] = []
    attempts_made = 0
    for delivery_id, attempts, created_at in session.execute(
            select(Delivery.id, Delivery.attempts, Delivery.created_at).where(Delivery.id.in_(ids))):
        deadline = _aware(created_at) + work.window
        if now >= deadline:
            expired.append(delivery_id)
            attempts_made = max(attempts_made, attempts)
            continue
        wait = max(retry_delay(attempts), retry_after or 0.0)
        # The last try happens at the end of the window rather than never.
        waiting.setdefault(min(now + timedelta(seconds=wait), deadline), []).append(delivery_id)
    for at, group in waiting.items():
        _finish(session, group, DeliveryStatus.PENDING, next_attempt_at=at, claimed_by=None, error=error[:2000])
        work.result.retrying += len(group)
    if expired:
        _finish(session, expired, DeliveryStatus.FAILED, error=_gave_up(error, work.window, attempts_made))
        work.result.failed += len(expired)
    return max(waiting, default=None)


def _gave_up(error: str, window: timedelta, attempts: int | None = None) -> str:
    tries = f" after {attempts} attempts" if attempts else ""
    hours = f"{window.total_seconds() / 3600:g}"
    return (f"{error} — gave up{tries}: still failing at the end of the {hours} h retry window "
            "(DELIVERY_RETRY_HOURS)")[-2000:]


def _postpone(session: Session, day: date, at: datetime, why: str, work: _Batch) -> None:
    """The day's pending rows due now, not tried because the backend just failed for now, wait until at."""
    postponed = session.execute(
        _bulk(update(Delivery)).where(Delivery.date == day, Delivery.status == DeliveryStatus.PENDING,
                                      _due(utcnow()))
        .values(next_attempt_at=at, error=why[:2000], updated_at=utcnow()))
    work.result.retrying += postponed.rowcount  # type: ignore[attr-defined]
    session.commit()


# Recovery --------------------------------------------------------------------------------------------

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
        if dead or now - _aware(updated_at) > lease:
            stuck.append(delivery_id)
    if stuck:
        _finish(session, stuck, DeliveryStatus.FAILED, error=INTERRUPTED)
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
        _finish(session, [delivery_id], DeliveryStatus.FAILED,
                error=_gave_up(error or "failed for a transient reason", window, attempts))
    if rows:
        log.warning("%d deliveries still failing at the end of their retry window; marked failed", len(rows))
    return len(rows)


def summary(session: Session, day: date) -> dict[str, int]:
    """How many of day's rows are in each state."""
    rows = session.execute(select(Delivery.status, func.count()).where(Delivery.date == day).group_by(Delivery.status))
    counts = {s.value: 0 for s in DeliveryStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


def waiting_for_retry(session: Session, day: date) -> int:
    """Rows of day pending with a retry time still to come."""
    return session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.date == day, Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at > utcnow())) or 0


# Orchestration -----------------------------------------------------------------------------------

def _batch_size(config: Mapping[str, Any]) -> int:
    return int(config.get("DELIVERY_BATCH_SIZE") or DEFAULT_BATCH_SIZE)


def prepare(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date) -> Plan:
    """Once the day's run is done: recover interrupted rows, fail rows past their retry window, plan."""
    if not store.day_is_ready(session, day):
        # A report still being made would show as "no report" and the subscriber would be skipped.
        log.info("the daily run of %s is not done; its emails wait", day)
        return Plan(day, ready=False)
    recover(session, day, lease=claim_lease(mailer))
    expired = expire(session, config, day)
    # Batches keep a content key whole up to what the backend takes in one hand-off (SendGrid: 1000).
    planned = plan(session, day, batch_size=_batch_size(config), chunk=max(1, mailer.max_recipients))
    planned.expired = expired
    return planned


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
        _number_batches(session, day, _batch_size(config), max(1, mailer.max_recipients))
    result.batches = due_batches(session)
    return result


def deliver_sync(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date) -> dict[str, Any]:
    """Plan and send every batch of day in this process (nothing when the day's run is not done).

    The result counts this run's work; retrying is every row of the day left waiting for a retry.
    """
    planned = prepare(session, config, mailer, day)
    totals = BatchResult(failed=planned.expired)
    for batch in planned.batches:
        result = send_batch(session, config, mailer, day, batch)
        totals.sent += result.sent
        totals.failed += result.failed
        totals.skipped += result.skipped
        totals.requests += result.requests
    return {"date": day.isoformat(), "waiting": not planned.ready, "planned": planned.created,
            "batches": len(planned.batches), "sent": totals.sent, "failed": totals.failed,
            "skipped": totals.skipped, "requests": totals.requests,
            "retrying": waiting_for_retry(session, day) if planned.ready else 0}
