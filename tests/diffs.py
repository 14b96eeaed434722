"""Unified diffs for the facts tests, shaped as git writes them, and commit records that carry them."""
from __future__ import annotations

import difflib
import re
import textwrap
from datetime import UTC, datetime

from newsletter.sources.commit import CommitRecord, FileChange

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# git's default funcname: the nearest line above the hunk that starts with a letter, `_` or `$`.
_FUNCNAME = re.compile(r"^[A-Za-z_$]")
_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@$")


def unified(old: str, new: str, context: int = 3) -> str:
    """The patch git would show for old → new (dedented), function context in the hunk headers included."""
    old_lines = textwrap.dedent(old).strip("\n").splitlines() if old.strip() else []
    new_lines = textwrap.dedent(new).strip("\n").splitlines() if new.strip() else []
    out = []
    for line in list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=context))[2:]:
        header = _HEADER.match(line)
        if header:
            start = int(header.group(1)) - 1  # the hunk's first old line, 0-based
            above = next((text for text in reversed(old_lines[:max(start, 0)]) if _FUNCNAME.match(text)), "")
            line = f"{line} {above[:80]}".rstrip()
        out.append(line)
    return "\n".join(out) + "\n"


def change(filename: str, old: str, new: str, *, status: str | None = None) -> FileChange:
    """A FileChange whose patch is old → new, with counts as GitHub reports them."""
    patch = unified(old, new)
    status = status or ("added" if not old.strip() else "removed" if not new.strip() else "modified")
    lines = patch.splitlines()
    additions = sum(1 for line in lines if line.startswith("+"))
    deletions = sum(1 for line in lines if line.startswith("-"))
    return FileChange(filename, status, additions, deletions, patch)


def commit(*files: FileChange, message: str = "Change things", sha: str = "c0ffee" * 6 + "c0fe") -> CommitRecord:
    """A commit of the given files."""
    return CommitRecord(sha=sha, author_name="Alice", author_login="alice", committed_at=WHEN, message=message,
                        html_url=f"https://github.com/o/r/commit/{sha}", parents=("p1",),
                        additions=sum(f.additions for f in files), deletions=sum(f.deletions for f in files),
                        files=tuple(files))
