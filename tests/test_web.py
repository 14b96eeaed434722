"""The subscriber site, route by route, through the Flask test client on the real database."""
from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy import select, update

from newsletter.clock import Clock, describe
from newsletter.models import Delivery, Frequency, SignupRequest, SubscriberStatus, Threshold, utcnow
from newsletter.subscribers import links, subscriptions
from newsletter.subscribers.repositories import RepositoryCheck

from .browser_server import live_server
from .conftest import body_html, body_text
from .factories import find_subscriber
from .github_repos import public_repos  # noqa: F401  (a fixture)
from .helpers import count_subscribers, csrf_token, link_in, path_of, post_subscribe, subscribe_form

# Every repository a test posts must be on the fake GitHub: the site checks new ones there.
pytestmark = pytest.mark.usefixtures("public_repos")

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


def test_at_most_fifty_repositories(client, session, github):
    repos = [(f"owner/repo{i}", "medium") for i in range(51)]
    for name, _ in repos:
        github.add_repo(name)
    response = post_subscribe(client, "many@example.com", repos)
    assert response.status_code == 400
    assert "At most 50 repositories" in response.get_data(as_text=True)
    assert count_subscribers(session) == 0
    assert post_subscribe(client, "many@example.com", repos[:50]).status_code == 302


def test_no_repository_is_an_error(client, session):
    response = post_subscribe(client, "none@example.com", [])
    assert response.status_code == 400 and "at least one repository" in response.get_data(as_text=True)


def test_duplicate_repository_is_flagged_on_its_own_row(client):
    response = post_subscribe(client, "dup@example.com",
                              [("pallets/flask", "low"), ("rq/rq", "low"), ("https://github.com/Pallets/Flask", "high")])
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert _row_errors(html) == {2: "pallets/flask is listed twice."}
    assert '<a href="#repos-2-repo">pallets/flask is listed twice.</a>' in html


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


def test_only_real_submissions_count_and_a_refused_one_keeps_the_form(config, redis_url):
    from newsletter import create_app

    app = create_app({**config, "RATELIMIT_SUBSCRIBE": "3 per minute"})
    client = app.test_client()
    token = csrf_token(client.get("/").get_data(as_text=True))
    typed = {"csrf_token": token, "email": "slow@example.com", "language": "en",
             "repos-0-repo": "pallets/flask", "repos-0-threshold": "high",
             "repos-1-repo": "rq/rq", "repos-1-threshold": "low",
             "timezone": "Europe/Berlin", "hour": "18", "frequency": "weekly", "weekday": "thu"}
    # Asking for rows (the no-JavaScript path) five times costs nothing.
    for _ in range(5):
        assert client.post("/", data={**typed, "add_row": "1"}).status_code == 200
    # Three submissions with a typo count...
    for _ in range(3):
        assert client.post("/", data={**typed, "repos-2-repo": "bad repo!", "submit": "1"}).status_code == 400
    # ... and the fourth comes back as the form, everything kept, saying when to submit again.
    response = client.post("/?lang=zh", data={**typed, "language": "zh", "submit": "1"})
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60
    html = unescape(response.get_data(as_text=True))
    assert 'value="slow@example.com"' in html and 'value="pallets/flask"' in html and 'value="rq/rq"' in html
    assert _clock_shown(html) == {"timezone": "Europe/Berlin", "hour": "18", "frequency": "weekly", "weekday": "thu"}
    assert re.search(r"请在 \d+ 秒后再次提交", html) and 'id="error-summary"' in html
    assert "出了点问题" not in html  # not the error page
    app.extensions["db"].dispose()


def test_error_summary_links_every_bad_field(client):
    response = post_subscribe(client, "nope", [("pallets/flask", "low"), ("bad repo!", "low")])
    html = response.get_data(as_text=True)
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert re.findall(r'href="#([\w-]+)"', summary) == ["email", "repos-1-repo"]
    assert 'tabindex="-1"' in html and 'role="alert"' in html
    # The summary comes before the form's fields.
    assert html.index('id="error-summary"') < html.index('name="email"')
    assert 'id="error-summary"' not in client.get("/").get_data(as_text=True)


def test_the_form_comes_before_the_sample(client):
    html = client.get("/").get_data(as_text=True)
    assert html.index('name="email"') < html.index('id="sample-title"') < html.index("feat: event plane")
    assert html.index('name="email"') < html.index('id="what-title"')


def test_confirmation_emails_per_address_are_capped_whatever_the_client(app, session, outbox, caplog):
    caplog.set_level(logging.INFO)
    client = app.test_client()

    def signup(number: int, email: str = "flood@example.com") -> tuple[int, str, str]:
        environ = {"REMOTE_ADDR": f"192.0.2.{number}"}  # a new client address each time
        token = csrf_token(client.get("/", environ_base=environ).get_data(as_text=True))
        response = client.post("/", data=subscribe_form(email, [("rq/rq", "low")], "en", token),
                               environ_base=environ)
        return response.status_code, response.headers["Location"], client.get(response.headers["Location"]).data

    pages = [signup(i) for i in range(5)]
    assert all(page == pages[0] for page in pages) and pages[0][0] == 302  # the same page: no oracle
    assert len(outbox.messages()) == app.config["CONFIRM_EMAILS_PER_DAY"] == 3
    assert "CONFIRM_EMAILS_PER_DAY" in caplog.text and "flood@example.com" not in caplog.text
    assert signup(9, "other@example.com")[0] == 302 and len(outbox.messages()) == 4
    # A day later the address may be sent a link again.
    session.execute(update(SignupRequest).values(created_at=utcnow() - timedelta(hours=25)))
    session.commit()
    signup(10)
    assert len(outbox.messages()) == 5 and outbox.last()["To"] == "flood@example.com"


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
    before = datetime.now(UTC)
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 200 and "/preferences/" in response.get_data(as_text=True)
    # The page says when the first email comes: the first slot of the reader's own clock after now
    # (an English reader who chose nothing: 08:00 UTC, daily).
    _assert_first_email(response, Clock("UTC", 8, "daily", 0), before, "en")
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
    # The POST left the clock's fields out: the saved clock stands (not the new language's default).
    assert (subscriber.timezone, subscriber.hour, subscriber.frequency, subscriber.weekday) == (
        "UTC", 8, Frequency.DAILY, 0)


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


# Which repositories the site takes (issue 6) ---------------------------------------------------

NO_PUBLIC = "There is no public GitHub repository {repo}."


def _row_errors(html: str) -> dict[int, str]:
    """The error shown next to each repository row, by row index."""
    return {int(i): unescape(message) for i, message in
            re.findall(r'<p class="error" id="repos-(\d+)-repo-error">([^<]*)</p>', html)}


@pytest.fixture
def hidden(config, github, tmp_path):
    """A private GitHub repository the service's token can read, and a LOCAL_REPOSITORIES entry."""
    github.add_repo("octo/secret", private=True)
    config["GITHUB_TOKEN"] = "service-token"  # the fake shows private repositories to any token
    config["LOCAL_REPOSITORIES"] = f"local/app={tmp_path}"
    return github


def test_missing_private_and_local_repositories_are_refused_alike(hidden, client, session, outbox):
    repos = [("octo/nope", "low"), ("octo/secret", "high"), ("local/app", "low"), ("pallets/flask", "high")]
    response = post_subscribe(client, "x@example.com", repos)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    # One message for all three: the page must not tell which of them exists.
    assert _row_errors(html) == {0: NO_PUBLIC.format(repo="octo/nope"), 1: NO_PUBLIC.format(repo="octo/secret"),
                                 2: NO_PUBLIC.format(repo="local/app")}
    for repo, _ in repos:
        assert f'value="{repo}"' in html
    assert 'value="x@example.com"' in html
    assert count_subscribers(session) == 0 and outbox.messages() == []
    assert post_subscribe(client, "x@example.com", [("pallets/flask", "high")]).status_code == 302


def test_refusal_in_chinese(hidden, client):
    page = client.get("/?lang=zh")
    data = subscribe_form("x@example.com", [("octo/secret", "low")], "zh", csrf_token(page.get_data(as_text=True)))
    html = client.post("/?lang=zh", data=data).get_data(as_text=True)
    assert _row_errors(html) == {0: "GitHub 上没有名为 octo/secret 的公开仓库。"}


def test_public_local_repositories_may_be_subscribed(hidden, config, request):
    config["PUBLIC_LOCAL_REPOSITORIES"] = True
    client = request.getfixturevalue("client")
    assert post_subscribe(client, "x@example.com", [("local/app", "low")]).status_code == 302
    assert post_subscribe(client, "y@example.com", [("octo/secret", "low")]).status_code == 400


def test_github_unreachable_accepts_the_repository_with_a_notice(client, session, outbox, github):
    github.fail(r"^/repos/pallets/flask$", status=503, times=10)
    response = post_subscribe(client, "x@example.com", [("rq/rq", "low"), ("pallets/flask", "high")])
    assert response.status_code == 302
    page = unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "could not check pallets/flask yet" in page and "first daily run checks it" in page
    assert len(outbox.messages()) == 1
    assert [tuple(r) for r in session.scalar(select(SignupRequest)).repos] == [("rq/rq", "low"), ("pallets/flask", "high")]
    github.clear_faults()  # a failure is not remembered: the next submit asks again
    asked = github.request_count(r"^/repos/pallets/flask$")
    response = post_subscribe(client, "y@example.com", [("pallets/flask", "high")])
    assert response.status_code == 302 and github.request_count(r"^/repos/pallets/flask$") == asked + 1
    assert "could not check" not in client.get(response.headers["Location"]).get_data(as_text=True)


def test_github_unreachable_notice_in_chinese_on_preferences(app, client, session, github):
    _, prefs, _ = _confirmed(app, session, lang="zh")
    github.add_repo("octo/new")
    github.fail(r"^/repos/octo/new$", status=503, times=10)
    html = client.get(prefs).get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "language": "zh", "submit": "1",
            "repos-0-repo": "pallets/flask", "repos-0-threshold": "high",
            "repos-1-repo": "octo/new", "repos-1-threshold": "low"}
    response = client.post(prefs, data=data)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "暂时无法核实 octo/new" in page and "设置已保存" in page
    assert sorted(s.repo for s in find_subscriber(session, "p@example.com").subscriptions) == [
        "octo/new", "pallets/flask"]


def test_checks_are_remembered_between_submits(client, github):
    for _ in range(2):
        assert post_subscribe(client, "x@example.com", [("rq/rq", "low"), ("octo/nope", "low")]).status_code == 400
    assert post_subscribe(client, "x@example.com", [("rq/rq", "low")]).status_code == 302
    assert github.request_count(r"^/repos/rq/rq$") == 1 and github.request_count(r"^/repos/octo/nope$") == 1


def test_a_slow_github_costs_a_form_a_bounded_time(config, github):
    github.delay(r"^/repos/rq/rq$", seconds=0.5)
    outcome = RepositoryCheck(config, budget=0.2).check(["rq/rq", "pallets/flask"])
    # rq/rq was answered, late; past the budget pallets/flask is not asked: accepted, checked by the daily run.
    assert outcome.refused == {} and outcome.unchecked == ["pallets/flask"]
    assert github.request_count(r"^/repos/pallets/flask$") == 0


def test_preferences_check_only_new_repositories_and_keep_granted_ones(hidden, app, client, session):
    # The operator subscribed this reader to a private repository (`newsletter subscribe`).
    subscriber = subscriptions.subscribe_confirmed(
        session, "p@example.com", [("octo/secret", Threshold.HIGH), ("pallets/flask", Threshold.LOW)], "en")
    session.commit()
    prefs = f"/preferences/{links.preferences_token(app.config['SECRET_KEY'], subscriber)}"
    html = client.get(prefs).get_data(as_text=True)

    def save(*repos):
        data = {"csrf_token": csrf_token(html), "language": "en", "submit": "1"}
        for i, repo in enumerate(repos):
            data[f"repos-{i}-repo"], data[f"repos-{i}-threshold"] = repo, "medium"
        return client.post(prefs, data=data)

    refused = save("octo/secret", "pallets/flask", "local/app")
    assert refused.status_code == 400
    assert _row_errors(refused.get_data(as_text=True)) == {2: NO_PUBLIC.format(repo="local/app")}
    assert save("octo/secret", "pallets/flask", "rq/rq").status_code == 302
    subscriber = find_subscriber(session, "p@example.com")
    assert {s.repo: s.granted for s in subscriber.subscriptions} == {
        "octo/secret": True, "pallets/flask": True, "rq/rq": False}
    assert hidden.request_count(r"^/repos/octo/secret") == 0  # a repository already listed is not asked about


def test_web_subscriptions_are_not_granted(client, session, outbox):
    path = _pending(client, outbox)
    client.post(path, data={"csrf_token": csrf_token(client.get(path).get_data(as_text=True))})
    assert [(s.repo, s.granted) for s in find_subscriber(session, "c@example.com").subscriptions] == [
        ("pallets/flask", False)]


# International addresses (issue 7) --------------------------------------------------------------

def test_international_domain_is_one_subscriber_mailed_at_its_ascii_form(client, session, outbox):
    response = post_subscribe(client, "a@Bücher.de", [("rq/rq", "low")])
    assert response.status_code == 302
    assert "a@bücher.de" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert post_subscribe(client, "a@xn--bcher-kva.de", [("pallets/flask", "low")]).status_code == 302
    assert count_subscribers(session) == 1
    assert find_subscriber(session, "a@xn--bcher-kva.de").email == "a@xn--bcher-kva.de"
    files = sorted(outbox.directory.glob("*.eml"))
    assert len(files) == 2
    for path in files:
        headers = path.read_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii")
        assert "\r\nTo: a@xn--bcher-kva.de\r\n" in headers, headers
    confirm = client.get(path_of(link_in(body_text(outbox.last()), "confirm"))).get_data(as_text=True)
    assert "a@bücher.de" in confirm and "xn--" not in confirm


def test_non_ascii_local_part_is_refused_by_the_outbox(client, session, outbox):
    response = post_subscribe(client, "用户@例子.广告", [("rq/rq", "low")])
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="email-error"' in html and "before the @" in html and 'value="用户@例子.广告"' in html
    assert count_subscribers(session) == 0 and outbox.messages() == []


class _SmtpRecorder(Message):
    def __init__(self):
        super().__init__()
        self.messages = []
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    def handle_message(self, message):
        self.messages.append(message)


@contextlib.contextmanager
def _smtp_server(smtputf8: bool):
    handler = _SmtpRecorder()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop()


@pytest.mark.parametrize("smtputf8", [True, False])
def test_non_ascii_local_part_needs_an_smtputf8_server(config, request, smtputf8):
    with _smtp_server(smtputf8) as (url, server):
        config.update(MAIL_BACKEND="smtp", SMTP_URL=url, SMTP_TIMEOUT=5.0)
        client = request.getfixturevalue("client")
        session = request.getfixturevalue("session")
        for attempt in range(2):
            response = post_subscribe(client, f"用户{attempt}@例子.广告", [("rq/rq", "low")])
            assert response.status_code == (302 if smtputf8 else 400)
        if smtputf8:
            assert [m["X-RcptTo"] for m in server.messages] == ["用户0@xn--fsqu00a.xn--4rr70v",
                                                                "用户1@xn--fsqu00a.xn--4rr70v"]
            assert server.sessions == 3  # one look at the server's extensions, then one session per email
        else:
            assert "before the @" in response.get_data(as_text=True)
            assert server.messages == [] and server.sessions == 1 and count_subscribers(session) == 0


# Files where text belongs, ids beyond the column (issue 8) -------------------------------------

def test_text_field_sent_as_a_file_is_a_form_error(app, client, session, outbox):
    token = csrf_token(client.get("/").get_data(as_text=True))
    base = {"csrf_token": token, "email": "f@example.com", "language": "en", "submit": "1",
            "repos-0-repo": "rq/rq", "repos-0-threshold": "low"}
    for field in ("email", "repos-0-repo"):
        data = {**base, field: (io.BytesIO(b"rq/rq"), "value.txt")}
        response = client.post("/", data=data, content_type="multipart/form-data")
        assert response.status_code == 400, field
        html = response.get_data(as_text=True)
        assert f'id="{field}-error"' in html and "must be typed as text" in html
        kept = "rq/rq" if field == "email" else "f@example.com"
        assert f'value="{kept}"' in html
    assert count_subscribers(session) == 0 and outbox.messages() == []

    _, prefs, _ = _confirmed(app, session)
    html = client.get(prefs).get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "language": "en", "submit": "1",
            "repos-0-repo": (io.BytesIO(b"rq/rq"), "repo.txt"), "repos-0-threshold": "low"}
    response = client.post(prefs, data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and 'id="repos-0-repo-error"' in response.get_data(as_text=True)
    assert sorted(s.repo for s in find_subscriber(session, "p@example.com").subscriptions) == [
        "pallets/flask", "rq/rq"]


@pytest.mark.parametrize("row_id", [2**31, 2**40, 2**63, 2**64, -(2**63) - 1, True])
def test_signed_tokens_with_ids_beyond_the_column_are_400(app, client, row_id):
    key = app.config["SECRET_KEY"]
    for url in (f"/confirm/{links.make_token(key, links.CONFIRM, {'r': row_id, 'h': 'x'})}",
                f"/preferences/{links.make_token(key, links.PREFERENCES, {'s': row_id, 'h': 'x'})}",
                f"/unsubscribe/{links.make_token(key, links.UNSUBSCRIBE, {'s': row_id, 'h': 'x'})}"):
        assert client.get(url).status_code == 400, url
    unsubscribe = links.make_token(key, links.UNSUBSCRIBE, {"s": row_id, "h": "x"})
    assert client.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}).status_code == 400


# Tokens stay out of the logs (issue 9) ---------------------------------------------------------

def test_no_token_reaches_the_log(app, client, config, session, outbox, caplog):
    caplog.set_level(logging.DEBUG)
    path = _pending(client, outbox)
    client.get(path)
    client.post(path, data={"csrf_token": csrf_token(client.get(path).get_data(as_text=True))})
    subscriber, prefs, unsub = _confirmed(app, session, email="logged@example.com")
    client.get(prefs)
    client.get(unsub)
    client.post(unsub, data={"List-Unsubscribe": "One-Click"})
    tokens = [path.rsplit("/", 1)[1], prefs.rsplit("/", 1)[1], unsub.rsplit("/", 1)[1]]
    # The development server's request lines...
    with live_server(config) as live:
        for url in (path, prefs, unsub, f"/preferences/{tokens[1]}?lang=zh"):
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(live.url + url, timeout=10).read()
    # ... and an unexpected error on a token route (the database is gone).
    from newsletter import create_app

    broken = create_app({**config, "DATABASE_URL": "postgresql+psycopg://127.0.0.1:1/gone"})
    assert broken.test_client().get(prefs).status_code == 500
    broken.extensions["db"].dispose()
    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    assert "unhandled error on GET" in logged and '"GET /preferences/' in logged
    for token in tokens:
        assert token not in logged


# Pages (issue 10) ------------------------------------------------------------------------------

def _title(html: str) -> str:
    return unescape(re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip())


def test_every_page_has_its_own_title(app, client, session, outbox):
    titles = {"home": _title(client.get("/").get_data(as_text=True))}
    path = _pending(client, outbox)
    titles["check"] = _title(client.get("/check-email").get_data(as_text=True))
    page = client.get(path).get_data(as_text=True)
    titles["confirm"] = _title(page)
    titles["confirmed"] = _title(client.post(path, data={"csrf_token": csrf_token(page)}).get_data(as_text=True))
    _, prefs, unsub = _confirmed(app, session)
    titles["preferences"] = _title(client.get(prefs).get_data(as_text=True))
    titles["unsubscribe"] = _title(client.get(unsub).get_data(as_text=True))
    titles["unsubscribed"] = _title(client.post(unsub, data={"List-Unsubscribe": "One-Click"}).get_data(as_text=True))
    titles["404"] = _title(client.get("/nope").get_data(as_text=True))
    assert len(set(titles.values())) == len(titles), titles
    assert all("Repo Daily" in title for title in titles.values())
    assert titles["confirm"].startswith("Confirm your subscription")


def test_a_used_confirmation_link_says_already_confirmed(client, session, outbox):
    path = _pending(client, outbox)
    page = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": csrf_token(page)})
    again = client.get(path)
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and "Already confirmed" in html
    assert "Confirm subscription" not in html and "<form" not in html.split("<main>")[1]
    assert "/preferences/" in html
    zh = client.get(path + "?lang=zh").get_data(as_text=True)
    assert "已经确认过了" in zh


def test_unsubscribe_page_offers_pause_and_high_only(app, client, session):
    _, prefs, unsub = _confirmed(app, session)
    html = client.get(unsub).get_data(as_text=True)
    assert 'value="One-Click"' in html and 'value="pause"' in html and 'value="high"' in html
    assert "/preferences/" in html
    token = csrf_token(html)
    assert client.post(unsub + "/less", data={"choice": "high"}).status_code == 400  # no CSRF token
    response = client.post(unsub + "/less", data={"csrf_token": token, "choice": "high"})
    assert response.status_code == 200 and "High importance only" in response.get_data(as_text=True)
    subscriber = find_subscriber(session, "p@example.com")
    assert {s.threshold for s in subscriber.subscriptions} == {Threshold.HIGH}
    assert subscriber.status is SubscriberStatus.CONFIRMED and not subscriber.paused
    response = client.post(unsub + "/less", data={"csrf_token": token, "choice": "pause"})
    assert response.status_code == 200 and "paused" in response.get_data(as_text=True)
    subscriber = find_subscriber(session, "p@example.com")
    assert subscriber.paused and subscriber.status is SubscriberStatus.CONFIRMED
    assert client.post(unsub + "/less", data={"csrf_token": token, "choice": "delete"}).status_code == 400
    # Once unsubscribed: the page says so, offers nothing, and links home.
    done = client.post(unsub, data={"List-Unsubscribe": "One-Click"}).get_data(as_text=True)
    assert 'href="/"' in done
    html = client.get(unsub).get_data(as_text=True)
    assert "<form" not in html.split("<main>")[1] and 'href="/"' in html
    assert client.post(unsub + "/less", data={"csrf_token": token, "choice": "pause"}).status_code == 400


def test_favicon_and_text_contrast(client):
    html = client.get("/").get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="([^"]+)"', html).group(1)
    with client.get(icon) as response:  # a static file: closed here, not by the garbage collector
        assert response.status_code == 200 and b"<svg" in response.data
    with client.get("/static/style.css") as response:
        css = response.get_data(as_text=True)
    colours = dict(re.findall(r"--([a-z]+): (#[0-9a-f]{6})", css))

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    for name in ("fg", "muted", "accent", "high", "medium", "low"):
        ratio = 1.05 / (luminance(colours[name]) + 0.05)
        assert ratio >= 4.5, f"--{name} {colours[name]} on white is {ratio:.2f}:1"


# Each subscriber's clock (issue 12) -------------------------------------------------------------

CLOCK_SELECTS = ("timezone", "hour", "frequency", "weekday")


def _clock_shown(html: str) -> dict[str, str]:
    """The option each clock select shows as chosen (its value), read from the page."""
    shown = {}
    for name in CLOCK_SELECTS:
        select = re.search(rf'<select name="{name}" id="{name}"[^>]*>(.*?)</select>', html, re.S)
        assert select, f"no {name} select in the page"
        chosen = re.findall(r'<option(?: value="([^"]*)")? selected>([^<]*)</option>', select.group(1))
        assert len(chosen) == 1, (name, chosen)
        value, text = chosen[0]
        shown[name] = unescape(value or text)
    return shown


def _assert_first_email(response, clock: Clock, before: datetime, lang: str) -> None:
    """The page names the clock's first slot after the request (either side of an hour turning over)."""
    html = unescape(response.get_data(as_text=True))
    after = datetime.now(UTC)
    expected = {describe(clock, clock.next_slot(moment), lang) for moment in (before, after)}
    assert any(when in html for when in expected), (expected, html)


def _summary_links(html: str) -> list[str]:
    summary = html.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'href="#([\w-]+)"', summary)


def test_the_form_offers_a_clock_with_the_languages_defaults(client):
    en = client.get("/?lang=en").get_data(as_text=True)
    assert _clock_shown(en) == {"timezone": "UTC", "hour": "8", "frequency": "daily", "weekday": "mon"}
    zh = client.get("/?lang=zh").get_data(as_text=True)
    assert _clock_shown(zh) == {"timezone": "Asia/Shanghai", "hour": "8", "frequency": "daily", "weekday": "mon"}
    # Zones grouped by region, UTC first; hours 00:00 to 23:00; the weekday says it is for weekly email.
    assert en.index('<optgroup label="UTC">') < en.index('<optgroup label="Africa">') < en.index('<optgroup label="Asia">')
    assert "<option>Europe/Berlin</option>" in en and '<optgroup label="亚洲">' in zh
    assert '<option value="0">00:00</option>' in en and '<option value="23">23:00</option>' in en
    assert '<option value="24"' not in en
    assert "Day (weekly only)" in en and "星期（仅每周）" in zh and ">Friday<" in en and ">星期五<" in zh
    assert '<label for="timezone">Time zone</label>' in en and '<label for="timezone">时区</label>' in zh
    # Only a fresh subscribe form lets form.js choose the browser's zone.
    assert 'data-guess-zone="1"' in en
    # The clock comes after the email field: the form's start stays where it was.
    assert en.index('name="email"') < en.index('name="timezone"') < en.index('name="submit"')


def test_subscribe_records_the_clock_and_confirming_applies_it(client, session, outbox):
    response = post_subscribe(client, "clock@example.com", [("rq/rq", "low")], "en",
                              timezone="America/New_York", hour="21", frequency="weekly", weekday="fri")
    assert response.status_code == 302
    signup = session.scalar(select(SignupRequest))
    assert signup.schedule == {"timezone": "America/New_York", "hour": 21, "frequency": "weekly", "weekday": 4}
    subscriber = find_subscriber(session, "clock@example.com")
    assert (subscriber.timezone, subscriber.hour) == ("UTC", 8)  # nothing changes before confirming
    path = path_of(link_in(body_text(outbox.last()), "confirm"))
    page = client.get(path).get_data(as_text=True)
    assert "Delivery: every Friday at 21:00 (America/New_York)." in page
    before = datetime.now(UTC)
    confirmed = client.post(path, data={"csrf_token": csrf_token(page)})
    assert confirmed.status_code == 200
    subscriber = find_subscriber(session, "clock@example.com")
    assert (subscriber.timezone, subscriber.hour, subscriber.frequency, subscriber.weekday) == (
        "America/New_York", 21, Frequency.WEEKLY, 4)
    clock = Clock("America/New_York", 21, "weekly", 4)
    _assert_first_email(confirmed, clock, before, "en")
    assert "with the commits of the week before it" in confirmed.get_data(as_text=True)
    assert re.search(r"Fri \d{4}-\d\d-\d\d 21:00 \(America/New_York\)", confirmed.get_data(as_text=True))


def test_a_signup_that_leaves_the_clock_out_gets_the_defaults_of_its_language(client, session, outbox):
    assert post_subscribe(client, "zh@example.com", [("rq/rq", "low")], "zh").status_code == 302
    assert post_subscribe(client, "en@example.com", [("rq/rq", "low")], "en").status_code == 302
    schedules = {s.subscriber.email: s.schedule for s in session.scalars(select(SignupRequest))}
    assert schedules == {
        "zh@example.com": {"timezone": "Asia/Shanghai", "hour": 8, "frequency": "daily", "weekday": 0},
        "en@example.com": {"timezone": "UTC", "hour": 8, "frequency": "daily", "weekday": 0}}
    # The Chinese reader's confirmed page, in Chinese, on Shanghai's clock.
    path = path_of(link_in(body_text(outbox.messages()[0]), "confirm"))
    page = client.get(path).get_data(as_text=True)
    assert "发送时间：每天 08:00（Asia/Shanghai）。" in page
    before = datetime.now(UTC)
    confirmed = client.post(path, data={"csrf_token": csrf_token(page)})
    _assert_first_email(confirmed, Clock("Asia/Shanghai", 8, "daily", 0), before, "zh")
    assert "包含此前一天的提交" in confirmed.get_data(as_text=True)
    assert re.search(r"\d{4}-\d\d-\d\d 周[一二三四五六日] 08:00 \(Asia/Shanghai\)", confirmed.get_data(as_text=True))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_clock_values_are_field_errors_and_keep_everything_typed(client, session, outbox, lang):
    page = client.get(f"/?lang={lang}")
    data = subscribe_form("typed@example.com", [("pallets/flask", "high"), ("rq/rq", "low")], lang,
                          csrf_token(page.get_data(as_text=True)))
    data.update(timezone="Mars/Olympus_Mons", hour="24", frequency="hourly", weekday="fri")
    response = client.post(f"/?lang={lang}", data=data)
    assert response.status_code == 400
    html = unescape(response.get_data(as_text=True))
    expected = {
        "en": ("'Mars/Olympus_Mons' is not a time zone", "from 0 to 23, not '24'", "daily or weekly, not 'hourly'"),
        "zh": ("“Mars/Olympus_Mons” 不是有效的时区", "0 到 23 之间的整点，而不是 “24”", "而不是 “hourly”"),
    }[lang]
    for field, message in zip(("timezone", "hour", "frequency"), expected, strict=True):
        error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
        assert error and message in error.group(1), (field, error)
        assert re.search(rf'<select name="{field}" id="{field}" aria-invalid="true" aria-describedby="{field}-error">',
                         html), field
    assert 'id="weekday-error"' not in html
    # Each bad field is linked from the error summary, in page order.
    assert _summary_links(html) == ["timezone", "hour", "frequency"]
    # Everything typed comes back: the bad values as sent (so the reader sees what is wrong), the rest as chosen.
    assert 'value="typed@example.com"' in html and 'value="pallets/flask"' in html and 'value="rq/rq"' in html
    assert _clock_shown(html) == {"timezone": "Mars/Olympus_Mons", "hour": "24", "frequency": "hourly", "weekday": "fri"}
    assert count_subscribers(session) == 0 and outbox.messages() == []
    # Other errors come first in the summary, the clock's last.
    data.update(email="nope", weekday="someday", timezone="Asia/Tokyo", hour="7", frequency="weekly")
    html = unescape(client.post(f"/?lang={lang}", data=data).get_data(as_text=True))
    assert _summary_links(html) == ["email", "weekday"]
    assert _clock_shown(html) == {"timezone": "Asia/Tokyo", "hour": "7", "frequency": "weekly", "weekday": "someday"}


def test_add_row_keeps_the_clock(client):
    page = client.get("/").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "email": "x@example.com", "language": "en", "add_row": "1",
            "repos-0-repo": "rq/rq", "timezone": "Asia/Kolkata", "hour": "6", "frequency": "weekly", "weekday": "sun"}
    html = client.post("/", data=data).get_data(as_text=True)
    assert _clock_shown(html) == {"timezone": "Asia/Kolkata", "hour": "6", "frequency": "weekly", "weekday": "sun"}
    assert "data-guess-zone" not in html  # the reader's choice is never replaced by a guess


def test_preferences_change_the_clock_and_show_the_next_email(app, client, session):
    subscriber, prefs, _ = _confirmed(app, session)
    page = client.get(prefs)
    html = unescape(page.get_data(as_text=True))
    assert _clock_shown(html) == {"timezone": "UTC", "hour": "8", "frequency": "daily", "weekday": "mon"}
    assert "data-guess-zone" not in html  # the saved zone is what the page shows, whatever the browser's
    now = datetime.now(UTC)
    assert any(f"Your next email: {describe(Clock(), Clock().next_slot(m), 'en')}" in html
               for m in (now - timedelta(seconds=5), now)), html
    data = {"csrf_token": csrf_token(html), "language": "zh", "submit": "1",
            "repos-0-repo": "pallets/flask", "repos-0-threshold": "high",
            "repos-1-repo": "rq/rq", "repos-1-threshold": "low",
            "timezone": "Asia/Tokyo", "hour": "6", "frequency": "weekly", "weekday": "sun"}
    before = datetime.now(UTC)
    response = client.post(prefs, data=data)
    assert response.status_code == 302
    subscriber = find_subscriber(session, "p@example.com")
    assert (subscriber.timezone, subscriber.hour, subscriber.frequency, subscriber.weekday) == (
        "Asia/Tokyo", 6, Frequency.WEEKLY, 6)
    saved = client.get(response.headers["Location"])
    clock = Clock("Asia/Tokyo", 6, "weekly", 6)
    _assert_first_email(saved, clock, before, "zh")
    text = unescape(saved.get_data(as_text=True))
    assert re.search(r"下一封邮件：\d{4}-\d\d-\d\d 周日 06:00 \(Asia/Tokyo\)", text)
    assert _clock_shown(text) == {"timezone": "Asia/Tokyo", "hour": "6", "frequency": "weekly", "weekday": "sun"}
    # Paused: no next email, and the page says why.
    client.post(prefs, data={**data, "paused": "y"})
    text = unescape(client.get(prefs).get_data(as_text=True))
    assert "暂停期间不会发送任何邮件" in text and "下一封邮件" not in text
    english = unescape(client.get(prefs + "?lang=en").get_data(as_text=True))
    assert "no email goes while it is paused" in english and "Your next email" not in english


def test_preferences_refuse_a_bad_clock_and_save_nothing(app, client, session):
    _, prefs, _ = _confirmed(app, session, lang="zh")
    html = client.get(prefs).get_data(as_text=True)
    assert _clock_shown(html)["timezone"] == "Asia/Shanghai"
    data = {"csrf_token": csrf_token(html), "language": "zh", "submit": "1",
            "repos-0-repo": "pallets/flask", "repos-0-threshold": "low",
            "timezone": "Asia/Shanghai", "hour": "-1", "frequency": "weekly", "weekday": "8"}
    response = client.post(prefs, data=data)
    assert response.status_code == 400
    page = unescape(response.get_data(as_text=True))
    assert "发送时间必须是 0 到 23 之间的整点" in page and "星期必须是" in page
    assert _summary_links(page) == ["hour", "weekday"]
    assert _clock_shown(page) == {"timezone": "Asia/Shanghai", "hour": "-1", "frequency": "weekly", "weekday": "8"}
    subscriber = find_subscriber(session, "p@example.com")
    assert (subscriber.hour, subscriber.frequency) == (8, Frequency.DAILY)
    assert sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions) == [
        ("pallets/flask", "high"), ("rq/rq", "low")]


def test_a_zone_outside_the_list_is_shown_and_kept(app, client, session):
    subscriber, prefs, _ = _confirmed(app, session)
    subscriber.timezone = "US/Eastern"  # an alias an operator may set; the list has America/New_York
    session.commit()
    html = client.get(prefs).get_data(as_text=True)
    assert _clock_shown(html)["timezone"] == "US/Eastern"
    assert "<option>US/Eastern</option>" not in html  # shown once, as the chosen value
    data = {"csrf_token": csrf_token(html), "language": "en", "submit": "1", "repos-0-repo": "rq/rq",
            **_clock_shown(html)}
    assert client.post(prefs, data=data).status_code == 302
    assert find_subscriber(session, "p@example.com").timezone == "US/Eastern"


def test_the_next_email_passes_over_a_slot_too_soon_after_the_previous_one(app, client, session):
    """A weekly reader whose last email went yesterday moves their weekday to the day after tomorrow:
    the planner waits at least four days between weekly emails, so the next one is a week later."""
    today = datetime.now(UTC).date()
    weekday = (today + timedelta(days=2)).weekday()
    subscriber, prefs, _ = _confirmed(app, session)
    clock = Clock("UTC", 8, "weekly", weekday)
    previous = clock.slot_on(today - timedelta(days=1))
    session.add(Delivery(subscriber_id=subscriber.id, date=today - timedelta(days=1), slot=previous,
                         window_start=previous - timedelta(days=7), window_end=previous))
    session.commit()
    html = client.get(prefs).get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "language": "en", "submit": "1", "repos-0-repo": "rq/rq",
            "timezone": "UTC", "hour": "8", "frequency": "weekly", "weekday": str(weekday)}
    assert client.post(prefs, data=data).status_code == 302
    page = unescape(client.get(prefs).get_data(as_text=True))
    assert f"Your next email: {describe(clock, clock.slot_on(today + timedelta(days=9)), 'en')}" in page
