"""Mail backends behind one small protocol, `Mailer`: the fan-out never asks which backend it has.

outbox writes .eml files (development, the demo, tests), smtp talks to any SMTP server,
sendgrid posts to SendGrid's v3 mail/send API. A backend says how many recipients of identical
content it takes in one hand-off (`max_recipients`): 1000 for SendGrid, 1 for the others.
"""
from __future__ import annotations

import email.policy
import logging
import os
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from markupsafe import escape

from ..email.message import OutgoingMessage
from ..errors import ConfigError, DeliveryError
from ..retry import Backoff, GaveUp, TryAgain, reset_wait, retry_after
from ..text import header_value

log = logging.getLogger(__name__)


@dataclass
class Recipient:
    """One recipient of a group: their address, their own values for the placeholders, their headers."""

    delivery_id: int
    to: str
    substitutions: dict[str, str]
    headers: dict[str, str]


class Mailer(Protocol):
    """A mail backend: one message, or one content to up to max_recipients recipients."""

    name: str
    max_recipients: int

    def send(self, message: OutgoingMessage) -> str:
        """Hand over one message; returns the backend's message id. Raises DeliveryError."""
        ...

    def send_group(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> str:
        """Hand over one content for every recipient, with their own values substituted."""
        ...


def substitute(text: str, values: Mapping[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def personalize(subject: str, html: str, text: str, recipient: Recipient) -> OutgoingMessage:
    """One recipient's message from a group's content with their own values put back."""
    html_values = {k: str(escape(v)) for k, v in recipient.substitutions.items()}
    return OutgoingMessage(to=recipient.to, subject=substitute(subject, recipient.substitutions),
                           html=substitute(html, html_values), text=substitute(text, recipient.substitutions),
                           headers=dict(recipient.headers), custom_args={"delivery_id": str(recipient.delivery_id)})


class _OneByOne:
    """Backends without batching send a group as separate messages, one per chunk."""

    max_recipients = 1

    def send(self, message: OutgoingMessage) -> str:
        raise NotImplementedError

    def send_group(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> str:
        ids = [self.send(personalize(subject, html, text, r)) for r in recipients]
        return ",".join(ids)


def build_mime(message: OutgoingMessage, mail_from: str) -> EmailMessage:
    """Build the MIME message; every header value passes through clean_header."""
    mime = EmailMessage(policy=email.policy.SMTP)
    name, address = parseaddr(mail_from)
    mime["From"] = formataddr((header_value(name), header_value(address)))
    mime["To"] = header_value(message.to, 320)
    mime["Subject"] = header_value(message.subject, 250)
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(domain=(address.rpartition("@")[2] or "localhost"))
    mime["MIME-Version"] = "1.0"
    for key, value in message.headers.items():
        mime[header_value(key, 60)] = header_value(value, 2000)
    for key, value in message.custom_args.items():
        mime[f"X-Repo-Daily-{header_value(key, 40)}"] = header_value(value, 200)
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class OutboxMailer(_OneByOne):
    """Writes each message as an .eml file: for development, the demo and tests."""

    name = "outbox"

    def __init__(self, directory: str | os.PathLike[str], mail_from: str):
        self.directory = Path(directory)
        self.mail_from = mail_from

    def send(self, message: OutgoingMessage) -> str:
        mime = build_mime(message, self.mail_from)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Microseconds first, so a directory listing sorts messages in the order they were written.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(mime.as_bytes())
        os.replace(tmp, path)  # readers never see half a file
        log.info("wrote %s", path)
        return str(mime["Message-ID"])


class SmtpMailer(_OneByOne):
    """Sends through an SMTP server given as smtp://user:pass@host:port or smtps://..."""

    name = "smtp"

    def __init__(self, url: str, mail_from: str, timeout: float = 30):
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ConfigError(f"SMTP_URL must look like smtp://user:pass@host:port, got scheme {parsed.scheme!r}")
        self.implicit_tls = parsed.scheme == "smtps"
        self.host = parsed.hostname
        self.port = parsed.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        options = parse_qs(parsed.query)
        self.require_starttls = options.get("starttls", [""])[0] == "require"
        self.mail_from = mail_from
        self.timeout = timeout

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        connection.ehlo()
        if connection.has_extn("starttls"):
            connection.starttls(context=ssl.create_default_context())
            connection.ehlo()
        elif self.require_starttls:
            connection.quit()
            raise DeliveryError(f"{self.host}:{self.port} does not offer STARTTLS")
        return connection

    def send(self, message: OutgoingMessage) -> str:
        mime = build_mime(message, self.mail_from)
        try:
            with self._connect() as connection:
                if self.username:
                    connection.login(self.username, self.password or "")
                connection.send_message(mime)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery to {self.host}:{self.port} failed: {exc}") from exc
        return str(mime["Message-ID"])


class SendGridMailer:
    """Posts to SendGrid's v3 /mail/send with the official client.

    A group of recipients with identical content is one request of up to 1000 personalizations,
    each carrying the recipient's substitutions (own links), headers and delivery id. 429 and 5xx
    are retried with backoff, honouring Retry-After and X-RateLimit-Reset; other 4xx fail the
    request at once.
    """

    name = "sendgrid"
    max_recipients = 1000

    def __init__(self, api_key: str, mail_from: str, host: str = "https://api.sendgrid.com", *,
                 max_retries: int = 5, backoff: float = 1.0, max_wait: float = 300,
                 sleep: Callable[[float], None] = time.sleep):
        from sendgrid import SendGridAPIClient

        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.mail_from = mail_from
        self._backoff = Backoff(retries=max_retries, base=backoff, max_wait=max_wait, sleep=sleep)
        self.requests = 0

    def _sender(self) -> dict[str, str]:
        name, address = parseaddr(self.mail_from)
        sender = {"email": address}
        if name:
            sender["name"] = header_value(name)
        return sender

    @staticmethod
    def _personalization(to: str, headers: Mapping[str, str], custom_args: Mapping[str, str],
                         substitutions: Mapping[str, str] | None = None) -> dict[str, Any]:
        personalization: dict[str, Any] = {"to": [{"email": header_value(to, 320)}]}
        if headers:
            personalization["headers"] = {header_value(k, 60): header_value(v, 2000) for k, v in headers.items()}
        if custom_args:
            personalization["custom_args"] = {header_value(k, 40): header_value(v, 200) for k, v in custom_args.items()}
        if substitutions:
            personalization["substitutions"] = {k: header_value(v, 2000) for k, v in substitutions.items()}
        return personalization

    def body(self, message: OutgoingMessage) -> dict[str, Any]:
        return {
            "personalizations": [self._personalization(message.to, message.headers, message.custom_args)],
            "from": self._sender(),
            "subject": header_value(message.subject, 250),
            # SendGrid requires text/plain before text/html.
            "content": [{"type": "text/plain", "value": message.text}, {"type": "text/html", "value": message.html}],
        }

    def group_body(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> dict[str, Any]:
        return {
            "personalizations": [self._personalization(r.to, r.headers, {"delivery_id": str(r.delivery_id)},
                                                       r.substitutions) for r in recipients],
            "from": self._sender(),
            "subject": header_value(subject, 250),
            "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
        }

    def _post(self, body: dict[str, Any]) -> str:
        from python_http_client.exceptions import HTTPError

        def attempt(_number: int) -> str:
            self.requests += 1
            try:
                response = self.client.client.mail.send.post(request_body=body)
            except HTTPError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    raise DeliveryError(f"SendGrid refused the request: HTTP {status} {exc.body!r:.300}") from exc
                headers = dict(exc.headers.items()) if hasattr(exc.headers, "items") else {}
                wait = retry_after(headers)
                raise TryAgain(f"HTTP {status}", wait=reset_wait(headers) if wait is None else wait) from None
            except OSError as exc:
                raise TryAgain(f"network error {exc}") from None
            return (response.headers or {}).get("X-Message-Id", "") if response.headers else ""

        try:
            return self._backoff.call(attempt, what="SendGrid mail/send", logger=log)
        except GaveUp as exc:
            raise DeliveryError(f"SendGrid still failing after {exc.attempts} attempts ({exc.reason})") from None

    def send(self, message: OutgoingMessage) -> str:
        return self._post(self.body(message))

    def send_group(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> str:
        return self._post(self.group_body(subject, html, text, recipients))


def make_mailer(config: Mapping[str, Any]) -> Mailer:
    """The mailer MAIL_BACKEND names."""
    backend = config["MAIL_BACKEND"]
    if backend == "outbox":
        return OutboxMailer(config["OUTBOX_DIR"], config["MAIL_FROM"])
    if backend == "smtp":
        return SmtpMailer(config["SMTP_URL"], config["MAIL_FROM"], timeout=config["SMTP_TIMEOUT"])
    if backend == "sendgrid":
        return SendGridMailer(config["SENDGRID_API_KEY"], config["MAIL_FROM"], config["SENDGRID_API_HOST"])
    raise ConfigError(f"unknown MAIL_BACKEND {backend!r}")
