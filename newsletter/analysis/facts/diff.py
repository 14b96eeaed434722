"""Unified-diff patches read into hunks: the one parser every fact module shares.

A patch comes from outside (GitHub or a local git) and may be truncated, binary or odd; parsing
never raises. Lines keep their text without the leading marker; "\\ No newline at end of file"
markers are dropped.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from ...text import plain, storable

_HUNK_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@+ ?(.*)$")

CONTEXT, REMOVED, ADDED = " ", "-", "+"


@dataclass(frozen=True)
class Hunk:
    """One hunk: where it starts on each side, git's function context, and its tagged lines."""

    old_start: int
    new_start: int
    header: str  # the text after the second @@: the nearest enclosing definition line, as git saw it
    lines: tuple[tuple[str, str], ...]  # (CONTEXT | REMOVED | ADDED, text)
    old_count: int = 0  # as the header announces (a truncated patch has fewer lines)
    new_count: int = 0

    def side(self, tag: str) -> list[tuple[int, str, bool]]:
        """One side's lines as (index in the hunk, text, changed): context + removed, or context + added."""
        return [(i, text, kind == tag) for i, (kind, text) in enumerate(self.lines) if kind in (CONTEXT, tag)]

    @property
    def removed(self) -> list[str]:
        return [text for kind, text in self.lines if kind == REMOVED]

    @property
    def added(self) -> list[str]:
        return [text for kind, text in self.lines if kind == ADDED]


def parse_patch(patch: str | None) -> list[Hunk]:
    """The hunks of a unified-diff patch; [] for None, binary or unreadable text."""
    if not patch:
        return []
    hunks: list[Hunk] = []
    header: re.Match[str] | None = None
    lines: list[tuple[str, str]] = []

    def close() -> None:
        if header is not None or lines:
            if header is None:
                hunks.append(Hunk(1, 1, "", tuple(lines)))
            else:
                hunks.append(Hunk(
                    old_start=int(header.group(1)), new_start=int(header.group(3)), header=header.group(5),
                    lines=tuple(lines), old_count=int(header.group(2) or 1), new_count=int(header.group(4) or 1),
                ))

    for raw in patch.splitlines():
        if raw.startswith("@@"):
            match = _HUNK_HEADER.match(raw)
            if match:
                close()
                header, lines = match, []
                continue
        if raw.startswith("\\"):
            continue  # "\ No newline at end of file"
        if header is None and raw.startswith(("diff --git", "index ", "--- ", "+++ ", "Binary files", "new file",
                                               "deleted file", "similarity", "rename ", "old mode", "new mode")):
            continue
        tag = raw[:1]
        if tag in (ADDED, REMOVED):
            lines.append((tag, raw[1:]))
        elif tag == " " or raw == "":
            lines.append((CONTEXT, raw[1:]))
        # Anything else is not diff text (a truncation notice, junk): skipped.
    close()
    return [hunk for hunk in hunks if hunk.lines]


def changed_lines(hunks: list[Hunk]) -> tuple[list[str], list[str]]:
    """All removed and all added lines of the hunks."""
    removed: list[str] = []
    added: list[str] = []
    for hunk in hunks:
        for kind, text in hunk.lines:
            if kind == REMOVED:
                removed.append(text)
            elif kind == ADDED:
                added.append(text)
    return removed, added


def looks_truncated(hunks: list[Hunk], additions: int, deletions: int) -> bool:
    """Whether the patch holds fewer changed lines than the source counted (GitHub cuts large patches)."""
    removed, added = changed_lines(hunks)
    return len(added) < additions or len(removed) < deletions


class Lines:
    """Lines with a lower-case index, to find the few that hold a literal without a regex on every line."""

    # Python's regex engine tries each alternative at each position, so a pattern of many alternatives
    # costs about 0.4 ms per KB; `str.find` of a literal is a hundred times faster. Callers look up the
    # lines holding one of a pattern's literals, then run the pattern on those lines only.

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.lower = "\n".join(lines).lower()
        self._starts: list[int] = []
        position = 0
        for line in lines:
            self._starts.append(position)
            position += len(line) + 1

    def __bool__(self) -> bool:
        return bool(self.lines)

    def has(self, literals: Iterable[str]) -> bool:
        """Whether any literal (lower case) occurs anywhere in the lines."""
        return any(literal in self.lower for literal in literals)

    def indexes(self, literals: Iterable[str]) -> list[int]:
        """The indexes of the lines holding one of the literals (lower case), in order."""
        found: set[int] = set()
        text, starts = self.lower, self._starts
        for literal in literals:
            position = text.find(literal)
            while position != -1:
                index = bisect_right(starts, position) - 1
                found.add(index)
                if index + 1 >= len(starts):
                    break
                position = text.find(literal, starts[index + 1])
        return sorted(found)

    def having(self, literals: Iterable[str]) -> list[str]:
        """The lines holding one of the literals (lower case), in order."""
        return [self.lines[index] for index in self.indexes(literals)]


def clean(value: object, limit: int = 100) -> str:
    """Text taken from a patch as one storable line of at most limit characters."""
    return storable(plain(value, limit))
