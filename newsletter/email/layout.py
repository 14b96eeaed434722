"""Which pieces a digest holds: per repository a section at the subscriber's threshold, shrunk to a budget.

A piece is one fragment of the email rendered by one template macro. A repository's section is
its highlights, its overview row and its body (heading, groups, commits, what was left out). The
body has a hierarchy: a high commit is a full card, a medium one its title, one line of summary
and a link, a low one (or a merge, or one without an analysis) a compact line; a card or a
medium entry collapses to one line when an email is over its size budget.
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..reports.model import GROUPS, DailyReport, Entry, Highlight
from ..reports.wording import failure_text, stats_line
from ..text import plain

THRESHOLD_GROUPS: dict[str, tuple[str, ...]] = {"high": ("high",), "medium": ("high", "medium"), "low": GROUPS}
# The piece a commit of each group gets in full; groups not named here are one line each.
FULL_KINDS = {"high": "commit", "medium": "brief"}
TOP_HIGHLIGHTS = 5  # lines at the top of an email, over all its repositories


def report_url(config: Mapping[str, Any], repo: str, date: datetime.date, lang: str) -> str:
    """The full web report of one repository, day and language."""
    owner, _, name = repo.partition("/")
    return f"{config['BASE_URL']}/r/{quote(owner, safe='')}/{quote(name, safe='')}/{date.isoformat()}?lang={lang}"


@dataclass(frozen=True, eq=False)
class RepoDay:
    """One repository's day in one language as a digest shows it: the report (None when there is
    none) and the address of its web page ("" for a private repository, which has no public page)."""

    repo: str
    lang: str
    date: datetime.date
    report: DailyReport | None
    url: str

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
        return stats_line(self.report.counts(), self.lang) if self.report is not None else ""

    @property
    def failure(self) -> str:
        """What the reader is told about a failed fetch ("" when it did not fail); never the error text."""
        return failure_text(self.report) if self.report is not None and self.report.failed else ""

    @property
    def timezone(self) -> str:
        return plain(self.report.timezone, 60) if self.report is not None else "UTC"

    def entry_url(self, entry: Entry) -> str:
        """The entry's section of the web report, or the commit's own page when there is no web report."""
        return f"{self.url}#{entry.anchor}" if self.url else (entry.url or "")


def repo_day(config: Mapping[str, Any], date: datetime.date, repo: str, lang: str,
             report: DailyReport | None, private: bool = False) -> RepoDay:
    """A repository's day; a private repository gets no web report link (its archive answers 404)."""
    return RepoDay(repo, lang, date, report, "" if private else report_url(config, repo, date, lang))


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
            kind = FULL_KINDS.get(group)
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


def head_pieces(sections: list[Section]) -> list[Piece]:
    """What comes before the sections' bodies: the highlights (with their heading), then the overview rows."""
    highlights = top_highlights(sections)
    return ([HIGHLIGHTS_HEADING, *highlights] if highlights else []) + [s.overview for s in sections]


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
