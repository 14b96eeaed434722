"""The subscribe form's rate limit (RATELIMIT_SUBSCRIBE), counted by hand rather than by a decorator.

A decorator counts every POST to /, so asking for another repository row (a POST without
JavaScript) or an expired page cost a person their attempts, and the 429 it raised was an error page
that lost everything typed. Here only a real submission counts, and the view decides what a refused
one looks like: the same form, filled in, saying when to try again. The counters live in the
limiter's storage (Redis) under the same keys the decorator used (prefix, client address, web.index).
"""
from __future__ import annotations

import logging
import math
import time

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import parse_many

from .extensions import limiter

log = logging.getLogger(__name__)

SCOPE = "web.index"


def spend_submission() -> int | None:
    """Count one subscribe submission from this client; None when allowed, else seconds to wait.

    A refused submission is not counted, so waiting the time given is always enough. When the
    storage cannot be reached the submission is allowed (as RATELIMIT_SWALLOW_ERRORS does).
    """
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return None
    items = parse_many(config["RATELIMIT_SUBSCRIBE"])
    keys = [config.get("RATELIMIT_KEY_PREFIX") or "", get_remote_address(), SCOPE]
    keys = [key for key in keys if key]
    try:
        strategy = limiter.limiter
        waits = []
        for item in items:
            if not strategy.test(item, *keys):
                reset_at, _remaining = strategy.get_window_stats(item, *keys)
                waits.append(max(1, math.ceil(reset_at - time.time())))
        if waits:
            return max(waits)
        for item in items:
            strategy.hit(item, *keys)
    except Exception as exc:  # the storage is down: a signup must not fail for it
        log.warning("rate limit storage unavailable, subscribe submission allowed: %s", exc)
    return None
