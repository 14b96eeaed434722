"""Which pieces a digest holds: per repository a section at the subscriber's threshold, shrunk to a budget.

A piece is one fragment of the email rendered by one template macro. A repository's section is
its highlights, its overview row and its body (heading, groups, commits, what was left out). The
body has a hierarchy: a high commit is a full card, a medium one its title, one line of summary
and a link, a low one (or a merge, or one without an analysis) a compact line; a card or a
medium entry collapses to one line when an email is over its size budget.

The weekly email (RepoDay.weekly) keeps full cards for high commits only: every other commit of the
week is a compact line, and each repository links the daily reports its week's commits belong to.
"""
from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..i18n import t
from ..reports.model import GROUPS, DailyReport, Entry, Highlight
from ..reports.wording import failure_text, stats_line
from ..text import plain
from .placeholders import TIME_PLACEHOLDER, TIME_STAMP

THRESHOLD_GROUPS: dict[str, tuple[str, ...]] = {"high": ("high",), "medium": ("high", "medium"), "low": GROUPS}
# The piece a commit of each group gets in full; groups not named here are one line each.
FULL_KINDS = {"high": "commit", "medium": "brief"}
WEEK_FULL_KINDS = {"high": "commit"}  # the weekly email: a card for a high commit, one line for the rest
TOP_HIGHLIGHTS = 5  # lines at the top of an email, over all its repositories


def report_url(config: Mapping[str, Any], repo: str, date: datetime.date, lang: str) -> str:
    """The full web report of one repository, day and language."""
    owner, _, name = repo.partition("/")
    return f"{config['BASE_URL']}/r/{quote(owner, safe='')}/{quote(name, safe='')}/{date.isoformat()}?lang={lang}"


def archive_url(config: Mapping[str, Any], repo: str, lang: str) -> str:
    """The repository's archive: its daily reports, newest first."""
    owner, _, name = repo.partition("/")
    return f"{config['BASE_URL']}/r/{quote(owner, safe='')}/{quote(name, safe='')}/?lang={lang}"


def commit_link(config: Mapping[str, Any], repo: str, sha: str, lang: str) -> str:
    """A commit's permalink on the site: its place in the daily report that holds it, or its own page."""
    owner, _, name = repo.partition("/")
    return f"{config['BASE_URL']}/r/{quote(owner, safe='')}/{quote(name, safe='')}/c/{quote(sha, safe='')}?lang={lang}"


@dataclass(frozen=True, eq=False)
class RepoDay:
    """One repository's day in one language as a digest shows it: the report (None when there is
    none) and the address of its web page ("" for a private repository, which has no public page)."""

    repo: str
    lang: str
    date: datetime.date
    report: DailyReport | None
    url: str
    # Set for an email's window, which spans report days: each commit links to its permalink (this
    # prefix, the sha, then ?lang=) and url is the repository's archive.
    permalink: str = ""
    # An email's window: commit times are placeholders (time_token), and each reader gets them in their
    # own zone (digest.localize_times), so one compiled window serves readers of every zone.
    window: bool = False
    # The weekly email: its wording speaks of the week; `days` are the daily reports holding the
    # week's commits as (label, link) pairs, and `later` says some commits' day is not built yet.
    weekly: bool = False
    days: tuple[tuple[str, str], ...] = ()
    later: bool = False

    @property
    def anchor(self) -> str:
        return "repo-" + re.sub(r"[^a-z0-9]+", "-", self.repo.lower()).strip("-")

    @property
    def status(self) -> str:
        """ok, failed, or missing when there is no report."""
        if self.report is None:
            return "missing"
        return "failed" if self.report.failed else "ok"

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self.report.entries if self.report is not None else ()

    @property
    def total(self) -> int:
        return len(self.entries)

    @property
    def stats_line(self) -> str:
        if self.report is None:
            return ""
        line = stats_line(self.report.counts(), self.lang)
        if self.weekly:  # the count of the week in place of the day's
            total = self.report.counts().get("total", 0)
            _day, sep, rest = line.partition(" | ")
            line = t("digest.week.commits_one" if total == 1 else "digest.week.commits", self.lang, n=total) + sep + rest
        return line

    @property
    def failure(self) -> str:
        """What the reader is told about a failed fetch ("" when it did not fail); never the error text."""
        return failure_text(self.report) if self.report is not None and self.report.failed else ""

    @property
    def timezone(self) -> str:
        return plain(self.report.timezone, 60) if self.report is not None else "UTC"

    def time_token(self, entry: Entry) -> str:
        """A window email's placeholder for the commit's time, filled with each reader's local time."""
        return TIME_PLACEHOLDER.format(stamp=entry.committed_at.astimezone(datetime.UTC).strftime(TIME_STAMP))

    def entry_url(self, entry: Entry) -> str:
        """The entry's section of the web report, or the commit's own page when there is no web report."""
        return self.sha_url(entry.commit.sha, entry.anchor) or (entry.url or "")

    def sha_url(self, sha: str, anchor: str) -> str:
        """A commit's place on the site ("" without a public web report)."""
        if not self.url:
            return ""
        if self.permalink:
            return f"{self.permalink}{quote(sha, safe='')}?lang={self.lang}"
        return f"{self.url}#{anchor}"


def repo_day(config: Mapping[str, Any], date: datetime.date, repo: str, lang: str,
             report: DailyReport | None, private: bool = False, window: bool = False) -> RepoDay:
    """A repository's day; a private repository gets no web report link (its archive answers 404).

    window: the commits of an email's window, which may belong to several report days (some not
    built yet): the repository links to its archive and each commit to its permalink.
    """
    if private:
        return RepoDay(repo, lang, date, report, "", window=window)
    if window:
        prefix = commit_link(config, repo, "", lang).split("?", 1)[0]
        return RepoDay(repo, lang, date, report, archive_url(config, repo, lang), permalink=prefix, window=True)
    return RepoDay(repo, lang, date, report, report_url(config, repo, date, lang))


def day_label(day: datetime.date, lang: str) -> str:
    """A report day as the weekly email names it: "Mon 03-02" / "周一 03-02"."""
    weekday = t("digest.week.weekdays", lang).split()[day.weekday()]
    return t("digest.week.day", lang, weekday=weekday, date=f"{day:%m-%d}")


def week_of(config: Mapping[str, Any], day: RepoDay, report_days: Sequence[datetime.date] = (),
            unreported: int = 0) -> RepoDay:
    """A repository's window as the weekly email shows it, with a link to each daily report of its
    commits (report_days), and a word when some (unreported) belong to a day not built yet; a
    private repository, which has no public report, gets neither."""
    if not day.url:
        return dataclasses.replace(day, weekly=True)
    links = tuple((day_label(d, day.lang), report_url(config, day.repo, d, day.lang)) for d in sorted(set(report_days)))
    return dataclasses.replace(day, weekly=True, days=links, later=unreported > 0)


@dataclass(frozen=True, eq=False)
class Piece:
    """One fragment of an email, rendered by one macro: body-level MJML sections or mj-raw rows."""

    kind: str  # highlight, overview, repo, group, commit, brief, line, rest, note
    key: tuple[str, ...]
    repo: RepoDay | None = None
    entry: Entry | None = None
    highlight: Highlight | None = None
    threshold: str = ""
    group: str = ""
    shown: dict[str, int] = field(default_factory=dict)
    omitted: int = 0


# A body item: a Piece, or a (full, one-line) pair for a commit that may be collapsed.
BodyItem = Piece | tuple[Piece, Piece]


@dataclass(frozen=True, eq=False)
class Section:
    """One repository at one threshold: its overview row, then its body in email order."""

    repo: RepoDay
    threshold: str
    overview: Piece
    body: tuple[BodyItem, ...]
    shown: dict[str, int]
    omitted: int
    highlights: tuple[Piece, ...] = ()

    @property
    def shown_total(self) -> int:
        return sum(self.shown.values())


def threshold_value(value: Any) -> str:
    """A threshold (models.Threshold or its value) as its value; ValueError for anything else."""
    threshold = str(getattr(value, "value", value))
    if threshold not in THRESHOLD_GROUPS:
        raise ValueError(f"unknown threshold {value!r}")
    return threshold


def section_plan(repo: RepoDay, threshold: str) -> Section:
    """The pieces of one repository's section for one threshold."""
    groups = THRESHOLD_GROUPS[threshold]
    shown = {g: sum(1 for e in repo.entries if e.group == g) for g in groups}
    # Commits left out; merges are not commits of the count, so leaving them out is not worth a mention.
    omitted = sum(1 for e in repo.entries if e.group not in groups and e.group != "merge")
    overview = Piece("overview", ("overview", threshold), repo=repo, threshold=threshold, shown=shown,
                     omitted=omitted)
    body: list[BodyItem] = [Piece("repo", ("repo",), repo=repo)]
    for group in groups:
        entries = [e for e in repo.entries if e.group == group]
        if entries:
            body.append(Piece("group", ("group", group), repo=repo, group=group, shown={group: len(entries)}))
        for entry in entries:
            line = Piece("line", ("line", entry.anchor), repo=repo, entry=entry)
            kind = (WEEK_FULL_KINDS if repo.weekly else FULL_KINDS).get(group)
            body.append((Piece(kind, (kind, entry.anchor), repo=repo, entry=entry), line) if kind else line)
    if repo.status != "missing" and repo.total and (omitted or not sum(shown.values())):
        body.append(Piece("rest", ("rest", threshold), repo=repo, threshold=threshold, shown=shown,
                          omitted=omitted))
    highlights = tuple(Piece("highlight", ("highlight", h.anchor), repo=repo, highlight=h)
                       for h in (repo.report.highlights() if repo.report is not None else ()) if h.importance in groups)
    return Section(repo, threshold, overview, tuple(body), shown, omitted, highlights)


def failed_last(sections: list[Section]) -> list[Section]:
    """Sections in subscription order, those whose fetch failed after the others."""
    return sorted(sections, key=lambda s: s.repo.status == "failed")


def top_highlights(sections: list[Section]) -> list[Piece]:
    """The email's highlights: high ones of every repository first, then medium, at most TOP_HIGHLIGHTS."""
    pieces = [p for s in sections for p in s.highlights]
    return sorted(pieces, key=lambda p: p.highlight is None or p.highlight.importance != "high")[:TOP_HIGHLIGHTS]


def all_pieces(repo: RepoDay) -> list[Piece]:
    """Every piece any threshold can need from one repository: what its piece document compiles."""
    pieces: dict[tuple[str, ...], Piece] = {}
    for threshold in THRESHOLD_GROUPS:
        plan = section_plan(repo, threshold)
        for item in (*plan.highlights, plan.overview, *plan.body):
            for piece in item if isinstance(item, tuple) else (item,):
                pieces.setdefault(piece.key, piece)
    return list(pieces.values())


@dataclass(frozen=True)
class Fit:
    """How an email was shrunk to its budget: the first `full` commits in full and the rest one line
    each; with `keep`, only the first `keep` body items at all. Fit() is the whole email."""

    full: int | None = None
    keep: int | None = None


COLLAPSED_NOTE = Piece("note", ("note", "collapsed"), group="collapsed")
TRUNCATED_NOTE = Piece("note", ("note", "truncated"), group="truncated")
HIGHLIGHTS_HEADING = Piece("note", ("note", "highlights"), group="highlights")
WEEK_HIGHLIGHTS_HEADING = Piece("note", ("note", "week_highlights"), group="week_highlights")


def is_weekly(sections: Sequence[Section]) -> bool:
    """Whether sections are a weekly email's (every section of an email is, or none)."""
    return any(s.repo.weekly for s in sections)


def head_pieces(sections: list[Section]) -> list[Piece]:
    """What comes before the sections' bodies: the highlights (with their heading), then the overview rows."""
    highlights = top_highlights(sections)
    heading = WEEK_HIGHLIGHTS_HEADING if is_weekly(sections) else HIGHLIGHTS_HEADING
    return ([heading, *highlights] if highlights else []) + [s.overview for s in sections]


def layout(sections: list[Section], fit: Fit = Fit()) -> list[Piece]:
    """The email's pieces: highlights, overview rows, then the sections, shrunk as `fit` says."""
    pieces = head_pieces(sections)
    if not any(s.shown_total for s in sections):
        return pieces
    if fit.keep is not None:
        pieces.append(TRUNCATED_NOTE)
    elif fit.full is not None:
        pieces.append(COLLAPSED_NOTE)
    body: list[Piece] = []
    seen = 0
    for section in sections:
        for item in section.body:
            if isinstance(item, tuple):
                body.append(item[0] if fit.full is None or seen < fit.full else item[1])
                seen += 1
            else:
                body.append(item)
    return pieces + (body if fit.keep is None else body[:fit.keep])


def fit_counts(sections: list[Section], fit: Fit) -> dict[str, int]:
    """Commits collapsed to one line and commits dropped by a fit."""
    if fit == Fit():
        return {"collapsed": 0, "dropped": 0}
    commits = [item for s in sections for item in s.body if not isinstance(item, Piece) or item.kind == "line"]
    kept = commits if fit.keep is None else [
        item for s in sections for item in s.body][:fit.keep]
    kept_commits = [item for item in kept if not isinstance(item, Piece) or item.kind == "line"]
    collapsible = [item for item in kept_commits if isinstance(item, tuple)]
    full = len(collapsible) if fit.full is None else min(fit.full, len(collapsible))
    return {"collapsed": len(collapsible) - full, "dropped": len(commits) - len(kept_commits)}


def totals(sections: list[Section]) -> dict[str, int]:
    """Commits shown per importance, repositories, commits left out and failed repositories."""
    counts = {g: sum(s.shown.get(g, 0) for s in sections) for g in GROUPS}
    counts.update(
        repositories=len(sections), shown=sum(s.shown_total for s in sections),
        omitted=sum(s.omitted for s in sections), failed=sum(s.repo.status == "failed" for s in sections),
    )
    return counts
