"""Signed links. Each purpose has its own salt, so a token for one never opens another."""
from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import InvalidToken

CONFIRM = "repo-daily.confirm"
PREFERENCES = "repo-daily.preferences"
UNSUBSCRIBE = "repo-daily.unsubscribe"
PURPOSES = (CONFIRM, PREFERENCES, UNSUBSCRIBE)


def make_token(secret_key: str, purpose: str, payload: dict) -> str:
    """Sign payload for purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key, salt=purpose).dumps(payload)


def read_token(secret_key: str, purpose: str, token: str, max_age: int | None = None) -> dict:
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
