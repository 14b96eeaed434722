"""Mail provider webhooks: SendGrid's Signed Event Webhook. The view verifies; suppressions.py acts."""
from __future__ import annotations

import functools
import json
import logging
import re
import time
from typing import NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from werkzeug.exceptions import HTTPException

from ..subscribers import suppressions
from .extensions import csrf
from .site import db

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
# SendGrid posts a batch every 30 seconds or at 768 KB, whichever comes first; the site-wide
# MAX_CONTENT_LENGTH (64 KiB) would refuse full batches, which SendGrid retries for a day and drops.
MAX_BODY = 1024 * 1024
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    """JSON for the provider rather than the site's HTML error page (a body over MAX_BODY: 413)."""
    return _error(exc.code or 500, exc.name)


@functools.lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook | None:
    try:
        verifier = EventWebhook(public_key.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    # An RSA or other key would make verify_signature raise instead of answering False.
    if not isinstance(verifier.public_key, ec.EllipticCurvePublicKey):
        return None
    return verifier


def _signed(verifier: EventWebhook, payload: str, signature: str, timestamp: str) -> bool:
    try:
        valid: bool = verifier.verify_signature(payload, signature, timestamp)
    except ValueError:  # the signature is not base64
        return False
    return valid


def _fresh(timestamp: str, max_age: int) -> bool:
    # A captured request replayed within max_age is harmless: its events are recorded already.
    return bool(_TIMESTAMP.fullmatch(timestamp)) and abs(time.time() - int(timestamp)) <= max_age


def _reject_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON; PostgreSQL would refuse to store them in the payload column.
    raise ValueError(f"{name} is not valid JSON")


@bp.post("/webhooks/sendgrid")
@csrf.exempt  # type: ignore[untyped-decorator]  # flask_wtf ships no type information
def sendgrid() -> ResponseReturnValue:
    """Verify a signed batch of SendGrid events and apply it; answers counts as JSON."""
    request.max_content_length = MAX_BODY
    config = current_app.config
    public_key = config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not public_key:
        log.warning("sendgrid webhook refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return _error(403, "webhook signature verification is not configured")
    verifier = _verifier(public_key)
    if verifier is None:
        log.error("sendgrid webhook refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 EC public key")
        return _error(403, "webhook signature verification is not configured")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    if not signature or not timestamp:
        return _error(403, "missing signature")
    if not _fresh(timestamp, config["SENDGRID_WEBHOOK_MAX_AGE"]):
        log.warning("sendgrid webhook refused: timestamp %r outside the accepted window", timestamp[:20])
        return _error(403, "stale or invalid timestamp")
    payload = request.get_data(as_text=True)
    if not _signed(verifier, payload, signature, timestamp):
        log.warning("sendgrid webhook refused: bad signature")
        return _error(403, "invalid signature")
    try:
        events = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _error(400, "body is not valid JSON")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _error(400, "body must be a JSON array of event objects")
    summary = suppressions.apply_events(db(), events)
    db().commit()
    log.info("sendgrid webhook: %(processed)d processed, %(duplicates)d duplicates, %(ignored)d ignored",
             summary.as_dict())
    return jsonify(summary.as_dict())
