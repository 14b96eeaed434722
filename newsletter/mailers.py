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


class OutboxMailer:
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


class SmtpMailer:
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
    """Posts to SendGrid's v3 /mail/send with the official client."""

    name = "sendgrid"

    def __init__(self, api_key: str, mail_from: str, host: str = "https://api.sendgrid.com"):
        from sendgrid import SendGridAPIClient

        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.mail_from = mail_from

    def body(self, message: OutgoingMessage) -> dict:
        name, address = parseaddr(self.mail_from)
        personalization: dict = {"to": [{"email": clean_header(message.to, 320)}]}
        if message.headers:
            personalization["headers"] = {clean_header(k, 60): clean_header(v, 2000) for k, v in message.headers.items()}
        if message.custom_args:
            personalization["custom_args"] = {clean_header(k, 40): clean_header(v, 200)
                                              for k, v in message.custom_args.items()}
        sender = {"email": address}
        if name:
            sender["name"] = clean_header(name)
        return {
            "personalizations": [personalization],
            "from": sender,
            "subject": clean_header(message.subject, 250),
            # SendGrid requires text/plain before text/html.
            "content": [{"type": "text/plain", "value": message.text}, {"type": "text/html", "value": message.html}],
        }

    def send(self, message: OutgoingMessage) -> str:
        from python_http_client.exceptions import HTTPError

        try:
            response = self.client.client.mail.send.post(request_body=self.body(message))
        except HTTPError as exc:
            raise DeliveryError(f"SendGrid refused the message: HTTP {exc.status_code} {exc.body!r:.300}") from exc
        except OSError as exc:
            raise DeliveryError(f"SendGrid could not be reached: {exc}") from exc
        return response.headers.get("X-Message-Id", "") if response.headers else ""


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
