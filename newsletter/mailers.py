"""Mail backends behind one small interface: `send(message) -> message id`.

outbox writes .eml files (development, the demo, tests), smtp talks to any SMTP server,
sendgrid posts to SendGrid's v3 mail/send API.
"""
from __future__ import annotations

import email.policy
import logging
import os
import re
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from .errors import ConfigError, DeliveryError

log = logging.getLogger(__name__)

_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def clean_header(value: str, limit: int = 200) -> str:
    """Make outside text safe for a header: no line breaks or control characters, bounded length."""
    value = _HEADER_UNSAFE.sub(" ", str(value)).strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


@dataclass
class OutgoingMessage:
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)  # e.g. delivery id, for webhooks


def substitute(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def personalize(subject: str, html: str, text: str, recipient) -> OutgoingMessage:
    """One recipient's message from a group's content with their own values put back."""
    from markupsafe import escape

    html_values = {k: str(escape(v)) for k, v in recipient.substitutions.items()}
    return OutgoingMessage(to=recipient.to, subject=substitute(subject, recipient.substitutions),
                           html=substitute(html, html_values), text=substitute(text, recipient.substitutions),
                           headers=dict(recipient.headers), custom_args={"delivery_id": str(recipient.delivery_id)})


class _OneByOne:
    """Backends without batching send a group as separate messages, one per chunk."""

    max_recipients = 1

    def send_group(self, subject: str, html: str, text: str, recipients: list) -> str:
        ids = [self.send(personalize(subject, html, text, r)) for r in recipients]
        return ",".join(ids)


def build_mime(message: OutgoingMessage, mail_from: str) -> EmailMessage:
    """Build the MIME message; every header value passes through clean_header."""
    mime = EmailMessage(policy=email.policy.SMTP)
    name, address = parseaddr(mail_from)
    mime["From"] = formataddr((clean_header(name), clean_header(address)))
    mime["To"] = clean_header(message.to, 320)
    mime["Subject"] = clean_header(message.subject, 250)
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(domain=(address.rpartition("@")[2] or "localhost"))
    mime["MIME-Version"] = "1.0"
    for key, value in message.headers.items():
        mime[clean_header(key, 60)] = clean_header(value, 2000)
    for key, value in message.custom_args.items():
        mime[f"X-Repo-Daily-{clean_header(key, 40)}"] = clean_header(value, 200)
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class OutboxMailer(_OneByOne):
    """Writes each message as an .eml file: for development, the demo and tests."""

    name = "outbox"

    def __init__(self, directory: str | os.PathLike, mail_from: str):
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
                 max_retries: int = 5, backoff: float = 1.0, max_wait: float = 300, sleep=time.sleep):
        from sendgrid import SendGridAPIClient

        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.mail_from = mail_from
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.requests = 0

    def _sender(self) -> dict:
        name, address = parseaddr(self.mail_from)
        sender = {"email": address}
        if name:
            sender["name"] = clean_header(name)
        return sender

    @staticmethod
    def _personalization(to: str, headers: dict, custom_args: dict, substitutions: dict | None = None) -> dict:
        personalization: dict = {"to": [{"email": clean_header(to, 320)}]}
        if headers:
            personalization["headers"] = {clean_header(k, 60): clean_header(v, 2000) for k, v in headers.items()}
        if custom_args:
            personalization["custom_args"] = {clean_header(k, 40): clean_header(v, 200) for k, v in custom_args.items()}
        if substitutions:
            personalization["substitutions"] = {k: clean_header(v, 2000) for k, v in substitutions.items()}
        return personalization

    def body(self, message: OutgoingMessage) -> dict:
        return {
            "personalizations": [self._personalization(message.to, message.headers, message.custom_args)],
            "from": self._sender(),
            "subject": clean_header(message.subject, 250),
            # SendGrid requires text/plain before text/html.
            "content": [{"type": "text/plain", "value": message.text}, {"type": "text/html", "value": message.html}],
        }

    def group_body(self, subject: str, html: str, text: str, recipients: list) -> dict:
        return {
            "personalizations": [self._personalization(r.to, r.headers, {"delivery_id": str(r.delivery_id)},
                                                       r.substitutions) for r in recipients],
            "from": self._sender(),
            "subject": clean_header(subject, 250),
            "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
        }

    def _post(self, body: dict) -> str:
        from python_http_client.exceptions import HTTPError

        attempt = 0
        while True:
            self.requests += 1
            try:
                response = self.client.client.mail.send.post(request_body=body)
                return (response.headers or {}).get("X-Message-Id", "") if response.headers else ""
            except HTTPError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    raise DeliveryError(f"SendGrid refused the request: HTTP {status} {exc.body!r:.300}") from exc
                wait = self._wait(exc.headers, attempt)
                reason = f"HTTP {status}"
            except OSError as exc:
                wait, reason = self.backoff * 2 ** attempt, f"network error {exc}"
            attempt += 1
            if attempt > self.max_retries or wait > self.max_wait:
                raise DeliveryError(f"SendGrid still failing after {attempt} attempts ({reason})")
            log.warning("SendGrid %s; retrying in %.1f s", reason, wait)
            self.sleep(wait)

    def _wait(self, headers, attempt: int) -> float:
        headers = headers or {}
        retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        reset = headers.get("X-RateLimit-Reset") if hasattr(headers, "get") else None
        if reset:
            try:
                return max(0.0, float(reset) - time.time())
            except ValueError:
                pass
        return self.backoff * 2 ** attempt

    def send(self, message: OutgoingMessage) -> str:
        return self._post(self.body(message))

    def send_group(self, subject: str, html: str, text: str, recipients: list) -> str:
        return self._post(self.group_body(subject, html, text, recipients))


def make_mailer(config: dict):
    """The mailer MAIL_BACKEND names."""
    backend = config["MAIL_BACKEND"]
    if backend == "outbox":
        return OutboxMailer(config["OUTBOX_DIR"], config["MAIL_FROM"])
    if backend == "smtp":
        return SmtpMailer(config["SMTP_URL"], config["MAIL_FROM"], timeout=config["SMTP_TIMEOUT"])
    if backend == "sendgrid":
        return SendGridMailer(config["SENDGRID_API_KEY"], config["MAIL_FROM"], config["SENDGRID_API_HOST"])
    raise ConfigError(f"unknown MAIL_BACKEND {backend!r}")
