"""Outside text is cleaned by one module, so the Markdown report, the email, the web page and the feed
render the same input the same way."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from newsletter.email.digest import DigestRenderer
from newsletter.email.headers import SubscriberView
from newsletter.reports.markdown import render_markdown
from newsletter.reports.model import DailyReport, Entry
from newsletter.text import code_spans, markdown_rich, plain, rich_html, safe_url, truncate

from .factories import stored_report
from .test_report_render import DAY, make_analysis, make_commit

REPO = "ai-dynamo/dynamo"
# Two backticks open a span that the second closes; the third has no partner and stays literal.
TRICKY = "call `a`b` now"


def test_code_spans_follow_commonmark():
    assert code_spans(TRICKY) == [(False, "call ", "call "), (True, "a", "`a`"), (False, "b` now", "b` now")]
    assert code_spans("``a`b`` x") == [(True, "a`b", "``a`b``"), (False, " x", " x")]
    assert code_spans("` padded `") == [(True, "padded", "` padded `")]
    assert code_spans("no span`") == [(False, "no span`", "no span`")]


def test_plain_flattens_controls_bidi_and_space():
    assert plain("a\r\nb\tc\u202ed\x00e  ") == "a b cd e"
    assert plain(None) == "" and plain(12) == "12"
    assert plain("word " * 30, 20) == truncate(("word " * 30).strip(), 20)
    assert len(plain("x" * 500, 100)) == 100


def test_rich_html_escapes_everything_but_code_spans():
    assert str(rich_html("<b>x</b> `<i>`")) == "&lt;b&gt;x&lt;/b&gt; <code>&lt;i&gt;</code>"
    assert str(rich_html(TRICKY)) == "call <code>a</code>b` now"
    assert markdown_rich(TRICKY) == "call `a`b\\` now"


@pytest.mark.parametrize("url, safe", [
    ("https://github.com/o/r/commit/abc", "https://github.com/o/r/commit/abc"),
    ("javascript:alert(1)", None), ("https://x.example/a\nb", None), ("/relative", None),
    ('https://x.example/"><script>', "https://x.example/%22%3E%3Cscript%3E"),
])
def test_safe_url(url, safe):
    assert safe_url(url) == safe


def _report(lang: str = "en") -> DailyReport:
    commit = make_commit("a" * 40, "Dev", "10:00:00", "feat: spans")
    return DailyReport(repo=REPO, date=DAY, language=lang, timezone="Asia/Shanghai", analyzer="gpt-test",
                       entries=(Entry(commit, make_analysis(lang, "feature", "high", TRICKY)),))


def _code_rendering(html: str) -> str:
    """The summary as an HTML output shows it, with <code> attributes dropped."""
    match = re.search(r"call <code[^>]*>a</code>b` now", html)
    assert match, "the summary's code span is not rendered as <code>a</code>"
    return re.sub(r"<code[^>]*>", "<code>", match.group(0))


def test_the_same_summary_renders_the_same_in_every_output(app, client, session):
    report = _report()
    stored_report(session, report)
    expected = "call <code>a</code>b` now"

    markdown = render_markdown(report)
    assert "call `a`b\\` now" in markdown  # CommonMark renders this as the HTML below

    view = SubscriberView(email="r@example.com", language="en", subscriptions=((REPO, "high"),),
                          preferences_url="https://x.example/p", unsubscribe_url="https://x.example/u")
    email = DigestRenderer({"BASE_URL": "https://x.example"}, DAY, {(REPO, "en"): report}).render(view)
    assert email is not None
    assert _code_rendering(email.html) == expected
    assert "call `a`b` now" in email.text  # the plain-text part keeps the text as written

    page = client.get(f"/r/{REPO}/{DAY}?lang=en").get_data(as_text=True)
    assert _code_rendering(page) == expected

    feed = ET.fromstring(client.get(f"/r/{REPO}/feed.atom?lang=en").data)
    content = feed.find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}content").text
    assert _code_rendering(content) == expected
