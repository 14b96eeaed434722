"""The daily report model: one repository's day in one language, as every output reads it.

A `DailyReport` is built once, either from the commits and analyses of a run (`DailyReport(...)`)
or from the JSON stored with it (`DailyReport.from_json`), and the Markdown report, the email, the
web page and the Atom feed all render this one object. Derived facts are computed here once: the
display order (high, medium, low, not analysed, then merges; newest first within each), each
commit's anchor and local time, the counts and the highlights, so no output can disagree with another.

Merge commits are listed on their own and are not commits of the day's count: "total" and the
importance counts hold the other commits (an unanalyzed one still counts), "merge" the merges.
"""
from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..analysis.result import HEURISTIC_MODEL, Analysis, Importance
from ..i18n import LANGUAGES
from ..sources.commit import CommitRecord, FileChange
from ..text import code_spans, commit_title, hex_digits, plain, safe_url, truncate
from .wording import stats_line

JSON_SCHEMA_VERSION = 1
STATUSES = ("ok", "failed")
# Display order. "unanalyzed": a commit (not a merge) shown without an analysis; "merge": a merge commit.
GROUPS = ("high", "medium", "low", "unanalyzed", "merge")
COMMIT_GROUPS = GROUPS[:-1]  # what "N commits" counts: everything but merges
HIGHLIGHT_GROUPS = ("high", "medium")  # a day of low commits only has no highlights
HIGHLIGHTS = 3
HIGHLIGHT_TITLE_CHARS = 60
HIGHLIGHT_REASON_CHARS = 160
SHORT_SHA = 7
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# GitHub's merge-button message; the number is the pull request's.
_PULL_REQUEST_MERGE = re.compile(r"^Merge pull request #(\d{1,9}) from \S")
_GITHUB_COMMIT = re.compile(r"^(https://github\.com/[A-Za-z0-9-]+/[A-Za-z0-9._-]+)/commit/[0-9a-fA-F]+$")
# The end of a sentence: ".", "!" or "?" before a space, or a CJK full stop, "！" or "？".
_SENTENCE_END = re.compile(r"[.!?](?=\s)|[。！？]")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")

_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileChange))


def _utc(moment: datetime.datetime) -> datetime.datetime:
    # CommitRecord promises aware datetimes; a naive one is taken as UTC rather than local time.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Entry:
    """One commit of the day and its analysis (None for a commit shown without one, as merges are).

    anchor and local_time are filled in by the DailyReport that holds the entry.
    """

    commit: CommitRecord
    analysis: Analysis | None
    anchor: str = ""
    local_time: str = ""

    @property
    def group(self) -> str:
        """merge for a merge commit; otherwise high, medium or low from the analysis, or unanalyzed."""
        if self.is_merge:
            return "merge"
        return "unanalyzed" if self.analysis is None else Importance(self.analysis.importance).value

    @property
    def title(self) -> str:
        """The commit message's first line, cleaned; "" when the message is empty."""
        return commit_title(self.commit.message)

    @property
    def sha(self) -> str:
        """The full sha, hex digits only."""
        return hex_digits(self.commit.sha)

    @property
    def short_sha(self) -> str:
        """The first seven hex digits, or "?"."""
        return self.sha[:SHORT_SHA] or "?"

    @property
    def url(self) -> str | None:
        """The commit's page, when it is a safe http(s) URL."""
        return safe_url(self.commit.html_url)

    @property
    def author(self) -> str:
        """The author's name (or login), cleaned; "?" when there is neither."""
        return plain(self.commit.author_name or self.commit.author_login) or "?"

    @property
    def is_merge(self) -> bool:
        return self.commit.is_merge

    @property
    def pull_request(self) -> int | None:
        """The number of the pull request a "Merge pull request #N from ..." merge brings in."""
        match = _PULL_REQUEST_MERGE.match(self.title) if self.is_merge else None
        return int(match.group(1)) if match else None

    @property
    def pull_request_url(self) -> str | None:
        """That pull request's page, for a commit of a GitHub repository (known from its commit URL)."""
        number = self.pull_request
        repo = _GITHUB_COMMIT.match(self.url or "") if number is not None else None
        return f"{repo.group(1)}/pull/{number}" if repo else None

    def commit_url(self, sha: str) -> str | None:
        """The page of another commit of this repository: this commit's URL with the other sha in place
        of its own (GitHub, GitLab and a LOCAL web_url all end in the sha); None when it does not end so."""
        own, other = self.sha, hex_digits(sha)
        url = self.url
        if not url or not own or not other or not url.endswith(own):
            return None
        return safe_url(url[:-len(own)] + other)

    @property
    def committed_at(self) -> datetime.datetime:
        """The commit time, aware, in UTC."""
        return _utc(self.commit.committed_at)


@dataclass(frozen=True)
class Highlight:
    """One line at the top of a report: an important commit's short title and why it matters."""

    sha: str
    anchor: str
    importance: str  # high or medium
    title: str  # the commit's title, cut on a word boundary; "" for an empty message
    reason: str  # the first sentence of the importance reason; "" when the analysis gives none

    def to_json(self) -> dict[str, str]:
        return {"sha": self.sha, "importance": self.importance, "title": self.title, "reason": self.reason}


@dataclass(frozen=True)
class Relation:
    """A note on one commit about another: it "reverts" it, or is the "same_change" as it."""

    kind: str
    sha: str  # the other commit's sha (a reverted commit of an earlier day may be known by its sha only)
    anchor: str  # its anchor in this report; "" when it is not in the report
    title: str
    url: str | None = None  # its commit page, when the noted commit's own page tells where that is

    @property
    def short_sha(self) -> str:
        return self.sha[:SHORT_SHA]


def first_sentence(text: str) -> str:
    """The first sentence of text (code spans are never cut), bounded to HIGHLIGHT_REASON_CHARS."""
    text = plain(text)
    # Mask code spans so a "." inside one is no sentence end.
    masked = "".join("x" * len(source) if is_code else source for is_code, _content, source in code_spans(text))
    for match in _SENTENCE_END.finditer(masked):
        end = match.end()
        if not masked[:end].lower().endswith(_ABBREVIATIONS):
            text = text[:end]
            break
    return truncate(text, HIGHLIGHT_REASON_CHARS)


def short_title(title: str, limit: int = HIGHLIGHT_TITLE_CHARS) -> str:
    """title cut to limit on a word boundary (at the last space that fits, however early)."""
    if len(title) <= limit:
        return title
    space = title.rfind(" ", 0, limit)
    # No space at all (one long token, or CJK text without spaces): truncate cuts between characters.
    return title[:space].rstrip() + "…" if space > 0 else truncate(title, limit)


def _group_order(entry: Entry) -> tuple[int, float, str]:
    return (GROUPS.index(entry.group), -entry.committed_at.timestamp(), entry.commit.sha)


def _anchors(shas: list[str]) -> dict[str, str]:
    """Anchor ids keyed by SHA: c- plus the short SHA, lengthened only where two would collide."""
    digits_of = {sha: hex_digits(sha) for sha in shas}
    anchors: dict[str, str] = {}
    for index, (sha, digits) in enumerate(digits_of.items()):
        length = SHORT_SHA
        others = [other for other in digits_of.values() if other != digits]
        while length < len(digits) and any(other[:length] == digits[:length] for other in others):
            length += 1
        anchors[sha] = f"c-{digits[:length]}" if digits else f"c-n{index}"
    return anchors


@dataclass(frozen=True)
class DailyReport:
    """Everything one repository's daily report shows.

    Entries may be given in any order and with or without anchors: the report keeps them in
    display order with their anchors and local times filled in.
    """

    repo: str
    date: datetime.date
    language: str
    entries: tuple[Entry, ...] = ()
    timezone: str = "UTC"
    analyzer: str = HEURISTIC_MODEL
    status: str = "ok"
    error: str | None = None  # the exception text, for operators: no reader-facing output shows it
    error_kind: str | None = None  # errors.FAILURE_KINDS; None in reports stored before it was kept
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"unsupported report language {self.language!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown report status {self.status!r}")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        entries = tuple(self.entries)
        anchors = _anchors([e.commit.sha for e in entries])
        filled = [dataclasses.replace(e, anchor=anchors[e.commit.sha],
                                      local_time=e.committed_at.astimezone(zone).strftime(TIME_FORMAT))
                  for e in entries]
        object.__setattr__(self, "entries", tuple(sorted(filled, key=_group_order)))
        counts = dict.fromkeys(GROUPS, 0)
        for entry in self.entries:
            counts[entry.group] += 1
        self._counts.update(total=sum(counts[group] for group in COMMIT_GROUPS), **counts)

    # What the outputs read ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Commits per group, and in total: every commit but the merges, which "merge" counts on its own.

        total == high + medium + low + unanalyzed (commits shown without an analysis).
        """
        return dict(self._counts)

    def highlights(self) -> list[Highlight]:
        """The day's most important changes, at most three: high, then medium, newest first in each.

        Only high and medium commits qualify: a day of low commits (or merges) has none, rather
        than filler. Each is the commit's short title and the first sentence of its importance reason.
        """
        chosen = [e for e in self.entries if e.group in HIGHLIGHT_GROUPS and e.analysis is not None][:HIGHLIGHTS]
        return [Highlight(sha=e.sha, anchor=e.anchor, importance=e.group, title=short_title(e.title),
                          reason=first_sentence(e.analysis.importance_reason) if e.analysis else "")
                for e in chosen]

    def relations(self) -> dict[str, Relation]:
        """How commits of the day relate, keyed by the sha of the commit that carries the note.

        - A revert names what it reverts: an entry of the day (by sha in "This reverts commit ...",
          else by its quoted title), or a short sha of an earlier day.
        - A commit whose patch id equals an older entry's (the same change rebased or cherry-picked)
          is the "same change as" that entry: it is shown once, the older one in full.
        Read from the facts stored with each commit; entries without facts have no relations.
        """
        found: dict[str, Relation] = {}
        by_age = sorted(self.entries, key=lambda e: (e.committed_at.timestamp(), e.sha))
        first_of_patch: dict[str, Entry] = {}
        for entry in by_age:
            facts = entry.commit.facts or {}
            patch = facts.get("patch_id")
            if isinstance(patch, str) and patch and not entry.is_merge:
                original = first_of_patch.setdefault(patch, entry)
                if original is not entry:
                    found[entry.sha] = Relation("same_change", original.sha, original.anchor, original.title,
                                                original.url)
                    continue
            reverted_sha, reverted_title = facts.get("reverted_sha"), facts.get("reverted_title")
            if not (reverted_sha or reverted_title):
                continue
            target = next((e for e in self.entries if e is not entry and (
                (isinstance(reverted_sha, str) and len(reverted_sha) >= SHORT_SHA and e.sha.startswith(reverted_sha.lower()))
                or (not reverted_sha and reverted_title and e.title == plain(reverted_title)))), None)
            if target is not None:
                found[entry.sha] = Relation("reverts", target.sha, target.anchor, target.title, target.url)
            elif isinstance(reverted_sha, str) and hex_digits(reverted_sha):
                found[entry.sha] = Relation("reverts", hex_digits(reverted_sha), "", plain(reverted_title or ""),
                                            entry.commit_url(reverted_sha))
        return found

    def groups(self) -> list[tuple[str, list[Entry]]]:
        """The non-empty groups in display order, each with its entries (newest first)."""
        return [(group, [e for e in self.entries if e.group == group]) for group in GROUPS
                if self._counts[group]]

    def by_time(self) -> list[Entry]:
        """Every entry, newest first: the commit table."""
        return sorted(self.entries, key=lambda e: (-e.committed_at.timestamp(), e.commit.sha))

    def prompt_tokens(self) -> int:
        """Prompt tokens summed over every analysis."""
        return sum(e.analysis.prompt_tokens for e in self.entries if e.analysis is not None)

    def completion_tokens(self) -> int:
        """Completion tokens summed over every analysis."""
        return sum(e.analysis.completion_tokens for e in self.entries if e.analysis is not None)

    def fallbacks(self) -> int:
        """Analyses where the heuristic stood in for a failed LLM call."""
        return sum(1 for e in self.entries if e.analysis is not None and e.analysis.fallback)

    def analyzed(self) -> int:
        return sum(1 for e in self.entries if e.analysis is not None)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def heuristic(self) -> bool:
        """True when no LLM took part: the report must say so."""
        return self.analyzer == HEURISTIC_MODEL

    @property
    def shows_body(self) -> bool:
        """A failed fetch with nothing to show ends at the failure: "0 commits" would be a false claim."""
        return bool(self.entries) or not self.failed

    # Storage --------------------------------------------------------------------------------------

    def to_json(self, *, include_patches: bool = False) -> dict[str, Any]:
        """The report as JSON-serialisable data; patches are replaced by their size unless asked for."""
        prompt, completion = self.prompt_tokens(), self.completion_tokens()
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "repo": self.repo,
            "date": self.date.isoformat(),
            "language": self.language,
            "timezone": self.timezone,
            "analyzer": self.analyzer,
            "status": self.status,
            "error": self.error,
            "error_kind": self.error_kind,
            "counts": self.counts(),
            "stats_line": stats_line(self.counts(), self.language),
            # Derived like counts: from_json computes them again from the entries.
            "highlights": [highlight.to_json() for highlight in self.highlights()],
            "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
            # HTTP requests to the LLM, retries and format negotiation included (shared by every language).
            "llm_requests": sum(e.analysis.requests for e in self.entries if e.analysis is not None),
            "entries": [{
                "anchor": entry.anchor,
                "group": entry.group,
                "local_time": entry.local_time,
                "title": entry.title,
                "commit": _commit_json(entry.commit, include_patches),
                "analysis": None if entry.analysis is None else entry.analysis.to_dict(),
            } for entry in self.entries],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DailyReport:
        """Rebuild a report from to_json output (patches come back only if they were included)."""
        version = data.get("schema_version", JSON_SCHEMA_VERSION)
        if version > JSON_SCHEMA_VERSION:
            raise ValueError(f"report JSON schema {version} is newer than {JSON_SCHEMA_VERSION}")
        entries = tuple(
            Entry(commit=_commit_from_json(item["commit"]),
                  analysis=None if item.get("analysis") is None else Analysis.from_dict(item["analysis"]))
            for item in data.get("entries") or ()
        )
        return cls(
            repo=data["repo"],
            date=datetime.date.fromisoformat(data["date"]),
            language=data["language"],
            entries=entries,
            timezone=data.get("timezone", "UTC"),
            analyzer=data.get("analyzer", HEURISTIC_MODEL),
            status=data.get("status", "ok"),
            error=data.get("error"),
            error_kind=data.get("error_kind"),
        )


def build_report(repo: str, date: datetime.date, language: str,
                 commits: Iterable[tuple[CommitRecord, Analysis | None]], **fields: Any) -> DailyReport:
    """A report of commits with their analyses (None: shown without one); fields as DailyReport takes."""
    return DailyReport(repo=repo, date=date, language=language,
                       entries=tuple(Entry(commit, analysis) for commit, analysis in commits), **fields)


def _commit_json(commit: CommitRecord, include_patches: bool) -> dict[str, Any]:
    data = commit.to_dict()
    data["committed_at"] = _utc(commit.committed_at).isoformat()
    files = []
    for change in commit.files:
        item: dict[str, Any] = {"filename": change.filename, "status": change.status,
                                "additions": change.additions, "deletions": change.deletions,
                                "patch_chars": None if change.patch is None else len(change.patch)}
        if include_patches:
            item["patch"] = change.patch
        files.append(item)
    data["files"] = files
    return data


def _commit_from_json(data: dict[str, Any]) -> CommitRecord:
    # Drop the derived patch_chars: FileChange only takes its own fields.
    files = [{k: v for k, v in f.items() if k in _FILE_FIELDS} for f in data.get("files") or ()]
    return CommitRecord.from_dict({**data, "files": files})
