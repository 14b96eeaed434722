"""Mail provider events applied to subscribers: hard bounces and complaints suppress, unsubscribes unsubscribe.

SendGrid's Event Webhook posts batches of events and retries whole batches, so every event is
recorded by its `sg_event_id` and handled once. Nothing here ever makes a subscriber receive mail
again: a suppressed subscriber stays suppressed whatever arrives later. Like subscriptions.py,
these functions take a session and leave committing to the caller.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import Delivery, Subscriber, WebhookEvent
from ..text import plain, storable_json
from . import subscriptions

log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
MAX_ID = 2**31 - 1  # delivery.id and webhook_event.delivery_id are 32-bit integers
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOOKUP_CHUNK = 500  # ids per IN (...) query, well under SQLite's bound-parameter limit

Action = Callable[[Session, Subscriber, str], Subscriber]


def _suppress(session: Session, subscriber: Subscriber, reason: str) -> Subscriber:
    return subscriptions.suppress(session, subscriber, reason)


def _unsubscribe(session: Session, subscriber: Subscriber, _reason: str) -> Subscriber:
    return subscriptions.unsubscribe(session, subscriber)


# A drop suppresses the address (SendGrid drops mail to addresses on its bounce, spam-report and
# invalid lists), except where the reason says nothing about the address: those would suppress
# everyone who was sent that day's email. An address on SendGrid's unsubscribe list is unsubscribed.
_NOT_ABOUT_THE_ADDRESS = ("spam content", "invalid smtpapi header", "exceeded quota", "quota",
                          "content", "smtpapi", "sender", "template", "attachment")
_DROP_ACTIONS: dict[str, Action] = {"unsubscribed address": _unsubscribe}


@dataclass
class Summary:
    """How many events of a batch were handled, had been handled before, or could not be used."""

    processed: int = 0  # recorded now, whether or not it changed a subscriber
    duplicates: int = 0  # its sg_event_id was recorded before, in this batch or an earlier one
    ignored: int = 0  # unusable (no sg_event_id, malformed fields) or about no subscriber of ours

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Event:
    event_id: str
    kind: str
    email: str | None
    delivery_id: int | None
    has_delivery_id: bool
    payload: dict[str, Any]

    def row(self) -> WebhookEvent:
        return WebhookEvent(provider=PROVIDER, event_id=self.event_id, event=self.kind, email=self.email,
                            delivery_id=self.delivery_id, payload=self.payload)


def apply_events(session: Session, events: Iterable[dict[str, Any]]) -> Summary:
    """Record each new event once and apply the ones that change a subscriber."""
    summary = Summary()
    parsed: list[_Event] = []
    for raw in events:
        event = _parse(raw)
        if event is None:
            summary.ignored += 1
        else:
            parsed.append(event)
    fresh = _record(session, parsed)
    summary.duplicates = len(parsed) - len(fresh)
    for event in fresh:
        if _apply(session, event):
            summary.processed += 1
        else:
            summary.ignored += 1
    return summary


def _parse(raw: object) -> _Event | None:
    if not isinstance(raw, dict):
        log.info("sendgrid event skipped: not an object")
        return None
    # JSON escapes can carry NUL and lone surrogates, which the database cannot store.
    raw = storable_json(raw)
    assert isinstance(raw, dict)
    event_id = _field(raw.get("sg_event_id"), 200)
    if event_id is None:
        log.info("sendgrid %r event skipped: no usable sg_event_id", _field(raw.get("event"), 40))
        return None
    kind = _field(raw.get("event"), 40)
    if kind is None:
        log.info("sendgrid event %r skipped: no usable event name", event_id)
        return None
    has_delivery_id = raw.get("delivery_id") is not None
    return _Event(event_id=event_id, kind=kind, email=_field(raw.get("email"), 320),
                  delivery_id=_int_id(raw.get("delivery_id")), has_delivery_id=has_delivery_id, payload=raw)


def _record(session: Session, events: list[_Event]) -> list[_Event]:
    """Insert a row for every event not recorded before; return those events, in batch order."""
    seen = _recorded_ids(session, [e.event_id for e in events])
    fresh = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)  # SendGrid may repeat an event within one batch too
            fresh.append(event)
    if not fresh:
        return fresh
    # One insert for the whole batch; only when a concurrent request recorded some of the same
    # events in the meantime does it fall back to one savepoint per event.
    try:
        with session.begin_nested():
            session.add_all([e.row() for e in fresh])
        return fresh
    except IntegrityError:
        log.info("sendgrid batch raced another request; recording its events one by one")
    recorded = []
    for event in fresh:
        try:
            with session.begin_nested():
                session.add(event.row())
            recorded.append(event)
        except IntegrityError:
            pass
    return recorded


def _recorded_ids(session: Session, event_ids: list[str]) -> set[str]:
    found: set[str] = set()
    unique = sorted(set(event_ids))
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        chunk = unique[start:start + _LOOKUP_CHUNK]
        found.update(session.scalars(select(WebhookEvent.event_id).where(WebhookEvent.event_id.in_(chunk))))
    return found


def _apply(session: Session, event: _Event) -> bool:
    """Apply one recorded event; False when it concerns no subscriber of ours."""
    action = _action(event)
    if action is None:
        return True  # delivered, open, click, deferred, soft bounces...: recorded, never acted on
    do, reason = action
    subscriber = subscriptions.find_subscriber(session, event.email) if event.email else None
    if subscriber is None:
        log.info("sendgrid %s event %r is for no known subscriber", event.kind, event.event_id)
        return False
    if event.has_delivery_id and not _delivery_matches(session, event.delivery_id, subscriber):
        # Another application sending through the same SendGrid account may use the same
        # custom arg; its unsubscribes are not ours to apply.
        log.warning("sendgrid %s event %r: delivery_id %r is not subscriber %s's; ignored",
                    event.kind, event.event_id, event.payload.get("delivery_id"), subscriber.id)
        return False
    before = subscriber.status
    do(session, subscriber, reason)
    if subscriber.status is not before:
        log.info("subscriber %s %s by sendgrid %s event %r", subscriber.id, subscriber.status.value,
                 event.kind, event.event_id)
    return True


def _action(event: _Event) -> tuple[Action, str] | None:
    payload = event.payload
    if event.kind == "bounce":
        # type "blocked" is a temporary refusal (reputation, rate limits): the address is fine.
        # Events from before SendGrid added `type` are hard bounces.
        if payload.get("type") not in (None, "", "bounce"):
            return None
        return _suppress, _reason("bounce", payload.get("status"), payload.get("reason"))
    if event.kind == "dropped":
        reason = _field(payload.get("reason"), 200, control_ok=True)
        key = (reason or "").strip().lower()
        if key in _DROP_ACTIONS:
            return _DROP_ACTIONS[key], _reason("dropped", reason)
        if any(word in key for word in _NOT_ABOUT_THE_ADDRESS):
            log.info("sendgrid dropped event %r (reason %r) does not concern the address", event.event_id, reason)
            return None
        return _suppress, _reason("dropped", reason)
    if event.kind == "spamreport":
        return _suppress, "spamreport"
    if event.kind in ("unsubscribe", "group_unsubscribe"):
        return _unsubscribe, event.kind
    return None


def _delivery_matches(session: Session, delivery_id: int | None, subscriber: Subscriber) -> bool:
    delivery = session.get(Delivery, delivery_id) if delivery_id is not None else None
    return delivery is not None and delivery.subscriber_id == subscriber.id


def _reason(kind: str, *details: object) -> str:
    """A one-line reason for the subscriber row, built from the provider's free text."""
    text = plain(" ".join(d for d in details if isinstance(d, str)))
    return f"{kind}: {text}"[:200] if text else kind


def _field(value: object, limit: int, control_ok: bool = False) -> str | None:
    """value when it is a non-empty string that fits its column, else None."""
    if not isinstance(value, str) or not value or len(value) > limit:
        return None
    if not control_ok and _CONTROL.search(value):
        return None
    return value


def _int_id(value: object) -> int | None:
    # Custom args arrive as strings; a number is accepted too, a bool or anything else is not.
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and 1 <= value <= MAX_ID:
        return value
    return None
