"""Whether the mail backend can deliver to an address whose local part is not ASCII (`用户@例子.广告`).

Such an address needs SMTPUTF8 (RFC 6531) all the way. The rule: only MAIL_BACKEND=smtp can, and only
when the SMTP server says so in its EHLO answer; the outbox and SendGrid cannot. The server is asked
once and the answer kept an hour per process (a failed attempt a minute), so signups do not each open
an SMTP connection. ASCII local parts never ask: international domains are sent in their ASCII form.
"""
from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

ANSWER_TTL = 3600.0
FAILURE_TTL = 60.0
MAX_TIMEOUT = 5.0  # seconds per SMTP step: a person is waiting for the form


class Smtputf8Support:
    """Call it: True when the configured backend delivers to non-ASCII local parts."""

    def __init__(self, config: Mapping[str, Any], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._answer: tuple[float, bool] | None = None  # (expires at, supported)
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        if self._config.get("MAIL_BACKEND") != "smtp":
            return False
        with self._lock:
            if self._answer is not None and self._answer[0] > self._clock():
                return self._answer[1]
            supported = self._ask()
            ttl = FAILURE_TTL if supported is None else ANSWER_TTL
            self._answer = (self._clock() + ttl, bool(supported))
            return bool(supported)

    def _ask(self) -> bool | None:
        """The server's EHLO answer about SMTPUTF8, after STARTTLS as the mailer does; None when unreachable."""
        url = urlparse(str(self._config.get("SMTP_URL") or ""))
        host = url.hostname
        if url.scheme not in ("smtp", "smtps") or not host:
            return None
        port = url.port or (465 if url.scheme == "smtps" else 25)
        timeout = min(float(self._config.get("SMTP_TIMEOUT") or MAX_TIMEOUT), MAX_TIMEOUT)
        try:
            if url.scheme == "smtps":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                            context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(host, port, timeout=timeout)
            with connection:
                connection.ehlo()
                if url.scheme == "smtp" and connection.has_extn("starttls"):
                    # Extensions may change once the connection is encrypted; the mailer sends after it.
                    connection.starttls(context=ssl.create_default_context())
                    connection.ehlo()
                supported = connection.has_extn("smtputf8")
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("could not ask %s:%s whether it takes SMTPUTF8: %s", host, port, exc)
            return None
        log.info("%s:%s %s SMTPUTF8", host, port, "offers" if supported else "does not offer")
        return supported
