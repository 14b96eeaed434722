"""SendGrid's signed Event Webhook: signature checks, event handling, idempotency, through the real database."""
from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter import create_app
from newsletter.models import Delivery, Subscriber, SubscriberStatus, Threshold, WebhookEvent
from newsletter.subscribers import subscriptions, suppressions

URL = "/webhooks/sendgrid"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: str) -> str:
    """What SendGrid sends: base64 of the DER ECDSA-SHA256 signature over timestamp + body."""
    return base64.b64encode(private_key.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def config(config, signing_key):
    config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = public_key_b64(signing_key)
    return config


def post(client, key, body, timestamp: str | None = None, signed_body: str | None = None):
    """POST body (a JSON-able value or raw text) signed with key; signed_body signs something else."""
    text = body if isinstance(body, str) else json.dumps(body)
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {SIGNATURE: sign(key, timestamp, text if signed_body is None else signed_body), TIMESTAMP: timestamp}
    return client.post(URL, data=text.encode(), headers=headers, content_type="application/json")


def event(kind: str, email: str, **fields) -> dict:
    return {"email": email, "event": kind, "timestamp": int(time.time()), "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", **fields}


def hard_bounce(email: str, **fields) -> dict:
    fields = {"type": "bounce", "status": "5.1.1",
              "reason": "550 5.1.1 The email account that you tried to reach does not exist.", **fields}
    return event("bounce", email, **fields)


def confirmed(session, email: str) -> int:
    subscriber = subscriptions.subscribe_confirmed(session, email, [("rq/rq", Threshold.LOW)], "en")
    session.commit()
    return subscriber.id


def reload(session, subscriber_id: int) -> Subscriber:
    session.expire_all()
    return session.get(Subscriber, subscriber_id)


def status(session, subscriber_id: int) -> SubscriberStatus:
    return reload(session, subscriber_id).status


def recorded(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(WebhookEvent))


# Events ---------------------------------------------------------------------------------------

def test_signed_batch_applies_each_event(client, session, signing_key):
    bounced, complained, leaving, reading = (confirmed(session, f"{n}@example.com")
                                             for n in ("bounced", "complained", "leaving", "reading"))
    batch = [hard_bounce("bounced@example.com"), event("spamreport", "complained@example.com"),
             event("unsubscribe", "leaving@example.com"), event("delivered", "reading@example.com"),
             event("open", "reading@example.com"), event("processed", "reading@example.com")]
    response = post(client, signing_key, batch)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"processed": 6, "duplicates": 0, "ignored": 0}
    subscriber = reload(session, bounced)
    assert subscriber.status is SubscriberStatus.SUPPRESSED and subscriber.suppressed_at is not None
    assert subscriber.suppressed_reason == "bounce: 5.1.1 550 5.1.1 The email account that you tried to reach does not exist."
    assert reload(session, complained).suppressed_reason == "spamreport"
    assert status(session, complained) is SubscriberStatus.SUPPRESSED
    assert status(session, leaving) is SubscriberStatus.UNSUBSCRIBED
    assert reload(session, leaving).unsubscribed_at is not None
    assert status(session, reading) is SubscriberStatus.CONFIRMED
    assert recorded(session) == 6


def test_blocked_bounce_and_other_events_change_nobody(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    batch = [event("bounce", "ada@example.com", type="blocked", status="4.0.0", reason="421 try again later"),
             event("deferred", "ada@example.com", response="400 try again later", attempt="5"),
             event("click", "ada@example.com", url="https://example.com"),
             event("group_resubscribe", "ada@example.com"), event("something_new", "ada@example.com")]
    response = post(client, signing_key, batch)
    assert response.get_json() == {"processed": 5, "duplicates": 0, "ignored": 0}
    assert status(session, subscriber) is SubscriberStatus.CONFIRMED


def test_bounce_without_type_and_drop_without_reason_suppress(client, session, signing_key):
    legacy, dropped = confirmed(session, "legacy@example.com"), confirmed(session, "dropped@example.com")
    batch = [event("bounce", "legacy@example.com", status="5.1.1", reason="550 no such user"),
             event("dropped", "dropped@example.com")]
    assert post(client, signing_key, batch).get_json()["processed"] == 2
    assert status(session, legacy) is SubscriberStatus.SUPPRESSED
    assert status(session, dropped) is SubscriberStatus.SUPPRESSED


def test_dropped_acts_only_when_the_address_is_at_fault(client, session, signing_key):
    content, bounced, invalid, leaving = (confirmed(session, f"{n}@example.com")
                                          for n in ("content", "bounced", "invalid", "leaving"))
    batch = [event("dropped", "content@example.com", reason="Spam Content (if spam checker app enabled)"),
             event("dropped", "content@example.com", reason="Invalid SMTPAPI header"),
             event("dropped", "bounced@example.com", reason="Bounced Address"),
             event("dropped", "invalid@example.com", reason="Invalid"),
             event("dropped", "leaving@example.com", reason="Unsubscribed Address")]
    assert post(client, signing_key, batch).get_json()["processed"] == 5
    assert status(session, content) is SubscriberStatus.CONFIRMED
    assert reload(session, bounced).suppressed_reason == "dropped: Bounced Address"
    assert status(session, invalid) is SubscriberStatus.SUPPRESSED
    assert status(session, leaving) is SubscriberStatus.UNSUBSCRIBED


def test_group_unsubscribe_and_address_case(client, session, signing_key):
    subscriber = confirmed(session, "Ada@Example.com")
    assert post(client, signing_key, [event("group_unsubscribe", "ADA@example.COM", asm_group_id=1)]).status_code == 200
    assert status(session, subscriber) is SubscriberStatus.UNSUBSCRIBED


def test_suppressed_stays_suppressed(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    post(client, signing_key, [hard_bounce("ada@example.com")])
    first = reload(session, subscriber)
    reason, when = first.suppressed_reason, first.suppressed_at
    later = [event("unsubscribe", "ada@example.com"), event("spamreport", "ada@example.com"),
             event("dropped", "ada@example.com", reason="Unsubscribed Address"), event("delivered", "ada@example.com")]
    assert post(client, signing_key, later).get_json() == {"processed": 4, "duplicates": 0, "ignored": 0}
    subscriber_now = reload(session, subscriber)
    assert subscriber_now.status is SubscriberStatus.SUPPRESSED
    assert (subscriber_now.suppressed_reason, subscriber_now.suppressed_at) == (reason, when)


def test_unsubscribed_subscriber_is_still_suppressed_by_a_hard_bounce(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    post(client, signing_key, [event("unsubscribe", "ada@example.com"), hard_bounce("ada@example.com")])
    assert status(session, subscriber) is SubscriberStatus.SUPPRESSED


def test_same_events_twice_are_duplicates(client, session, signing_key):
    bounced, leaving = confirmed(session, "bounced@example.com"), confirmed(session, "leaving@example.com")
    batch = [hard_bounce("bounced@example.com"), event("unsubscribe", "leaving@example.com"),
             event("delivered", "bounced@example.com")]
    assert post(client, signing_key, batch).get_json() == {"processed": 3, "duplicates": 0, "ignored": 0}
    first = reload(session, bounced).suppressed_at, reload(session, leaving).unsubscribed_at
    # SendGrid retries whole batches; a retry may even carry a new event alongside the old ones.
    retry = [*batch, event("delivered", "leaving@example.com")]
    assert post(client, signing_key, retry).get_json() == {"processed": 1, "duplicates": 3, "ignored": 0}
    assert (reload(session, bounced).suppressed_at, reload(session, leaving).unsubscribed_at) == first
    assert recorded(session) == 4


def test_repeated_event_within_one_batch_counts_once(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    unsubscribe = event("unsubscribe", "ada@example.com")
    assert post(client, signing_key, [unsubscribe, unsubscribe]).get_json() == {
        "processed": 1, "duplicates": 1, "ignored": 0}
    assert status(session, subscriber) is SubscriberStatus.UNSUBSCRIBED and recorded(session) == 1


def test_events_recorded_by_a_concurrent_request_are_duplicates(session, monkeypatch):
    subscriber = confirmed(session, "ada@example.com")
    already = event("unsubscribe", "ada@example.com")
    suppressions.apply_events(session, [already])
    session.commit()
    # As if another request recorded `already` between our look-up and our insert.
    monkeypatch.setattr(suppressions, "_recorded_ids", lambda _session, _ids: set())
    summary = suppressions.apply_events(session, [already, hard_bounce("ada@example.com")])
    session.commit()
    assert summary.as_dict() == {"processed": 1, "duplicates": 1, "ignored": 0}
    assert status(session, subscriber) is SubscriberStatus.SUPPRESSED and recorded(session) == 2


def test_unknown_address_is_ignored(client, session, signing_key):
    unknown = event("unsubscribe", "nobody@example.com")
    response = post(client, signing_key, [unknown, hard_bounce("nobody@example.com"), event("spamreport", None)])
    assert response.get_json() == {"processed": 0, "duplicates": 0, "ignored": 3}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
    # Recorded all the same, so a retry is recognised.
    assert post(client, signing_key, [unknown]).get_json() == {"processed": 0, "duplicates": 1, "ignored": 0}


def test_events_without_a_usable_id_or_name_are_ignored(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    no_id = event("unsubscribe", "ada@example.com")
    del no_id["sg_event_id"]
    batch = [no_id, event("unsubscribe", "ada@example.com", sg_event_id=""),
             event("unsubscribe", "ada@example.com", sg_event_id=12345),
             event("unsubscribe", "ada@example.com", sg_event_id="x" * 201),
             event("unsubscribe", "ada@example.com", sg_event_id="line\nbreak"),
             event("unsubscribe", "ada@example.com", event=None),
             event("unsubscribe", "ada@example.com", event=["unsubscribe"])]
    assert post(client, signing_key, batch).get_json() == {"processed": 0, "duplicates": 0, "ignored": 7}
    assert status(session, subscriber) is SubscriberStatus.CONFIRMED and recorded(session) == 0


def test_delivery_id_must_belong_to_the_address(client, session, signing_key):
    ada, bob = confirmed(session, "ada@example.com"), confirmed(session, "bob@example.com")
    slot = datetime(2026, 1, 5, 8, tzinfo=UTC)
    window = {"date": date(2026, 1, 5), "slot": slot, "window_start": slot - timedelta(days=1), "window_end": slot}
    ada_delivery, bob_delivery = Delivery(subscriber_id=ada, **window), Delivery(subscriber_id=bob, **window)
    session.add_all([ada_delivery, bob_delivery])
    session.commit()
    foreign = [event("unsubscribe", "ada@example.com", delivery_id=str(bob_delivery.id)),
               event("unsubscribe", "ada@example.com", delivery_id="999999"),
               event("unsubscribe", "ada@example.com", delivery_id="not-a-number"),
               event("unsubscribe", "ada@example.com", delivery_id="99999999999999999999"),
               event("unsubscribe", "ada@example.com", delivery_id=True)]
    assert post(client, signing_key, foreign).get_json() == {"processed": 0, "duplicates": 0, "ignored": 5}
    assert status(session, ada) is SubscriberStatus.CONFIRMED
    own = event("unsubscribe", "ada@example.com", delivery_id=str(ada_delivery.id))
    assert post(client, signing_key, [own]).get_json() == {"processed": 1, "duplicates": 0, "ignored": 0}
    assert status(session, ada) is SubscriberStatus.UNSUBSCRIBED
    session.expire_all()
    row = session.scalar(select(WebhookEvent).where(WebhookEvent.event_id == own["sg_event_id"]))
    assert row.delivery_id == ada_delivery.id and row.email == "ada@example.com" and row.payload == own


def test_provider_text_is_kept_to_one_bounded_line(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    noisy = hard_bounce("ada@example.com", reason="550 no\r\nX-Injected: yes\x00" + "z" * 500)
    assert post(client, signing_key, [noisy]).get_json()["processed"] == 1
    reason = reload(session, subscriber).suppressed_reason
    assert reason.startswith("bounce: 5.1.1 550 no X-Injected: yes\ufffdz") and len(reason) == 200
    assert not any(c in reason for c in "\r\n\x00")


def test_empty_batch(client, signing_key):
    response = post(client, signing_key, [])
    assert response.status_code == 200 and response.get_json() == {"processed": 0, "duplicates": 0, "ignored": 0}


def test_full_sendgrid_batch_is_accepted(client, session, signing_key):
    # Larger than the site-wide MAX_CONTENT_LENGTH: SendGrid batches reach 768 KB.
    batch = [event("delivered", f"reader{i}@example.com", response="250 OK " + "x" * 100) for i in range(600)]
    body = json.dumps(batch)
    assert len(body) > 65536
    assert post(client, signing_key, body).get_json() == {"processed": 600, "duplicates": 0, "ignored": 0}
    assert recorded(session) == 600


def test_oversized_body_gets_413_as_json(client, signing_key):
    response = post(client, signing_key, "[" + " " * (2 * 1024 * 1024) + "]")
    assert response.status_code == 413 and response.is_json


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.dictionaries(
    st.sampled_from(["email", "event", "sg_event_id", "type", "reason", "status", "delivery_id", "extra"]),
    st.none() | st.booleans() | st.integers() | st.text(max_size=40)
    | st.sampled_from(["bounce", "dropped", "spamreport", "unsubscribe", "bounced@example.com", "Bounced Address",
                       "confirmed@example.com", "1", "dup"]),
), max_size=8))
def test_any_batch_is_counted_and_never_unsuppresses(session, batch):
    if session.scalar(select(Subscriber).where(Subscriber.email_key == "bounced@example.com")) is None:
        bounced = confirmed(session, "bounced@example.com")
        confirmed(session, "confirmed@example.com")
        suppressions.apply_events(session, [hard_bounce("bounced@example.com")])
        session.commit()
    else:
        bounced = session.scalar(select(Subscriber.id).where(Subscriber.email_key == "bounced@example.com"))
    summary = suppressions.apply_events(session, batch)
    assert sum(summary.as_dict().values()) == len(batch)
    session.flush()
    assert status(session, bounced) is SubscriberStatus.SUPPRESSED
    session.rollback()


# Signature and shape --------------------------------------------------------------------------

def test_unsigned_request_is_refused(client, session):
    confirmed(session, "ada@example.com")
    response = client.post(URL, json=[event("unsubscribe", "ada@example.com")])
    assert response.status_code == 403 and response.get_json() == {"error": "missing signature"}
    assert recorded(session) == 0


def test_signature_from_another_key_is_refused(client, session):
    subscriber = confirmed(session, "ada@example.com")
    response = post(client, ec.generate_private_key(ec.SECP256R1()), [event("unsubscribe", "ada@example.com")])
    assert response.status_code == 403 and response.get_json() == {"error": "invalid signature"}
    assert status(session, subscriber) is SubscriberStatus.CONFIRMED


def test_tampered_body_is_refused(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    signed = json.dumps([event("delivered", "ada@example.com")])
    response = post(client, signing_key, signed.replace('"delivered"', '"unsubscribe"'), signed_body=signed)
    assert response.status_code == 403
    assert status(session, subscriber) is SubscriberStatus.CONFIRMED and recorded(session) == 0


def test_signature_over_another_timestamp_is_refused(client, signing_key):
    body = json.dumps([event("delivered", "ada@example.com")])
    now = str(int(time.time()))
    headers = {SIGNATURE: sign(signing_key, str(int(now) - 1), body), TIMESTAMP: now}
    assert client.post(URL, data=body, headers=headers, content_type="application/json").status_code == 403


@pytest.mark.parametrize("signature", ["not base64!", "é", base64.b64encode(b"not a DER signature").decode()])
def test_garbage_signature_is_refused(client, signature):
    headers = {SIGNATURE: signature, TIMESTAMP: str(int(time.time()))}
    response = client.post(URL, data="[]", headers=headers, content_type="application/json")
    assert response.status_code == 403 and response.is_json


@pytest.mark.parametrize("age", [605, 3600, -605])
def test_timestamp_outside_the_window_is_refused(client, session, signing_key, age):
    subscriber = confirmed(session, "ada@example.com")
    response = post(client, signing_key, [event("unsubscribe", "ada@example.com")], timestamp=str(int(time.time()) - age))
    assert response.status_code == 403 and response.get_json() == {"error": "stale or invalid timestamp"}
    assert status(session, subscriber) is SubscriberStatus.CONFIRMED


@pytest.mark.parametrize("timestamp", ["yesterday", "1.5e9", " 1700000000", "-1", "１７００００００００"])
def test_malformed_timestamp_is_refused(client, signing_key, timestamp):
    assert post(client, signing_key, [], timestamp=timestamp).status_code == 403


def test_max_age_is_configurable(config, signing_key):
    app = create_app({**config, "SENDGRID_WEBHOOK_MAX_AGE": 5000})
    try:
        old = str(int(time.time()) - 3600)
        assert post(app.test_client(), signing_key, [], timestamp=old).status_code == 200
    finally:
        app.extensions["db"].dispose()


@pytest.mark.parametrize("key", [None, "", "not a key", base64.b64encode(b"garbage").decode()])
def test_without_a_usable_key_everything_is_refused(config, signing_key, key):
    app = create_app({**config, "SENDGRID_WEBHOOK_PUBLIC_KEY": key})
    try:
        client = app.test_client()
        assert client.post(URL, json=[]).status_code == 403
        response = post(client, signing_key, [])
        assert response.status_code == 403 and response.is_json
    finally:
        app.extensions["db"].dispose()


def test_rsa_key_is_refused_not_crashed(config, signing_key):
    from cryptography.hazmat.primitives.asymmetric import rsa

    der = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    app = create_app({**config, "SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(der).decode()})
    try:
        assert post(app.test_client(), signing_key, []).status_code == 403
    finally:
        app.extensions["db"].dispose()


@pytest.mark.parametrize("body, message", [
    ("not json", "body is not valid JSON"),
    ("[{]", "body is not valid JSON"),
    ("[NaN]", "body is not valid JSON"),
    ("[" * 100000 + "]" * 100000, "body is not valid JSON"),
    ("", "body is not valid JSON"),
    ('{"event": "unsubscribe"}', "body must be a JSON array of event objects"),
    ('"text"', "body must be a JSON array of event objects"),
    ("[1, 2]", "body must be a JSON array of event objects"),
    ('[{"event": "delivered"}, null]', "body must be a JSON array of event objects"),
])
def test_signed_body_of_the_wrong_shape_is_400(client, session, signing_key, body, message):
    response = post(client, signing_key, body)
    assert response.status_code == 400 and response.get_json() == {"error": message}
    assert recorded(session) == 0


def test_non_utf8_body_is_refused(client, signing_key):
    # SendGrid signs UTF-8; invalid bytes are replaced when the body is read, so the signature fails.
    timestamp = str(int(time.time()))
    raw = b'[{"email": "\xff"}]'
    signature = base64.b64encode(signing_key.sign(timestamp.encode() + raw, ec.ECDSA(hashes.SHA256()))).decode()
    response = client.post(URL, data=raw, headers={SIGNATURE: signature, TIMESTAMP: timestamp},
                           content_type="application/json")
    assert response.status_code == 403


def test_no_csrf_token_needed_and_no_cookie_set(client, session, signing_key):
    subscriber = confirmed(session, "ada@example.com")
    response = post(client, signing_key, [event("unsubscribe", "ada@example.com")])
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert status(session, subscriber) is SubscriberStatus.UNSUBSCRIBED
    refused = client.post(URL, json=[])
    assert refused.status_code == 403 and "Set-Cookie" not in refused.headers


def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405
