"""Mail backends behind one small protocol, `Mailer`: the fan-out never asks which backend it has.

outbox writes .eml files (development, the demo, tests), smtp talks to any SMTP server,
sendgrid posts to SendGrid's v3 mail/send API. A backend says how many recipients of identical
content it takes in one hand-off (`max_recipients`): 1000 for SendGrid, 1 for the others.

Failures come in two kinds. `TransientDeliveryError`: the backend did not take the message for now
(connection refused or reset, a timeout, 429, 5xx once the in-request retries are spent, our
credentials refused): the fan-out tries again later. Any other `DeliveryError` is permanent for the
message (a refused recipient, content refused). `PartialDelivery` says which recipients of a group
were refused or put off while the others were accepted.
"""
from __future__ import annotations

import email.policy
import json
import logging
import os
import re
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
from typing import Any, NoReturn, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from ..email.headers import RAW_HEADERS
from ..email.message import OutgoingMessage
from ..email.placeholders import fill
from ..errors import ConfigError, DeliveryError
from ..retry import Backoff, GaveUp, TryAgain, reset_wait, retry_after
from ..text import header_value

log = logging.getLogger(__name__)


class TransientDeliveryError(DeliveryError):
    """The backend did not take the message for now; trying again later may work.

    retry_after: seconds the backend asked us to wait, when it said. whole_backend: False when only
    this recipient is affected (an SMTP server's 4xx to one RCPT), so other emails need not wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, whole_backend: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.whole_backend = whole_backend


class PartialDelivery(DeliveryError):
    """Part of a group was not accepted: refused for good, or deferred (try again later); the rest was.

    message_id is the backend's id for the accepted part ("" when nothing was accepted). Both maps go
    from delivery id to the reason.
    """

    def __init__(self, message_id: str, refused: Mapping[int, str], deferred: Mapping[int, str] | None = None,
                 retry_after: float | None = None) -> None:
        self.message_id = message_id
        self.refused = dict(refused)
        self.deferred = dict(deferred or {})
        self.retry_after = retry_after
        super().__init__(f"{len(self.refused)} recipients refused, {len(self.deferred)} put off: "
                         + "; ".join(sorted(set(self.refused.values()) | set(self.deferred.values())))[:500])


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
    # The longest one send_group can take (timeouts and in-request retries included), in seconds: a
    # claim younger than that may belong to a worker still waiting for the backend.
    longest_handoff: float

    def send(self, message: OutgoingMessage) -> str:
        """Hand over one message; returns the backend's message id. Raises DeliveryError."""
        ...

    def send_group(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> str:
        """Hand over one content for every recipient, with their own values filled in at the placeholders.

        Raises TransientDeliveryError or DeliveryError when nobody's email was taken, PartialDelivery
        when some recipients' were.
        """
        ...


def personalize(subject: str, html: str, text: str, recipient: Recipient) -> OutgoingMessage:
    """One recipient's message from a group's content, their own values filled in at the placeholders only."""
    values = recipient.substitutions
    return OutgoingMessage(to=recipient.to, subject=fill(subject, values), html=fill(html, values),
                           text=fill(text, values), headers=dict(recipient.headers),
                           custom_args={"delivery_id": str(recipient.delivery_id)})


class _OneByOne:
    """Backends without batching send a group as separate messages, one per chunk."""

    max_recipients = 1

    def send(self, message: OutgoingMessage) -> str:
        raise NotImplementedError

    def send_group(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> str:
        if len(recipients) == 1:
            return self.send(personalize(subject, html, text, recipients[0]))
        ids: list[str] = []
        refused: dict[int, str] = {}
        deferred: dict[int, str] = {}
        waits: list[float] = []
        for recipient in recipients:
            try:
                ids.append(self.send(personalize(subject, html, text, recipient)))
            except TransientDeliveryError as exc:
                deferred[recipient.delivery_id] = str(exc)
                waits += [exc.retry_after] if exc.retry_after is not None else []
            except DeliveryError as exc:
                refused[recipient.delivery_id] = str(exc)
        if refused or deferred:
            raise PartialDelivery(",".join(ids), refused, deferred, max(waits, default=None))
        return ",".join(ids)


# RFC 2047 encoded words are not allowed in List-Unsubscribe (RFC 2369: a list of <URL>s), and
# Gmail and Yahoo ignore a header so written, losing one-click unsubscribe. The standard policy
# encodes any header with a token too long to fold, such as an unsubscribe URL, so those headers
# are set raw and folded by us; refold_source="none" keeps the policy from refolding them.
_POLICY = email.policy.SMTP.clone(refold_source="none")
_ITEM = re.compile(r"<[^<>]*>")


def raw_header(name: str, value: str) -> str:
    """value folded only between its <...> items when the line would be long, never inside one."""
    items = _ITEM.findall(value)
    if len(name) + 2 + len(value) <= 78 or len(items) < 2 or ", ".join(items) != value:
        return value
    return ",\n ".join(items)


def build_mime(message: OutgoingMessage, mail_from: str) -> EmailMessage:
    """Build the MIME message; every header value passes through clean_header."""
    mime = EmailMessage(policy=_POLICY)
    name, address = parseaddr(mail_from)
    mime["From"] = formataddr((header_value(name), header_value(address)))
    mime["To"] = header_value(message.to, 320)
    mime["Subject"] = header_value(message.subject, 250)
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(domain=(address.rpartition("@")[2] or "localhost"))
    mime["MIME-Version"] = "1.0"
    for key, value in message.headers.items():
        key, value = header_value(key, 60), header_value(value, 2000)
        if key in RAW_HEADERS and value.isascii():
            mime.set_raw(key, raw_header(key, value))
        else:
            mime[key] = value
    for key, value in message.custom_args.items():
        mime[f"X-Repo-Daily-{header_value(key, 40)}"] = header_value(value, 200)
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class OutboxMailer(_OneByOne):
    """Writes each message as an .eml file: for development, the demo and tests."""

    name = "outbox"
    longest_handoff = 60.0

    def __init__(self, directory: str | os.PathLike[str], mail_from: str):
        self.directory = Path(directory)
        self.mail_from = mail_from

    def send(self, message: OutgoingMessage) -> str:
        mime = build_mime(message, self.mail_from)
        # Microseconds first, so a directory listing sorts messages in the order they were written.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        tmp = path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(mime.as_bytes())
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:  # a full disk or a missing mount: the email can go once it is fixed
            raise TransientDeliveryError(f"cannot write {path}: {exc}") from exc
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
        # The timeout bounds each step (connect, greeting, each command, the data): about a dozen.
        self.longest_handoff = 12 * timeout

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
            # The server's setup, not the email: fixed (or SMTP_URL changed), the email can still go.
            raise TransientDeliveryError(f"{self.host}:{self.port} does not offer STARTTLS")
        return connection

    def send(self, message: OutgoingMessage) -> str:
        mime = build_mime(message, self.mail_from)
        where = f"{self.host}:{self.port}"
        try:
            with self._connect() as connection:
                if self.username:
                    connection.login(self.username, self.password or "")
                connection.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            replies = "; ".join(f"{code} {_text(reply)}" for code, reply in exc.recipients.values())
            text = f"SMTP server {where} refused {message.to}: {replies}"
            if all(400 <= code < 500 for code, _reply in exc.recipients.values()):
                raise TransientDeliveryError(text, whole_backend=False) from exc
            raise DeliveryError(text) from exc
        except smtplib.SMTPDataError as exc:
            text = f"SMTP server {where} refused the message to {message.to}: {exc.smtp_code} {_text(exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500:
                raise TransientDeliveryError(text) from exc
            raise DeliveryError(text) from exc  # 5xx to the content (size, spam): sending it again changes nothing
        except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address and no SMTPUTF8
            raise DeliveryError(f"SMTP server {where} cannot take the message to {message.to}: {exc}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientDeliveryError(f"SMTP server {where} refused our login ({exc.smtp_code}): check the "
                                         "credentials in SMTP_URL") from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Refused or reset connections, timeouts, 4xx greetings, a refused sender: the server's
            # state or our setup, not this email; it is tried again later.
            raise TransientDeliveryError(f"SMTP delivery to {where} failed: {exc}") from exc
        return str(mime["Message-ID"])


def _text(reply: bytes | str) -> str:
    return header_value(reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply, 300)


class _Refused(Exception):
    """SendGrid answered a 4xx other than 429: the request as it is will not be taken."""

    def __init__(self, status: int, body: bytes | str | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")

    def error(self) -> DeliveryError:
        """The error for everyone in the request."""
        text = f"SendGrid refused the request: HTTP {self.status} {self.body[:300]!r}"
        if self.status in (401, 403):
            # Our API key, not the email: once the key is fixed the email can still go.
            return TransientDeliveryError(f"{text}; check SENDGRID_API_KEY")
        return DeliveryError(text)

    def named(self, count: int) -> dict[int, str]:
        """Personalizations the errors name ({index: message}), e.g. field personalizations.3.to.0.email."""
        try:
            errors = json.loads(self.body).get("errors") or []
        except (ValueError, AttributeError):
            return {}
        named: dict[int, str] = {}
        for error in errors if isinstance(errors, list) else []:
            match = _PERSONALIZATION.match(str((error or {}).get("field") or "")) if isinstance(error, dict) else None
            if match is None or int(match.group(1)) >= count:
                return {}  # an error about the request as a whole: leaving recipients out cannot fix it
            named[int(match.group(1))] = header_value(error.get("message") or "refused", 300)
        return named


_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)\.")


class KeepAlive:
    """POSTs over one connection kept open between requests (a urllib3 pool of one per host).

    python_http_client, under the official SendGrid client, builds a urllib opener and formats the
    whole payload for a debug line on every request, then opens a new connection (a TCP and TLS
    handshake with SendGrid) for it; for a fan-out of thousands of requests that is most of the
    cost of sending. urllib3 retries nothing here (a POST sent twice could be two emails): the
    caller's backoff decides. A pooled connection the server closed while idle is noticed before
    reuse and replaced. Raises TimeoutError for a request unanswered in time, OSError for network
    errors (refused, reset, closed mid-answer).
    """

    def __init__(self) -> None:
        import urllib3

        self.pool = urllib3.PoolManager(num_pools=2, maxsize=1, retries=False)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        """The response (status, headers, data), whatever its status."""
        import urllib3

        try:
            return self.pool.request("POST", url, body=body, headers=dict(headers), retries=False,
                                     timeout=urllib3.Timeout(connect=timeout, read=timeout))
        except urllib3.exceptions.NewConnectionError as exc:  # refused, unreachable (a TimeoutError to urllib3)
            raise OSError(str(exc.__cause__ or exc.__context__ or exc)) from None
        except urllib3.exceptions.TimeoutError as exc:
            raise TimeoutError(str(exc)) from None
        except urllib3.exceptions.HTTPError as exc:  # reset, closed mid-answer, a protocol error
            raise OSError(str(exc.__cause__ or exc.__context__ or exc)) from None


class SendGridMailer:
    """Posts to SendGrid's v3 /mail/send with the official client.

    A group of recipients with identical content is one request of up to 1000 personalizations,
    each carrying the recipient's substitutions (own links), headers and delivery id. 429, 5xx and
    network errors (a request unanswered after `timeout` seconds included) are retried with backoff,
    honouring Retry-After and X-RateLimit-Reset, then raise TransientDeliveryError; a wait longer
    than max_wait is not slept in the request but handed back as retry_after. A 400 whose errors
    name personalizations is sent again without those recipients (PartialDelivery says who); other
    4xx fail the request at once (401 and 403, our key, as transient).
    """

    name = "sendgrid"
    max_recipients = 1000
    MAX_SPLITS = 3  # requests sent again without named recipients, at most, per group

    def __init__(self, api_key: str, mail_from: str, host: str = "https://api.sendgrid.com", *,
                 timeout: float = 30, max_retries: int = 5, backoff: float = 1.0, max_wait: float = 60,
                 sleep: Callable[[float], None] = time.sleep):
        from sendgrid import SendGridAPIClient

        self.client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        # The official client's URL and headers (authorization, user agent); KeepAlive sends the request.
        send = self.client.client.mail.send
        self.url = send._build_url(None)
        self.headers = {**send.request_headers, "Content-Type": "application/json"}
        self.transport = KeepAlive()
        self.mail_from = mail_from
        self.timeout = timeout
        self._backoff = Backoff(retries=max_retries, base=backoff, max_wait=max_wait, sleep=sleep)
        self.requests = 0
        one_post = (max_retries + 1) * timeout + max_retries * max_wait
        self.longest_handoff = (self.MAX_SPLITS + 1) * one_post

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
        """One request, retried within itself; raises _Refused or TransientDeliveryError."""
        data = json.dumps(body).encode("utf-8")

        def attempt(_number: int) -> str:
            self.requests += 1
            try:
                # Always with a timeout: a server that accepts and never answers would hold the worker
                # (and its claimed rows) forever.
                response = self.transport.post(self.url, data, self.headers, self.timeout)
            except TimeoutError:
                raise TryAgain(f"no answer within {self.timeout:g} s (timed out)") from None
            except OSError as exc:
                raise TryAgain(f"network error {exc}") from None
            status = response.status
            if status == 429 or status >= 500:
                headers = dict(response.headers.items())
                wait = retry_after(headers)
                raise TryAgain(f"HTTP {status}", wait=reset_wait(headers) if wait is None else wait)
            if status >= 300:
                raise _Refused(status, response.data)
            return str(response.headers.get("X-Message-Id", ""))

        try:
            return self._backoff.call(attempt, what="SendGrid mail/send", logger=log)
        except GaveUp as exc:
            raise TransientDeliveryError(f"SendGrid still failing after {exc.attempts} attempts ({exc.reason})",
                                         retry_after=exc.refused_wait) from None

    def send(self, message: OutgoingMessage) -> str:
        try:
            return self._post(self.body(message))
        except _Refused as exc:
            raise exc.error() from None

    def send_group(self, subject: str, html: str, text: str, recipients: Sequence[Recipient]) -> str:
        remaining = list(recipients)
        refused: dict[int, str] = {}
        for _split in range(self.MAX_SPLITS + 1):
            if not remaining:
                break
            try:
                message_id = self._post(self.group_body(subject, html, text, remaining))
            except _Refused as exc:
                named = exc.named(len(remaining))
                if not named:
                    error: DeliveryError = exc.error()
                    if not refused:
                        raise error from None
                    self._partial(refused, remaining, error)
                # SendGrid refuses the whole request for one bad address: leave those out, send the rest.
                for index, why in named.items():
                    refused[remaining[index].delivery_id] = f"SendGrid refused {remaining[index].to}: {why}"
                remaining = [r for i, r in enumerate(remaining) if i not in named]
                continue
            except TransientDeliveryError as exc:
                if not refused:
                    raise
                self._partial(refused, remaining, exc)
            if refused:
                raise PartialDelivery(message_id, refused)
            return message_id
        if remaining:
            # Still refusing new recipients after MAX_SPLITS resends: the rest are tried again later.
            self._partial(refused, remaining, TransientDeliveryError(
                f"SendGrid kept refusing recipients after {self.MAX_SPLITS} resends"))
        raise PartialDelivery("", refused)

    @staticmethod
    def _partial(refused: dict[int, str], remaining: Sequence[Recipient], error: DeliveryError) -> NoReturn:
        """Raise PartialDelivery: the named recipients refused, the rest failed with error (nothing accepted)."""
        if isinstance(error, TransientDeliveryError):
            raise PartialDelivery("", refused, {r.delivery_id: str(error) for r in remaining}, error.retry_after)
        raise PartialDelivery("", {**refused, **{r.delivery_id: str(error) for r in remaining}})


def make_mailer(config: Mapping[str, Any]) -> Mailer:
    """The mailer MAIL_BACKEND names."""
    backend = config["MAIL_BACKEND"]
    if backend == "outbox":
        return OutboxMailer(config["OUTBOX_DIR"], config["MAIL_FROM"])
    if backend == "smtp":
        return SmtpMailer(config["SMTP_URL"], config["MAIL_FROM"], timeout=config["SMTP_TIMEOUT"])
    if backend == "sendgrid":
        return SendGridMailer(config["SENDGRID_API_KEY"], config["MAIL_FROM"], config["SENDGRID_API_HOST"],
                              timeout=float(config.get("SENDGRID_TIMEOUT") or 30))
    raise ConfigError(f"unknown MAIL_BACKEND {backend!r}")
