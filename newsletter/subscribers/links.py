"""Signed links and the absolute URLs emails carry (the routes are part of the public interface).

Each purpose has its own salt, so a token for one never opens another, and every token is bound
to a fingerprint of the subscriber's address, so a deleted subscriber's links stop working.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from ..errors import InvalidToken
from ..models import SignupRequest, Subscriber

DAY = 24 * 3600
MAX_ID = 2**31 - 1  # row ids are 32-bit integers in PostgreSQL
CONFIRM = "repo-daily.confirm"
PREFERENCES = "repo-daily.preferences"
UNSUBSCRIBE = "repo-daily.unsubscribe"
PURPOSES = (CONFIRM, PREFERENCES, UNSUBSCRIBE)


def make_token(secret_key: str, purpose: str, payload: Mapping[str, Any]) -> str:
    """Sign payload for purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key, salt=purpose).dumps(payload)


def read_token(secret_key: str, purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    """Return the payload of token, or raise InvalidToken saying whether it expired or is invalid."""
    if not token or len(token) > 2000:
        raise InvalidToken("This link is invalid.")
    serializer = URLSafeTimedSerializer(secret_key, salt=purpose)
    try:
        payload = serializer.loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidToken("This link has expired.") from None
    except (BadSignature, UnicodeError, ValueError):
        raise InvalidToken("This link is invalid.") from None
    if not isinstance(payload, dict):
        raise InvalidToken("This link is invalid.")
    return payload


def _fingerprint(subscriber: Subscriber) -> str:
    # Binds a link to the address as well as the id, so a deleted row's id reused by SQLite
    # never opens another person's preferences.
    return hashlib.sha256(subscriber.email_key.encode()).hexdigest()[:16]


def confirm_token(secret_key: str, request: SignupRequest) -> str:
    return make_token(secret_key, CONFIRM, {"r": request.id, "h": _fingerprint(request.subscriber)})


def preferences_token(secret_key: str, subscriber: Subscriber) -> str:
    return make_token(secret_key, PREFERENCES, {"s": subscriber.id, "h": _fingerprint(subscriber)})


def unsubscribe_token(secret_key: str, subscriber: Subscriber) -> str:
    return make_token(secret_key, UNSUBSCRIBE, {"s": subscriber.id, "h": _fingerprint(subscriber)})


def _row_id(value: object) -> int | None:
    """A payload's id when it can name a row; a larger number would make the database raise."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    return None


def request_from_token(session: Session, secret_key: str, token: str, max_age_days: int) -> SignupRequest:
    payload = read_token(secret_key, CONFIRM, token, max_age=max_age_days * DAY)
    row_id = _row_id(payload.get("r"))
    request = session.get(SignupRequest, row_id) if row_id is not None else None
    if request is None or _fingerprint(request.subscriber) != payload.get("h"):
        raise InvalidToken("This confirmation link is no longer valid.")
    return request


def subscriber_from_token(session: Session, secret_key: str, purpose: str, token: str,
                          max_age_days: int | None = None) -> Subscriber:
    payload = read_token(secret_key, purpose, token,
                                max_age=max_age_days * DAY if max_age_days else None)
    row_id = _row_id(payload.get("s"))
    subscriber = session.get(Subscriber, row_id) if row_id is not None else None
    if subscriber is None or _fingerprint(subscriber) != payload.get("h"):
        raise InvalidToken("This link is no longer valid.")
    return subscriber


def confirm_url(config: Mapping[str, Any], signup: SignupRequest) -> str:
    return f"{config['BASE_URL']}/confirm/{confirm_token(config['SECRET_KEY'], signup)}"


def preferences_url(config: Mapping[str, Any], subscriber: Subscriber) -> str:
    return f"{config['BASE_URL']}/preferences/{preferences_token(config['SECRET_KEY'], subscriber)}"


def unsubscribe_url(config: Mapping[str, Any], subscriber: Subscriber) -> str:
    return f"{config['BASE_URL']}/unsubscribe/{unsubscribe_token(config['SECRET_KEY'], subscriber)}"
