"""A commit's place in history: what it reverts, and an id of its change that survives a rebase."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ...sources.commit import CommitRecord
from .diff import ADDED, REMOVED, Hunk, clean, parse_patch

_REVERTS_SHA = re.compile(r"\bThis reverts commit ([0-9a-fA-F]{7,40})\b")
# git writes `Revert "title"`; reverting a revert nests the quotes, so the title runs to the last quote.
_REVERT_TITLE = re.compile(r'^\s*Revert\s+"(.+)"\s*$')
_WHITESPACE = re.compile(r"\s+")


def reverted(message: str) -> tuple[str | None, str | None]:
    """The sha and the title of the commit a revert commit's message names; (None, None) otherwise."""
    text = message or ""
    found = _REVERTS_SHA.search(text)
    sha = found.group(1).lower() if found else None
    first = text.strip().splitlines()[0] if text.strip() else ""
    title_match = _REVERT_TITLE.match(first)
    title = clean(title_match.group(1), 200) if title_match else None
    return sha, title or None


def patch_id(record: CommitRecord) -> str | None:
    """A stable hash of the commit's change, like `git patch-id --stable`; None when nothing changed."""
    # Line numbers, whitespace and file order do not count, so the same change rebased or cherry-picked
    # gets the same id. Only the changed lines count (not the context), so a rebase that changed the
    # lines around the change keeps the id too. Files without a patch (binary) add nothing.
    return patch_id_of([(change.filename, parse_patch(change.patch)) for change in record.files])


def patch_id_of(files: Sequence[tuple[str, list[Hunk]]]) -> str | None:
    """patch_id for files already read into hunks."""
    per_file: list[str] = []
    for filename, hunks in files:
        digest = hashlib.sha256()
        digest.update(filename.encode("utf-8", "replace"))
        lines = 0
        for hunk in hunks:
            for kind, text in hunk.lines:
                if kind in (ADDED, REMOVED):
                    digest.update(kind.encode() + _WHITESPACE.sub("", text).encode("utf-8", "replace") + b"\n")
                    lines += 1
        if lines:
            per_file.append(digest.hexdigest())
    if not per_file:
        return None
    return hashlib.sha256("".join(sorted(per_file)).encode()).hexdigest()[:40]
