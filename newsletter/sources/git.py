"""Commits from a local git repository through the git CLI (self-hosted git, the offline demo)."""
from __future__ import annotations

import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, overload

from ..errors import RepositoryNotFound, SourceError
from .commit import CommitRecord, FileChange, MergedCommits
from .protocol import RepoInfo, check_window

log = logging.getLogger(__name__)

# Drop patches above this size, as GitHub does for large diffs; nobody reads them in a mail.
MAX_PATCH_BYTES = 1_000_000


class GitSource:
    """Commits from a local git repository through the git CLI (self-hosted git, offline demo)."""

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None, web_url: str | None = None,
                 git: str = "git"):
        # web_url: a template such as "https://git.example.com/team/app/commit/{sha}";
        # without it html_url is "" because a local path has no page to link to.
        self.path = str(path)
        self.name = name or Path(path).resolve().name.removesuffix(".git")
        self.web_url = web_url
        self.git = git

    @property
    def requests(self) -> int:
        """No HTTP at all: always 0 (the CommitSource protocol asks every source)."""
        return 0

    def resolve(self, repo: str | None = None) -> RepoInfo:
        """Read the checked-out (or bare HEAD) branch and its head; the repo argument is ignored."""
        if not Path(self.path).is_dir() or self._run("rev-parse", "--git-dir", check=False) is None:
            raise RepositoryNotFound(f"{self.path} is not a git repository")
        branch = (self._run("symbolic-ref", "--quiet", "--short", "HEAD", check=False) or b"HEAD").decode().strip()
        return RepoInfo(self.name, branch, self._commit_sha(branch))

    def new_commit_shas(self, repo: str | None, head_sha: str | None, watermark_sha: str | None) -> list[str] | None:
        """Shas reachable from head but not from the watermark, oldest first; None if the watermark is unknown."""
        watermark = self._commit_sha(watermark_sha) if watermark_sha else None
        if watermark is None:
            return None
        if head_sha is None:
            return []
        head = self._commit_sha(head_sha)
        if head is None:
            raise SourceError(f"Commit {head_sha} was not found in git repository {self.path}")
        out = self._run("rev-list", "--reverse", head, f"^{watermark}", "--")
        return out.decode().split()

    def day_commit_shas(self, repo: str | None, branch: str, start: datetime, end: datetime) -> list[str]:
        """Shas on branch whose committer date is in [start, end), oldest first."""
        check_window(start, end)
        head = self._commit_sha(branch)
        if head is None:
            if not self._run("rev-list", "-n", "1", "--all"):
                return []  # no commits at all yet
            raise SourceError(f"Branch {branch!r} not found in git repository {self.path}")
        # No --since: git stops walking at the first commit older than it, so one late-pushed
        # commit with an old date would hide the day's commits below it. --until only filters.
        out = self._run("log", "--no-color", "--format=%H %ct", f"--until={_git_time(end)}", head, "--")
        lo, hi = start.timestamp(), end.timestamp()
        found = []
        for line in reversed(out.decode().splitlines()):
            sha, stamp = line.split()
            if lo <= int(stamp) < hi:
                found.append((int(stamp), sha))
        found.sort(key=lambda pair: pair[0])
        return [sha for _, sha in found]

    def commit(self, repo: str | None, sha: str) -> CommitRecord:
        """Read one commit, diffed against its first parent like GitHub does."""
        full = self._commit_sha(sha)
        if full is None:
            raise SourceError(f"Commit {sha} was not found in git repository {self.path}")
        meta = self._run("log", "-1", "--no-color", "--no-show-signature",
                         "--format=%H%x00%P%x00%an%x00%cI%x00%B", full, "--")
        sha_, parents, author, date, message = meta.decode("utf-8", "replace").split("\0", 4)
        parent_list = tuple(parents.split())
        files = self._files(full, parent_list[0] if parent_list else None)
        return CommitRecord(
            sha=sha_,
            author_name=author,
            author_login=None,
            committed_at=datetime.fromisoformat(date).astimezone(UTC),
            message=message.rstrip("\n"),
            html_url=self.web_url.format(sha=sha_) if self.web_url else "",
            parents=parent_list,
            additions=sum(f.additions for f in files),
            deletions=sum(f.deletions for f in files),
            files=files,
        )

    def merged_commits(self, repo: str | None, first_parent: str, second_parent: str,
                       before: datetime) -> MergedCommits:
        """`git rev-list first..second`, counted, and how many of those have a committer date before `before`."""
        if before.tzinfo is None:
            raise ValueError("before must be a timezone-aware datetime")
        first, second = self._commit_sha(first_parent), self._commit_sha(second_parent)
        if first is None or second is None:
            missing = first_parent if first is None else second_parent
            raise SourceError(f"Commit {missing} was not found in git repository {self.path}")
        # --timestamp: "<committer time> <sha>" per commit, so one walk gives both numbers.
        out = self._run("rev-list", "--timestamp", second, f"^{first}", "--")
        stamps = [int(line.split()[0]) for line in out.decode().splitlines() if line.strip()]
        limit = before.timestamp()
        return MergedCommits(count=len(stamps), earlier=sum(stamp < limit for stamp in stamps))

    def close(self) -> None:
        """Nothing to release: every git command is its own process."""

    def _files(self, sha: str, parent: str | None) -> tuple[FileChange, ...]:
        # Plumbing (diff-tree) rather than git show: its output ignores user diff and
        # color settings. -z keeps odd file names intact; the three listings come in
        # the same order, one entry per file.
        revs = [parent, sha] if parent else ["--root", sha]
        base = ["diff-tree", "-r", "-M", "--no-commit-id"]
        statuses = self._run(*base, "-z", "--name-status", *revs).split(b"\0")
        numstat = self._run(*base, "-z", "--numstat", *revs).split(b"\0")
        patches = _split_patch(self._run(*base, "--patch", "--no-color", *revs))

        names: list[tuple[str, str]] = []
        fields = iter(statuses)
        for code in fields:
            if not code:
                continue
            letter = code[:1].decode()
            if letter in "RC":
                next(fields)  # the old name
            names.append((_STATUS.get(letter, "modified"), next(fields).decode("utf-8", "replace")))

        counts: list[tuple[int, int]] = []
        fields = iter(numstat)
        for entry in fields:
            if not entry:
                continue
            added, deleted, path = entry.split(b"\t", 2)
            if not path:  # a rename: old and new names follow as separate fields
                next(fields)
                next(fields)
            # Binary files show "-" instead of line counts.
            counts.append((int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0))

        if len(names) != len(counts):
            raise SourceError(f"Could not parse the file list of commit {sha} in {self.path}")
        if len(patches) != len(names):
            log.warning("Patch sections of %s do not match its %d files; dropping patches", sha, len(names))
            patches = [None] * len(names)
        return tuple(
            FileChange(filename=name, status=status, additions=added, deletions=deleted, patch=patch)
            for (status, name), (added, deleted), patch in zip(names, counts, patches, strict=True)
        )

    def _commit_sha(self, rev: str) -> str | None:
        """The full sha rev names, or None; callers pass only this sha on to other git commands."""
        if rev.startswith("-"):
            return None  # git would read it as an option
        out = self._run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return out.decode().strip() if out else None

    @overload
    def _run(self, *args: str, check: Literal[True] = ...) -> bytes: ...
    @overload
    def _run(self, *args: str, check: bool) -> bytes | None: ...

    def _run(self, *args: str, check: bool = True) -> bytes | None:
        """Run git in the repository; on failure raise SourceError, or return None when check is False."""
        try:
            done = subprocess.run(
                [self.git, "-C", self.path, *args],
                capture_output=True,
                env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"},
                check=False,
            )
        except OSError as exc:
            raise SourceError(f"Cannot run {self.git!r}: {exc}") from exc
        if done.returncode != 0:
            if not check:
                return None
            error = done.stderr.decode("utf-8", "replace").strip()
            raise SourceError(f"git {args[0]} failed in {self.path}: {error}")
        return done.stdout


_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


def _split_patch(text: bytes) -> list[str | None]:
    """Split diff-tree --patch output into per-file hunks, shaped like GitHub's "patch" field."""
    sections: list[list[str]] = []
    for line in text.decode("utf-8", "replace").split("\n"):
        if line.startswith("diff --git "):
            sections.append([])
        elif sections:
            sections[-1].append(line)
    patches: list[str | None] = []
    for lines in sections:
        # GitHub's patch starts at the first hunk; binary files and pure renames have none.
        start = next((i for i, line in enumerate(lines) if line.startswith("@@")), None)
        patch = "\n".join(lines[start:]).rstrip("\n") if start is not None else None
        patches.append(patch if patch is None or len(patch) <= MAX_PATCH_BYTES else None)
    return patches


def _git_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
