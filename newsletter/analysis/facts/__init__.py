"""Commit facts: what a commit's patch says, computed once per commit, with no database or network.

`commit_facts(record)` reads every file's patch once into hunks and hands them to one module per
concept: roles (what each file is), symbols (definitions added, removed, renamed, re-signed),
api (public names, options, keys, metrics and routes), dependencies (manifest changes and the
project's own version), security (protection added or removed in code), history (reverts and a
patch id) and cosmetic (formatting-only and spelling-only changes). Odd input gives fewer facts,
never an exception.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from ...sources.commit import CommitRecord, FileChange
from .api import ApiFile, api_signals
from .cosmetic import formatting_only, spelling_only
from .dependencies import dependency_changes
from .diff import Hunk, looks_truncated, parse_patch
from .history import patch_id, patch_id_of, reverted
from .record import (
    FACTS_VERSION,
    MAX_API,
    MAX_DEPENDENCIES,
    MAX_SECURITY,
    MAX_SYMBOLS,
    ApiSignal,
    CommitFacts,
    DependencyChange,
    RoleCount,
    SecuritySignal,
    SymbolChange,
)
from .roles import (
    DOCS,
    GENERATED,
    ROLES,
    SOURCE,
    TEST,
    VENDORED,
    is_public_path,
    is_sample_path,
    language_of,
    role_of,
)
from .security import file_signals, moved_lines
from .symbols import file_symbols

__all__ = [
    "FACTS_VERSION", "ApiSignal", "CommitFacts", "DependencyChange", "RoleCount", "SecuritySignal", "SymbolChange",
    "commit_facts", "facts_of", "is_public_path", "language_of", "patch_id", "reverted", "role_of",
]

_LOG = logging.getLogger(__name__)
# Patches past this size are not read at all (GitHub caps a file's patch well below it).
MAX_PATCH_CHARS = 2_000_000
_SYMBOL_ROLES = {SOURCE, TEST}
_CHANGE_RANK = {"removed": 0, "renamed": 1, "signature": 2, "added": 3, "modified": 4}
_T = TypeVar("_T")


def _guarded(default: _T, what: str, filename: str, compute: Callable[[], _T]) -> _T:
    """compute(), or default when it fails: one odd file must not cost the commit its facts."""
    try:
        return compute()
    except Exception:
        _LOG.warning("facts: %s failed for %s", what, filename, exc_info=True)
        return default


def _capped(items: list[_T], limit: int) -> tuple[tuple[_T, ...], int]:
    return tuple(items[:limit]), max(len(items) - limit, 0)


def _counted(change: FileChange, hunks: list[Hunk]) -> tuple[int, int]:
    """A file's added and removed line counts: the source's, or the patch's when the source gave none."""
    additions, deletions = max(change.additions, 0), max(change.deletions, 0)
    if additions + deletions == 0 and hunks:
        additions = sum(1 for hunk in hunks for kind, _text in hunk.lines if kind == "+")
        deletions = sum(1 for hunk in hunks for kind, _text in hunk.lines if kind == "-")
    return additions, deletions


def commit_facts(record: CommitRecord) -> CommitFacts:
    """The facts of one commit, read from its files' patches."""
    parsed: list[tuple[FileChange, list[Hunk], str, str | None]] = []
    counts: dict[str, list[int]] = {}
    languages: dict[str, int] = {}
    without_patch = truncated = 0
    additions = deletions = 0
    for change in record.files:
        patch = change.patch if change.patch and len(change.patch) <= MAX_PATCH_CHARS else None
        hunks: list[Hunk] = _guarded([], "patch", change.filename, partial(parse_patch, patch))
        role = _guarded("other", "role", change.filename, partial(role_of, change.filename, hunks))
        language = language_of(change.filename)
        added, removed = _counted(change, hunks)
        additions, deletions = additions + added, deletions + removed
        count = counts.setdefault(role, [0, 0, 0])
        count[0], count[1], count[2] = count[0] + 1, count[1] + added, count[2] + removed
        if language:
            languages[language] = languages.get(language, 0) + 1
        if not hunks:
            # Binary, too large or unreadable; a pure rename has nothing to read and is not counted.
            without_patch += 0 if change.status == "renamed" and added + removed == 0 else 1
        elif looks_truncated(hunks, change.additions, change.deletions):
            truncated += 1
        parsed.append((change, hunks, role, language))
    if record.additions + record.deletions:
        additions, deletions = max(record.additions, 0), max(record.deletions, 0)

    symbols: list[SymbolChange] = []
    security: list[SecuritySignal] = []
    commit_removed, commit_added = moved_lines([hunks for _c, hunks, _role, _lang in parsed])
    for change, hunks, role, language in parsed:
        if not hunks:
            continue
        if role in _SYMBOL_ROLES and language:
            public = role == SOURCE and is_public_path(change.filename)
            symbols.extend(_guarded([], "symbols", change.filename,
                                    partial(file_symbols, change.filename, language, hunks, public_path=public)))
        security.extend(_guarded([], "security", change.filename, partial(
            file_signals, change.filename, role, hunks, status=change.status, commit_removed=commit_removed,
            commit_added=commit_added)))
    # Public removals and renames first: the cap keeps what matters to users of the project.
    ranked = sorted(enumerate(symbols), key=lambda item: (not item[1].public, not item[1].breaking,
                                                          _CHANGE_RANK.get(item[1].change, 9), item[0]))
    symbols = [symbol for _index, symbol in ranked]
    api: list[ApiSignal] = _guarded([], "api", record.sha, lambda: api_signals(
        symbols, [ApiFile(c.filename, role, language, hunks) for c, hunks, role, language in parsed if hunks]))
    manifests = [(c.filename, hunks) for c, hunks, role, _lang in parsed
                 if hunks and role not in (TEST, DOCS, VENDORED, GENERATED) and not is_sample_path(c.filename)]
    empty: tuple[list[DependencyChange], str | None] = ([], None)
    dependencies, release = _guarded(empty, "dependencies", record.sha, partial(dependency_changes, manifests))
    security.sort(key=lambda signal: signal.direction != "weakens")

    symbol_items, symbols_cut = _capped(symbols, MAX_SYMBOLS)
    api_items, api_cut = _capped(api, MAX_API)
    dependency_items, dependencies_cut = _capped(dependencies, MAX_DEPENDENCIES)
    security_items, security_cut = _capped(security, MAX_SECURITY)
    unknown: tuple[str | None, str | None] = (None, None)
    reverted_sha, reverted_title = _guarded(unknown, "reverted", record.sha, partial(reverted, record.message))
    with_hunks = [(c, hunks) for c, hunks, _role, _lang in parsed]
    return CommitFacts(
        version=FACTS_VERSION,
        files=len(record.files),
        additions=additions,
        deletions=deletions,
        roles={role: RoleCount(*counts[role]) for role in ROLES if role in counts},
        languages=dict(sorted(languages.items())),
        files_without_patch=without_patch,
        truncated_files=truncated,
        whitespace_only=_guarded(False, "formatting", record.sha, lambda: formatting_only(with_hunks)),
        spelling_only=_guarded(False, "spelling", record.sha, lambda: spelling_only(
            [(c, hunks, role) for c, hunks, role, _lang in parsed])),
        release_version=release,
        reverted_sha=reverted_sha,
        reverted_title=reverted_title,
        patch_id=_guarded(None, "patch id", record.sha, partial(
            patch_id_of, [(c.filename, hunks) for c, hunks, _role, _lang in parsed])),
        symbols=symbol_items,
        symbols_cut=symbols_cut,
        api=api_items,
        api_cut=api_cut,
        dependencies=dependency_items,
        dependencies_cut=dependencies_cut,
        security=security_items,
        security_cut=security_cut,
    )


def facts_of(record: CommitRecord) -> CommitFacts:
    """The record's stored facts when they are of this FACTS_VERSION, else computed now."""
    stored = record.facts
    if stored and stored.get("version") == FACTS_VERSION:
        try:
            return CommitFacts.from_dict(stored)
        except (KeyError, TypeError, ValueError):
            _LOG.warning("stored facts of %s are unreadable; computing them again", record.sha[:12])
    return commit_facts(record)
