"""Cosmetic changes: formatting that leaves the code the same, and spelling fixes in prose.

Both answer "is this commit only a typo, lint or formatting fix?", which makes a commit low.
Each needs every file's patch: a file without one (binary, too large), an added or removed file
makes the answer False.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from ...sources.commit import FileChange
from .diff import ADDED, REMOVED, Hunk
from .roles import DOCS

_WHITESPACE = re.compile(r"\s+")
# A formatter's trailing comma before a closing bracket (black, prettier) is formatting too.
_TRAILING_COMMA = re.compile(r",([)\]}])")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_COMMENT_START = re.compile(r"^\s*(?:#|//|/\*|\*|--|;|<!--|%|rem\b)", re.IGNORECASE)
_COMMENT_MARK = re.compile(r"#|//|/\*|<!--|--\s")
_CODE_CHARS = re.compile(r"[=(){};]|->|=>|::")
_MAX_WORD_EDITS = 3
_MAX_EDIT_CHARS = 80


def _code_shape(lines: Sequence[str]) -> str:
    text = _WHITESPACE.sub("", "".join(lines)).replace("'", '"')
    return _TRAILING_COMMA.sub(r"\1", text)


def _changeable(change: FileChange, hunks: list[Hunk]) -> bool:
    return bool(hunks) and change.status not in ("added", "removed")


def formatting_only(files: Sequence[tuple[FileChange, list[Hunk]]]) -> bool:
    """Whether only whitespace, line breaks, quote style or trailing commas changed (in every file)."""
    changed = False
    for change, hunks in files:
        if not _changeable(change, hunks):
            return False
        removed = [text for hunk in hunks for kind, text in hunk.lines if kind == REMOVED]
        added = [text for hunk in hunks for kind, text in hunk.lines if kind == ADDED]
        if _code_shape(removed) != _code_shape(added):
            return False
        changed = changed or bool(removed or added)
    return changed


def _blocks(hunk: Hunk) -> list[tuple[list[str], list[str]]]:
    """The runs of removed then added lines between context lines."""
    blocks: list[tuple[list[str], list[str]]] = []
    removed: list[str] = []
    added: list[str] = []
    for kind, text in hunk.lines:
        if kind == REMOVED:
            if added:
                blocks.append((removed, added))
                removed, added = [], []
            removed.append(text)
        elif kind == ADDED:
            added.append(text)
        elif removed or added:
            blocks.append((removed, added))
            removed, added = [], []
    if removed or added:
        blocks.append((removed, added))
    return blocks


def _in_prose(line: str, start: int, end: int) -> bool:
    """Whether characters start..end of a code line are in a comment, a string or a prose line."""
    if _COMMENT_START.match(line):
        return True
    comment = _COMMENT_MARK.search(line)
    if comment and comment.start() <= start:
        return True
    before = line[:start]
    for quote in ('"', "'", "`"):
        if before.count(quote) % 2 == 1 and quote not in line[start:end]:
            return True
    # A docstring or block-comment line has words and none of code's punctuation.
    return not _CODE_CHARS.search(line) and len(re.findall(r"[^\W\d_]{2,}", line)) >= 3


def _differing(old: str, new: str) -> tuple[int, int, int]:
    """Where two lines differ: (start, end in old, end in new), widened to whole words."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    suffix = 0
    while suffix < limit - start and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    while start > 0 and old[start - 1].isalnum():
        start -= 1
    while suffix > 0 and old[len(old) - suffix].isalnum():
        suffix -= 1
    return start, len(old) - suffix, len(new) - suffix


def _small_word_edit(old: str, new: str) -> bool:
    """Whether two lines differ by a few similar words (or one short word added or dropped)."""
    start, old_end, new_end = _differing(old, new)
    if old_end - start > _MAX_EDIT_CHARS or new_end - start > _MAX_EDIT_CHARS:
        return False  # a typo fix changes a few words; this also keeps difflib's cost small
    old_tokens, new_tokens = _TOKEN.findall(old[start:old_end]), _TOKEN.findall(new[start:new_end])
    edits = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old_tokens, new_tokens, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        before, after = old_tokens[i1:i2], new_tokens[j1:j2]
        if tag == "replace":
            if len(before) != len(after):
                return False
            for a, b in zip(before, after, strict=True):
                if not (a.isalpha() and b.isalpha()) and not (len(a) == 1 and len(b) == 1):
                    return False
                if a.isalpha() and difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() < 0.6:
                    return False
            edits += len(before)
        else:
            tokens = before or after
            if len(tokens) > 1 or (tokens[0].isalnum() and len(tokens[0]) > 4):
                return False
            edits += 1
    return 0 < edits <= _MAX_WORD_EDITS


def spelling_only(files: Sequence[tuple[FileChange, list[Hunk], str]]) -> bool:
    """Whether every changed line is a small word edit in docs, comments or strings; files: (change, hunks, role)."""
    changed = False
    for change, hunks, role in files:
        if not _changeable(change, hunks):
            return False
        for hunk in hunks:
            for removed, added in _blocks(hunk):
                if len(removed) != len(added):
                    return False
                for old, new in zip(removed, added, strict=True):
                    if old.strip() == new.strip():
                        continue
                    if not _small_word_edit(old, new):
                        return False
                    if role != DOCS:
                        start, old_end, new_end = _differing(old, new)
                        if not (_in_prose(old, start, old_end) and _in_prose(new, start, new_end)):
                            return False
                    changed = True
    return changed
