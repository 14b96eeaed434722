"""The fan-out: every subscriber's email at each of their slots, sent once.

Life of a delivery:
1. planning.plan(now) inserts one pending row per subscriber whose slot has come (delivery/clock.py),
   with the window of commits it covers (first seen since their previous email, up to now), numbered
   into batches per local date.
2. send_batch(): one RQ job per batch renders each subscriber's email (assembly of sections rendered
   once per window) and hands it to the mailer in chunks: up to 1000 recipients of identical content
   for SendGrid, one message for SMTP and the outbox. Each chunk is claimed (pending → sending)
   right before the hand-off, in the transaction that marks the previous chunk sent: one commit per
   chunk. At most one chunk is ever `sending` (claimed, or handed over and not yet marked).
3. A transient failure (connection refused or reset, timeout, 429, 5xx once the mailer's own
   retries are spent) puts the chunk's rows back to pending with a next attempt time, backing off
   from RETRY_BASE to RETRY_CAP, and the day's other due rows wait as long; only due rows are sent.
   DELIVERY_RETRY_HOURS after a row was planned it stops being retried and is marked failed with
   its last error. A permanent failure is final at once.
4. A rerun, a retried job or a restarted worker sends only rows still pending; recovery.py deals
   with rows a killed worker left in flight and with the scheduler's sweep.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session, selectinload

from ..analysis.result import analyzer_model
from ..clock import clock_of, window_start
from ..email.digest import DigestRenderer, localize_times
from ..email.headers import SubscriberView
from ..errors import DeliveryError
from ..models import Delivery, DeliveryStatus, Frequency, Subscriber, utcnow
from ..reports import store
from ..reports.window import WindowReports
from ..subscribers import links
from .mailers import Mailer, PartialDelivery, Recipient, TransientDeliveryError
from .planning import Plan, plan
from .recovery import claim_lease, expire, recover
from .rows import (
    aware,
    batch_size,
    bulk,
    due,
    finish,
    gave_up,
    moved,
    retry_delay,
    retry_window,
    update_rows,
    waiting_for_retry,
)

log = logging.getLogger(__name__)


_renderers: dict[tuple[Any, ...], DigestRenderer] = {}
RENDERERS_KEPT = 4  # windows whose compiled sections a worker process keeps

def renderer_for(session: Session, config: Mapping[str, Any], delivery: Delivery,
                 private: frozenset[str] | None = None) -> DigestRenderer:
    """The renderer of a delivery's window, kept per worker process so sections are rendered once per
    window (and local date), not once per subscriber or per job."""
    subscriber = delivery.subscriber
    return window_renderer(session, config, delivery.date, aware(delivery.window_start), aware(delivery.window_end),
                           weekly=subscriber.frequency is Frequency.WEEKLY, private=private)

def window_renderer(session: Session, config: Mapping[str, Any], day: date, start: datetime, end: datetime,
                    weekly: bool = False, private: frozenset[str] | None = None) -> DigestRenderer:
    """The renderer of the commits first seen in (start, end], dated day; weekly: the weekly layout.

    Shared by the readers of every zone: commit times stay in UTC behind a mark until
    digest.localize_times gives each reader theirs.
    """
    if private is None:
        private = store.private_repositories(session)
    key = (config["BASE_URL"], day, start, end, weekly, private)
    renderer = _renderers.pop(key, None)
    if renderer is None:
        reports = WindowReports(session, start, end, analyzer_model(config), day, "UTC")
        renderer = DigestRenderer(config, day, reports, private, window=True, weekly=weekly)
    assert isinstance(renderer.reports, WindowReports)
    renderer.reports.session = session  # a report not built yet is read in this job's session
    _renderers[key] = renderer  # most recently used last
    while len(_renderers) > RENDERERS_KEPT:
        _renderers.pop(next(iter(_renderers)))
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
    accepted: tuple[list[int], str] | None = None  # (ids, message id) sent, marked with the next claim

def send_batch(session: Session, config: Mapping[str, Any], mailer: Mailer, day: date, batch: int) -> BatchResult:
    """Render and send the pending deliveries of one batch that are due, one claimed chunk at a time.

    Rows come in content-key order, so recipients of identical content arrive together and only
    one group's content is held in memory at a time. Once the backend fails for now, the batch stops
    and the day's other due rows wait for the same retry time.
    """
    work = _Batch(BatchResult(), retry_window(config))
    rows = list(session.scalars(select(Delivery).where(
        Delivery.date == day, Delivery.batch == batch, Delivery.status == DeliveryStatus.PENDING, due(utcnow()))
        .options(selectinload(Delivery.subscriber).selectinload(Subscriber.subscriptions))
        .order_by(Delivery.content_key, Delivery.id)))
    if not rows:
        return work.result
    private = store.private_repositories(session)
    size = max(1, mailer.max_recipients)
    group: Group | None = None
    for delivery in rows:
        subscriber = delivery.subscriber
        if not subscriber.receives_email or not subscriber.subscriptions:
            _skip(session, delivery.id, "subscriber no longer receives email", work.result)
            continue
        view = subscriber_view(config, subscriber, private)
        renderer = renderer_for(session, config, delivery, private)
        try:
            # Shared: placeholders where the subscriber's own address and links go, so identical
            # emails compare equal and one provider request can carry them all.
            digest = renderer.render(view, shared=True)
            if digest is not None:
                digest = localize_times(digest, subscriber.timezone, shared=True)
        except ValueError as exc:  # one subscriber's bad data must not stop the batch
            log.error("delivery %s cannot be rendered: %s", delivery.id, exc)
            finish(session, [delivery.id], DeliveryStatus.FAILED, error=f"cannot render: {exc}"[:2000])
            work.result.failed += 1
            continue
        if digest is None:
            _skip(session, delivery.id, _nothing_to_send(renderer, view), work.result)
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
    _mark_accepted(session, work)
    if work.halted is not None:
        # The backend is down: the other due rows (this batch's rest, other batches') wait as long,
        # rather than each batch job spending its own timeouts and retries on it.
        _postpone(session, *work.halted, work)
    session.commit()
    session.expire_all()  # the bulk updates bypassed the loaded rows
    return work.result

def _nothing_to_send(renderer: DigestRenderer, view: SubscriberView) -> str:
    """Why a subscriber gets no email: nothing notable, or their repositories were never fetched yet."""
    missing = renderer.missing(view)
    if missing and len(missing) == len({repo for repo, _threshold in view.subscriptions}):
        return "their repositories have not been fetched yet"
    if missing:
        return f"nothing at or above the thresholds ({', '.join(missing)} not fetched yet)"
    return "nothing at or above the thresholds"

def _skip(session: Session, delivery_id: int, reason: str, result: BatchResult) -> None:
    session.execute(update_rows().where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.SKIPPED, error=reason[:2000], updated_at=utcnow()))
    result.skipped += 1

def _send_chunk(session: Session, mailer: Mailer, group: Group, work: _Batch) -> None:
    """Claim the group's rows (pending → sending), hand them to the mailer, record the outcome."""
    ids = [r.delivery_id for r in group.recipients]
    claimed = _claim(session, ids, work)
    session.commit()  # also commits the previous chunk's outcome and the skips recorded since
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
        finish(session, mine, DeliveryStatus.FAILED, error=str(exc)[:2000])
        work.result.failed += len(chunk)
        return
    # Marked sent by the next chunk's claim (or at the end of the batch), in its commit: one statement
    # and one commit per chunk. A worker killed before that commit leaves these rows `sending`, which
    # recovery marks failed, never resent.
    work.accepted = (mine, message_id or "")
    work.result.sent += len(chunk)

def _claim(session: Session, ids: list[int], work: _Batch) -> set[int]:
    """Claim the rows of ids still pending and due (pending → sending) and mark the previous chunk's
    accepted rows sent. On PostgreSQL one statement does both (the mark as a data-modifying CTE);
    elsewhere two. Only rows still pending are claimed, so a concurrent or retried job claims none twice."""
    now = utcnow()
    claim = (update_rows().where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING, due(now))
             .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, claimed_by=_claimant(),
                     updated_at=now).returning(Delivery.id))
    connection = session.connection()
    if work.accepted is not None and connection.dialect.name == "postgresql":
        sent_ids, message_id = work.accepted
        work.accepted = None
        claim = claim.add_cte(_sent(sent_ids, message_id, now).returning(Delivery.id).cte("marked_sent"))
    else:
        _mark_accepted(session, work)
    return set(connection.execute(claim).scalars())

def _sent(ids: list[int], message_id: str, now: datetime) -> Update:
    return moved(ids, DeliveryStatus.SENT, now, message_id=message_id[:200], error=None)

def _mark_accepted(session: Session, work: _Batch) -> None:
    """Mark the rows the backend accepted sent (in the caller's transaction)."""
    if work.accepted is not None:
        ids, message_id = work.accepted
        work.accepted = None
        session.connection().execute(_sent(ids, message_id, utcnow()))

def _record_partial(session: Session, ids: list[int], outcome: PartialDelivery, work: _Batch) -> None:
    """Some of a chunk accepted, some refused for good, some to be tried again."""
    accepted = [i for i in ids if i not in outcome.refused and i not in outcome.deferred]
    if accepted:
        finish(session, accepted, DeliveryStatus.SENT, message_id=outcome.message_id[:200], error=None)
        work.result.sent += len(accepted)
    by_reason: dict[str, list[int]] = {}
    for delivery_id, why in outcome.refused.items():
        if delivery_id in ids:
            by_reason.setdefault(why, []).append(delivery_id)
    for why, refused in by_reason.items():
        finish(session, refused, DeliveryStatus.FAILED, error=why[:2000])
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
        deadline = aware(created_at) + work.window
        if now >= deadline:
            expired.append(delivery_id)
            attempts_made = max(attempts_made, attempts)
            continue
        wait = max(retry_delay(attempts), retry_after or 0.0)
        # The last try happens at the end of the window rather than never.
        waiting.setdefault(min(now + timedelta(seconds=wait), deadline), []).append(delivery_id)
    for at, group in waiting.items():
        finish(session, group, DeliveryStatus.PENDING, next_attempt_at=at, claimed_by=None, error=error[:2000])
        work.result.retrying += len(group)
    if expired:
        finish(session, expired, DeliveryStatus.FAILED, error=gave_up(error, work.window, attempts_made))
        work.result.failed += len(expired)
    return max(waiting, default=None)

def _postpone(session: Session, at: datetime, why: str, work: _Batch) -> None:
    """The pending rows due now, not tried because the backend just failed for now, wait until at."""
    postponed = session.execute(
        bulk(update(Delivery)).where(Delivery.status == DeliveryStatus.PENDING, due(utcnow()))
        .values(next_attempt_at=at, error=why[:2000], updated_at=utcnow()))
    work.result.retrying += postponed.rowcount  # type: ignore[attr-defined]
    session.commit()


@dataclass
class Preview:
    """What a subscriber's next email would hold if planned now (`newsletter preview`)."""

    date: date
    start: datetime
    end: datetime
    renderer: DigestRenderer

def preview(session: Session, config: Mapping[str, Any], subscriber: Subscriber, now: datetime | None = None) -> Preview:
    """The subscriber's next email as of now: the commits first seen since their last email's cut-off
    (or in the period before their next slot, for a first email), up to now."""
    end = (now or utcnow()).astimezone(UTC)
    clock = clock_of(subscriber)
    last = session.scalar(select(Delivery.window_end).where(Delivery.subscriber_id == subscriber.id)
                          .order_by(Delivery.slot.desc()).limit(1))
    slot = clock.next_slot(end)
    start = window_start(clock, slot, last)
    day = clock.local_date(slot)
    return Preview(day, start, end, window_renderer(session, config, day, start, end, weekly=clock.weekly))

def prepare(session: Session, config: Mapping[str, Any], mailer: Mailer, now: datetime | None = None) -> Plan:
    """Recover interrupted rows, fail rows past their retry window, plan the emails due at now."""
    recover(session, None, lease=claim_lease(mailer))
    expired = expire(session, config)
    # Batches keep a content key whole up to what the backend takes in one hand-off (SendGrid: 1000).
    planned = plan(session, now, batch_size=batch_size(config), chunk=max(1, mailer.max_recipients),
                   fetch_timeout=timedelta(seconds=int(config.get("JOB_TIMEOUT") or 1800)))
    planned.expired = expired
    return planned

def deliver_sync(session: Session, config: Mapping[str, Any], mailer: Mailer,
                 now: datetime | None = None) -> dict[str, Any]:
    """Plan the emails due at now and send every batch holding due rows, in this process.

    The result counts this run's work; retrying is every row left waiting for a retry.
    """
    planned = prepare(session, config, mailer, now)
    totals = BatchResult(failed=planned.expired)
    for day, numbers in planned.batches.items():
        for batch in numbers:
            result = send_batch(session, config, mailer, day, batch)
            totals.sent += result.sent
            totals.failed += result.failed
            totals.skipped += result.skipped
            totals.requests += result.requests
    return {"now": planned.now.isoformat(), "planned": planned.created, "batches": planned.batch_count,
            "sent": totals.sent, "failed": totals.failed, "skipped": totals.skipped, "requests": totals.requests,
            "retrying": waiting_for_retry(session)}
