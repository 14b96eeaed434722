"""The subscriber site, route by route, through the Flask test client on the real database."""
from __future__ import annotations

import time

from sqlalchemy import select

from newsletter.models import SignupRequest, SubscriberStatus, Threshold
from newsletter.subscribers import links, subscriptions

from .conftest import body_html, body_text
from .factories import find_subscriber
from .helpers import count_subscribers, csrf_token, link_in, path_of, post_subscribe

# Home -----------------------------------------------------------------------------------------

def test_home_shows_sample_and_form_in_both_languages(client):
    en = client.get("/?lang=en").get_data(as_text=True)
    assert "A sample" in en and "feat: event plane apis and nats implementation" in en
    assert 'name="email"' in en and 'name="repos-0-repo"' in en and 'name="language"' in en
    zh = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert "示例" in zh and "订阅" in zh


def test_security_headers_on_every_page(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_session_cookie_secure_only_over_https(config):
    from newsletter import create_app

    for base, secure in (("http://localhost", False), ("https://daily.example.org", True)):
        app = create_app({**config, "BASE_URL": base})
        assert app.config["SESSION_COOKIE_SECURE"] is secure
        cookie = app.test_client().get("/").headers.get("Set-Cookie", "")
        assert ("Secure" in cookie) is secure, cookie
        app.extensions["db"].dispose()


# Subscribe ------------------------------------------------------------------------------------

def test_subscribe_sends_confirmation_and_changes_nothing_until_confirmed(client, session, outbox):
    response = post_subscribe(client, "Ada@Example.COM", [("pallets/flask", "high"), ("https://github.com/rq/rq", "low")], "zh")
    assert response.status_code == 302 and "/check-email" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ada@example.com" in page
    subscriber = find_subscriber(session, "ada@example.com")
    assert subscriber.status is SubscriberStatus.PENDING and subscriber.subscriptions == []
    message = outbox.last()
    assert message["To"] == "Ada@example.com"
    assert "确认" in message["Subject"]
    assert "pallets/flask" in body_text(message) and "rq/rq" in body_html(message)
    assert link_in(body_text(message), "confirm") in body_html(message)


def test_invalid_form_shows_errors_next_to_fields_and_keeps_input(client, session, outbox):
    response = post_subscribe(client, "not-an-email", [("pallets/flask", "high"), ("bad repo!", "low")])
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="email-error"' in html and "not a valid email address" in html
    assert 'value="not-an-email"' in html
    assert 'value="bad repo!"' in html and 'id="repos-1-repo-error"' in html
    assert 'value="pallets/flask"' in html
    assert count_subscribers(session) == 0 and outbox.messages() == []


def test_add_row_button_keeps_input_and_adds_a_row(client):
    page = client.get("/").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "email": "x@example.com", "language": "en", "add_row": "1"}
    for i in range(3):
        data[f"repos-{i}-repo"] = f"owner/repo{i}"
        data[f"repos-{i}-threshold"] = "low"
    html = client.post("/", data=data).get_data(as_text=True)
    assert 'value="x@example.com"' in html and 'value="owner/repo2"' in html
    assert 'name="repos-3-repo"' in html and 'name="repos-4-repo"' not in html  # three filled rows, one new
    # One filled row of three: the button still adds a row.
    data = {"csrf_token": csrf_token(page), "email": "", "language": "en", "add_row": "1",
            "repos-0-repo": "rq/rq", "repos-1-repo": "", "repos-2-repo": ""}
    html = client.post("/", data=data).get_data(as_text=True)
    assert 'name="repos-3-repo"' in html and "error" not in html.split("<main>")[1].split("</main>")[0]


def test_at_most_fifty_repositories(client, session):
    repos = [(f"owner/repo{i}", "medium") for i in range(51)]
    response = post_subscribe(client, "many@example.com", repos)
    assert response.status_code == 400
    assert "At most 50 repositories" in response.get_data(as_text=True)
    assert count_subscribers(session) == 0
    assert post_subscribe(client, "many@example.com", repos[:50]).status_code == 302


def test_no_repository_is_an_error(client, session):
    response = post_subscribe(client, "none@example.com", [])
    assert response.status_code == 400 and "at least one repository" in response.get_data(as_text=True)


def test_duplicate_repository_is_an_error(client):
    response = post_subscribe(client, "dup@example.com", [("pallets/flask", "low"), ("Pallets/Flask", "high")])
    assert response.status_code == 400 and "listed twice" in response.get_data(as_text=True)


def test_resubscribing_existing_address_looks_the_same_and_changes_nothing(client, session, outbox):
    subscriptions.subscribe_confirmed(session, "old@example.com", [("pallets/flask", Threshold.HIGH)], "en")
    session.commit()
    first = post_subscribe(client, "new@example.com", [("rq/rq", "low")])
    new = client.get(first.headers["Location"]).get_data(as_text=True).replace("new@example.com", "X")
    again = post_subscribe(client, "OLD@example.com", [("rq/rq", "low")])
    old = client.get(again.headers["Location"]).get_data(as_text=True).replace("OLD@example.com", "X")
    assert first.status_code == again.status_code == 302
    assert old == new
    subscriber = find_subscriber(session, "old@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED
    assert [(s.repo, s.threshold) for s in subscriber.subscriptions] == [("pallets/flask", Threshold.HIGH)]
    # Confirming the new request merges the new repository in.
    client.post(path_of(link_in(body_text(outbox.last()), "confirm")),
                data={"csrf_token": csrf_token(client.get(path_of(link_in(body_text(outbox.last()), "confirm"))).get_data(as_text=True))})
    subscriber = find_subscriber(session, "old@example.com")
    assert sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions) == [("pallets/flask", "high"), ("rq/rq", "low")]


def test_suppressed_address_gets_same_page_and_no_email(client, session, outbox):
    subscriber = subscriptions.subscribe_confirmed(session, "bounced@example.com", [("rq/rq", Threshold.LOW)], "en")
    subscriptions.suppress(session, subscriber, "hard bounce")
    session.commit()
    response = post_subscribe(client, "bounced@example.com", [("rq/rq", "low")])
    assert response.status_code == 302 and outbox.messages() == []


def test_header_injection_in_email_is_rejected(client, session, outbox):
    for hostile in ("a@example.com\r\nBcc: victim@example.org", "a@example.com\nSubject: hi", "a@exa\x00mple.com"):
        response = post_subscribe(client, hostile, [("rq/rq", "low")])
        assert response.status_code == 400
    assert count_subscribers(session) == 0 and outbox.messages() == []


def test_missing_csrf_token_is_a_clear_400(client, session):
    response = client.post("/", data={"email": "x@example.com", "repos-0-repo": "rq/rq", "language": "en", "submit": "1"})
    assert response.status_code == 400
    assert "expired or was not sent from our site" in response.get_data(as_text=True)
    assert count_subscribers(session) == 0


def test_oversized_body_is_413(client):
    response = client.post("/", data={"email": "x" * 100_000})
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)


def test_non_utf8_form_body_is_rejected_cleanly(client, session):
    token = csrf_token(client.get("/").get_data(as_text=True))
    # Werkzeug leaves undecodable percent-escapes as they are, so this one names no real address
    # but is well-formed; it must at least never be a 500.
    body = b"csrf_token=" + token.encode() + b"&email=%FF%FEa@example.com&repos-0-repo=%FFrq/rq&language=en&submit=1"
    response = client.post("/", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and count_subscribers(session) == 0
    raw = b"csrf_token=" + token.encode() + b"&email=\xff\xfe@example.com&repos-0-repo=rq/rq&language=en&submit=1"
    assert client.post("/", data=raw, content_type="application/x-www-form-urlencoded").status_code == 400


def test_method_not_allowed_and_unknown_page(client):
    assert client.delete("/").status_code == 405
    response = client.get("/nope")
    assert response.status_code == 404 and "no such page" in response.get_data(as_text=True)


def test_subscribe_is_rate_limited_in_redis(config, redis_url):
    import redis

    from newsletter import create_app

    app = create_app({**config, "RATELIMIT_SUBSCRIBE": "2 per minute"})
    client = app.test_client()
    codes = [post_subscribe(client, f"r{i}@example.com", [("rq/rq", "low")]).status_code for i in range(3)]
    assert codes == [302, 302, 429]
    assert "Too many attempts" in post_subscribe(client, "r9@example.com", [("rq/rq", "low")]).get_data(as_text=True)
    keys = redis.Redis.from_url(redis_url).keys("LIMITS:*web.index*")
    assert keys, "the limiter stored nothing in Redis"
    app.extensions["db"].dispose()


# Confirm --------------------------------------------------------------------------------------

def _pending(client, outbox, email="c@example.com", repos=(("pallets/flask", "medium"),), lang="en"):
    post_subscribe(client, email, list(repos), lang)
    return path_of(link_in(body_text(outbox.last()), "confirm"))


def test_confirm_get_changes_nothing_and_post_confirms(client, session, outbox):
    path = _pending(client, outbox)
    for _ in range(2):  # a mail scanner prefetching the link twice
        page = client.get(path)
        assert page.status_code == 200 and "Confirm subscription" in page.get_data(as_text=True)
    assert find_subscriber(session, "c@example.com").status is SubscriberStatus.PENDING
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 200 and "/preferences/" in response.get_data(as_text=True)
    subscriber = find_subscriber(session, "c@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED and subscriber.confirmed_at is not None
    assert [(s.repo, s.threshold) for s in subscriber.subscriptions] == [("pallets/flask", Threshold.MEDIUM)]
    # A second POST is harmless.
    assert client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))}).status_code == 200


def test_confirm_post_without_csrf_is_rejected(client, session, outbox):
    path = _pending(client, outbox)
    assert client.post(path).status_code == 400
    assert find_subscriber(session, "c@example.com").status is SubscriberStatus.PENDING


def test_bad_tokens_get_a_clear_400(app, client, session, outbox):
    path = _pending(client, outbox)
    token = path.rsplit("/", 1)[1]
    subscriber = find_subscriber(session, "c@example.com")
    prefs = links.preferences_token(app.config["SECRET_KEY"], subscriber)
    other_secret = links.make_token("another-secret-key-xxxxxxxxxxxxxxxxxxxxxxxx", links.CONFIRM, {"r": 1, "h": "x"})
    cases = [
        f"/confirm/{token[:-3]}abc",           # forged signature
        f"/confirm/{prefs}",                   # a preferences token on the confirm route
        f"/preferences/{token}",               # a confirm token on the preferences route
        f"/unsubscribe/{prefs}",               # another salt
        f"/confirm/{other_secret}",            # signed with another key
        "/confirm/%FF%FE",                     # not UTF-8
        "/unsubscribe/" + "a" * 3000,          # oversized
    ]
    for url in cases:
        response = client.get(url)
        assert response.status_code == 400, url
        assert "no longer valid" in response.get_data(as_text=True) or "invalid" in response.get_data(as_text=True)
    assert client.post(f"/unsubscribe/{prefs}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert find_subscriber(session, "c@example.com").status is SubscriberStatus.PENDING


def test_expired_confirmation_link(app, client, session, outbox, monkeypatch):
    path = _pending(client, outbox)
    future = time.time() + 8 * 86400
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: future)
    response = client.get(path)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_token_for_deleted_subscriber(app, client, session, outbox):
    subscriber = subscriptions.subscribe_confirmed(session, "gone@example.com", [("rq/rq", Threshold.LOW)], "en")
    session.commit()
    url = f"/preferences/{links.preferences_token(app.config['SECRET_KEY'], subscriber)}"
    unsub = f"/unsubscribe/{links.unsubscribe_token(app.config['SECRET_KEY'], subscriber)}"
    session.delete(subscriber)
    session.commit()
    assert client.get(url).status_code == 400
    assert client.post(unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 400


# Preferences ----------------------------------------------------------------------------------

def _confirmed(app, session, email="p@example.com", lang="en"):
    subscriber = subscriptions.subscribe_confirmed(
        session, email, [("pallets/flask", Threshold.HIGH), ("rq/rq", Threshold.LOW)], lang)
    session.commit()
    key = app.config["SECRET_KEY"]
    return (subscriber, f"/preferences/{links.preferences_token(key, subscriber)}",
            f"/unsubscribe/{links.unsubscribe_token(key, subscriber)}")


def test_preferences_show_and_change_everything(app, client, session):
    subscriber, prefs, _ = _confirmed(app, session)
    page = client.get(prefs)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'value="pallets/flask"' in html and 'value="rq/rq"' in html
    assert page.headers["Cache-Control"] == "no-store"
    data = {"csrf_token": csrf_token(html), "language": "zh", "paused": "y", "send_empty": "y", "submit": "1",
            "repos-0-repo": "pallets/flask", "repos-0-threshold": "low",
            "repos-1-repo": "", "repos-1-threshold": "low",           # cleared row: removed
            "repos-2-repo": "ai-dynamo/dynamo", "repos-2-threshold": "medium"}
    response = client.post(prefs, data=data)
    assert response.status_code == 302
    assert "设置已保存" in client.get(response.headers["Location"]).get_data(as_text=True)
    subscriber = find_subscriber(session, "p@example.com")
    assert subscriber.language == "zh" and subscriber.paused and subscriber.send_empty
    assert sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions) == [
        ("ai-dynamo/dynamo", "medium"), ("pallets/flask", "low")]


def test_preferences_invalid_change_keeps_input_and_saves_nothing(app, client, session):
    _, prefs, _ = _confirmed(app, session)
    html = client.get(prefs).get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "language": "en", "submit": "1",
            "repos-0-repo": "not a repo", "repos-0-threshold": "high",
            "repos-1-repo": "rq/rq", "repos-1-threshold": "bogus"}
    response = client.post(prefs, data=data)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert 'value="not a repo"' in body and "is not a GitHub repository" in body
    subscriber = find_subscriber(session, "p@example.com")
    assert sorted(s.repo for s in subscriber.subscriptions) == ["pallets/flask", "rq/rq"]


def test_preferences_of_unsubscribed_address_cannot_be_changed(app, client, session):
    subscriber, prefs, unsub = _confirmed(app, session)
    client.post(unsub, data={"List-Unsubscribe": "One-Click"})
    assert "not subscribed any more" in client.get(prefs).get_data(as_text=True)


# Unsubscribe ----------------------------------------------------------------------------------

def test_unsubscribe_get_shows_button_and_changes_nothing(app, client, session):
    _, _, unsub = _confirmed(app, session)
    page = client.get(unsub)
    assert page.status_code == 200 and 'value="One-Click"' in page.get_data(as_text=True)
    assert find_subscriber(session, "p@example.com").status is SubscriberStatus.CONFIRMED


def test_one_click_unsubscribe_form_encoded(app, session):
    _, _, unsub = _confirmed(app, session)
    client = app.test_client(use_cookies=False)
    response = client.post(unsub, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Location" not in response.headers
    assert find_subscriber(session, "p@example.com").status is SubscriberStatus.UNSUBSCRIBED
    assert client.post(unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # idempotent


def test_one_click_unsubscribe_multipart(app, session):
    _, _, unsub = _confirmed(app, session, email="m@example.com")
    client = app.test_client(use_cookies=False)
    boundary = "----x"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n"
            f"--{boundary}--\r\n")
    response = client.post(unsub, data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200
    assert find_subscriber(session, "m@example.com").status is SubscriberStatus.UNSUBSCRIBED


def test_unsubscribe_post_without_one_click_body_is_400(app, client, session):
    _, _, unsub = _confirmed(app, session)
    assert client.post(unsub, data={"something": "else"}).status_code == 400
    assert find_subscriber(session, "p@example.com").status is SubscriberStatus.CONFIRMED


def test_unsubscribed_pages_in_subscriber_language(app, client, session):
    _, _, unsub = _confirmed(app, session, email="zh@example.com", lang="zh")
    assert "退订" in client.get(unsub).get_data(as_text=True)


def test_pending_request_of_unsubscribed_address_resubscribes_after_confirm(app, client, session, outbox):
    _, _, unsub = _confirmed(app, session)
    client.post(unsub, data={"List-Unsubscribe": "One-Click"})
    path = _pending(client, outbox, email="p@example.com", repos=(("rq/rq", "high"),))
    assert find_subscriber(session, "p@example.com").status is SubscriberStatus.UNSUBSCRIBED
    client.post(path, data={"csrf_token": csrf_token(client.get(path).get_data(as_text=True))})
    subscriber = find_subscriber(session, "p@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED
    assert [(s.repo, s.threshold.value) for s in subscriber.subscriptions] == [("rq/rq", "high")]
    assert session.scalar(select(SignupRequest).where(SignupRequest.confirmed_at.is_not(None))) is not None


# Health ---------------------------------------------------------------------------------------

def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_reports_unreachable_redis(config):
    from newsletter import create_app

    app = create_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "ok" and response.json["redis"].startswith("error")
    app.extensions["db"].dispose()
