"""One retry loop for every client of an outside service: GitHub, the LLM and SendGrid.

An attempt raises `TryAgain` when its failure is worth retrying (a 429, a 5xx, a timeout),
optionally with the wait the service asked for; anything else it raises goes straight through.
`Backoff.call` sleeps through the injected `sleep` between attempts and raises `GaveUp` once the
retries are spent or the service asks for a longer wait than `max_wait`, so callers map one
exception to their own error and tests run without real waiting.
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class TryAgain(Exception):
    """An attempt failed in a way another attempt may fix; wait is what the service asked for."""

    def __init__(self, reason: str, *, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class GaveUp(Exception):
    """No more attempts: the retries are spent, or the service asked for too long a wait.

    Attributes:
        reason: the last attempt's reason.
        attempts: how many attempts were made.
        refused_wait: the wait that was longer than max_wait, or None when the retries ran out.
        last: the last TryAgain, which may carry more detail for the caller.
    """

    def __init__(self, last: TryAgain, attempts: int, refused_wait: float | None = None) -> None:
        super().__init__(last.reason)
        self.reason = last.reason
        self.last = last
        self.attempts = attempts
        self.refused_wait = refused_wait


@dataclass(frozen=True)
class Backoff:
    """How often and how long to retry: exponential delays from `base`, capped, with optional jitter.

    Args:
        retries: attempts after the first one.
        base: the first delay in seconds; attempt n waits base * 2**n.
        cap: the longest computed delay (a wait the service asks for is not capped, only refused).
        max_wait: the longest wait accepted at all; asking for more gives up at once.
        jitter: up to this fraction of the delay is added at random, so workers hit by the same
            outage do not retry in lockstep.
        sleep: how to wait (tests pass a recorder).
    """

    retries: int = 3
    base: float = 1.0
    cap: float = float("inf")
    max_wait: float = 120.0
    jitter: float = 0.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int) -> float:
        """The computed delay before retrying after attempt (0-based)."""
        delay: float = min(self.base * 2 ** attempt, self.cap)
        return delay + random.uniform(0, delay * self.jitter) if self.jitter else delay

    def call(self, attempt: Callable[[int], T], *, what: str, logger: logging.Logger = log) -> T:
        """Run attempt(n) for n = 0, 1, ... until it returns; raises GaveUp when it must stop.

        Raises:
            GaveUp: the retries are spent, or a requested wait exceeds max_wait.
        """
        number = 0
        while True:
            try:
                return attempt(number)
            except TryAgain as failure:
                wait = failure.wait if failure.wait is not None else self.delay(number)
                if wait > self.max_wait:
                    raise GaveUp(failure, number + 1, refused_wait=wait) from failure
                if number >= self.retries:
                    raise GaveUp(failure, number + 1) from failure
                logger.warning("%s failed (%s); retry %d of %d in %.1f s", what, failure.reason, number + 1,
                               self.retries, wait)
                self.sleep(wait)
                number += 1


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a response asks to wait: retry-after-ms, or Retry-After as seconds or an HTTP date.

    Header names are matched without regard to case; None when there is no readable value.
    """
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    milliseconds = lower.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = lower.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def reset_wait(headers: Mapping[str, str] | None, name: str = "x-ratelimit-reset") -> float | None:
    """Seconds until the epoch time in a rate-limit reset header, or None when it is absent or unreadable."""
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    value = lower.get(name.lower(), "").strip()
    try:
        return max(float(value) - time.time(), 0.0) if value else None
    except ValueError:
        return None
