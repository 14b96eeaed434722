"""The web archive: report pages, the per-repository index and the Atom feed, on the real database."""
from __future__ import annotations

import dataclasses
import datetime
import re
import xml.etree.ElementTree as ET
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter.i18n import archive_strings as archive_catalog
from newsletter.i18n import t
from newsletter.models import Repository, Threshold
from newsletter.reports import run
from newsletter.reports.model import DailyReport, Entry
from newsletter.reports.wording import stats_line
from newsletter.sources.commit import MergedCommits
from newsletter.subscribers import subscriptions
from newsletter.web.archive import parse_day

from .factories import stored_report
from .fakes.seed_day import SEED_COMMITS, SEED_DATE, SEED_REPO, SEED_TIMEZONE, load_into
from .test_report_render import SEED, make_analysis, make_commit, seed_report

ATOM = "{http://www.w3.org/2005/Atom}"
PAGE = "/r/ai-dynamo/dynamo/2026-01-24"
ANCHOR = re.compile(r'<article class="archive-commit archive-(\w+)" id="(c-[0-9a-f]+)" data-importance="(\w+)"')
TOC_LINK = re.compile(r'<a href="#(c-[0-9a-f]+)" data-importance="(\w+)">')
HOSTILE_TITLE = "<script>alert(1)</script> [x](javascript:alert(1))"


@pytest.fixture
def seeded(session):
    """The seed day in both languages."""
    for lang in ("en", "zh"):
        stored_report(session, seed_report(lang))


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


# The report page ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_page_shows_every_commit_with_stats_and_anchors(client, seeded, lang):
    html = page(client, f"{PAGE}?lang={lang}")
    report = seed_report(lang)
    assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in html
    assert f'<p class="archive-stats">{stats_line(report.counts(), lang)}</p>' in html
    anchors = [m.group(2) for m in ANCHOR.finditer(html)]
    assert sorted(anchors) == sorted(f"c-{row[0][:7]}" for row in SEED)
    for sha, author, local_time, message, *_ in SEED:
        assert f'href="https://github.com/ai-dynamo/dynamo/commit/{sha}"' in html
        assert f"<td class=\"archive-time\">2026-01-24 {local_time}</td>" in html
        assert f"<h3>{message}</h3>" in unescape(html) and author in html
    # Every commit has a change type; a field with nothing to say is left out, label and all.
    analyses = [e.analysis for e in report.entries]
    for key, expected in (("change_type", 15), ("impact_scope", sum(bool(a.impact_scope) for a in analyses)),
                          ("recommendations", sum(bool(a.recommendations) for a in analyses))):
        assert html.count(f"<dt>{t(f'report.field.{key}', lang)}</dt>") == expected, key
    assert f"<li>{t('report.none', lang)}</li>" not in html
    # Code spans of the analysis become <code>, and the page lists both notes of an LLM report.
    assert "<code>lib/runtime</code>" in html
    assert ("🤖 Analysed by gpt-test." if lang == "en" else "🤖 分析模型：gpt-test。") in html


def test_page_puts_highlights_and_importance_first_and_the_table_after(client, seeded):
    html = page(client, PAGE)
    summary = html[html.index('id="contents"'):html.index("</section>", html.index('id="contents"'))]
    report = seed_report("en")
    # The highlights link to the same cards, with the importance the body gives them.
    highlights = [(a, imp) for imp, a in re.findall(r'<li data-importance="(\w+)">[^<]*<a href="#(c-[0-9a-f]+)"', summary)]
    body = {anchor: importance for group, anchor, importance in ANCHOR.findall(html) if group == importance}
    assert highlights == [(h.anchor, h.importance) for h in report.highlights()] and highlights
    assert all(body[anchor] == importance for anchor, importance in highlights)
    expected = {f"c-{row[0][:7]}": row[5] for row in SEED}
    assert body == expected
    # Groups come high, medium, low, each newest first, like the Markdown report, before the table.
    order = [anchor for _, anchor, _ in ANCHOR.findall(html)]
    assert order == [f"c-{row[0][:7]}" for imp in ("high", "medium", "low") for row in SEED if row[5] == imp]
    assert html.index('id="contents"') < html.index("archive-commit ") < html.index("archive-commits")
    table = html[html.index("archive-commits"):]
    times = re.findall(r'<td class="archive-time">([^<]+)</td>', table)
    assert times == [f"2026-01-24 {row[2]}" for row in SEED]
    assert 'href="/?lang=en"' in summary or "archive-subscribe" in summary


def test_a_day_without_a_report_is_a_404_that_leads_to_the_nearest_days(client, session):
    _days(session, 3)  # 2026-01-22 .. 2026-01-24
    html = page(client, "/r/ai-dynamo/dynamo/2026-01-20", 404)
    assert "/r/ai-dynamo/dynamo/2026-01-22" in html and "2026-01-24" not in html
    late = page(client, "/r/ai-dynamo/dynamo/2026-02-01", 404)
    assert "/r/ai-dynamo/dynamo/2026-01-24" in late


def test_page_language_choice_and_links(client, session):
    stored_report(session, seed_report("zh"))
    # Only Chinese exists: it is the default, and asking for English says so and shows Chinese.
    html = page(client, PAGE)
    assert "本日共 15 个提交" in html and "hreflang=\"en\">Also" not in html
    asked = page(client, f"{PAGE}?lang=en")
    assert "本报告没有英文版本，以下为中文版本。" in asked
    stored_report(session, seed_report("en"))
    html = page(client, PAGE, 200)
    assert "15 commits | 🔴 high 7" in html
    assert f'<a href="{PAGE}?lang=zh" hreflang="zh">Also in Chinese</a>' in html
    zh = page(client, f"{PAGE}?lang=zh")
    assert f'<a href="{PAGE}?lang=en" hreflang="en">其他语言：英文</a>' in zh


def test_owner_and_name_are_case_insensitive(client, seeded):
    assert "15 commits" in page(client, "/r/AI-Dynamo/Dynamo/2026-01-24")
    assert "2026-01-24" in page(client, "/r/AI-Dynamo/Dynamo/")


def test_hostile_commit_is_escaped_and_not_linked(client, session):
    report = seed_report("en")
    hostile = make_commit("a" * 40, "<img src=x onerror=alert(1)>", "11:00:00", HOSTILE_TITLE + "\n\nbody")
    hostile = dataclasses.replace(hostile, html_url="javascript:alert(1)")
    analysis = make_analysis("en", "fix", "high", "<b>bold</b> `<i>code</i>` [y](javascript:alert(2))",
                             fallback=True, fallback_reason="<svg onload=alert(3)>")
    stored_report(session, dataclasses.replace(report, entries=report.entries + (Entry(hostile, analysis),)))
    html = page(client, PAGE)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<svg" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [x](javascript:alert(1))" in html
    assert 'href="javascript' not in html.lower()
    assert "<code>&lt;i&gt;code&lt;/i&gt;</code>" in html
    section = html[html.index('id="c-aaaaaaa"'):]
    section = section[:section.index("</article>")]
    assert "🔗 —" in section
    # A reason code we have no sentence for is not shown at all: the reader gets a plain sentence.
    assert "⚠️ The LLM analysis failed: the reason is unknown. The heuristic analysis is shown instead." in section
    assert "svg onload" not in html
    assert "⚠️ 1 of 16 analyses fell back to heuristics because the LLM call failed." in html


def test_page_has_no_inline_script_or_style(client, seeded):
    response = client.get(PAGE)
    html = response.get_data(as_text=True)
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in html and "style=" not in html and "<style" not in html


def test_failed_report_says_so(client, session):
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language="en", entries=(), status="failed",
                              error="GitHub said <403> rate limited"))
    html = page(client, PAGE)
    assert "This day&#39;s report failed" in html
    # The kind of failure in the reader's words, never the exception text.
    assert "❌ This day&#39;s commits could not be fetched: the code host asked us to slow down. We will try again." \
        in html
    assert "GitHub said" not in html and "403" not in html
    assert "0 commits" not in html


def test_failed_report_in_chinese_never_shows_the_error(client, session):
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language="zh", entries=(), status="failed",
                                       error="RepositoryNotFound: secret-token-xyz", error_kind="not_found"))
    html = page(client, PAGE.split("?")[0] + "?lang=zh")
    assert "找不到该仓库（可能已改名、删除或设为私有）。我们会再次尝试。" in html
    assert "secret-token-xyz" not in html and "RepositoryNotFound" not in html
    content = _feed(client, "/r/ai-dynamo/dynamo/feed.atom?lang=zh").find(f"{ATOM}entry/{ATOM}content").text
    assert "找不到该仓库" in content and "secret-token-xyz" not in content


def test_empty_day(client, session):
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language="en", entries=()))
    html = page(client, PAGE)
    assert "0 commits | 🔴 high 0" in html and "No new commits on 2026-01-24." in html


def test_merge_commit_is_listed_without_analysis(client, session):
    merge = make_commit("b" * 40, "Merger", "12:00:00", "Merge branch 'x'", parents=("p1", "p2"))
    report = seed_report("en")
    stored_report(session, dataclasses.replace(report, entries=report.entries + (Entry(merge, None),)))
    html = page(client, PAGE)
    assert "15 commits | 🔴 high 7 | 🟡 medium 4 | 🟢 low 4 · 🔀 1 merge" in html
    assert "🔀 Merge commit: listed, not analysed." in html
    assert 'id="c-bbbbbbb" data-importance="merge"' in html


PULL_MERGE = {
    "en": ('🔀 Merge commit: listed, not analysed. It merges <a href="https://github.com/ai-dynamo/dynamo/pull/123" '
           'rel="noopener noreferrer">pull request #123</a>. It brings 7 commits, 5 from earlier days.'),
    "zh": ('🔀 合并提交：仅列出，不做分析。合并了<a href="https://github.com/ai-dynamo/dynamo/pull/123" '
           'rel="noopener noreferrer">拉取请求 #123</a>。带入 7 个提交，其中 5 个来自更早的日期。'),
}


def _merge_report(session, lang, merged):
    merge = dataclasses.replace(make_commit("b" * 40, "Merger", "12:00:00", "Merge pull request #123 from octo/feature",
                                            parents=("p1", "p2")), merged=merged)
    report = seed_report(lang)
    stored_report(session, dataclasses.replace(report, entries=report.entries + (Entry(merge, None),)))
    return report


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_merge_links_its_pull_request_and_says_what_it_brings(client, session, lang):
    _merge_report(session, lang, MergedCommits(7, 5))
    html = page(client, f"{PAGE}?lang={lang}")
    card = html[html.index('id="c-bbbbbbb"'):]
    card = card[:card.index("</article>")]
    assert f'<p class="archive-note">{PULL_MERGE[lang]}</p>' in card
    # The stats line still counts the merge on its own.
    assert stats_line(seed_report(lang).counts() | {"merge": 1}, lang) in html
    # The feed lists merges, with the same words.
    content = _feed(client, f"/r/ai-dynamo/dynamo/feed.atom?lang={lang}").find(f"{ATOM}entry/{ATOM}content").text
    assert PULL_MERGE[lang] in content


def test_merge_stored_without_what_it_brings_keeps_its_pull_request_link(client, session):
    _merge_report(session, "en", None)
    html = page(client, PAGE)
    assert PULL_MERGE["en"].removesuffix(" It brings 7 commits, 5 from earlier days.") + "</p>" in html
    assert "It brings" not in html


def _related_report(session, lang):
    """An original, its rebased copy, a revert of it, and a revert of a commit of an earlier day."""
    def commit(sha, time, message, **facts):
        return dataclasses.replace(make_commit(sha, "Dev", time, message),
                                   facts={"version": 2, "patch_id": facts.pop("patch_id", sha * 2), **facts})

    commits = (commit("a" * 40, "09:00:00", "Add retries to the uploader", patch_id="p1"),
               commit("b" * 40, "11:00:00", "Add retries to the uploader", patch_id="p1"),
               commit("c" * 40, "12:00:00", 'Revert "Add retries to the uploader"', reverted_sha="a" * 40),
               commit("d" * 40, "13:00:00", 'Revert "Old thing"', reverted_sha="e" * 40, reverted_title="Old thing"))
    entries = tuple(Entry(c, make_analysis(lang, "feature", "medium", f"Summary {c.sha[0]}.")) for c in commits)
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language=lang, entries=entries,
                                       timezone="Asia/Shanghai"))


def _card(html, anchor):
    card = html[html.index(f'id="{anchor}"'):]
    return card[:card.index("</article>")]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_reverts_and_duplicates_are_shown_with_sha_links(client, session, lang):
    _related_report(session, lang)
    html = page(client, f"{PAGE}?lang={lang}")
    in_report = '<a href="#c-aaaaaaa"><code>aaaaaaa</code> Add retries to the uploader</a>'
    earlier = f'<a href="https://github.com/ai-dynamo/dynamo/commit/{"e" * 40}" rel="noopener noreferrer"><code>eeeeeee</code></a>'

    same = _card(html, "c-bbbbbbb")
    assert (f'<p class="archive-relation" data-relation="same_change">'
            f'{t("report.relation.same_change", lang, target=in_report)}</p>') in same
    # Shown once: the copy's card carries no analysis, the original's does.
    assert t("report.field.summary", lang) not in same and "Summary b." not in same
    assert "Summary a." in _card(html, "c-aaaaaaa") and "archive-relation" not in _card(html, "c-aaaaaaa")

    revert = _card(html, "c-ccccccc")
    assert f'data-relation="reverts">{t("report.relation.reverts", lang, target=in_report)}</p>' in revert
    assert "Summary c." in revert  # a revert keeps its own analysis
    old = _card(html, "c-ddddddd")
    assert f'data-relation="reverts">{t("report.relation.reverts", lang, target=earlier)}</p>' in old
    assert html.count('class="archive-relation"') == 3


def test_relation_without_a_commit_page_is_the_bare_sha(client, session):
    commit = dataclasses.replace(make_commit("d" * 40, "Dev", "13:00:00", 'Revert "Old thing"'), html_url="",
                                 facts={"version": 2, "patch_id": "x", "reverted_sha": "e" * 40})
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language="en", entries=(
        Entry(commit, make_analysis("en", "revert", "low", "Undo.")),)))
    html = page(client, PAGE)
    assert '<p class="archive-relation" data-relation="reverts">↩️ Reverts <code>eeeeeee</code>.</p>' in html


NOT_FOUND = (
    "/r/nobody/nothing/2026-01-24",     # unknown repository
    "/r/ai-dynamo/dynamo/2026-13-45",   # impossible date
    "/r/ai-dynamo/dynamo/yesterday",
    "/r/ai-dynamo/dynamo/20260124",     # not the one spelling of a date
    "/r/ai-dynamo/dynamo/2026-W04-6",
    "/r/nobody/nothing/",
    "/r/nobody/nothing/feed.atom",
)


def test_not_found_pages(client, seeded):
    for url in NOT_FOUND:
        assert 'class="error"' in page(client, url, 404)


HIDDEN = (PAGE, "/r/ai-dynamo/dynamo/", "/r/ai-dynamo/dynamo/feed.atom", "/r/AI-Dynamo/Dynamo/2026-01-24?lang=zh")


def test_private_repository_has_no_public_archive(client, session, seeded):
    repository = session.scalar(select(Repository).where(Repository.name == SEED_REPO))
    repository.private = True
    session.commit()
    for url in HIDDEN:
        assert 'class="error"' in page(client, url, 404)  # the page of a repository that does not exist


@pytest.mark.parametrize("public, status", [(False, 404), (True, 200)])
def test_local_repository_archive_is_public_only_when_configured(config, session, seeded, tmp_path, public, status):
    # Whatever the row says (the run that stored it may have run with other settings), a name the
    # operator serves from local git follows PUBLIC_LOCAL_REPOSITORIES.
    from newsletter import create_app

    app = create_app({**config, "LOCAL_REPOSITORIES": f"{SEED_REPO}={tmp_path}", "PUBLIC_LOCAL_REPOSITORIES": public})
    client = app.test_client()
    try:
        for url in HIDDEN:
            page(client, url, status)
    finally:
        app.extensions["db"].dispose()


def test_parse_day():
    assert parse_day("2026-01-24") == datetime.date(2026, 1, 24)
    for text in ("2026-13-45", "yesterday", "", None, "2026-1-24", "2026-01-24\n", "２０２６-01-24"):
        assert parse_day(text) is None


def test_catalog_is_complete():
    for key, value in archive_catalog.CATALOG.items():
        assert key.startswith("archive.") and value["en"].strip() and value["zh"].strip(), key


# The index ------------------------------------------------------------------------------------

def _days(session, count: int, *, lang="en", start=SEED_DATE):
    """count reports on consecutive days ending at start, each with a different number of commits."""
    base = seed_report(lang)
    for i in range(count):
        day = start - datetime.timedelta(days=i)
        stored_report(session, dataclasses.replace(base, date=day, entries=base.entries[:1 + i % 15]))


def test_index_lists_days_newest_first_with_stats_and_languages(client, session):
    _days(session, 3)
    stored_report(session, dataclasses.replace(seed_report("zh"), date=SEED_DATE - datetime.timedelta(days=1)))
    html = page(client, "/r/ai-dynamo/dynamo")
    assert html == page(client, "/r/ai-dynamo/dynamo/")
    dates = re.findall(r'<tr data-date="([^"]+)">', html)
    assert dates == ["2026-01-24", "2026-01-23", "2026-01-22"]
    row = html[html.index('data-date="2026-01-23"'):]
    row = row[:row.index("</tr>")]
    assert "2 commits" in row
    assert 'href="/r/ai-dynamo/dynamo/2026-01-23?lang=zh" hreflang="zh">中文</a>' in row
    assert 'href="/r/ai-dynamo/dynamo/2026-01-23?lang=en" hreflang="en">English</a>' in row
    assert "2026-01-22?lang=zh" not in html
    zh = page(client, "/r/ai-dynamo/dynamo/?lang=zh")
    assert "本日共 15 个提交" in zh


def test_index_pages_with_before(client, session):
    _days(session, 35)
    first = page(client, "/r/ai-dynamo/dynamo/")
    dates = re.findall(r'<tr data-date="([^"]+)">', first)
    assert len(dates) == 30 and dates[0] == "2026-01-24" and dates[-1] == "2025-12-26"
    older = re.search(r'<a href="([^"]+)" rel="next">', first).group(1)
    assert "before=2025-12-26" in older
    second = page(client, unescape(older))
    assert re.findall(r'<tr data-date="([^"]+)">', second) == [
        (SEED_DATE - datetime.timedelta(days=i)).isoformat() for i in range(30, 35)]
    assert 'rel="next"' not in second
    page(client, "/r/ai-dynamo/dynamo/?before=yesterday", 400)


def test_index_marks_failed_days(client, session):
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language="en", entries=(), status="failed",
                              error="boom"))
    html = page(client, "/r/ai-dynamo/dynamo/")
    assert "❌ fetching failed" in html and "0 commits" not in html


# The Atom feed --------------------------------------------------------------------------------

def _feed(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(response.data)


def test_feed_is_atom_with_entries_and_self_link(client, session):
    _days(session, 3)
    stored_report(session, seed_report("zh"))
    root = _feed(client, "/r/ai-dynamo/dynamo/feed.atom")
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id") == "http://localhost/r/ai-dynamo/dynamo/feed.atom"
    assert root.findtext(f"{ATOM}title") and root.findtext(f"{ATOM}updated").endswith("Z")
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert self_link.get("href") == "http://localhost/r/ai-dynamo/dynamo/feed.atom"
    assert root.find(f"{ATOM}author/{ATOM}name").text == "Repo Daily"
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        f"http://localhost/r/ai-dynamo/dynamo/2026-01-{d}?lang=en" for d in (24, 23, 22)]
    first = entries[0]
    assert first.findtext(f"{ATOM}title") == \
        "ai-dynamo/dynamo · 2026-01-24 · 1 commit | 🔴 high 1 | 🟡 medium 0 | 🟢 low 0"
    assert first.find(f"{ATOM}link").get("href") == "http://localhost/r/ai-dynamo/dynamo/2026-01-24?lang=en"
    # Dated by the report's day, not the build time: the moment the day ended in the report's zone.
    zone = seed_report("en").timezone
    for entry, day in zip(entries, (24, 23, 22), strict=True):
        end = datetime.datetime(2026, 1, day, tzinfo=ZoneInfo(zone)) + datetime.timedelta(days=1)
        for name in ("updated", "published"):
            assert datetime.datetime.fromisoformat(entry.findtext(f"{ATOM}{name}")) == end, (day, name)
    assert datetime.datetime.fromisoformat(root.findtext(f"{ATOM}updated")) == \
        datetime.datetime(2026, 1, 25, tzinfo=ZoneInfo(zone))
    # A feed-level language even when no language is asked for (the titles' one); entries carry theirs.
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    content = first.find(f"{ATOM}content")
    assert content.get("type") == "html"
    assert 'href="http://localhost/r/ai-dynamo/dynamo/2026-01-24?lang=en#c-ebde0f6"' in content.text

    zh = _feed(client, "/r/ai-dynamo/dynamo/feed.atom?lang=zh")
    assert zh.find(f"{ATOM}link[@rel='self']").get("href") == \
        "http://localhost/r/ai-dynamo/dynamo/feed.atom?lang=zh"
    titles = [e.findtext(f"{ATOM}title") for e in zh.findall(f"{ATOM}entry")]
    assert titles == ["ai-dynamo/dynamo · 2026-01-24 · 本日共 15 个提交 | 🔴高 7 | 🟡中 4 | 🟢低 4"]


def test_feed_escapes_everything_and_uses_base_url(config, session, app):
    app.config["BASE_URL"] = "https://daily.example.org"
    report = seed_report("en")
    hostile = make_commit("d" * 40, "x", "11:00:00", HOSTILE_TITLE + " & \x01\x1b")
    stored_report(session, dataclasses.replace(report, entries=report.entries + (
        Entry(hostile, make_analysis("en", "fix", "high", "]]> <b>&amp;")),)))
    root = _feed(app.test_client(), "/r/ai-dynamo/dynamo/feed.atom")
    assert root.findtext(f"{ATOM}id").startswith("https://daily.example.org/r/ai-dynamo/dynamo/")
    content = root.find(f"{ATOM}entry/{ATOM}content").text
    assert "&lt;script&gt;" in content and "<script>" not in content
    assert "]]&gt; &lt;b&gt;&amp;amp;" in content


def test_feed_of_failed_day(client, session):
    stored_report(session, DailyReport(repo=SEED_REPO, date=SEED_DATE, language="en", entries=(), status="failed",
                              error="boom"))
    entry = _feed(client, "/r/ai-dynamo/dynamo/feed.atom").find(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "ai-dynamo/dynamo · 2026-01-24 · ❌ fetching failed"
    content = entry.find(f"{ATOM}content").text
    assert "the code host answered with an error. We will try again." in content and "boom" not in content


# The daily run's own reports ------------------------------------------------------------------

def test_page_of_a_daily_run(config, github, session, app):
    load_into(github)
    subscriptions.subscribe_confirmed(session, "a@example.com", [(SEED_REPO, Threshold.LOW)], "zh")
    session.commit()
    app.config["DIGEST_TIMEZONE"] = SEED_TIMEZONE  # the seed's 15 commits are one day there (two days in UTC)
    run.run_sync(session, run.make_services(dict(app.config)), None,
                   now=datetime.datetime(2026, 1, 25, 7, 0, tzinfo=datetime.UTC))
    html = page(app.test_client(), PAGE)
    assert len(ANCHOR.findall(html)) == 15 and "本日共 15 个提交" in html
    assert "ℹ️ 本报告未使用大模型生成" in html
    for commit in SEED_COMMITS:
        assert f'id="c-{commit.sha[:7]}"' in html
    # Committer times show in the report's zone, as the seed report's table has them.
    assert '<td class="archive-time">2026-01-24 00:26:01</td>' in html  # #5531, 2026-01-23T16:26:01Z
    assert '<td class="archive-time">2026-01-24 10:47:00</td>' in html  # #5624, 2026-01-24T02:47:00Z



def test_report_page_announces_its_feed(client, seeded):
    html = page(client, PAGE)
    head = html[:html.index("</head>")]
    assert re.search(r'<link rel="alternate" type="application/atom\+xml" href="/r/ai-dynamo/dynamo/feed\.atom\?lang=en"',
                     head), head
