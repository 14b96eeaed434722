"""End to end in a real browser: subscribe, confirm from the emailed link, change preferences, and
unsubscribe the way a mail client does (RFC 8058 one-click), against the app served over real HTTP.

Needs Debian's chromium at /usr/bin/chromium (CHROMIUM_PATH overrides it); Playwright never
downloads a browser here. Run alone with `pytest -m browser tests/test_browser.py`.
"""
from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from sqlalchemy import select

from newsletter.models import Subscriber, SubscriberStatus

from .browser_server import LiveServer, live_server
from .github_repos import public_repos  # noqa: F401  (a fixture)

# The repositories the journey subscribes to are on the fake GitHub, where the site checks them.
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("public_repos")]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ADDRESS = "Reader@Example.com"  # the site keeps the local part's case and lower-cases the domain
NORMALIZED = "Reader@example.com"


# Fixtures -------------------------------------------------------------------------------------

@pytest.fixture
def live(config, cleaner):
    """The app on a free 127.0.0.1 port; tables emptied afterwards as the `app` fixture does."""
    try:
        with live_server(config) as server:
            yield server
    finally:
        cleaner()


def require_chromium() -> None:
    """Fail (never skip) without the browser: CI installs it, so its absence is a broken setup."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"chromium is not installed at {CHROMIUM}: the browser test needs it "
                    "(apt-get install -y chromium, or set CHROMIUM_PATH)", pytrace=False)


@contextlib.contextmanager
def chromium_page(profile: Path) -> Iterator:
    """A page in headless Debian chromium, 375 px wide (a phone), with a fresh profile.

    Yields the page and a list of what the browser complains about: script errors, CSP violations and
    failed requests (except a /favicon.ico probe).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 375, "height": 812}, locale="en-US", timezone_id="UTC")
        try:
            context.set_default_timeout(10_000)
            context.set_default_navigation_timeout(10_000)
            page = context.pages[0] if context.pages else context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status} for {r.request.method} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            yield page, problems
        finally:
            context.close()


# Helpers --------------------------------------------------------------------------------------

def subscriber_state(live: LiveServer, address: str) -> dict | None:
    """What the database holds for `address` now, read in a fresh session."""
    with live.app.app_context():
        session = live.app.extensions["db"].session
        session.expire_all()
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == address.casefold()))
        if subscriber is None:
            return None
        return {
            "email": subscriber.email,
            "status": subscriber.status,
            "language": subscriber.language,
            "paused": subscriber.paused,
            "send_empty": subscriber.send_empty,
            "confirmed_at": subscriber.confirmed_at,
            "unsubscribed_at": subscriber.unsubscribed_at,
            "repos": sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions),
        }


def outbox_messages(live: LiveServer) -> list[email.message.EmailMessage]:
    directory = Path(live.app.config["OUTBOX_DIR"])
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(directory.glob("*.eml"))]


def repo_rows(page) -> list[tuple[str, str, str]]:
    """(field name, repository, threshold) for every row of the repositories fieldset."""
    rows = page.eval_on_selector_all(
        "fieldset.repos .repo-row",
        "rows => rows.map(r => [r.querySelector('input').name, r.querySelector('input').value,"
        " r.querySelector('select').value])")
    return [tuple(row) for row in rows]


def assert_no_horizontal_scroll(page, what: str) -> None:
    scroll_width, client_width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert client_width == 375, f"{what}: viewport is {client_width}px wide, expected 375"
    assert scroll_width <= client_width, f"{what} scrolls sideways at 375px: {scroll_width} > {client_width}"


def heading(page) -> str:
    return page.locator("h1").first.inner_text().strip()


# The journey ----------------------------------------------------------------------------------

def test_subscribe_confirm_change_preferences_and_one_click_unsubscribe(live, tmp_path):
    require_chromium()
    with chromium_page(tmp_path / "chromium-profile") as (page, problems):
        journey(page, live, tmp_path)
    assert problems == [], "the browser reported errors:\n" + "\n".join(problems)


def journey(page, live: LiveServer, tmp_path: Path) -> None:
    base = live.url

    # Home page: sample and form, fits a phone screen, screenshots as a PNG.
    response = page.goto(f"{base}/")
    assert response is not None and response.status == 200
    assert heading(page) == "Repo Daily"
    assert page.locator("section.sample article.commit").count() > 0
    assert_no_horizontal_scroll(page, "home page")
    shot = tmp_path / "home.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE), "the home page screenshot is not a PNG"

    rows = repo_rows(page)
    assert len(rows) >= 2 and all(repo == "" for _, repo, _ in rows)

    # Fill the form, then ask for another row: added in the page, no request, every input kept.
    page.fill("#email", ADDRESS)
    page.fill("#repos-0-repo", "pallets/flask")
    page.select_option("#repos-0-threshold", "high")
    page.fill("#repos-1-repo", "https://github.com/rq/rq")
    page.select_option("#repos-1-threshold", "low")
    page.select_option("#language", "en")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.click("button[name=add_row]")
    assert posts == [], f"'Add another repository' made a request: {posts}"
    assert page.url.startswith(base + "/")
    after = repo_rows(page)
    assert len(after) == len(rows) + 1, f"'Add another repository' gave {len(after)} rows, had {len(rows)}"
    assert after[0][1:] == ("pallets/flask", "high") and after[1][1:] == ("https://github.com/rq/rq", "low")
    assert after[-1][0] == f"repos-{len(rows)}-repo" and after[-1][1:] == ("", "medium")
    assert page.input_value("#email") == ADDRESS and page.input_value("#language") == "en"
    assert page.locator(".error").count() == 0, "asking for a row must not show validation errors"
    assert subscriber_state(live, ADDRESS) is None and outbox_messages(live) == []
    # The new row is usable: a third repository goes in the last one, a blank row stays between.
    new_index = len(after) - 1
    page.fill(f"#repos-{new_index}-repo", "ai-dynamo/dynamo")
    page.select_option(f"#repos-{new_index}-threshold", "medium")

    with page.expect_navigation():
        page.click("button[name=submit]")
    assert "/check-email" in page.url
    assert heading(page) == "Check your inbox"
    assert NORMALIZED in page.inner_text("main")
    state = subscriber_state(live, ADDRESS)
    assert state is not None, f"subscribing created no subscriber row for {ADDRESS}"
    assert state["status"] is SubscriberStatus.PENDING and state["repos"] == []

    # The confirmation email, as the outbox mailer wrote it.
    messages = outbox_messages(live)
    assert len(messages) == 1, f"expected one confirmation email, found {len(messages)}"
    message = messages[0]
    assert message["To"] == NORMALIZED
    text = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(re.escape(base) + r"/confirm/[A-Za-z0-9_.\-]+", text)
    assert match, f"no {base}/confirm/<token> link in the email text:\n{text}"
    confirm_url = match.group(0)

    # Opening the link only shows a button: a GET (a mail scanner's prefetch) confirms nothing.
    response = page.goto(confirm_url)
    assert response is not None and response.status == 200
    assert heading(page) == "Confirm your subscription"
    listed = page.inner_text("main ul")
    assert "pallets/flask" in listed and "rq/rq" in listed and "ai-dynamo/dynamo" in listed
    assert_no_horizontal_scroll(page, "confirm page")
    state = subscriber_state(live, ADDRESS)
    assert state["status"] is SubscriberStatus.PENDING and state["confirmed_at"] is None and state["repos"] == []

    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert heading(page) == "You are subscribed"
    preferences_link = page.locator("a.button[href*='/preferences/']")
    assert preferences_link.count() == 1
    state = subscriber_state(live, ADDRESS)
    assert state["status"] is SubscriberStatus.CONFIRMED and state["confirmed_at"] is not None
    assert state["repos"] == [("ai-dynamo/dynamo", "medium"), ("pallets/flask", "high"), ("rq/rq", "low")]
    assert state["language"] == "en" and not state["paused"]

    # Preferences: change a threshold, remove a repository, switch to Chinese, pause.
    with page.expect_navigation():
        preferences_link.click()
    assert "/preferences/" in page.url and heading(page) == "Your preferences"
    preferences_url = page.url
    rows = {repo: name for name, repo, _ in repo_rows(page) if repo}
    assert set(rows) == {"ai-dynamo/dynamo", "pallets/flask", "rq/rq"}
    assert_no_horizontal_scroll(page, "preferences page")
    page.select_option(f"select[name='{rows['pallets/flask'].replace('-repo', '-threshold')}']", "medium")
    page.fill(f"input[name='{rows['rq/rq']}']", "")
    page.select_option("#language", "zh")
    page.check("#paused")
    assert not page.is_checked("#send_empty")
    with page.expect_navigation():
        page.click("button[name=submit]")
    assert page.url.split("?")[0] == preferences_url.split("?")[0]
    assert "设置已保存" in page.inner_text("p.flash")
    assert heading(page) == "偏好设置"
    assert sorted((repo, threshold) for _, repo, threshold in repo_rows(page) if repo) == [
        ("ai-dynamo/dynamo", "medium"), ("pallets/flask", "medium")]
    assert page.input_value("#language") == "zh" and page.is_checked("#paused")
    state = subscriber_state(live, ADDRESS)
    assert state["status"] is SubscriberStatus.CONFIRMED
    assert state["language"] == "zh" and state["paused"] and not state["send_empty"]
    assert state["repos"] == [("ai-dynamo/dynamo", "medium"), ("pallets/flask", "medium")]

    # One-click unsubscribe exactly as a mail client does it: a cookieless form POST from outside.
    href = page.get_attribute("p.unsubscribe a", "href")
    assert href, "the preferences page has no unsubscribe link"
    unsubscribe_url = urljoin(page.url, href)
    assert re.fullmatch(re.escape(base) + r"/unsubscribe/[A-Za-z0-9_.\-]+", unsubscribe_url), unsubscribe_url
    request = urllib.request.Request(
        unsubscribe_url, data=b"List-Unsubscribe=One-Click", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "mail-client/1.0"})
    opener = urllib.request.build_opener()  # no cookie handler: the client has no session
    with opener.open(request, timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers.get("Set-Cookie") is None
        assert "已退订" in reply.read().decode("utf-8")
    state = subscriber_state(live, ADDRESS)
    assert state["status"] is SubscriberStatus.UNSUBSCRIBED and state["unsubscribed_at"] is not None

    # The browser sees the same: the unsubscribe page says so, and preferences can't be changed.
    response = page.goto(unsubscribe_url)
    assert response is not None and response.status == 200
    assert heading(page) == "已退订"
    assert NORMALIZED in page.inner_text("main")
    assert page.locator("main form").count() == 0
    assert_no_horizontal_scroll(page, "unsubscribe page")
    page.goto(preferences_url)
    assert "该地址已不再订阅" in page.inner_text("main")
    assert page.locator("button[name=submit]").count() == 0


# Signup never locks anyone out ------------------------------------------------------------------

def email_field_box(page, width: int, height: int) -> dict:
    """Where the email field is on a fresh home page at width x height."""
    page.set_viewport_size({"width": width, "height": height})
    page.goto(page.url)
    return page.evaluate("() => { const r = document.getElementById('email').getBoundingClientRect();"
                         " return {top: r.top, bottom: r.bottom, height: innerHeight}; }")


def test_realistic_signup_with_a_typo_is_never_rate_limited(config, cleaner, tmp_path):
    """Add rows, submit with a typo, fix it, submit: two POSTs, no 429, under the default 3 per minute."""
    require_chromium()
    config["RATELIMIT_KEY_PREFIX"] = "browser-signup"  # its own counters, whatever ran before
    try:
        with live_server(config) as live, chromium_page(tmp_path / "profile") as (page, problems):
            page.goto(f"{live.url}/")
            # The form is above the fold on a laptop and on a phone.
            for width, height in ((1280, 800), (390, 844)):
                box = email_field_box(page, width, height)
                assert box["bottom"] <= height, f"email field ends at {box['bottom']}px of {height} at {width}px"
            posts: list[tuple[str, int]] = []
            page.on("response", lambda r: posts.append((r.url, r.status)) if r.request.method == "POST" else None)

            page.fill("#email", ADDRESS)
            page.click("button[name=add_row]")
            page.click("button[name=add_row]")
            assert len(repo_rows(page)) == 5 and posts == []
            page.fill("#repos-0-repo", "pallets/flask")
            page.fill("#repos-3-repo", "rq/rqq")  # the typo: no such repository
            page.select_option("#repos-3-threshold", "low")
            page.fill("#repos-4-repo", "ai-dynamo/dynamo")
            with page.expect_navigation():
                page.click("button[name=submit]")
            # Back with everything typed, the summary focused, the bad row marked and linked.
            assert page.evaluate("document.activeElement.id") == "error-summary"
            assert page.get_attribute("#error-summary a", "href") == "#repos-3-repo"
            assert "There is no public GitHub repository rq/rqq" in page.inner_text("#repos-3-repo-error")
            assert page.input_value("#email") == ADDRESS
            assert [row[1:] for row in repo_rows(page) if row[1]] == [
                ("pallets/flask", "medium"), ("rq/rqq", "low"), ("ai-dynamo/dynamo", "medium")]
            page.click("#error-summary a")
            assert page.evaluate("document.activeElement.id") == "repos-3-repo"
            page.fill("#repos-3-repo", "rq/rq")
            with page.expect_navigation():
                page.click("button[name=submit]")
            assert "/check-email" in page.url and heading(page) == "Check your inbox"
            assert [status for _, status in posts] == [400, 302], posts
            state = subscriber_state(live, ADDRESS)
            assert state is not None and state["status"] is SubscriberStatus.PENDING
            assert len(outbox_messages(live)) == 1
        # The typo's 400 is the one failed response expected.
        assert [p for p in problems if not p.startswith("HTTP 400 for POST")] == [], problems
    finally:
        cleaner()
