"""Subscribers and their subscriptions: double opt-in, preferences, unsubscribe.

Every change of a subscriber's state goes through these functions; the site, the CLI and the
webhooks only call them. They take a session and leave committing to the caller.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import InvalidToken, ValidationError
from ..models import Frequency, SignupRequest, Subscriber, SubscriberStatus, Subscription, Threshold, utcnow
from .validation import check_repo_list, email_key, normalize_email, parse_language, parse_schedule

log = logging.getLogger(__name__)

CONFIRMATION_WINDOW = timedelta(hours=24)


@dataclass
class SignupOutcome:
    """What a subscribe request did; `request` is None when no confirmation must be sent (the address
    is suppressed, or had its confirmation emails of the day)."""

    subscriber: Subscriber
    request: SignupRequest | None


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email_key == email_key(email)))


def _get_or_create(session: Session, email: str, language: str) -> Subscriber:
    subscriber = find_subscriber(session, email)
    if subscriber is not None:
        return subscriber
    subscriber = Subscriber(email=email, email_key=email_key(email), language=language,
                            status=SubscriberStatus.PENDING)
    # A concurrent request may insert the same address first; the savepoint keeps our session usable.
    try:
        with session.begin_nested():
            session.add(subscriber)
    except IntegrityError:
        subscriber = find_subscriber(session, email)
        if subscriber is None:
            raise
    return subscriber


def request_subscription(session: Session, email: str, repos: list[tuple[str, Threshold]], language: str,
                         source: str = "web", *, smtputf8: Callable[[], bool] | None = None,
                         confirmations_per_day: int | None = None,
                         schedule: dict[str, object] | None = None) -> SignupOutcome:
    """Record a subscription to be confirmed; changes nothing on an existing subscriber.

    schedule: the clock asked for (validation.parse_schedule), applied on confirmation; None keeps an
    existing subscriber's clock, and gives a new one the defaults of their language.

    smtputf8: whether the mail backend takes a non-ASCII local part (see normalize_email).
    confirmations_per_day: at most this many requests, so confirmation emails, per address in 24 hours
    (the site's CONFIRM_EMAILS_PER_DAY; None for the operator); beyond it nothing is recorded or sent.
    """
    email = normalize_email(email, smtputf8)
    language = parse_language(language)
    repos = check_repo_list(repos)
    subscriber = _get_or_create(session, email, language)
    if subscriber.status is SubscriberStatus.SUPPRESSED:
        # The address bounced or complained: sending it a confirmation would repeat that.
        return SignupOutcome(subscriber, None)
    if confirmations_per_day is not None:
        sent = _recent_requests(session, subscriber)
        if sent >= confirmations_per_day:
            # The client-address rate limit cannot stop many clients flooding one inbox. The caller
            # shows the usual page, so nobody learns anything about the address from this.
            log.warning("signup for subscriber %s not recorded and no confirmation sent: %d confirmation "
                        "emails in the last 24 hours (CONFIRM_EMAILS_PER_DAY=%d)", subscriber.id, sent,
                        confirmations_per_day)
            return SignupOutcome(subscriber, None)
    request = SignupRequest(subscriber=subscriber, repos=[[r, t.value] for r, t in repos], language=language,
                            source=source, schedule=dict(schedule) if schedule is not None else None)
    session.add(request)
    session.flush()
    return SignupOutcome(subscriber, request)


def _recent_requests(session: Session, subscriber: Subscriber) -> int:
    """Signup requests (each sent a confirmation) of subscriber in the last 24 hours."""
    # Lock the subscriber's row (PostgreSQL) so concurrent signups for one address count one by one.
    session.execute(select(Subscriber.id).where(Subscriber.id == subscriber.id).with_for_update())
    return session.scalar(select(func.count()).select_from(SignupRequest).where(
        SignupRequest.subscriber_id == subscriber.id,
        SignupRequest.created_at > utcnow() - CONFIRMATION_WINDOW)) or 0


def confirm_request(session: Session, request_id: int) -> Subscriber:
    """Apply a signup request: confirm the subscriber and add or update its repositories.

    A request the operator made (`newsletter subscribe`, source "cli") grants its repositories: only
    such a subscription may name a private repository.
    """
    request = session.get(SignupRequest, request_id)
    if request is None:
        raise InvalidToken("This confirmation link is no longer valid.")
    subscriber = request.subscriber
    if subscriber.status is SubscriberStatus.SUPPRESSED:
        raise InvalidToken("This address can no longer receive email from us.")
    if request.confirmed_at is not None:
        return subscriber  # a second click on the same link changes nothing
    now = utcnow()
    fresh_start = subscriber.status is not SubscriberStatus.CONFIRMED
    wanted = [(repo, Threshold(threshold)) for repo, threshold in request.repos]
    granted = request.source == "cli"
    if fresh_start:
        _replace_subscriptions(subscriber, wanted, granted)
    else:
        _merge_subscriptions(subscriber, wanted, granted)
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.language = request.language
    if request.schedule is not None:
        set_schedule(subscriber, request.schedule)
    elif fresh_start and subscriber.confirmed_at is None:
        set_schedule(subscriber, parse_schedule(subscriber.language))
    subscriber.confirmed_at = now
    subscriber.next_slot_at = None
    subscriber.unsubscribed_at = None
    subscriber.paused = False if fresh_start else subscriber.paused
    request.confirmed_at = now
    session.flush()
    return subscriber


def subscribe_confirmed(session: Session, email: str, repos: list[tuple[str, Threshold]], language: str,
                        smtputf8: Callable[[], bool] | None = None,
                        schedule: dict[str, object] | None = None) -> Subscriber:
    """Confirm at once without a confirmation email (operators' --confirmed); the repositories are granted."""
    outcome = request_subscription(session, email, repos, language, source="cli", smtputf8=smtputf8,
                                   schedule=schedule)
    if outcome.request is None:
        raise ValidationError("address_suppressed", email=outcome.subscriber.email)
    return confirm_request(session, outcome.request.id)


def _merge_subscriptions(subscriber: Subscriber, wanted: list[tuple[str, Threshold]], granted: bool = False) -> None:
    by_repo = {s.repo: s for s in subscriber.subscriptions}
    for repo, threshold in wanted:
        if repo in by_repo:
            by_repo[repo].threshold = threshold
            by_repo[repo].granted = bool(by_repo[repo].granted) or granted
        else:
            subscriber.subscriptions.append(Subscription(repo=repo, threshold=threshold, granted=granted))
    check_repo_list([(s.repo, s.threshold) for s in subscriber.subscriptions])


def _replace_subscriptions(subscriber: Subscriber, wanted: list[tuple[str, Threshold]], granted: bool = False) -> None:
    # A subscription kept from before keeps its grant: a preferences save must not drop what the
    # operator granted.
    by_repo = {s.repo: s for s in subscriber.subscriptions}
    keep = []
    for repo, threshold in wanted:
        subscription = by_repo.pop(repo, None) or Subscription(repo=repo, granted=False)
        subscription.threshold = threshold
        subscription.granted = bool(subscription.granted) or granted
        keep.append(subscription)
    subscriber.subscriptions[:] = keep


def set_schedule(subscriber: Subscriber, schedule: dict[str, Any]) -> None:
    """Apply a clock from validation.parse_schedule."""
    subscriber.timezone = str(schedule["timezone"])
    subscriber.hour = int(schedule["hour"])
    subscriber.frequency = Frequency(str(schedule["frequency"]))
    subscriber.weekday = int(schedule["weekday"])
    subscriber.next_slot_at = None  # the planner works out the next slot of the new clock


def update_preferences(session: Session, subscriber: Subscriber, repos: list[tuple[str, Threshold]],
                       language: str, paused: bool, send_empty: bool,
                       schedule: dict[str, object] | None = None) -> Subscriber:
    """Set exactly these repositories and settings (and the clock, when given)."""
    if subscriber.status in (SubscriberStatus.SUPPRESSED, SubscriberStatus.UNSUBSCRIBED):
        raise ValidationError("preferences_unsubscribed")
    language = parse_language(language)
    repos = check_repo_list(repos)
    if schedule is not None:
        set_schedule(subscriber, schedule)
    _replace_subscriptions(subscriber, repos)
    subscriber.language = language
    subscriber.paused = bool(paused)
    subscriber.send_empty = bool(send_empty)
    session.flush()
    return subscriber


def pause(session: Session, subscriber: Subscriber) -> Subscriber:
    """Stop the daily email but keep the subscription, to resume from preferences; idempotent."""
    if subscriber.status in (SubscriberStatus.SUPPRESSED, SubscriberStatus.UNSUBSCRIBED):
        raise ValidationError("preferences_unsubscribed")
    subscriber.paused = True
    session.flush()
    return subscriber


def only_high(session: Session, subscriber: Subscriber) -> Subscriber:
    """Set every repository's threshold to high, so the email holds only the most important commits."""
    if subscriber.status in (SubscriberStatus.SUPPRESSED, SubscriberStatus.UNSUBSCRIBED):
        raise ValidationError("preferences_unsubscribed")
    for subscription in subscriber.subscriptions:
        subscription.threshold = Threshold.HIGH
    session.flush()
    return subscriber


def unsubscribe(session: Session, subscriber: Subscriber) -> Subscriber:
    """Stop all email to subscriber at once; idempotent."""
    if subscriber.status in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = utcnow()
        session.flush()
    return subscriber


def suppress(session: Session, subscriber: Subscriber, reason: str) -> Subscriber:
    """Never send to subscriber again (hard bounce, complaint)."""
    if subscriber.status is not SubscriberStatus.SUPPRESSED:
        subscriber.status = SubscriberStatus.SUPPRESSED
        subscriber.suppressed_at = utcnow()
        subscriber.suppressed_reason = reason[:200]
        session.flush()
    return subscriber


# Who reads what -----------------------------------------------------------------------------

def _active() -> ColumnElement[bool]:
    return (Subscriber.status == SubscriberStatus.CONFIRMED) & Subscriber.paused.is_(False)


def watched_repositories(session: Session) -> dict[str, set[str]]:
    """Each repository some active subscriber watches, with the languages they read."""
    rows = session.execute(
        select(Subscription.repo, Subscriber.language)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id).where(_active()))
    watched: dict[str, set[str]] = {}
    for repo, language in rows:
        watched.setdefault(repo, set()).add(language)
    return watched


def languages_for(session: Session, repo: str) -> list[str]:
    """The languages active subscribers of repo read (English when nobody does any more)."""
    languages = set(session.scalars(
        select(Subscriber.language).distinct()
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.repo == repo, _active())))
    return sorted(languages) or ["en"]
