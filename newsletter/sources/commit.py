"""Commit records: what a source (GitHub or a local git repository) yields for one commit."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FileChange:
    """One file touched by a commit."""

    filename: str
    status: str  # added, modified, removed, renamed, ...
    additions: int = 0
    deletions: int = 0
    patch: str | None = None  # None when GitHub gives none (binary, too large)


@dataclass(frozen=True)
class MergedCommits:
    """What a merge commit brings in: the commits reachable from its second parent and not from its first
    (`git rev-list --count first..second`), and how many of them were committed before the day of the
    report that lists the merge; earlier is None when the source could not list them all."""

    count: int
    earlier: int | None = None

    @classmethod
    def from_dict(cls, data: Any) -> MergedCommits | None:
        """The stored value, or None for a missing or malformed one (a record is never lost over it)."""
        if not isinstance(data, Mapping):
            return None
        count, earlier = data.get("count"), data.get("earlier")
        if not isinstance(count, int) or not _count(count):
            return None
        if not (earlier is None or (_count(earlier) and earlier <= count)):
            return None
        return cls(count, earlier)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class CommitRecord:
    """A commit as every source reports it; committed_at is timezone-aware (UTC)."""

    sha: str
    author_name: str
    author_login: str | None
    committed_at: datetime
    message: str
    html_url: str
    parents: tuple[str, ...] = ()
    additions: int = 0
    deletions: int = 0
    files: tuple[FileChange, ...] = field(default_factory=tuple)
    # The stored commit facts (analysis.facts.CommitFacts.to_dict()), computed once from the patch when
    # the commit is first collected; None until then. Read them with analysis.facts.facts_of.
    facts: Mapping[str, Any] | None = field(default=None, compare=False)
    # Changed lines of the repository's typical commit (the median of its recent non-merge commits),
    # when the caller knows it: the analysis judges a commit's size against it. Not stored.
    typical_lines: int | None = field(default=None, compare=False)
    # For a merge commit, what it brings in (asked of the source when the commit is first collected);
    # None for other commits, for merges collected before it was kept, and when asking failed.
    merged: MergedCommits | None = field(default=None, compare=False)

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    @property
    def title(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["committed_at"] = self.committed_at.isoformat()
        data["parents"] = list(self.parents)
        data.pop("typical_lines")
        # Only merges carry it: other records keep the shape they always had.
        merged = data.pop("merged")
        if merged is not None:
            data["merged"] = merged
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommitRecord:
        return cls(
            sha=data["sha"],
            author_name=data["author_name"],
            author_login=data.get("author_login"),
            committed_at=datetime.fromisoformat(data["committed_at"]),
            message=data["message"],
            html_url=data["html_url"],
            parents=tuple(data.get("parents") or ()),
            additions=int(data.get("additions") or 0),
            deletions=int(data.get("deletions") or 0),
            files=tuple(FileChange(**f) for f in data.get("files") or ()),
            facts=data.get("facts"),
            merged=MergedCommits.from_dict(data.get("merged")),
        )
