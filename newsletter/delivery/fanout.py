"""The daily fan-out: one Delivery row per (subscriber, report date), sent once.

Life of a day's delivery:
1. plan(): stream active subscribers (keyset pages) and insert a pending Delivery row for each,
   keyed (subscriber, date) so a rerun inserts nothing twice; each row carries a content key (the
   subscriber's language, repositories, thresholds), and rows are cut into numbered batches that
   keep equal keys together, so identical emails can share one provider request.
2. send_batch(): one RQ job per batch renders each subscriber's email (assembly of sections rendered
   once per day) and hands it to the mailer in chunks: up to 1000 recipients of identical content
   for SendGrid, one message for SMTP and the outbox. Each chunk is claimed (pending → sending) in
   its own transaction right before the hand-off and marked sent (or failed) right after.
3. A rerun, a retried job or a restarted worker sends only rows still pending. A row left in
   `sending` belonged to the one chunk a killed worker was handing to the backend when it died: the
   backend may or may not have taken it, so recover() marks it failed ("interrupted") and it is
   never sent again — at most one chunk is affected, reported, not repeated.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from markupsafe import escape
from sqlalchemy import ColumnElement, Executable, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from ..email.digest import DigestRenderer, RenderedDigest
from ..email.headers import SubscriberView
from ..errors import DeliveryError
from ..models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus, Subscription, utcnow
from ..reports import store
from ..subscribers import links
from .mailers import Mailer, Recipient

log = logging.getLogger(__name__)

PAGE = 1000  # subscribers read per keyset page
DEFAULT_BATCH_SIZE = 500  # deliveries per RQ job


def _active() -> ColumnElement[bool]:
    return (Subscriber.status == SubscriberStatus.CONFIRMED) & Subscriber.paused.is_(False)


def iter_content_keys(session: Session, page: int = PAGE) -> Iterator[tuple[int, str]]:
    """(subscriber id, content key) of every active subscriber with subscriptions, one keyset page
    at a time: plain rows, never all subscribers in memory, no ORM objects per subscriber."""
    last = 0
    while True:
        ids = session.scalars(select(Subscriber.id).where(_active(), Subscriber.id > last)
                              .order_by(Subscriber.id).limit(page)).all()
        if not ids:
            return
        wanted: dict[int, list[tuple[str, str]]] = {}
        languages: dict[int, str] = {}
        rows = session.execute(
            select(Subscription.subscriber_id, Subscriber.language, Subscription.repo, Subscription.threshold)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscription.subscriber_id.in_(ids)))
        for subscriber_id, language, repo, threshold in rows:
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
    date: date
    created: int = 0
    batches: list[int] = field(default_factory=list)


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
    result.batches = _number_batches(session, day, batch_size, chunk, start=existing_max + 1)
    unsent = session.scalars(select(Delivery.batch).distinct().where(
        Delivery.date == day, Delivery.status == DeliveryStatus.PENDING, Delivery.batch.is_not(None)))
    result.batches = sorted(set(result.batches) | {batch for batch in unsent if batch is not None})
    return result


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


def _number_batches(session: Session, day: date, batch_size: int, chunk: int, start: int) -> list[int]:
    """Give unnumbered rows batch numbers; a content key is split only at multiples of `chunk`."""
    rows = session.execute(select(Delivery.id, Delivery.content_key).where(
        Delivery.date == day, Delivery.batch.is_(None)).order_by(Delivery.content_key, Delivery.id)
        .execution_options(yield_per=PAGE))
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

_renderers: dict[tuple[str, date, datetime | None], DigestRenderer] = {}


def renderer_for(session: Session, config: Mapping[str, Any], day: date) -> DigestRenderer:
    """The day's renderer, kept per worker process so sections are rendered once, not once per job."""
    key = (config["BASE_URL"], day, store.day_stamp(session, day))
    renderer = _renderers.get(key)
    if renderer is None:
        _renderers.clear()
        renderer = _renderers[key] = DigestRenderer(config, day, store.day_reports(session, day))
    return renderer


def subscriber_view(config: Mapping[str, Any], subscriber: Subscriber) -> SubscriberView:
    return SubscriberView(
        email=subscriber.email, language=subscriber.language,
        subscriptions=tuple(sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions)),
        preferences_url=links.preferences_url(config, subscriber),
        unsubscribe_url=links.unsubscribe_url(config, subscriber),
        send_empty=subscriber.send_empty)


# Templating for providers that substitute per-recipient values ------------------------------------

PLACEHOLDERS = {"email": "-rd-email-", "preferences_url": "-rd-preferences-", "unsubscribe_url": "-rd-unsubscribe-"}


@dataclass
class Group:
    """Recipients whose email is the same once their own address and links are substituted."""

    subject: str
    html: str
    text: str
    recipients: list[Recipient] = field(default_factory=list)


def _escape_forms(value: str) -> list[str]:
    forms = [str(escape(value)), value]
    return sorted(set(forms), key=len, reverse=True)


def templatize(digest: RenderedDigest, view: SubscriberView) -> tuple[tuple[str, str, str], dict[str, str]]:
    """Replace the subscriber's own values by placeholders: (subject, html, text) and the values."""
    values = {"unsubscribe_url": view.unsubscribe_url, "preferences_url": view.preferences_url, "email": view.email}
    html, text, subject = digest.html, digest.text, digest.subject
    for name, value in values.items():
        placeholder = PLACEHOLDERS[name]
        for form in _escape_forms(value):
            html = html.replace(form, placeholder)
        text = text.replace(value, placeholder)
        subject = subject.replace(value, placeholder)
    return (subject, html, text), {PLACEHOLDERS[k]: v for k, v in values.items()}


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


def send_batch(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date, batch: int) -> BatchResult:
    """Render and send the pending deliveries of one batch, one claimed chunk at a time.

    Rows come in content-key order, so recipients of identical content arrive together and only
    one group's content is held in memory at a time.
    """
    result = BatchResult()
    rows = list(session.scalars(select(Delivery).where(
        Delivery.date == day, Delivery.batch == batch, Delivery.status == DeliveryStatus.PENDING)
        .options(selectinload(Delivery.subscriber).selectinload(Subscriber.subscriptions))
        .order_by(Delivery.content_key, Delivery.id)))
    if not rows:
        return result
    renderer = renderer_for(session, config, day)
    size = max(1, mailer.max_recipients)
    group: Group | None = None
    content: tuple[str, str, str] | None = None
    for delivery in rows:
        subscriber = delivery.subscriber
        if not subscriber.receives_email or not subscriber.subscriptions:
            _skip(session, delivery.id, "subscriber no longer receives email", result)
            continue
        view = subscriber_view(config, subscriber)
        try:
            digest = renderer.render(view)
        except ValueError as exc:  # one subscriber's bad data must not stop the batch
            log.error("delivery %s cannot be rendered: %s", delivery.id, exc)
            _finish(session, [delivery.id], DeliveryStatus.FAILED, error=f"cannot render: {exc}"[:2000])
            result.failed += 1
            continue
        if digest is None:
            _skip(session, delivery.id, "nothing at or above the thresholds", result)
            continue
        this_content, substitutions = templatize(digest, view)
        if group is not None and (this_content != content or len(group.recipients) >= size):
            _send_chunk(session, mailer, group, result)
            group = None
        if group is None:
            group, content = Group(*this_content), this_content
        group.recipients.append(Recipient(delivery.id, subscriber.email, substitutions, dict(digest.headers)))
    if group is not None:
        _send_chunk(session, mailer, group, result)
    session.commit()
    session.expire_all()  # the bulk updates bypassed the loaded rows
    return result


def _skip(session: Session, delivery_id: int, reason: str, result: BatchResult) -> None:
    session.execute(_bulk(update(Delivery)).where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.SKIPPED, error=reason, updated_at=utcnow()))
    result.skipped += 1


def _finish(session: Session, ids: list[int], status: DeliveryStatus, **values: Any) -> None:
    now = utcnow()
    if status is DeliveryStatus.SENT:
        values["sent_at"] = now
    session.execute(_bulk(update(Delivery)).where(Delivery.id.in_(ids)).values(status=status, updated_at=now, **values))
    session.commit()


def _send_chunk(session: Session, mailer: Mailer, group: Group, result: BatchResult) -> None:
    """Claim the group's rows (pending → sending), hand them to the mailer, record the outcome."""
    ids = [r.delivery_id for r in group.recipients]
    # Claim: only rows still pending are ours; a concurrent or retried job claims none twice.
    claimed = set(session.scalars(
        _bulk(update(Delivery)).where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, claimed_by=_claimant(),
                updated_at=utcnow())
        .returning(Delivery.id)))
    session.commit()  # also commits the skips recorded before this chunk
    chunk = [r for r in group.recipients if r.delivery_id in claimed]
    if not chunk:
        return
    result.requests += 1
    try:
        message_id = mailer.send_group(group.subject, group.html, group.text, chunk)
    except DeliveryError as exc:
        log.error("delivery of %d emails failed: %s", len(chunk), exc)
        _finish(session, [r.delivery_id for r in chunk], DeliveryStatus.FAILED, error=str(exc)[:2000])
        result.failed += len(chunk)
        return
    _finish(session, [r.delivery_id for r in chunk], DeliveryStatus.SENT, message_id=(message_id or "")[:200],
            error=None)
    result.sent += len(chunk)


def recover(session: Session, day: date, lease: timedelta = timedelta(minutes=10)) -> int:
    """Mark deliveries stuck in `sending` by a dead worker as failed ("interrupted"); never resend them.

    A row is stuck when its claimant process is gone (same host) or its claim is older than lease.
    """
    now = utcnow()
    stuck = []
    host = socket.gethostname()
    for delivery in session.scalars(select(Delivery).where(Delivery.date == day,
                                                           Delivery.status == DeliveryStatus.SENDING)):
        claimant_host, _, pid = (delivery.claimed_by or "").partition(":")
        dead = claimant_host == host and pid.isdigit() and not _alive(int(pid))
        if dead or now - delivery.updated_at.replace(tzinfo=now.tzinfo) > lease:
            stuck.append(delivery.id)
    if stuck:
        session.execute(_bulk(update(Delivery)).where(Delivery.id.in_(stuck)).values(
            status=DeliveryStatus.FAILED, updated_at=now,
            error="interrupted while being handed to the mail backend; not resent to avoid a duplicate"))
        session.commit()
        log.warning("%d deliveries of %s were in flight when their worker died; marked failed", len(stuck), day)
    return len(stuck)


def _alive(pid: int) -> bool:
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


def summary(session: Session, day: date) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).where(Delivery.date == day).group_by(Delivery.status))
    counts = {s.value: 0 for s in DeliveryStatus}
    counts.update({status.value: n for status, n in rows})
    return counts



# Orchestration -----------------------------------------------------------------------------------

def prepare(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date) -> Plan:
    """Recover interrupted rows, then plan the day's deliveries."""
    recover(session, day)
    # Batches keep a content key whole up to what the backend takes in one hand-off (SendGrid: 1000).
    return plan(session, day, batch_size=config.get("DELIVERY_BATCH_SIZE") or DEFAULT_BATCH_SIZE,
                chunk=max(1, mailer.max_recipients))


def deliver_sync(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date) -> dict[str, Any]:
    """Plan and send every batch of day in this process."""
    planned = prepare(session, config, mailer, day)
    totals = BatchResult()
    for batch in planned.batches:
        result = send_batch(session, config, mailer, day, batch)
        totals.sent += result.sent
        totals.failed += result.failed
        totals.skipped += result.skipped
        totals.requests += result.requests
    return {"date": day.isoformat(), "planned": planned.created, "batches": len(planned.batches),
            "sent": totals.sent, "failed": totals.failed, "skipped": totals.skipped, "requests": totals.requests}
