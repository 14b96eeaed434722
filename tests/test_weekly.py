"""The weekly email (DigestRenderer(..., window=True, weekly=True)): the week per repository, its
highlights and counts first, full cards for the week's high commits only, every other commit one
line with its link, and a link to each daily report of the week; never seven daily emails glued.

Layout tests read a plain dict of window reports with report_days/unreported, as WindowReports
answers them (WeekReports below); the last tests build the window from stored commits.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import random
import re

import pytest

from newsletter.email.digest import DEFAULT_HTML_BUDGET, DigestRenderer, RenderedDigest
from newsletter.email.headers import SubscriberView
from newsletter.i18n import t
from newsletter.reports.model import DailyReport, Entry
from newsletter.reports.wording import group_label
from tests.test_digest import (
    BASE,
    BASE_OR_GITHUB,
    CONFIG,
    Page,
    flat,
    remote_urls,
    text_width,
)
from tests.test_report_render import make_analysis, make_commit

END = datetime.date(2026, 3, 9)  # a Monday: the week's email goes out on it
START = END - datetime.timedelta(days=6)
ZONE = datetime.timezone(datetime.timedelta(hours=8))
GEARS = "octo-org/gears"  # a small week, searched for exact lines
BIG = "org0/project-0"  # a hundred commits
SECRET = "acme/private-rockets"
# The days whose daily reports hold the week's commits (the last day's is not built yet).
GEAR_DAYS = [datetime.date(2026, 3, 3), datetime.date(2026, 3, 5), datetime.date(2026, 3, 8)]


class WeekReports(dict):
    """Window reports as DigestRenderer reads WindowReports: (repo, lang) → DailyReport, and each
    repository's report days and commits of a day not built yet."""

    def __init__(self, reports: dict, days: dict[str, list[datetime.date]], unreported: dict[str, int]):
        super().__init__(reports)
        self.days, self.pending = days, unreported

    def report_days(self, repo: str) -> list[datetime.date]:
        return list(self.days.get(repo, ()))

    def unreported(self, repo: str) -> int:
        return self.pending.get(repo, 0)


def week_report(lang: str, repo: str, specs, **overrides) -> DailyReport:
    """A window report of repo: one commit per (title, importance, day) spec, importance None a merge."""
    entries = []
    for i, (title, importance, day) in enumerate(specs):
        sha = hashlib.sha1(f"{repo} week {i}".encode()).hexdigest()
        commit = make_commit(sha, f"Dev {i % 9}", f"{i % 24:02d}:{i % 60:02d}:00", title,
                             parents=("p1", "p2") if importance is None else ("p1",))
        moment = datetime.datetime.combine(day, datetime.time(i % 24, i % 60), ZONE)
        commit = dataclasses.replace(commit, committed_at=moment.astimezone(datetime.UTC),
                                     html_url=f"https://github.com/{repo}/commit/{sha}")
        analysis = None if importance is None else make_analysis(
            lang, "feature", importance, f"First {i} sentence of {title}. Second {i} sentence stays in the report.")
        entries.append(Entry(commit, analysis))
    fields = dict(repo=repo, date=END, language=lang, entries=entries, timezone="Asia/Shanghai", analyzer="gpt-test")
    fields.update(overrides)
    return DailyReport(**fields)


GEAR_SPECS = [("gear: the high one", "high", GEAR_DAYS[0]), ("gear: the medium one", "medium", GEAR_DAYS[1]),
              ("gear: the low one", "low", GEAR_DAYS[2]), ("gear: not reported yet", "low", END),
              ("Merge branch 'gear'", None, GEAR_DAYS[2])]


def big_specs(n: int = 100):
    """A busy week: 15 high, 35 medium, 45 low and 5 merges over seven days."""
    kinds = ["high"] * 15 + ["medium"] * 35 + ["low"] * 45 + [None] * 5
    random.Random(3).shuffle(kinds)
    return [(f"{'feat' if k else 'Merge'}: change {i} of the week in the scheduler", k, START + datetime.timedelta(days=i % 7))
            for i, k in enumerate(kinds[:n])]


def week_reports(lang: str = "en") -> WeekReports:
    reports = {(GEARS, lang): week_report(lang, GEARS, GEAR_SPECS),
               (BIG, lang): week_report(lang, BIG, big_specs()),
               (SECRET, lang): week_report(lang, SECRET, [("rockets: quiet fix", "high", GEAR_DAYS[0]),
                                                          ("rockets: tidy", "low", GEAR_DAYS[1])])}
    days = {GEARS: GEAR_DAYS, BIG: [START + datetime.timedelta(days=d) for d in range(7)], SECRET: GEAR_DAYS[:2]}
    return WeekReports(reports, days, {GEARS: 1})


def reader(*subscriptions, language="en", send_empty=False) -> SubscriberView:
    return SubscriberView(email="reader@example.com", language=language, subscriptions=tuple(subscriptions),
                          preferences_url=f"{BASE}/preferences/p-token", unsubscribe_url=f"{BASE}/unsubscribe/u-token",
                          send_empty=send_empty)


def weekly(view: SubscriberView, reports=None, private: frozenset[str] = frozenset()) -> RenderedDigest:
    reports = week_reports(view.language) if reports is None else reports
    digest = DigestRenderer(CONFIG, END, reports, private, window=True, weekly=True).render(view)
    assert digest is not None
    return digest


def permalink(repo: str, entry_sha: str, lang: str = "en") -> str:
    return f"{BASE}/r/{repo}/c/{entry_sha}?lang={lang}"


def daily_link(repo: str, day: datetime.date, lang: str = "en") -> str:
    return f"{BASE}/r/{repo}/{day.isoformat()}?lang={lang}"


def sha_of(reports, repo: str, title: str, lang: str = "en") -> str:
    return next(e.sha for e in reports[(repo, lang)].entries if e.title == title)


# The week's wording -------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "heading", "prefix", "highlights"), [
    ("en", "Your week: 2026-03-03 – 2026-03-09", "[Repo Daily] Week to 2026-03-09 · ", "✨ This week's highlights"),
    ("zh", "2026-03-03 至 2026-03-09 的一周提交", "[Repo Daily] 截至 2026-03-09 的一周 · ", "✨ 本周要点"),
])
def test_heading_title_subject_and_highlights_speak_of_the_week(lang, heading, prefix, highlights):
    digest = weekly(reader((GEARS, "low"), (BIG, "low"), language=lang))
    page = Page(digest.html)
    assert digest.subject.startswith(prefix)
    assert digest.subject == prefix + t("digest.sep", lang).join([t("digest.subject.repos", lang, n=2),
                                                                   t("digest.subject.high", lang, n=16)])
    assert re.search(r"<h1[^>]*>" + re.escape(heading) + "</h1>", digest.html)
    assert digest.text.startswith(heading + "\n")
    title = re.search(r"<title>(.*?)</title>", digest.html).group(1)
    assert "2026-03-09" in title and (lang == "en" or "2026-03-03" in title)
    # The week's highlights first (the top ones over its repositories), then each repository.
    top = page.text.index(highlights)
    assert top < page.text.index(f"📦 {GEARS}") and top < page.text.index(f"📦 {BIG}")
    assert highlights in digest.text.split(f"📦 {GEARS}")[0]
    assert t("digest.highlights", lang) not in digest.html + digest.text
    preview = re.search(r'<div style="display:none[^>]*>(.*?)</div>', digest.html, re.S).group(1)
    assert preview.startswith("🔴 ")
    for day_word in ("today", "Today", "今日", "本日"):
        assert day_word not in page.text and day_word not in digest.text, day_word


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_counts_of_the_week_per_repository(lang):
    digest = weekly(reader((BIG, "low"), language=lang))
    stats = t("digest.week.commits", lang, n=95)
    assert f"{stats} | " in Page(digest.html).text and f"\n{stats} | " in digest.text
    assert digest.counts["high"] == 15 and digest.counts["medium"] == 35 and digest.counts["low"] == 45
    assert digest.counts["merge"] == 5


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_quiet_week_says_this_week(lang):
    tidy = week_report(lang, GEARS, [("gear: tidy", "low", GEAR_DAYS[0])])
    quiet = WeekReports({(GEARS, lang): tidy, (BIG, lang): week_report(lang, BIG, big_specs())},
                        {GEARS: GEAR_DAYS[:1]}, {})
    assert DigestRenderer(CONFIG, END, quiet, window=True, weekly=True).render(reader((GEARS, "high"), language=lang)) \
        is None
    digest = weekly(reader((GEARS, "high"), language=lang, send_empty=True), quiet)
    assert digest.subject.endswith(t("digest.week.subject_nothing", lang))
    assert t("digest.week.summary_nothing", lang) in digest.text
    # In an email with something to show: a repository without a report, and one quiet at its threshold.
    digest = weekly(reader((BIG, "high"), (GEARS, "high"), ("missing/repo", "high"), language=lang), quiet)
    text = flat(digest.text)
    assert t("digest.week.no_report", lang) in text and t("digest.week.no_report", lang) in Page(digest.html).text
    nothing = t("digest.week.nothing_at_threshold", lang, threshold=t("threshold.high", lang))
    assert nothing in text and nothing in Page(digest.html).text


# The hierarchy: cards for high, one line for the rest --------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_high_commits_are_cards_and_medium_and_low_one_line_with_their_link(lang):
    reports = week_reports(lang)
    digest = weekly(reader((GEARS, "low"), (BIG, "low"), language=lang), reports)
    page = Page(digest.html)
    tags = [tag for tag, _attrs in page.tags]
    assert tags.count("h1") == 1 and tags.count("h2") == 2
    assert tags.count("h3") == digest.counts["high"] == 16  # one full card per high commit, no other
    assert 'class="r b"' not in digest.html  # no medium brief: one line each
    assert digest.html.count('<div class="r l">') == (35 + 45 + 5) + (1 + 2 + 1)  # BIG's, then GEARS'
    body = page.text[page.text.index(f"📦 {GEARS}"):page.text.index(f"📦 {BIG}")]
    for title, importance, mark in (("gear: the medium one", "medium", "🟡"), ("gear: the low one", "low", "🟢")):
        sha = sha_of(reports, GEARS, title, lang)
        label = group_label(importance, lang)
        assert f"{mark} {title} · {label}" in body
        assert permalink(GEARS, sha, lang) in page.hrefs()
        assert f"▸ {mark} {title} · {label} — {permalink(GEARS, sha, lang)}" in flat(digest.text)
    # Only the high commit's analysis is shown; the others' summaries stay in the reports.
    assert "First 0 sentence of gear: the high one." in body
    assert "sentence of gear: the medium one" not in digest.html + digest.text
    assert "sentence of gear: the low one" not in digest.html + digest.text


def test_a_daily_render_of_the_same_reports_keeps_its_medium_briefs():
    reports = week_reports()
    view = reader((GEARS, "low"))
    daily = DigestRenderer(CONFIG, END, reports, window=True).render(view)
    week = DigestRenderer(CONFIG, END, reports, window=True, weekly=True).render(view)
    assert daily is not None and week is not None
    assert daily.html.count('class="r b"') == 1 and week.html.count('class="r b"') == 0
    assert "First 1 sentence of gear: the medium one." in Page(daily.html).text
    assert daily.subject.startswith("[Repo Daily] 2026-03-09 · ")
    assert t("digest.heading", "en", date="2026-03-09") in daily.text
    assert t("digest.week.daily_reports", "en") not in daily.text + daily.html
    assert t("digest.highlights", "en") in daily.text and t("digest.week.highlights", "en") not in daily.text


# Links to the daily reports of the week ---------------------------------------------------------

@pytest.mark.parametrize(("lang", "labels"), [("en", ["Tue 03-03", "Thu 03-05", "Sun 03-08"]),
                                              ("zh", ["周二 03-03", "周四 03-05", "周日 03-08"])])
def test_each_repository_links_the_daily_reports_of_its_week(lang, labels):
    digest = weekly(reader((GEARS, "low"), (BIG, "low"), language=lang))
    page = Page(digest.html)
    hrefs = page.hrefs()
    colon = t("report.colon", lang)
    for day, label in zip(GEAR_DAYS, labels, strict=True):
        url = daily_link(GEARS, day, lang)
        assert re.search(rf'<a href="{re.escape(url)}">{re.escape(label)}</a>', digest.html)
        assert f"\n  {label}{colon}{url}\n" in digest.text
    # A commit whose day is not built yet: the reader is told, and no link is guessed.
    later = t("digest.week.later", lang)
    gears = page.text[page.text.index(f"📦 {GEARS}"):page.text.index(f"📦 {BIG}")]
    line = f"{t('digest.week.daily_reports', lang)}{colon}{' · '.join(labels)} · {later}"
    assert "".join(line.split()) in "".join(gears.split())
    assert later in digest.text.split(f"📦 {BIG}")[0]
    assert daily_link(GEARS, END, lang) not in hrefs
    # The busy repository: every day of its week, and no "later" word (all its days are built).
    big = [h for h in hrefs if h.startswith(f"{BASE}/r/{BIG}/2026-")]
    assert big == [daily_link(BIG, START + datetime.timedelta(days=d), lang) for d in range(7)]
    assert digest.text.count(later) == 1


def test_a_private_repository_gets_no_links():
    digest = weekly(reader((SECRET, "low")), private=frozenset({SECRET}))
    assert f"{BASE}/r/" not in digest.html and f"{BASE}/r/" not in digest.text
    assert t("digest.week.daily_reports", "en") not in digest.text
    assert [tag for tag, _attrs in Page(digest.html).tags].count("h3") == 1


# Craft and size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh"])
def test_dark_mode_text_width_and_only_our_links(lang):
    digest = weekly(reader((GEARS, "low"), (BIG, "medium"), (SECRET, "low"), language=lang),
                    private=frozenset({SECRET}))
    head = digest.html[:digest.html.index("<body")]
    assert '<meta name="color-scheme" content="light dark"' in head and "@media (prefers-color-scheme: dark)" in head
    h2_ids = [attrs.get("id", "") for tag, attrs in Page(digest.html).tags if tag == "h2"]
    assert len(h2_ids) == 3 and all(i.startswith("repo-") for i in h2_ids)
    for line in digest.text.split("\n"):
        assert text_width(line) <= 78 or re.search(r"https?://", line), line
    urls = remote_urls(digest.html) + remote_urls(digest.text)
    assert urls and all(BASE_OR_GITHUB.match(url) for url in urls)
    assert "<link" not in digest.html and "@import" not in digest.html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_hundred_commit_week_stays_well_under_the_budget(lang):
    view = reader((BIG, "low"), language=lang)
    digest = weekly(view)
    daily = DigestRenderer(CONFIG, END, week_reports(lang), window=True).render(view)
    assert daily is not None
    size, daily_size = len(digest.html.encode()), len(daily.html.encode())
    print(f"\n100-commit week ({lang}): weekly HTML {size} bytes, text {len(digest.text.encode())} bytes; "
          f"the same window as a daily email: {daily_size} bytes")
    assert digest.counts["shown"] == 100 and digest.counts["collapsed"] == 0 and digest.counts["dropped"] == 0
    assert size <= 70_000 and size < daily_size  # Gmail clips past about 102 KB


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_bench_week_of_verbose_analyses_fits_the_budget(lang):
    """bench/render.py's synthetic commits (long analyses, a quarter of them high), a hundred in a week."""
    from bench.render import synthetic_report

    report = DailyReport.from_json(synthetic_report(random.Random(7), BIG, lang, 100, False))
    reports = WeekReports({(BIG, lang): dataclasses.replace(report, date=END)}, {BIG: [START, END]}, {})
    digest = weekly(reader((BIG, "low"), language=lang), reports)
    print(f"\nbench week of 100 commits ({lang}): {digest.counts['high']} high cards, "
          f"HTML {len(digest.html.encode())} bytes, collapsed {digest.counts['collapsed']}")
    assert len(digest.html.encode()) <= DEFAULT_HTML_BUDGET and digest.counts["dropped"] == 0


def test_weekly_and_daily_renderers_keep_their_own_skeletons_and_pieces():
    reports = week_reports()
    view = reader((GEARS, "low"), (BIG, "medium"))
    before = DigestRenderer(CONFIG, END, reports, window=True).render(view)
    week_renderer = DigestRenderer(CONFIG, END, reports, window=True, weekly=True)
    first = week_renderer.render(view)
    compiles = week_renderer.compiles
    again = week_renderer.render(dataclasses.replace(view, email="other@example.com"))
    assert week_renderer.compiles == compiles  # nothing compiled per reader
    after = DigestRenderer(CONFIG, END, reports, window=True).render(view)
    assert before is not None and after is not None and first is not None and again is not None
    assert (before.subject, before.html, before.text) == (after.subject, after.html, after.text)
    assert first.html != before.html and again.html.replace("other@example.com", "reader@example.com") == first.html


def test_the_week_starts_on_the_local_date_of_the_window_start():
    from newsletter.email.digest import week_start

    class Window(dict):
        start = datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC)  # Mon 07:30 in Shanghai
        timezone = "Asia/Shanghai"

    assert week_start(END, Window()) == datetime.date(2026, 3, 2)
    assert week_start(END, {}) == START
    Window.timezone = "Not/AZone"
    assert week_start(END, Window()) == START


# Stored commits: WindowReports.report_days ---------------------------------------------------------

def test_window_reports_give_the_report_days_of_the_window_and_the_email_links_them(session):
    from newsletter.analysis.result import PROMPT_VERSION, AnalysisSet
    from newsletter.models import CommitAnalysis, FetchedCommit, Repository
    from newsletter.reports.window import WindowReports

    start = datetime.datetime(2026, 3, 2, 0, 0, tzinfo=datetime.UTC)  # 08:00 in Shanghai
    end = datetime.datetime(2026, 3, 9, 0, 0, tzinfo=datetime.UTC)
    repository = Repository(name=GEARS, watermark_sha="f" * 40)
    session.add(repository)
    session.flush()
    seen = [start - datetime.timedelta(hours=1)] + [start + datetime.timedelta(days=d, hours=3) for d in range(7)]
    days = [datetime.date(2026, 2, 28), GEAR_DAYS[0], GEAR_DAYS[0], GEAR_DAYS[1], None, GEAR_DAYS[2], None, None]
    importances = ["high", "high", "medium", "low", "low", "medium", "low", "high"]
    rows = []
    for i, (first_seen, day, importance) in enumerate(zip(seen, days, importances, strict=True)):
        record = make_commit(f"{i:040x}", f"Dev {i}", "10:00:00", f"gear: stored change {i}")
        row = FetchedCommit(repository_id=repository.id, sha=record.sha, committed_at=record.committed_at,
                            record=record.to_dict(), report_date=day, first_seen_at=first_seen)
        session.add(row)
        rows.append((row, importance))
    session.flush()
    for row, importance in rows:
        analyses = {lang: make_analysis(lang, "feature", importance, f"Stored {row.sha[-2:]}.") for lang in ("en", "zh")}
        session.add(CommitAnalysis(commit_id=row.id, model="gpt-test", prompt_version=PROMPT_VERSION,
                                   analysis=AnalysisSet.of(analyses).to_dict()))
    session.commit()

    reports = WindowReports(session, start, end, "gpt-test", END, "Asia/Shanghai")
    # The commit seen before the window (its day 02-28) is not the window's; two have no day yet.
    assert reports.report_days(GEARS) == GEAR_DAYS
    assert reports.unreported(GEARS) == 3
    assert reports.report_days("never/fetched") == [] and reports.unreported("never/fetched") == 0
    for lang in ("en", "zh"):
        renderer = DigestRenderer(CONFIG, END, reports, window=True, weekly=True)
        digest = renderer.render(reader((GEARS, "low"), language=lang))
        assert digest is not None
        assert renderer.week_start == datetime.date(2026, 3, 2)
        assert t("digest.week.heading", lang, start="2026-03-02", end="2026-03-09") in digest.text
        hrefs = Page(digest.html).hrefs()
        assert [h for h in hrefs if re.match(rf"{BASE}/r/{GEARS}/2026-", h)] == \
            [daily_link(GEARS, day, lang) for day in GEAR_DAYS]
        assert t("digest.week.later", lang) in digest.text
        assert [tag for tag, _attrs in Page(digest.html).tags].count("h3") == 2  # the window's two high commits
        assert digest.counts["shown"] == 7
