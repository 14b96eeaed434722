"""Accessibility and layout in a real browser: axe-core on every page of the site and on the emails,
and screenshots of the daily email at 600 and 375 px, light and dark, checked for sideways overflow.

axe-core comes from npm (scripts/ensure-axe, part of `make test` and `make browser`, installs it into
~/.cache/repo-daily/npm; REPO_DAILY_NPM moves it, AXE_CORE_JS names the file itself) and runs in
Debian's chromium (/usr/bin/chromium, CHROMIUM_PATH overrides it). Without either the tests skip,
saying what is missing, except under CI=true, where that is a broken setup and they fail.
Screenshots go to the test's tmp_path (A11Y_SCREENSHOT_DIR copies them for a person to look at).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest

from newsletter.email.digest import DigestRenderer
from newsletter.models import SubscriberStatus

from .browser_server import LiveServer, live_server
from .factories import stored_report
from .github_repos import public_repos  # noqa: F401  (a fixture)
from .test_browser import CHROMIUM, CHROMIUM_ARGS, outbox_messages, subscriber_state
from .test_digest import CONFIG, OTHER, OTHER_SPECS, REPORTS, SEED_REPO, UNPICKED, custom_report, subscriber
from .test_report_render import DAY, seed_report

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("public_repos")]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NPM_DIR = Path(os.environ.get("REPO_DAILY_NPM")
               or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "repo-daily" / "npm")
AXE_JS = Path(os.environ.get("AXE_CORE_JS") or NPM_DIR / "node_modules" / "axe-core" / "axe.min.js")
ADDRESS = "reader@example.com"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SITE_WIDTHS = (1280, 375)  # every site page is checked on a desktop and on a phone


# Tools: present, or a skip (a failure in CI) that says what is missing -----------------------

def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the accessibility tests must run there)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"chromium is not installed at {CHROMIUM}: run scripts/ensure-chromium "
                    "(apt-get install -y chromium), or set CHROMIUM_PATH")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is not installed: make install")
    if not AXE_JS.is_file():
        unavailable(f"axe-core is not installed at {AXE_JS}: run scripts/ensure-axe")
    return AXE_JS.read_text(encoding="utf-8")


@contextlib.contextmanager
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@contextlib.contextmanager
def new_page(instance, axe: str, *, width: int = 1280, scheme: str = "light") -> Iterator:
    """A page with axe-core in every document it loads (an init script: the site's CSP allows no inline script)."""
    context = instance.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                                   locale="en-US", timezone_id="UTC")
    try:
        context.set_default_timeout(15_000)
        context.add_init_script(script=axe)
        yield context.new_page()
    finally:
        context.close()


# axe -------------------------------------------------------------------------------------------

RUN_AXE = """async (disabled) => {
  const rules = Object.fromEntries(disabled.map(id => [id, {enabled: false}]));
  const results = await axe.run(document, {resultTypes: ['violations'], rules});
  return {passes: results.passes.length, violations: results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
  }))};
}"""


def axe_violations(page, disabled: tuple[str, ...] = ()) -> list[dict]:
    """Every violation of axe's rules (WCAG 2.x A and AA, and best practices), but the `disabled` ones."""
    assert page.evaluate("typeof window.axe") == "object", f"axe-core is not loaded in {page.url}"
    results = page.evaluate(RUN_AXE, list(disabled))
    assert results["passes"] > 0, f"axe checked nothing on {page.url}"
    return results["violations"]


def describe(results: dict[str, list[dict]]) -> str:
    lines = []
    for what, violations in results.items():
        for v in violations:
            lines.append(f"{what}: {v['id']} ({v['impact']}) {v['help']}")
            for node in v["nodes"][:5]:
                summary = " ".join((node["summary"] or "").split())
                lines.append(f"    {node['target']}: {summary[:300]}")
    return "\n".join(lines)


def count(results: dict[str, list[dict]]) -> dict[str, int]:
    """Violations per page: every failing node of every rule."""
    return {what: sum(len(v["nodes"]) for v in violations) for what, violations in results.items()}


def check_site_page(page, what: str, results: dict[str, list[dict]]) -> None:
    """axe on the page as loaded, at each of SITE_WIDTHS; the same rule on the same node counts once."""
    found: dict[tuple[str, str], dict] = {}
    rules: dict[str, dict] = {}
    for width in SITE_WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for violation in axe_violations(page):
            rule = rules.setdefault(violation["id"], {**violation, "nodes": []})
            for node in violation["nodes"]:
                if (violation["id"], node["target"]) not in found:
                    found[(violation["id"], node["target"])] = node
                    rule["nodes"].append({**node, "target": f"{node['target']} @{width}px"})
    page.set_viewport_size({"width": SITE_WIDTHS[0], "height": 900})
    results[what] = list(rules.values())


def visit(page, url: str, status: int, what: str, results: dict[str, list[dict]]) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, f"{what}: {url} answered " \
        f"{response.status if response else None}, expected {status}"
    check_site_page(page, what, results)


def submit(page, selector: str, status: int, what: str, results: dict[str, list[dict]]) -> None:
    with page.expect_navigation() as navigation:
        page.click(selector)
    response = navigation.value
    assert response is not None and response.status == status, f"{what}: answered " \
        f"{response.status if response else None}, expected {status}"
    check_site_page(page, what, results)


# The site ------------------------------------------------------------------------------------

@pytest.fixture
def live(config, cleaner):
    """The app on a free 127.0.0.1 port, two real subscribe submissions a minute, so the third is refused."""
    config["RATELIMIT_SUBSCRIBE"] = "2 per minute"
    try:
        with live_server(config) as server:
            yield server
    finally:
        cleaner()


def store_reports(live: LiveServer) -> None:
    """The seed day in both languages, and a failed day before it, for the report pages."""
    with live.app.app_context():
        session = live.app.extensions["db"].session
        for lang in ("en", "zh"):
            stored_report(session, seed_report(lang))
        failed = dataclasses.replace(seed_report("en"), date=DAY.replace(day=DAY.day - 1), entries=(),
                                     status="failed", error="GitHub answered 502")
        stored_report(session, failed)
        session.remove()


def test_every_site_page_has_no_axe_violations(live, axe_source):
    results: dict[str, list[dict]] = {}
    base = live.url
    store_reports(live)
    with browser() as instance, new_page(instance, axe_source) as page:
        site_journey(page, base, live, results)
    print("\naxe violations per site page:", count(results))
    assert len(results) >= 20, sorted(results)
    assert all(not v for v in results.values()), "axe found violations:\n" + describe(results)


def site_journey(page, base: str, live: LiveServer, results: dict[str, list[dict]]) -> None:
    visit(page, f"{base}/", 200, "signup form", results)
    visit(page, f"{base}/?lang=zh", 200, "signup form (zh)", results)
    page.goto(f"{base}/")
    page.click("button[name=add_row]")  # form.js adds the row in the page
    check_site_page(page, "signup form with a row added in the page", results)

    # Signup with errors: a bad address and a repository that does not exist (a real submission, 1 of 2).
    page.goto(f"{base}/?lang=en")
    page.fill("#email", "not an address")
    page.fill("#repos-0-repo", "rq/rqq")
    submit(page, "button[name=submit]", 400, "signup with errors", results)

    # A good one (2 of 2): check your email.
    page.fill("#email", ADDRESS)
    page.fill("#repos-0-repo", "pallets/flask")
    page.fill("#repos-1-repo", "ai-dynamo/dynamo")
    submit(page, "button[name=submit]", 200, "check your email", results)
    assert "/check-email" in page.url

    # The third real submission is over the limit: the form comes back filled in, saying when to retry.
    page.goto(f"{base}/")
    page.fill("#email", "other@example.com")
    page.fill("#repos-0-repo", "rq/rq")
    submit(page, "button[name=submit]", 429, "rate-limited form", results)

    text = outbox_messages(live)[0].get_body(preferencelist=("plain",)).get_content()
    confirm_url = re.search(re.escape(base) + r"/confirm/[A-Za-z0-9_.\-]+", text).group(0)
    visit(page, confirm_url, 200, "confirm", results)
    submit(page, "main form button[type=submit]", 200, "confirmed", results)
    preferences_url = urljoin(page.url, page.get_attribute("a.button[href*='/preferences/']", "href"))
    visit(page, confirm_url, 200, "already confirmed", results)
    visit(page, f"{base}/confirm/not-a-token", 400, "bad link (error page)", results)

    visit(page, preferences_url, 200, "preferences", results)
    page.fill("#repos-0-repo", "rq/rqq")
    submit(page, "button[name=submit]", 400, "preferences with errors", results)
    page.fill("#repos-0-repo", "rq/rq")
    submit(page, "button[name=submit]", 200, "preferences saved", results)
    assert page.locator("p.flash").count() == 1

    unsubscribe_url = urljoin(page.url, page.get_attribute("p.unsubscribe a", "href"))
    visit(page, unsubscribe_url, 200, "unsubscribe", results)
    submit(page, "form[action$='/less'] button", 200, "less email (paused)", results)
    visit(page, unsubscribe_url, 200, "unsubscribe (paused)", results)
    submit(page, "button.danger", 200, "unsubscribed", results)
    assert subscriber_state(live, ADDRESS)["status"] is SubscriberStatus.UNSUBSCRIBED
    visit(page, unsubscribe_url, 200, "unsubscribe (already unsubscribed)", results)
    visit(page, preferences_url, 200, "preferences (unsubscribed)", results)

    day = DAY.isoformat()
    visit(page, f"{base}/r/{SEED_REPO}/{day}", 200, "report page", results)
    visit(page, f"{base}/r/{SEED_REPO}/{day}?lang=zh", 200, "report page (zh)", results)
    visit(page, f"{base}/r/{SEED_REPO}/{DAY.replace(day=DAY.day - 1).isoformat()}", 200,
          "report page (failed day)", results)
    visit(page, f"{base}/r/{SEED_REPO}/", 200, "archive index", results)
    visit(page, f"{base}/r/{SEED_REPO}/2026-02-01", 404, "404 day page", results)
    visit(page, f"{base}/no/such/page", 404, "404 page", results)


# The emails ----------------------------------------------------------------------------------

def daily_email_html(lang: str) -> str:
    """A rich day: the whole seed day (15 commits, every importance), another repository with a
    merge commit, and a repository whose run failed."""
    failed = custom_report(lang, UNPICKED, [], status="failed", error="GitHub answered 502")
    reports = {**REPORTS, (UNPICKED, lang): failed, (OTHER, lang): custom_report(lang, OTHER, OTHER_SPECS)}
    view = subscriber((SEED_REPO, "low"), (OTHER, "low"), (UNPICKED, "high"), language=lang)
    digest = DigestRenderer(CONFIG, DAY, reports).render(view)
    assert digest is not None
    return digest.html


def confirmation_email_html(lang: str) -> str:
    from newsletter.email.confirmation import confirmation_message
    from newsletter.models import SignupRequest, Subscriber

    reader = Subscriber(id=1, email=ADDRESS, email_key=ADDRESS)
    request = SignupRequest(id=1, repos=[[SEED_REPO, "high"], [OTHER, "medium"]], language=lang, subscriber=reader)
    config = {**CONFIG, "SECRET_KEY": "k", "CONFIRM_MAX_AGE_DAYS": 7}
    return confirmation_message(config, request).html


# An email is not a web page: a mail client shows it inside its own page, in the client's main
# landmark under the client's headings. Standalone, axe's rules about a page's landmarks ask for what
# only that page has (MJML wraps the email in role="article" aria-roledescription="email", the
# accessible-email convention, and MRML can give a body no landmark role); so the email is checked
# twice: standalone with every rule but those two, and framed in a minimal webmail page with all of them.
PAGE_LANDMARK_RULES = ("region", "landmark-one-main")
MAIL_ORIGIN = "http://mail.test"
WEBMAIL = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Inbox · Webmail</title></head>
<body><header><p>Webmail</p></header><main><h1>Inbox</h1><h2>Message</h2>
<iframe src="/message.html" title="Message" style="width:100%;height:3000px;border:0"></iframe></main></body></html>"""


def serve_mail(page, html: str) -> None:
    """The webmail page and the message, on one made-up origin (served by Playwright, no network)."""
    bodies = {f"{MAIL_ORIGIN}/": WEBMAIL, f"{MAIL_ORIGIN}/message.html": html}
    page.route(f"{MAIL_ORIGIN}/**", lambda route: route.fulfill(
        status=200 if route.request.url in bodies else 404, content_type="text/html; charset=utf-8",
        body=bodies.get(route.request.url, "")))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_emails_have_no_axe_violations_in_light_and_dark(axe_source, lang):
    emails = {"daily email": daily_email_html(lang), "confirmation email": confirmation_email_html(lang)}
    results: dict[str, list[dict]] = {}
    with browser() as instance:
        for name, html in emails.items():
            for scheme in ("light", "dark"):
                for width in (600, 375):
                    with new_page(instance, axe_source, width=width, scheme=scheme) as page:
                        serve_mail(page, html)
                        page.goto(f"{MAIL_ORIGIN}/message.html")
                        results[f"{name} ({lang}, {scheme}, {width}px)"] = axe_violations(page, PAGE_LANDMARK_RULES)
                        page.goto(f"{MAIL_ORIGIN}/")
                        page.frame_locator("iframe").locator("body").wait_for()
                        results[f"{name} in webmail ({lang}, {scheme}, {width}px)"] = axe_violations(page)
    print("\naxe violations per email:", count(results))
    assert all(not v for v in results.values()), "axe found violations:\n" + describe(results)


def test_axe_finds_what_it_should(axe_source):
    """The injected axe really checks: a page with known faults has them reported."""
    faulty = """<!doctype html><html><head><title>x</title></head><body><main><h1>x</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<p style="color:#777;background:#888">low contrast</p><a href="/"></a></main></body></html>"""
    with browser() as instance, new_page(instance, axe_source) as page:
        serve_mail(page, faulty)
        page.goto(f"{MAIL_ORIGIN}/message.html")
        found = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "color-contrast", "link-name", "html-has-lang"} <= found, found


# Screenshots and overflow --------------------------------------------------------------------

OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const element of document.body.querySelectorAll('*')) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.width > width + 0.5 || box.right > width + 0.5 || box.left < -0.5) {
      const name = element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
        + (element.className && typeof element.className === 'string' ? '.' + element.className.trim().split(/\\s+/).join('.') : '');
      wide.push(`${name} [${Math.round(box.left)}..${Math.round(box.right)}]`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width,
          bodyScrollWidth: document.body.scrollWidth, wide: wide.slice(0, 20), wideCount: wide.length};
}"""


def screenshot_and_measure(instance, axe: str, html: Path, shot: Path, width: int, scheme: str) -> tuple[dict, list]:
    """The email's layout at `width` (see OVERFLOW) and whatever it fetched beyond its own file."""
    remote: list[str] = []
    with new_page(instance, axe, width=width, scheme=scheme) as page:
        page.on("request", lambda r: remote.append(r.url) if not r.url.startswith("file:") else None)
        page.goto(html.as_uri())
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (scheme == "dark")
        page.screenshot(path=str(shot), full_page=True)
        return page.evaluate(OVERFLOW), remote


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [600, 375])
def test_daily_email_screenshots_fit_the_width(axe_source, tmp_path, width, scheme):
    with browser() as instance:
        for lang in ("en", "zh"):
            html = tmp_path / f"daily-{lang}.html"
            html.write_text(daily_email_html(lang), encoding="utf-8")
            shot = tmp_path / f"daily-{lang}-{width}-{scheme}.png"
            layout, remote = screenshot_and_measure(instance, axe_source, html, shot, width, scheme)
            what = f"the {lang} daily email at {width}px ({scheme})"
            print(f"\n{what}: scrollWidth {layout['scrollWidth']} / viewport {layout['innerWidth']}, "
                  f"{layout['wideCount']} elements wider than the viewport")
            assert layout["innerWidth"] == width
            assert layout["scrollWidth"] <= width and layout["bodyScrollWidth"] <= width, \
                f"{what} scrolls sideways: {layout}"
            assert layout["wideCount"] == 0, f"{what}: elements wider than the viewport: {layout['wide']}"
            assert remote == [], f"{what} loads remote resources: {remote}"
            data = shot.read_bytes()
            assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, f"{shot} is not a screenshot"
    keep = os.environ.get("A11Y_SCREENSHOT_DIR")
    if keep:  # for a person to look at
        os.makedirs(keep, exist_ok=True)
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, keep)
