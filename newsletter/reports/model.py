"""The daily report model: one repository's day in one language, as every output reads it.

A `DailyReport` is built once, either from the commits and analyses of a run (`DailyReport(...)`)
or from the JSON stored with it (`DailyReport.from_json`), and the Markdown report, the email, the
web page and the Atom feed all render this one object. Derived facts are computed here once: the
display order (high, medium, low, then merges; newest first within each), each commit's anchor
and local time, and the counts, so no output can disagree with another.
"""
from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..analysis.result import HEURISTIC_MODEL, Analysis, Importance
from ..i18n import LANGUAGES
from ..sources.commit import CommitRecord, FileChange
from ..text import commit_title, hex_digits, plain, safe_url
from .wording import stats_line

JSON_SCHEMA_VERSION = 1
STATUSES = ("ok", "failed")
GROUPS = ("high", "medium", "low", "merge")  # display order; "merge" holds every unanalyzed commit
SHORT_SHA = 7
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileChange))


def _utc(moment: datetime.datetime) -> datetime.datetime:
    # CommitRecord promises aware datetimes; a naive one is taken as UTC rather than local time.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Entry:
    """One commit of the day and its analysis (None for merge commits: shown, not analyzed).

    anchor and local_time are filled in by the DailyReport that holds the entry.
    """

    commit: CommitRecord
    analysis: Analysis | None
    anchor: str = ""
    local_time: str = ""

    @property
    def group(self) -> str:
        """high, medium or low from the analysis; merge for a commit shown without one."""
        return "merge" if self.analysis is None else Importance(self.analysis.importance).value

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
    def committed_at(self) -> datetime.datetime:
        """The commit time, aware, in UTC."""
        return _utc(self.commit.committed_at)


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
    error: str | None = None
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
        counts = {"total": len(entries), "high": 0, "medium": 0, "low": 0, "merge": 0}
        for entry in self.entries:
            counts[entry.group] += 1
        self._counts.update(counts)

    # What the outputs read ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Commits in total and per group ("merge" counts the commits shown without analysis)."""
        return dict(self._counts)

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
            "counts": self.counts(),
            "stats_line": stats_line(self.counts(), self.language),
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
