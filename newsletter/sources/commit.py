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
        )
