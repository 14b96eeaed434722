"""Mail backends: the outbox, a real SMTP server (aiosmtpd) on loopback, and the fake SendGrid API."""
from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from newsletter.delivery import mailers
from newsletter.delivery.mailers import OutboxMailer, SendGridMailer, SmtpMailer, make_mailer
from newsletter.email.message import OutgoingMessage
from newsletter.errors import DeliveryError
from newsletter.text import header_value

from .fakes.sendgrid import FakeSendGrid

HOSTILE = "Daily\r\nBcc: victim@example.org\nX-Evil: 1"


def _message(**overrides) -> OutgoingMessage:
    fields = dict(to="reader@example.com", subject="[Repo Daily] 2026-01-24 · 1 repository · 7 high",
                  html="<p>Hello <b>reader</b></p>", text="Hello reader",
                  headers={"List-Unsubscribe": "<https://x.example/unsubscribe/t>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
                  custom_args={"delivery_id": "42"})
    fields.update(overrides)
    return OutgoingMessage(**fields)


def test_clean_header_removes_line_breaks_and_bounds_length():
    assert header_value(HOSTILE) == "Daily Bcc: victim@example.org X-Evil: 1"
    assert "\u2028" not in header_value("a\u2028b")
    assert len(header_value("x" * 500, limit=100)) == 100


def test_outbox_writes_one_eml_per_message_with_both_parts(tmp_path):
    mailer = OutboxMailer(tmp_path, "Repo Daily <news@example.com>")
    mailer.send(_message())
    mailer.send(_message(subject=HOSTILE))
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2 and not list(tmp_path.glob("*.tmp"))
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert first["From"] == "Repo Daily <news@example.com>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["X-Repo-Daily-delivery_id"] == "42"
    assert first.get_body(("plain",)).get_content().strip() == "Hello reader"
    assert "<b>reader</b>" in first.get_body(("html",)).get_content()
    second = email.message_from_bytes(files[1].read_bytes(), policy=email.policy.default)
    assert second["Bcc"] is None and second["X-Evil"] is None
    assert "\n" not in second["Subject"]


class _Recorder(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp_server():
    handler = _Recorder()
    with socket.socket() as probe:  # aiosmtpd checks readiness on the port it was given, so not 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, handler
    controller.stop()


def test_smtp_delivers_to_a_real_server(smtp_server):
    controller, handler = smtp_server
    mailer = SmtpMailer(f"smtp://127.0.0.1:{controller.port}", "news@example.com", timeout=5)
    mailer.send(_message(subject=HOSTILE))
    assert len(handler.messages) == 1
    received = handler.messages[0]
    assert received["To"] == "reader@example.com"
    assert received["Bcc"] is None and received["X-Evil"] is None
    assert received["List-Unsubscribe"] == "<https://x.example/unsubscribe/t>"


def test_smtp_unreachable_server_is_a_delivery_error():
    mailer = SmtpMailer("smtp://127.0.0.1:1", "news@example.com", timeout=2)
    with pytest.raises(DeliveryError, match="127.0.0.1:1"):
        mailer.send(_message())


def test_smtp_require_starttls_refuses_plain_server(smtp_server):
    controller, handler = smtp_server
    mailer = SmtpMailer(f"smtp://127.0.0.1:{controller.port}?starttls=require", "news@example.com", timeout=5)
    with pytest.raises(DeliveryError, match="STARTTLS"):
        mailer.send(_message())
    assert handler.messages == []


def test_sendgrid_posts_the_v3_body():
    with FakeSendGrid() as fake:
        mailer = SendGridMailer(fake.api_key, "Repo Daily <news@example.com>", host=fake.url)
        mailer.send(_message(subject=HOSTILE))
        (body,) = fake.requests
    assert body["from"] == {"email": "news@example.com", "name": "Repo Daily"}
    assert body["subject"] == header_value(HOSTILE)
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    personalization = body["personalizations"][0]
    assert personalization["to"] == [{"email": "reader@example.com"}]
    assert personalization["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert personalization["custom_args"] == {"delivery_id": "42"}


def test_sendgrid_refusal_is_a_delivery_error():
    with FakeSendGrid() as fake:
        mailer = SendGridMailer("SG.wrong", "news@example.com", host=fake.url)
        with pytest.raises(DeliveryError, match="401"):
            mailer.send(_message())


def test_make_mailer_picks_the_backend(tmp_path):
    base = {"MAIL_FROM": "n@example.com", "OUTBOX_DIR": str(tmp_path), "SMTP_URL": "smtp://127.0.0.1:2525",
            "SMTP_TIMEOUT": 5.0, "SENDGRID_API_KEY": "SG.x", "SENDGRID_API_HOST": "http://127.0.0.1:9"}
    assert make_mailer({**base, "MAIL_BACKEND": "outbox"}).name == "outbox"
    assert make_mailer({**base, "MAIL_BACKEND": "smtp"}).port == 2525
    assert make_mailer({**base, "MAIL_BACKEND": "sendgrid"}).name == "sendgrid"


# Transient and permanent failures ------------------------------------------------------------------

def _recipient(delivery_id: int, to: str) -> mailers.Recipient:
    return mailers.Recipient(delivery_id, to, {}, {"List-Unsubscribe": f"<https://x.example/unsubscribe/{delivery_id}>"})


def test_smtp_connection_refused_is_transient():
    mailer = SmtpMailer("smtp://127.0.0.1:1", "news@example.com", timeout=2)
    with pytest.raises(mailers.TransientDeliveryError, match="127.0.0.1:1"):
        mailer.send(_message())


def test_smtp_refused_recipient_is_permanent(smtp_server):
    controller, handler = smtp_server

    class Refusing(Message):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 mailbox unavailable"

        def handle_message(self, message):
            raise AssertionError("nothing may arrive")

    controller.handler = Refusing()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{controller.port}", "news@example.com", timeout=5)
    with pytest.raises(DeliveryError, match="550") as caught:
        mailer.send(_message())
    assert not isinstance(caught.value, mailers.TransientDeliveryError)


def test_sendgrid_5xx_past_the_retries_is_transient_and_4xx_is_not():
    with FakeSendGrid() as fake:
        fake.fail_next(503, count=3)
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, max_retries=2, sleep=lambda _s: None)
        with pytest.raises(mailers.TransientDeliveryError, match="503"):
            mailer.send(_message())
        fake.fail_next(429, headers={"Retry-After": "3600"})  # longer than it may wait in one request
        with pytest.raises(mailers.TransientDeliveryError) as caught:
            mailer.send(_message())
        assert caught.value.retry_after == 3600
        fake.fail_next(413)
        with pytest.raises(DeliveryError, match="413") as refused:
            mailer.send(_message())
        assert not isinstance(refused.value, mailers.TransientDeliveryError)


def test_sendgrid_group_resends_without_the_recipients_sendgrid_names():
    with FakeSendGrid() as fake:
        fake.invalid_addresses.update({"bad@example.com", "worse@example.com"})
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=lambda _s: None)
        group = [_recipient(1, "a@example.com"), _recipient(2, "bad@example.com"), _recipient(3, "b@example.com"),
                 _recipient(4, "worse@example.com")]
        with pytest.raises(mailers.PartialDelivery) as caught:
            mailer.send_group("subject", "<p>html</p>", "text", group)
        assert sorted(caught.value.refused) == [2, 4] and caught.value.deferred == {}
        assert all("Does not contain a valid address" in why for why in caught.value.refused.values())
        assert caught.value.message_id
        assert fake.recipients() == ["a@example.com", "b@example.com"]
        # Every recipient refused: nothing is sent and each says why.
        with pytest.raises(mailers.PartialDelivery) as everyone:
            mailer.send_group("subject", "<p>html</p>", "text", [_recipient(5, "bad@example.com")])
        assert list(everyone.value.refused) == [5] and everyone.value.message_id == ""
        assert len(fake.requests) == 1


@pytest.mark.timeout(30)
def test_sendgrid_request_that_never_answers_times_out_as_transient():
    import time

    with FakeSendGrid() as fake:
        fake.hang_next(count=2)
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, timeout=0.5, max_retries=1,
                                sleep=lambda _s: None)
        started = time.monotonic()
        with pytest.raises(mailers.TransientDeliveryError, match="timed out"):
            mailer.send(_message())
        assert time.monotonic() - started < 5 and fake.attempts == 2


def test_sendgrid_keeps_one_connection_open_and_replaces_one_the_server_closed():
    with FakeSendGrid() as fake:
        mailer = SendGridMailer(fake.api_key, "news@example.com", host=fake.url, sleep=lambda _s: None)
        for _ in range(4):
            assert mailer.send(_message())
        fake.fail_next(503)  # an error answer keeps the connection too
        assert mailer.send(_message())
        assert fake.connections == 1 and len(fake.requests) == 5 and fake.attempts == 6
        fake.drop_connections()  # SendGrid closes idle connections
        assert mailer.send(_message())
        assert fake.connections == 2 and len(fake.requests) == 6 and fake.attempts == 7  # sent once, not retried


def test_sendgrid_unreachable_is_transient():
    mailer = SendGridMailer("SG.x", "news@example.com", host="http://127.0.0.1:9", max_retries=1, sleep=lambda _s: None)
    with pytest.raises(mailers.TransientDeliveryError, match="network error"):
        mailer.send(_message())


def test_make_mailer_gives_sendgrid_its_timeout():
    config = {"MAIL_BACKEND": "sendgrid", "MAIL_FROM": "n@example.com", "SENDGRID_API_KEY": "SG.x",
              "SENDGRID_API_HOST": "http://127.0.0.1:9", "SENDGRID_TIMEOUT": 0.25}
    assert make_mailer(config).timeout == 0.25
