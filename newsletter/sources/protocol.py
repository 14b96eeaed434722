"""The CommitSource protocol: the four questions the daily run asks about a repository.

    info = source.resolve(repo)                                      # default branch and its head
    shas = source.new_commit_shas(repo, info.head_sha, watermark)    # since the last report
    shas = source.day_commit_shas(repo, info.default_branch, start, end)
    record = source.commit(repo, sha)                                # one CommitRecord
    merged = source.merged_commits(repo, first, second, day_start)  # for a new merge commit only

Shas come back oldest first. `requests` counts the HTTP requests a source made, so callers and
benchmarks can check the budget: two fixed requests per repository, one list page per 100
commits, one detail request per new commit and one comparison per new merge commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .commit import CommitRecord, MergedCommits


@dataclass(frozen=True)
class RepoInfo:
    """A repository's canonical name, default branch, that branch's head (None when empty), and whether
    it is private (GitHub's `private`; a local repository unless PUBLIC_LOCAL_REPOSITORIES)."""

    full_name: str
    default_branch: str
    head_sha: str | None
    private: bool = False


class CommitSource(Protocol):
    """A place commits come from (GitHub, a local git repository)."""

    @property
    def requests(self) -> int:
        """HTTP requests made so far (0 for sources that make none)."""
        ...

    def resolve(self, repo: str) -> RepoInfo:
        """The repository's default branch and its head."""
        ...

    def new_commit_shas(self, repo: str, head_sha: str | None, watermark_sha: str | None) -> list[str] | None:
        """Shas reachable from head but not from the watermark, oldest first; None if the watermark is unknown."""
        ...

    def day_commit_shas(self, repo: str, branch: str, start: datetime, end: datetime) -> list[str]:
        """Shas on branch whose committer date is in [start, end), oldest first."""
        ...

    def commit(self, repo: str, sha: str) -> CommitRecord:
        """One commit with its files and patches."""
        ...

    def merged_commits(self, repo: str, first_parent: str, second_parent: str, before: datetime) -> MergedCommits:
        """What a merge brings: the commits reachable from second_parent and not from first_parent, and how
        many of them have a committer date before `before` (the report day's start). One request at most."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_window(start: datetime, end: datetime) -> None:
    """Raise ValueError unless [start, end) is a non-empty window of aware datetimes."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    if end <= start:
        raise ValueError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
