"""The personalized daily email (newsletter.email.digest), built on the seed day of ai-dynamo/dynamo.

The seed report (tests/test_report_render.py) has 15 commits: 7 high, 4 medium, 4 low. Other
repositories are built here with their own titles, so an email can be searched for what must not
be in it. Every fast render is compared with the naive one: same subject, text and HTML bytes.
"""
from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import os
import re
import shutil
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.naive import render_naive
from newsletter.delivery.mailers import build_mime
from newsletter.email.digest import DEFAULT_HTML_BUDGET, DigestRenderer, RenderedDigest
from newsletter.email.headers import SubscriberView
from newsletter.i18n import t
from newsletter.models import Threshold
from newsletter.reports.model import DailyReport, Entry
from tests.test_report_render import DAY, SEED, make_analysis, make_commit, seed_report

BASE = "https://daily.example.com"
CONFIG = {"BASE_URL": BASE}
SEED_REPO = "ai-dynamo/dynamo"
OTHER = "octo-org/widgets"
UNPICKED = "acme/rockets"
HOSTILE_HEADER = "Daily\r\nBcc: victim@example.org\nX-Evil: 1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SEED_TITLES = {importance: [message for _s, _a, _t, message, _c, imp, _z, _e in SEED if imp == importance]
               for importance in ("high", "medium", "low")}


# Builders -------------------------------------------------------------------------------------

def custom_report(lang: str, repo: str, specs, **overrides) -> DailyReport:
    """A report of repo: one commit per (title, importance) spec; importance None is a merge commit."""
    entries = []
    for i, (title, importance) in enumerate(specs):
        sha = hashlib.sha1(f"{repo} {i}".encode()).hexdigest()
        parents = ("p1", "p2") if importance is None else ("p1",)
        commit = dataclasses.replace(make_commit(sha, f"Dev {i}", f"{i % 10:02d}:{i % 60:02d}:00", title, parents=parents),
                                     html_url=f"https://github.com/{repo}/commit/{sha}")
        analysis = None if importance is None else make_analysis(lang, "feature", importance, f"Summary {i} of {title}")
        entries.append(Entry(commit, analysis))
    fields = dict(repo=repo, date=DAY, language=lang, entries=entries, timezone="Asia/Shanghai", analyzer="gpt-test")
    fields.update(overrides)
    return DailyReport(**fields)


OTHER_SPECS = [("widgets: rewrite the gear train", "high"), ("widgets: polish the cogs", "medium"),
               ("widgets: tidy README", "low"), ("Merge branch 'cogs'", None)]
UNPICKED_SPECS = [("rockets: secret launch codes", "high")]


def all_reports() -> dict:
    reports = {}
    for lang in ("en", "zh"):
        reports[(SEED_REPO, lang)] = seed_report(lang)
        reports[(OTHER, lang)] = custom_report(lang, OTHER, OTHER_SPECS)
        reports[(UNPICKED, lang)] = custom_report(lang, UNPICKED, UNPICKED_SPECS)
    return reports


REPORTS = all_reports()


def subscriber(*subscriptions, language="en", send_empty=False, address="reader@example.com") -> SubscriberView:
    return SubscriberView(email=address, language=language, subscriptions=tuple(subscriptions),
                          preferences_url=f"{BASE}/preferences/p-token", unsubscribe_url=f"{BASE}/unsubscribe/u-token",
                          send_empty=send_empty)


def both(view: SubscriberView, reports=REPORTS, config=CONFIG, date=DAY) -> RenderedDigest | None:
    """The fast render, checked to be identical to the naive one."""
    fast = DigestRenderer(config, date, reports).render(view)
    naive = render_naive(config, date, reports, view)
    if fast is None or naive is None:
        assert fast is None and naive is None
        return None
    assert fast.subject == naive.subject
    assert fast.text == naive.text
    assert fast.html == naive.html
    assert fast.headers == naive.headers and fast.counts == naive.counts
    return fast


class Page(HTMLParser):
    """Tags, attributes and visible text of an HTML email."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.parts: list[str] = []
        self.hidden = 0
        self.in_body = False
        self.body_tags: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.hidden += tag in ("head", "style", "title")
        self.in_body = self.in_body or tag == "body"
        if self.in_body:
            self.body_tags.add(tag)

    def handle_endtag(self, tag):
        self.hidden -= tag in ("head", "style", "title")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())

    def hrefs(self) -> list[str]:
        return [attrs.get("href") or "" for tag, attrs in self.tags if tag == "a"]


def flat(text: str) -> str:
    """The text part with its wrapping undone (runs of spaces and line breaks read as one space)."""
    return " ".join(text.split())


def report_link(repo=SEED_REPO, lang="en") -> str:
    return f"{BASE}/r/{repo}/{DAY.isoformat()}?lang={lang}"


# Personalization ------------------------------------------------------------------------------

def test_thresholds_filter_each_repository_and_unpicked_repositories_never_appear():
    digest = both(subscriber((SEED_REPO, "high"), (OTHER, "low")))
    page = Page(digest.html)
    text = flat(digest.text)
    for title in SEED_TITLES["high"]:
        assert title in page.text and title in text
    for title in SEED_TITLES["medium"] + SEED_TITLES["low"]:
        assert title not in page.text and title not in text
    for title, _importance in OTHER_SPECS:  # low threshold: everything, merges included
        assert title in page.text and title in text
    for text in (digest.html, digest.text):
        assert UNPICKED not in text and "secret launch codes" not in text
    assert digest.counts | {"html_bytes": 0} == {
        "high": 8, "medium": 1, "low": 1, "unanalyzed": 0, "merge": 1, "repositories": 2, "shown": 11, "omitted": 8,
        "failed": 0, "collapsed": 0, "dropped": 0, "html_bytes": 0}


def test_medium_threshold_shows_high_and_medium_and_counts_the_rest():
    digest = both(subscriber((SEED_REPO, "medium")))
    page = Page(digest.html)
    for title in SEED_TITLES["high"] + SEED_TITLES["medium"]:
        assert title in page.text
    assert not any(title in page.text for title in SEED_TITLES["low"])
    assert "4 lower-importance commits left out." in page.text
    assert "4 lower-importance commits left out. Read the full report: " + report_link() in flat(digest.text)
    assert report_link() in page.hrefs()
    # Groups in order; a high commit is a card with every field of the analysis, a medium one its
    # title and the first sentence of its summary.
    assert page.text.index("High importance (7)") < page.text.index("Medium importance (4)")
    for key in ("report.field.summary", "report.field.impact_scope", "report.field.insight",
                "report.field.architecture", "report.field.performance", "report.field.security",
                "report.field.risks", "report.field.recommendations"):
        assert page.text.count(t(key, "en")) == 7 and digest.text.count(t(key, "en")) == 7
    body = page.text[page.text.index(f"📦 {SEED_REPO}"):]  # after the highlights
    assert body.count("It breaks a public interface that callers must follow.") == 7
    assert "🟡 fix: incremental build for dynamo-llm (#5601) Fixes the proto path in build.rs so incremental " \
        "builds work again." in body
    assert "https://github.com/ai-dynamo/dynamo/commit/ebde0f662ca789686611a2a3c635cda2e24879eb" in page.hrefs()
    assert "15 commits | 🔴 high 7 | 🟡 medium 4 | 🟢 low 4" in page.text


def test_thresholds_accept_the_model_enum_and_repeat_repositories_once():
    by_enum = both(subscriber((SEED_REPO, Threshold.HIGH), (SEED_REPO, Threshold.LOW)))
    by_text = both(subscriber((SEED_REPO, "high")))
    assert by_enum.html == by_text.html and by_enum.counts["shown"] == 7


@pytest.mark.parametrize("change", [{"language": "fr"}, {"subscriptions": ((SEED_REPO, "urgent"),)}])
def test_unknown_language_or_threshold_is_refused(change):
    view = dataclasses.replace(subscriber((SEED_REPO, "high")), **change)
    with pytest.raises(ValueError):
        DigestRenderer(CONFIG, DAY, REPORTS).render(view)
    with pytest.raises(ValueError):
        render_naive(CONFIG, DAY, REPORTS, view)


def test_header_summary_and_overview_rows():
    digest = both(subscriber((SEED_REPO, "medium"), (OTHER, "high")))
    page = Page(digest.html)
    # OTHER's merge is left out at "high" too, but a merge is no commit of the count: 2 left out, not 3.
    assert "12 commits at or above your thresholds · 🔴 8 · 🟡 4 · 6 lower-importance left out" in page.text
    assert f"{SEED_REPO} · Medium and up 🔴 7 · 🟡 4 · 4 left out" in page.text
    assert f"{OTHER} · High only 🔴 1 · 2 left out" in page.text
    assert page.text.index(SEED_REPO) < page.text.index(OTHER)


def test_zh_email_uses_zh_labels_and_en_email_has_no_chinese():
    zh = both(subscriber((SEED_REPO, "medium"), language="zh"))
    page = Page(zh.html)
    for key in ("report.field.summary", "report.field.risks", "importance.high", "digest.footer.unsubscribe",
                "digest.view_in_browser", "change_type.refactor"):
        assert t(key, "zh") in page.text and t(key, "zh") in zh.text
    assert "本日共 15 个提交 | 🔴高 7 | 🟡中 4 | 🟢低 4" in page.text
    assert "在 `runtime` 中新增事件平面" in zh.text and "在 runtime 中新增事件平面" in page.text
    assert "另有 4 个较低重要度的提交未列出。" in page.text
    assert report_link(lang="zh") in page.hrefs()
    assert '<html lang="zh"' in zh.html
    en = both(subscriber((SEED_REPO, "medium")))
    assert re.findall(r"[\u4e00-\u9fff]", en.html + en.text) == []


def test_code_spans_in_analysis_become_code_elements():
    digest = both(subscriber((SEED_REPO, "high")))
    # Styled once by the email's <style>, not inline on every code span.
    assert "<code>runtime</code>" in digest.html
    head = digest.html[:digest.html.index("<body")]
    assert re.search(r"\bcode \{[^}]*monospace[^}]*background", head)
    assert "`runtime`" in digest.text


# Empty days, failures, missing reports ----------------------------------------------------------

def test_nothing_at_threshold_is_no_email_unless_send_empty():
    reports = {**REPORTS, (OTHER, "en"): custom_report("en", OTHER, [("widgets: typo", "low")])}
    view = subscriber((OTHER, "high"))
    assert both(view, reports) is None
    assert DigestRenderer(CONFIG, DAY, reports).render(subscriber()) is None  # no subscriptions at all

    digest = both(dataclasses.replace(view, send_empty=True), reports)
    page = Page(digest.html)
    assert digest.subject == f"[Repo Daily] {DAY} · {OTHER} · nothing notable today"
    assert t("digest.summary.nothing", "en") in page.text and "nothing at your threshold" in page.text
    assert "widgets: typo" not in digest.html + digest.text
    assert digest.counts["shown"] == 0 and digest.counts["omitted"] == 1
    assert f"{BASE}/unsubscribe/u-token" in page.hrefs()


FAILED_ERROR = "GitHub answered 502 <Bad Gateway> token=ghp_secret123 at /srv/app/source.py"
FAILED_SENTENCE = {
    "en": "❌ This day's commits could not be fetched: the code host could not be reached. We will try again.",
    "zh": "❌ 本日提交未能获取：无法连接代码托管服务。我们会再次尝试。",
}


def failed_reports(lang: str = "en", kind: str | None = "unreachable") -> dict:
    failed = custom_report(lang, OTHER, [], status="failed", error=FAILED_ERROR, error_kind=kind)
    return {**REPORTS, (OTHER, lang): failed}


def assert_no_error_text(*outputs: str) -> None:
    """Nothing of the exception text reaches a reader, escaped or not."""
    for output in outputs:
        for fragment in ("Bad Gateway", "ghp_secret123", "/srv/app", "502", "GitHub answered"):
            assert fragment not in output, fragment


def test_failed_repository_says_so_in_its_section():
    reports = failed_reports(kind=None)  # stored before error_kind was kept: the kind is read from the error
    digest = both(subscriber((SEED_REPO, "high"), (OTHER, "medium")), reports)
    page = Page(digest.html)
    section = page.text[page.text.index(f"📦 {OTHER}"):]
    assert section.startswith(f"📦 {OTHER} {FAILED_SENTENCE['en']}")
    assert FAILED_SENTENCE["en"] in flat(digest.text)
    assert "❌ fetch failed" in page.text and "1 could not be fetched" in page.text
    assert digest.counts["failed"] == 1
    assert_no_error_text(digest.html, digest.text, digest.subject)
    # A failure alone is nothing notable: no email unless asked for.
    assert both(subscriber((OTHER, "medium")), reports) is None


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_failed_repository_never_shows_the_exception_and_comes_last(lang):
    reports = failed_reports(lang)
    # Subscribed first, shown last.
    digest = both(subscriber((OTHER, "low"), (SEED_REPO, "medium"), language=lang), reports)
    assert_no_error_text(digest.html, digest.text, digest.subject)
    page = Page(digest.html)
    assert FAILED_SENTENCE[lang] in page.text
    # Wrapping may break a Chinese line between any two characters: compare without white space.
    assert "".join(FAILED_SENTENCE[lang].split()) in "".join(digest.text.split())
    assert page.text.index(f"📦 {SEED_REPO}") < page.text.index(f"📦 {OTHER}")
    assert digest.text.index(f"📦 {SEED_REPO}") < digest.text.index(f"📦 {OTHER}")
    # The overview lists it last too.
    assert digest.text.index(f"* {SEED_REPO}") < digest.text.index(f"* {OTHER}")
    assert digest.subject.endswith(t("digest.subject.failed", lang, n=1))


@pytest.mark.parametrize(("kind", "reason"), [
    ("not_found", "the repository was not found"), ("rate_limited", "the code host asked us to slow down"),
    ("other", "the code host answered with an error"), ("unreachable", "the code host could not be reached"),
])
def test_failure_kinds_have_their_own_sentence(kind, reason):
    digest = both(subscriber((SEED_REPO, "high"), (OTHER, "low")), failed_reports(kind=kind))
    assert reason in Page(digest.html).text and reason in flat(digest.text)
    assert "We will try again." in Page(digest.html).text
    assert_no_error_text(digest.html, digest.text)


def test_subject_counts_failed_repositories():
    reports = {**failed_reports(), (UNPICKED, "en"): custom_report("en", UNPICKED, [], status="failed",
                                                                  error="boom", error_kind="not_found")}
    digest = both(subscriber((SEED_REPO, "high"), (OTHER, "low"), (UNPICKED, "low")), reports)
    assert digest.subject == f"[Repo Daily] {DAY} · 3 repositories · 7 high · 2 could not be fetched"
    assert both(subscriber((SEED_REPO, "high"))).subject == f"[Repo Daily] {DAY} · {SEED_REPO} · 7 high"


def test_missing_report_and_day_without_commits():
    quiet = custom_report("en", OTHER, [])
    reports = {**REPORTS, (OTHER, "en"): quiet}
    digest = both(subscriber((SEED_REPO, "high"), (OTHER, "low"), ("nobody/nothing", "low")), reports)
    page = Page(digest.html)
    assert f"No new commits on {DAY}." in page.text and "no new commits" in page.text
    assert f"There is no report for this repository on {DAY}." in page.text
    assert report_link("nobody/nothing") not in page.hrefs()


def test_merge_commits_show_only_at_low_threshold():
    low = both(subscriber((OTHER, "low")))
    # A merge is one line, never a card.
    assert "🔀 Merge commits (1) 🔀 Merge branch 'cogs' · Merge" in Page(low.html).text
    assert "🔀 Merge commit: listed, not analysed." not in Page(low.html).text
    assert "🔀 Merge commits (1)" in low.text and "▸ 🔀 Merge branch 'cogs' · Merge —" in low.text
    medium = both(subscriber((OTHER, "medium")))
    # The merge is left out, but only the low commit counts as a commit left out.
    assert "Merge branch" not in medium.html and "1 lower-importance commit left out." in medium.text


def test_merges_are_not_counted_as_commits_in_summary_and_subject():
    low = both(subscriber((OTHER, "low")))
    assert "3 commits at or above your thresholds · 🔴 1 · 🟡 1 · 🟢 1 · 🔀 1 merge" in low.text
    assert "widgets · 4 commits" not in low.subject
    merges_only = {(OTHER, "en"): custom_report("en", OTHER, [("Merge branch 'a'", None), ("Merge branch 'b'", None)])}
    digest = both(subscriber((OTHER, "low")), merges_only)
    assert digest.subject.endswith("octo-org/widgets · 2 merges")
    assert "🔀 2 merges" in digest.text and "commits at or above" not in digest.text
    assert f"{OTHER} · Everything 🔀 2" in Page(digest.html).text


def test_repeated_anchors_still_give_each_commit_its_own_piece():
    data = custom_report("en", OTHER, [("first twin", "high"), ("second twin", "high")]).to_json()
    for entry in data["entries"]:
        entry["anchor"] = "c-1234567"  # stored anchors are not trusted: the model computes its own
    digest = both(subscriber((OTHER, "high")), {(OTHER, "en"): DailyReport.from_json(data)})
    assert "first twin" in digest.text and "second twin" in digest.text


# Subject and headers --------------------------------------------------------------------------

def test_subject_formats():
    assert both(subscriber((SEED_REPO, "medium"), (OTHER, "low"))).subject == \
        f"[Repo Daily] {DAY} · 2 repositories · 8 high"
    assert both(subscriber((SEED_REPO, "medium"))).subject == f"[Repo Daily] {DAY} · {SEED_REPO} · 7 high"
    assert both(subscriber((SEED_REPO, "medium"), (OTHER, "low"), language="zh")).subject == \
        f"[Repo Daily] {DAY} · 2 个仓库 · 8 个高重要度提交"
    medium_only = {**REPORTS, (OTHER, "en"): custom_report("en", OTHER, [("a", "medium"), ("b", "low")])}
    assert both(subscriber((OTHER, "medium")), medium_only).subject == f"[Repo Daily] {DAY} · {OTHER} · 1 medium"
    assert both(subscriber((OTHER, "low")), medium_only).subject == f"[Repo Daily] {DAY} · {OTHER} · 1 medium"
    low_only = {**REPORTS, (OTHER, "en"): custom_report("en", OTHER, [("a", "low"), ("b", "low")])}
    assert both(subscriber((OTHER, "low")), low_only).subject == f"[Repo Daily] {DAY} · {OTHER} · 2 commits"


def test_list_headers():
    view = subscriber((SEED_REPO, "high"))
    digest = both(view)
    assert digest.headers["List-Unsubscribe"] == f"<{BASE}/unsubscribe/u-token>"
    assert digest.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert digest.headers["List-Id"] == "Repo Daily <daily.daily.example.com>"
    with_mailto = both(view, config={**CONFIG, "LIST_UNSUBSCRIBE_MAILTO": "unsubscribe@daily.example.com"})
    assert with_mailto.headers["List-Unsubscribe"] == \
        f"<{BASE}/unsubscribe/u-token>, <mailto:unsubscribe@daily.example.com?subject=unsubscribe>"
    mime = build_mime(digest.message(), "Repo Daily <news@daily.example.com>")
    parsed = email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Subject"] == digest.subject and parsed["To"] == "reader@example.com"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == digest.text.rstrip("\n")


def test_footer_links_and_why():
    digest = both(subscriber((SEED_REPO, "high"), (OTHER, "low"), address="a+b&c@example.com"))
    page = Page(digest.html)
    assert {f"{BASE}/preferences/p-token", f"{BASE}/unsubscribe/u-token"} <= set(page.hrefs())
    why = f"You are receiving this because a+b&c@example.com subscribed to {SEED_REPO}, {OTHER} at daily.example.com."
    assert why in page.text and why in flat(digest.text)
    assert "a+b&amp;c@example.com" in digest.html
    assert f"Unsubscribe:\n{BASE}/unsubscribe/u-token\n" in digest.text  # a URL on a line of its own


# Shared content for providers that substitute per-recipient values -------------------------------

LOOKALIKES = "https://evil.example/steal?t=-rd-preferences-&u=-rd-unsubscribe-&e=-rd-email-"


def test_shared_render_puts_placeholders_only_where_the_renderer_put_values():
    """Per-recipient values go only into the renderer's own positions; filling them gives the personal email."""
    tricky = [subscriber((SEED_REPO, "high"), (OTHER, "low"), address="a+b&c@example.com"),
              subscriber((SEED_REPO, "medium"), language="zh", address="o'brien@example.com"),
              subscriber((OTHER, "high"), send_empty=True, address="z@example.org")]
    renderer = DigestRenderer(CONFIG, DAY, REPORTS)
    for view in tricky:
        shared = renderer.render(view, shared=True)
        personal = both(view)
        for content in (shared.html, shared.text, shared.subject):
            assert view.email not in content and "p-token" not in content and "u-token" not in content
        assert set(shared.substitutions) and all(key in shared.html + shared.text for key in shared.substitutions)
        filled = shared.filled()
        assert (filled.subject, filled.html, filled.text) == (personal.subject, personal.html, personal.text)
        assert filled.headers == personal.headers and filled.substitutions == {}
    # Over the size budget the same commits collapse: the budget counts the reader's own values.
    config = {**CONFIG, "DIGEST_HTML_BUDGET": 60_000}
    reports = huge_reports(120, 20)
    view = subscriber((OTHER, "low"), address="a-rather-long.address+newsletter@example.com")
    shared = DigestRenderer(config, DAY, reports).render(view, shared=True)
    personal = both(view, reports, config=config)
    assert personal.counts["collapsed"] > 0 and shared.counts == personal.counts
    assert (shared.filled().html, shared.filled().text) == (personal.html, personal.text)


def test_placeholder_lookalikes_and_the_readers_address_in_commit_text_stay_literal():
    title = f"docs: see {LOOKALIKES} or mail reader@example.com"
    reports = {(OTHER, "en"): custom_report("en", OTHER, [(title, "high")])}
    view = subscriber((OTHER, "high"))
    shared = DigestRenderer(CONFIG, DAY, reports).render(view, shared=True)
    # The outside text is in the shared content as it is: not taken for a placeholder, not templated.
    assert "steal?t=-rd-preferences-" in shared.text and "mail reader@example.com" in shared.text
    assert not any(key in LOOKALIKES for key in shared.substitutions)
    filled = shared.filled()
    for content in (filled.html, filled.text):
        assert "steal?t=-rd-preferences-&" in content.replace("&amp;", "&")
        assert "p-token" not in content.split("evil.example", 1)[1].split("\n", 1)[0][:200]
    assert filled.html == both(view, reports).html


# Escaping -------------------------------------------------------------------------------------

HOSTILE_TITLE = '<script>alert("t")</script> "><img src=x onerror=alert(1)> ' + HOSTILE_HEADER


def hostile_reports(lang="en") -> dict:
    sha = "f" * 40
    commit = dataclasses.replace(
        make_commit(sha, '<img src=x onerror="alert(2)">Mallory', "10:00:00", HOSTILE_TITLE + "\n\nbody <b>bold</b>"),
        html_url="javascript:alert(3)//https://github.com/x")
    analysis = make_analysis(
        lang, "security", "high", 'Fixes <script>alert(4)</script> and [click](javascript:alert(5)) `<b>x</b>`',
        importance_reason='"><a href="javascript:alert(6)">win</a>',
        risks=("<iframe src=https://evil.example></iframe>",),
        recommendations=("\u202eevil\u202c reversed", "line\r\nBcc: victim@example.org"),
        fallback=True, fallback_reason="<style>body{display:none}</style>")
    report = DailyReport(repo=SEED_REPO, date=DAY, language=lang, entries=[Entry(commit, analysis)],
                        status="ok", analyzer="gpt-test")
    return {(SEED_REPO, lang): report}


def assert_inert(html: str) -> None:
    page = Page(html)
    tags = {tag for tag, _attrs in page.tags}
    assert not tags & {"script", "img", "iframe"}, tags
    assert "<script" not in html.lower() and "<iframe" not in html.lower()
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    for href in page.hrefs():
        assert href.startswith(("https://", "http://")), href
    assert "javascript:" not in " ".join(page.hrefs()).lower()
    assert page.body_tags.isdisjoint({"style", "link", "meta", "form", "input", "object", "embed"})


def test_hostile_commit_text_renders_inert():
    digest = both(subscriber((SEED_REPO, "high")), hostile_reports())
    assert_inert(digest.html)
    page = Page(digest.html)
    # Shown as text: the title is the message's first line; bidi overrides and line breaks are flattened.
    assert '<script>alert("t")</script> "><img src=x onerror=alert(1)> Daily' in page.text
    assert "Bcc" not in digest.subject and "victim" not in digest.subject
    assert '<img src=x onerror="alert(2)">Mallory' in page.text
    assert "evil reversed" in page.text and "\u202e" not in digest.html + digest.text
    assert "&lt;b&gt;x&lt;/b&gt;" in digest.html and "<b>x</b>" not in digest.html
    assert "line Bcc: victim@example.org" in digest.text
    # The commit URL is not http(s): no link to it anywhere.
    assert "javascript:alert(3)" not in digest.html and "javascript:alert(3)" not in digest.text
    assert t("report.view_commit", "en") not in page.text
    # The subject never carries commit text, and every header is one line.
    assert digest.subject == f"[Repo Daily] {DAY} · {SEED_REPO} · 1 high"
    for value in (digest.subject, *digest.headers.values()):
        assert "\n" not in value and "\r" not in value


@pytest.mark.parametrize("field, url", [("preferences_url", 'javascript:alert(1)"'),
                                        ("unsubscribe_url", f"{BASE}/unsubscribe/t\r\nBcc: v@x")])
def test_links_that_are_not_clean_http_urls_are_refused(field, url):
    view = dataclasses.replace(subscriber((SEED_REPO, "high")), **{field: url})
    with pytest.raises(ValueError):
        DigestRenderer(CONFIG, DAY, REPORTS).render(view)
    with pytest.raises(ValueError):
        render_naive(CONFIG, DAY, REPORTS, view)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=80), summary=st.text(max_size=80), author=st.text(max_size=30))
def test_any_commit_text_is_inert_and_both_renderers_agree(title, summary, author):
    commit = make_commit("a" * 40, author or "x", "10:00:00", title)
    analysis = make_analysis("en", "fix", "high", summary)
    report = DailyReport(repo=SEED_REPO, date=DAY, language="en", entries=[Entry(commit, analysis)])
    digest = both(subscriber((SEED_REPO, "high")), {(SEED_REPO, "en"): report})
    assert_inert(digest.html)
    assert "\n" not in digest.subject


# Size budget ----------------------------------------------------------------------------------

def huge_reports(commits: int, words: int, lang="en", only: str | None = None) -> dict:
    """commits with long analyses: every third one medium, the others high (or all of importance `only`)."""
    long = " ".join(["performance"] * words)
    specs = [(f"huge commit {i:03d}", only or ("high" if i % 3 else "medium")) for i in range(commits)]
    data = custom_report(lang, OTHER, specs).to_json()
    for entry in data["entries"]:
        entry["analysis"]["summary"] = long
        entry["analysis"]["risks"] = [long, long]
    return {(OTHER, lang): DailyReport.from_json(data)}


def test_over_budget_email_collapses_later_commits_to_one_line():
    reports = huge_reports(60, 200, only="high")  # cards: a medium commit is a short entry anyway
    digest = both(subscriber((OTHER, "low")), reports)
    assert digest.counts["html_bytes"] == len(digest.html.encode()) <= DEFAULT_HTML_BUDGET
    full, collapsed = 60 - digest.counts["collapsed"], digest.counts["collapsed"]
    assert 0 < full < 60 and digest.counts["dropped"] == 0
    page = Page(digest.html)
    text = flat(digest.text)
    assert t("digest.collapsed_note", "en") in page.text and t("digest.collapsed_note", "en") in text
    entries = list(reports[(OTHER, "en")].entries)
    # Email order is report order; the first `full` are whole, the rest one line each (the highlights
    # at the top link to the report as well: only the repository's section is looked at).
    hrefs = Page(digest.html[digest.html.index('id="repo-'):]).hrefs()
    for position, entry in enumerate(entries):
        anchor_link = f"{report_link(OTHER)}#{entry.anchor}"
        if position < full:
            assert entry.commit.html_url in hrefs and anchor_link not in hrefs
        else:
            assert anchor_link in hrefs and entry.commit.html_url not in hrefs
            assert f"▸ 🔴 {entry.title} · High — {anchor_link}" in text
    assert collapsed == sum(1 for href in hrefs if "#c-" in href)


def test_budget_is_configurable():
    config = {**CONFIG, "DIGEST_HTML_BUDGET": 20_000}
    digest = both(subscriber((SEED_REPO, "low")), config=config)
    assert digest.counts["html_bytes"] <= 20_000 < len(both(subscriber((SEED_REPO, "low"))).html.encode())
    assert 0 < digest.counts["collapsed"] < 15


def test_far_over_budget_email_is_cut_short_and_still_fits():
    reports = huge_reports(400, 5)
    digest = both(subscriber((OTHER, "low")), reports, config={**CONFIG, "DIGEST_HTML_BUDGET": 60_000})
    assert len(digest.html.encode()) <= 60_000
    assert digest.counts["collapsed"] > 0 and digest.counts["dropped"] > 0
    assert digest.counts["collapsed"] + digest.counts["dropped"] == 400
    assert t("digest.truncated_note", "en") in Page(digest.html).text
    assert report_link(OTHER) in Page(digest.html).hrefs()  # the full report stays one click away
    entries = reports[(OTHER, "en")].entries
    assert entries[0].title in digest.text and entries[-1].title not in digest.text


# Fast equals naive, and the fast one compiles per repository, not per subscriber --------------------

def test_fast_and_naive_agree_for_a_mix_of_subscribers():
    failed = custom_report("zh", OTHER, [], status="failed", error="超时")
    reports = {**REPORTS, (OTHER, "zh"): failed}
    views = [
        subscriber((SEED_REPO, "high")),
        subscriber((SEED_REPO, "low"), (OTHER, "medium"), language="zh"),
        subscriber((OTHER, "low"), (SEED_REPO, "medium"), ("missing/repo", "high")),
        subscriber((OTHER, "high"), language="zh", send_empty=True),
        subscriber((UNPICKED, "low"), (OTHER, "low"), (SEED_REPO, "high"), address="z@example.org"),
    ]
    for view in views:
        assert both(view, reports) is not None


def test_one_renderer_compiles_per_repository_and_language_only():
    renderer = DigestRenderer(CONFIG, DAY, REPORTS)
    views = [subscriber((SEED_REPO, threshold), (OTHER, other), language=lang, address=f"r{i}@example.com")
             for i, (threshold, other, lang) in enumerate(
                 [(a, b, c) for a in ("high", "medium", "low") for b in ("high", "low") for c in ("en", "zh")] * 3)]
    rendered = [renderer.render(view) for view in views]
    # One skeleton per language, one piece document per (repository, language), and one per language
    # for the notes (the highlights heading); nothing per subscriber.
    assert renderer.compiles == 2 + 4 + 2
    for view, digest in zip(views[:12], rendered[:12], strict=True):
        assert digest.html == render_naive(CONFIG, DAY, REPORTS, view).html
    assert len({d.html for d in rendered}) == 36  # each subscriber's own links and address


# A real browser -------------------------------------------------------------------------------

def sample_email() -> RenderedDigest:
    failed = custom_report("en", UNPICKED, [], status="failed", error="GitHub answered 502")
    reports = {**REPORTS, (UNPICKED, "en"): failed}
    return both(subscriber((SEED_REPO, "medium"), (OTHER, "low"), (UNPICKED, "high")), reports)


@pytest.mark.browser
def test_email_renders_without_horizontal_scrolling(tmp_path):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    digest = sample_email()
    path = tmp_path / "digest.html"
    path.write_text(digest.html, encoding="utf-8")
    remote: list[str] = []  # anything fetched beyond the file itself: images, fonts, trackers
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for width in (1200, 375):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("request", lambda r: remote.append(r.url) if not r.url.startswith("file:") else None)
                page.goto(path.as_uri())
                scroll_width, inner_width = page.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth]")
                assert scroll_width <= inner_width, f"scrolls sideways at {width}px: {scroll_width} > {inner_width}"
                # The content column is 640px at most and fills a phone's width.
                column = page.evaluate(
                    "() => document.querySelector('[id^=repo-]').getBoundingClientRect().width")
                assert column <= 640 and (width > 640 or column >= width - 60), column
                assert remote == [], f"the email loads remote resources: {remote}"
                shot = tmp_path / f"digest-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
                page.close()
        finally:
            browser.close()
    keep = os.environ.get("DIGEST_SCREENSHOT_DIR")
    if keep:  # for a person to look at
        for shot in tmp_path.glob("digest-*.png"):
            shutil.copy(shot, keep)


# Hierarchy and craft ------------------------------------------------------------------------------

FIELD_KEYS = ("report.field.summary", "report.field.impact_scope", "report.field.insight",
              "report.field.architecture", "report.field.performance", "report.field.security",
              "report.field.risks", "report.field.recommendations")


def hierarchy_reports(lang: str = "en") -> dict:
    report = custom_report(lang, OTHER, [("gear: the high one", "high"), ("gear: the medium one", "medium"),
                                         ("gear: the low one", "low"), ("Merge branch 'gear'", None)])
    data = report.to_json()
    for entry in data["entries"]:
        if entry["analysis"] is not None:
            name = entry["title"].split()[-2]
            entry["analysis"]["summary"] = f"First {name} sentence. Second {name} sentence stays in the report."
    return {(OTHER, lang): DailyReport.from_json(data)}


def test_high_is_a_card_medium_one_summary_line_low_one_line():
    digest = both(subscriber((OTHER, "low")), hierarchy_reports())
    body = Page(digest.html[digest.html.index('id="repo-'):]).text
    text = flat(digest.text[digest.text.index(f"📦 {OTHER}"):])
    high = body[body.index("gear: the high one"):body.index("Medium importance")]
    # The high commit: a card with every non-empty field of its analysis.
    for key in FIELD_KEYS:
        assert body.count(t(key, "en")) == 1 and high.count(t(key, "en")) == 1 and text.count(t(key, "en")) == 1
    assert "First high sentence. Second high sentence stays in the report." in high
    # The medium commit: its title and the first sentence of its summary, linked to the report.
    medium = body[body.index("Medium importance"):body.index("🟢 Low importance")]
    assert medium.strip() == "Medium importance (1) 🟡 gear: the medium one First medium sentence."
    assert "Second medium sentence" not in digest.html and "Second medium sentence" not in digest.text
    assert f"▸ 🟡 gear: the medium one First medium sentence. {report_link(OTHER)}#" in text
    # A low commit and a merge: one line each, no summary.
    assert "🟢 Low importance (1) 🟢 gear: the low one · Low 🔀 Merge commits (1) 🔀 Merge branch 'gear' · Merge" in body
    assert "low sentence" not in digest.html and "low sentence" not in digest.text
    assert f"▸ 🟢 gear: the low one · Low — {report_link(OTHER)}#" in text


def test_highlights_come_first_and_lead_the_preheader():
    digest = both(subscriber((SEED_REPO, "medium"), (OTHER, "low")))
    page = Page(digest.html)
    top = page.text.index(t("digest.highlights", "en"))
    assert top < page.text.index(f"📦 {SEED_REPO}") and top < page.text.index(f"📦 {OTHER}")
    preview = re.search(r'<div style="display:none[^>]*>(.*?)</div>', digest.html, re.S).group(1)
    assert preview.startswith("🔴 ") and "more highlights" in preview
    assert t("digest.highlights", "en") in digest.text.split(f"📦 {SEED_REPO}")[0]


def rendered_mix(lang: str = "en") -> list[RenderedDigest]:
    reports = failed_reports(lang)
    views = [subscriber((SEED_REPO, "low"), (OTHER, "low"), (UNPICKED, "high"), language=lang),
             subscriber((SEED_REPO, "high"), language=lang, address="a.very.long.address.of.someone@example.com"),
             subscriber((OTHER, "medium"), ("missing/repo", "high"), language=lang, send_empty=True)]
    return [both(view, reports) for view in views]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_dark_mode_and_headings(lang):
    for digest in rendered_mix(lang):
        html = digest.html
        head = html[:html.index("<body")]
        assert '<meta name="color-scheme" content="light dark"' in head
        assert '<meta name="supported-color-schemes" content="light dark"' in head
        assert "@media (prefers-color-scheme: dark)" in head
        tags = [tag for tag, _attrs in Page(html).tags]
        assert tags.count("h1") == 1
        # One h2 per repository section (a day with nothing notable has the overview rows only).
        assert tags.count("h2") == (digest.counts["repositories"] if digest.counts["shown"] else 0)
        h2_ids = [attrs.get("id", "") for tag, attrs in Page(html).tags if tag == "h2"]
        assert all(i.startswith("repo-") for i in h2_ids)


def test_rows_are_classes_and_outlook_gets_one_balanced_table():
    """Rows carry classes, not a copy of their styles; Outlook's markup (conditional comments) opens
    and closes as many tables and cells as it needs, in a whole email and in one cut short."""
    cut = both(subscriber((OTHER, "low")), huge_reports(400, 5), config={**CONFIG, "DIGEST_HTML_BUDGET": 60_000})
    for digest in [*rendered_mix(), cut]:
        html = digest.html
        assert "<!--mso " not in html
        assert re.search(r'<div class="r [a-z]+">', html) and not re.search(r'<div class="r [a-z]+" style=', html)
        outlook = "".join(re.findall(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", html, re.S))
        for tag in ("table", "tr", "td"):
            assert len(re.findall(rf"<{tag}[\s>]", outlook)) == outlook.count(f"</{tag}>"), tag
    assert cut.counts["dropped"] > 0


BASE_OR_GITHUB = re.compile(rf"^(?:{re.escape(BASE)}/|https://github\.com/)")


def remote_urls(html: str) -> list[str]:
    """Every http(s) URL in an email but its XML namespace declarations."""
    html = re.sub(r'\sxmlns(?::\w+)?="[^"]*"', "", html)
    return re.findall(r"""https?://[^\s"'<>)]+""", html)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_emails_link_only_to_the_site_and_github(lang):
    for digest in rendered_mix(lang):
        urls = remote_urls(digest.html) + remote_urls(digest.text)
        assert urls and all(BASE_OR_GITHUB.match(url) for url in urls), \
            [url for url in urls if not BASE_OR_GITHUB.match(url)]
        assert "fonts.googleapis" not in digest.html and "@import" not in digest.html and "<link" not in digest.html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_confirmation_email_has_no_remote_resources(lang):
    from newsletter.email.confirmation import confirmation_message
    from newsletter.models import SignupRequest, Subscriber

    reader = Subscriber(id=1, email="x@example.com", email_key="x@example.com")
    request = SignupRequest(id=1, repos=[[SEED_REPO, "high"]], language=lang, subscriber=reader)
    message = confirmation_message({"BASE_URL": BASE, "SECRET_KEY": "k", "CONFIRM_MAX_AGE_DAYS": 7}, request)
    urls = remote_urls(message.html) + remote_urls(message.text)
    assert urls and all(url.startswith(f"{BASE}/") for url in urls), urls
    assert "fonts.googleapis" not in message.html and "@import" not in message.html and "<link" not in message.html


def text_width(line: str) -> int:
    import unicodedata
    return sum(0 if unicodedata.combining(c) or c in "\u200d\ufe0f" else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_text_part_lines_fit_78_columns_unless_they_hold_a_url(lang):
    digests = [*rendered_mix(lang), both(subscriber((OTHER, "low"), language=lang), huge_reports(60, 200, lang))]
    for digest in digests:
        for line in digest.text.split("\n"):
            assert text_width(line) <= 78 or re.search(r"https?://", line), line


def test_text_part_wraps_long_words_but_never_a_url():
    from newsletter.email.digest import wrap_text

    url = "https://github.com/" + "x" * 100
    wrapped = wrap_text(f"▸ see {url} " + "word " * 30 + "y" * 100)
    assert url in wrapped.split("\n")[1]
    assert all(text_width(line) <= 78 for line in wrapped.split("\n") if "://" not in line)
    assert "".join(wrapped.split()).count("y" * 100) == 1
    assert wrap_text("中" * 100).split("\n")[0] == "中" * 39


BENCH_REPO = "org0/project-0"


def bench_day(lang: str, threshold: str) -> tuple[DailyReport, RenderedDigest]:
    """bench/render.py's 40-commit day of one repository (10 high, 16 medium, 13 low, a merge), read by
    a subscriber at threshold, and that subscriber's email."""
    import random

    from bench.render import CONFIG as BENCH_CONFIG
    from bench.render import DATE as BENCH_DATE
    from bench.render import synthetic_report

    report = DailyReport.from_json(synthetic_report(random.Random(7), BENCH_REPO, lang, 40, False))
    view = SubscriberView(email="r@example.org", language=lang, subscriptions=((BENCH_REPO, threshold),),
                          preferences_url=f"{BASE}/preferences/x" + "a" * 40,
                          unsubscribe_url=f"{BASE}/unsubscribe/x" + "a" * 40)
    digest = DigestRenderer(BENCH_CONFIG, BENCH_DATE, {(BENCH_REPO, lang): report}).render(view)
    assert digest is not None
    return report, digest


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_40_commit_day_stays_under_its_size_bound(lang):
    """The 40-commit day at the low threshold (everything shown, nothing collapsed): at most 60 KB of
    HTML (issue 11), far below Gmail's 102 KB clipping and the 100 KB budget."""
    _report, digest = bench_day(lang, "low")
    assert digest.counts["collapsed"] == 0 and digest.counts["dropped"] == 0 and digest.counts["shown"] == 40
    assert len(digest.html.encode()) <= 60_000


def squeezed(text: str) -> str:
    """text without whitespace or code-span backticks: what survives markup and line wrapping alike."""
    return "".join(text.replace("`", "").split())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_high_only_email_keeps_every_field(lang):
    """The same day at the high threshold: every high commit a full card with every non-empty field of
    its analysis, word for word, in the HTML and in the text part."""
    from newsletter.email.digest import items
    from newsletter.reports.wording import change_type_label, importance_label

    report, digest = bench_day(lang, "high")
    highs = [e for e in report.entries if e.group == "high"]
    assert digest.counts["shown"] == len(highs) == 10 and digest.counts["collapsed"] == 0
    page = Page(digest.html)
    body = page.text[page.text.index(f"📦 {BENCH_REPO}"):]
    html_text, text_part = squeezed(body), squeezed(digest.text[digest.text.index(f"📦 {BENCH_REPO}"):])
    assert [tag for tag, _attrs in page.tags].count("h3") == len(highs)
    for entry in highs:
        a = entry.analysis
        assert a is not None
        values = [entry.title, entry.short_sha, entry.author, change_type_label(a, lang),
                  importance_label(entry.group, lang), a.importance_reason, a.summary, *items(a.impact_scope),
                  a.insight.architecture, a.insight.performance, a.insight.security, *items(a.risks),
                  *items(a.recommendations)]
        for value in values:
            assert squeezed(value) in html_text, value
            assert squeezed(value) in text_part, value
        assert entry.url in page.hrefs()
    fields = {"report.field.summary": len(highs), "report.field.insight": len(highs),
              "report.field.impact_scope": sum(bool(items(e.analysis.impact_scope)) for e in highs),
              "report.field.risks": sum(bool(items(e.analysis.risks)) for e in highs),
              "report.field.recommendations": sum(bool(items(e.analysis.recommendations)) for e in highs)}
    for key in ("architecture", "performance", "security"):
        fields[f"report.field.{key}"] = len(highs)
    for key, n in fields.items():  # a label with its colon: "Performance" is a change type's name too
        label = squeezed(t(key, lang) + t("report.colon", lang))
        assert html_text.count(label) == text_part.count(label) == n, key


@pytest.mark.parametrize("lang, brings", [("en", "brings 7 commits, 5 from earlier days"),
                                          ("zh", "带入 7 个提交，其中 5 个来自更早的日期")])
def test_merge_line_says_what_it_brings(lang, brings):
    """The merge's one line carries what it brings, as the report words it; a merge without it says nothing."""
    from newsletter.sources.commit import MergedCommits

    report = custom_report(lang, OTHER, OTHER_SPECS)
    entries = tuple(dataclasses.replace(e, commit=dataclasses.replace(e.commit, merged=MergedCommits(7, 5)))
                    if e.is_merge else e for e in report.entries)
    reports = {**REPORTS, (OTHER, lang): dataclasses.replace(report, entries=entries)}
    digest = both(subscriber((OTHER, "low"), language=lang), reports)
    label = t("change_type.merge", lang)
    assert f"🔀 Merge branch 'cogs' · {label} · {brings}" in Page(digest.html).text
    assert f"▸ 🔀 Merge branch 'cogs' · {label} · {brings} —" in digest.text
    plain = both(subscriber((OTHER, "low"), language=lang))
    assert brings not in plain.text and brings not in plain.html
