"""The facts of one commit as frozen dataclasses, and their small, plain JSON form.

`to_dict` writes keys in a fixed order and leaves out optional fields that are None, so the JSON
stays small and diffs of stored facts stay readable; `from_dict` reads that back (and tolerates
missing keys, so it can read facts written by an older FACTS_VERSION; compare `version` to know).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ...text import storable_json

# Bump when what the functions compute changes, so stored facts can be recomputed.
FACTS_VERSION = 2  # 2: C and C++ test files (test.c, test_*.c) have the role test

# Caps on the lists: facts go into prompts and rows, so they must stay small.
MAX_SYMBOLS = 40
MAX_API = 20
MAX_DEPENDENCIES = 30
MAX_SECURITY = 20


def _optional(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _compact(items: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in items if value is not None}


@dataclass(frozen=True)
class SymbolChange:
    """A definition (function, method, class, ...) that a commit added, removed, renamed or changed."""

    file: str
    language: str
    kind: str  # function, method, class, struct, interface, trait, enum, type
    name: str  # qualified: Class.method
    change: str  # added, removed, renamed, signature, modified
    public: bool
    breaking: bool = False  # callers of the old definition can break (removed, renamed, incompatible signature)
    old_name: str | None = None  # for renamed
    old_signature: str | None = None
    new_signature: str | None = None
    detail: str | None = None  # e.g. "timeout default 30 → 10; adds parameter retries"

    def to_dict(self) -> dict[str, Any]:
        return _compact([
            ("file", self.file), ("language", self.language), ("kind", self.kind), ("name", self.name),
            ("change", self.change), ("public", self.public), ("breaking", self.breaking),
            ("old_name", self.old_name), ("old_signature", self.old_signature),
            ("new_signature", self.new_signature), ("detail", self.detail),
        ])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymbolChange:
        return cls(
            file=str(data.get("file", "")), language=str(data.get("language", "")), kind=str(data.get("kind", "")),
            name=str(data.get("name", "")), change=str(data.get("change", "")), public=bool(data.get("public")),
            breaking=bool(data.get("breaking")), old_name=_optional(data, "old_name"),
            old_signature=_optional(data, "old_signature"), new_signature=_optional(data, "new_signature"),
            detail=_optional(data, "detail"),
        )


@dataclass(frozen=True)
class ApiSignal:
    """A change to what users of a project call or configure: names, options, keys, metrics, routes."""

    kind: str  # symbol_removed, symbol_renamed, signature_changed, default_changed, export_removed,
    # cli_option_removed/added, config_key_removed/added, env_var_removed/added, metric_removed/renamed/added,
    # route_removed/added
    name: str
    file: str
    breaking: bool
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _compact([("kind", self.kind), ("name", self.name), ("file", self.file),
                         ("breaking", self.breaking), ("detail", self.detail)])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiSignal:
        return cls(kind=str(data.get("kind", "")), name=str(data.get("name", "")), file=str(data.get("file", "")),
                   breaking=bool(data.get("breaking")), detail=_optional(data, "detail"))


@dataclass(frozen=True)
class DependencyChange:
    """One dependency added, removed or moved to another version in a manifest."""

    name: str
    ecosystem: str  # pypi, npm, cargo, go, maven, rubygems, composer
    file: str
    change: str  # added, removed, upgraded, downgraded, changed (a constraint that moved no version)
    old: str | None = None  # the version or constraint as written
    new: str | None = None
    major: bool = False  # the major version moved (for 0.x, the minor one)
    dev: bool = False  # a development, test, build or optional dependency
    indirect: bool = False  # go.mod `// indirect`

    def to_dict(self) -> dict[str, Any]:
        return _compact([
            ("name", self.name), ("ecosystem", self.ecosystem), ("file", self.file), ("change", self.change),
            ("old", self.old), ("new", self.new), ("major", self.major), ("dev", self.dev),
            ("indirect", self.indirect or None),
        ])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DependencyChange:
        return cls(
            name=str(data.get("name", "")), ecosystem=str(data.get("ecosystem", "")), file=str(data.get("file", "")),
            change=str(data.get("change", "")), old=_optional(data, "old"), new=_optional(data, "new"),
            major=bool(data.get("major")), dev=bool(data.get("dev")), indirect=bool(data.get("indirect")),
        )


@dataclass(frozen=True)
class SecuritySignal:
    """Protection added to or taken from the code, read from the changed lines themselves."""

    kind: str  # escaping, sql, input_limit, auth_check, constant_time, csrf, tls, weak_hash, random, key_size,
    # path_restriction, secret, deserialisation, shell
    direction: str  # hardens or weakens
    file: str
    role: str  # the file's role, so a caller can weigh a signal from a build script or config
    evidence: str  # the code line, trimmed; secrets masked

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "direction": self.direction, "file": self.file, "role": self.role,
                "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecuritySignal:
        return cls(kind=str(data.get("kind", "")), direction=str(data.get("direction", "")),
                   file=str(data.get("file", "")), role=str(data.get("role", "")),
                   evidence=str(data.get("evidence", "")))


@dataclass(frozen=True)
class RoleCount:
    """How many files of one role a commit touches, and their changed lines."""

    files: int = 0
    additions: int = 0
    deletions: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"files": self.files, "additions": self.additions, "deletions": self.deletions}


@dataclass(frozen=True)
class CommitFacts:
    """Everything facts read off one commit's patch, computed once."""

    version: int = FACTS_VERSION
    files: int = 0
    additions: int = 0
    deletions: int = 0
    roles: Mapping[str, RoleCount] = field(default_factory=dict)  # only the roles present, in ROLES order
    languages: Mapping[str, int] = field(default_factory=dict)  # files per programming language
    files_without_patch: int = 0  # binary or too large: nothing was read from them
    truncated_files: int = 0  # patches with fewer lines than the counts say
    whitespace_only: bool = False  # only whitespace, line breaks, quote style or trailing commas changed
    spelling_only: bool = False  # only small word edits in docs, comments or strings (typo fixes)
    release_version: str | None = None  # the project's own version, as a manifest now sets it
    reverted_sha: str | None = None
    reverted_title: str | None = None
    patch_id: str | None = None
    symbols: tuple[SymbolChange, ...] = ()
    symbols_cut: int = 0  # how many more there were beyond the cap
    api: tuple[ApiSignal, ...] = ()
    api_cut: int = 0
    dependencies: tuple[DependencyChange, ...] = ()
    dependencies_cut: int = 0
    security: tuple[SecuritySignal, ...] = ()
    security_cut: int = 0

    @property
    def empty(self) -> bool:
        """No file changed (an empty or metadata-only commit)."""
        return self.files == 0

    @property
    def only_roles(self) -> frozenset[str]:
        """The roles of all the files touched, e.g. {"test"} or {"docs"}; empty for an empty commit."""
        return frozenset(self.roles)

    @property
    def breaking_api(self) -> tuple[ApiSignal, ...]:
        """The API signals that can break users."""
        return tuple(signal for signal in self.api if signal.breaking)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "empty": self.empty,
            "files": self.files,
            "additions": self.additions,
            "deletions": self.deletions,
            "roles": {role: count.to_dict() for role, count in self.roles.items()},
            "only_roles": sorted(self.only_roles),
            "languages": dict(self.languages),
            "files_without_patch": self.files_without_patch,
            "truncated_files": self.truncated_files,
            "whitespace_only": self.whitespace_only,
            "spelling_only": self.spelling_only,
            "release_version": self.release_version,
            "reverted_sha": self.reverted_sha,
            "reverted_title": self.reverted_title,
            "patch_id": self.patch_id,
            "symbols": [symbol.to_dict() for symbol in self.symbols],
            "symbols_cut": self.symbols_cut,
            "api": [signal.to_dict() for signal in self.api],
            "api_cut": self.api_cut,
            "dependencies": [change.to_dict() for change in self.dependencies],
            "dependencies_cut": self.dependencies_cut,
            "security": [signal.to_dict() for signal in self.security],
            "security_cut": self.security_cut,
        }
        return cast(dict[str, Any], storable_json(data))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommitFacts:
        roles = data.get("roles") or {}
        return cls(
            version=int(data.get("version") or 0),
            files=int(data.get("files") or 0),
            additions=int(data.get("additions") or 0),
            deletions=int(data.get("deletions") or 0),
            roles={str(role): RoleCount(int(c.get("files") or 0), int(c.get("additions") or 0),
                                        int(c.get("deletions") or 0)) for role, c in roles.items()},
            languages={str(k): int(v) for k, v in (data.get("languages") or {}).items()},
            files_without_patch=int(data.get("files_without_patch") or 0),
            truncated_files=int(data.get("truncated_files") or 0),
            whitespace_only=bool(data.get("whitespace_only")),
            spelling_only=bool(data.get("spelling_only")),
            release_version=_optional(data, "release_version"),
            reverted_sha=_optional(data, "reverted_sha"),
            reverted_title=_optional(data, "reverted_title"),
            patch_id=_optional(data, "patch_id"),
            symbols=tuple(SymbolChange.from_dict(s) for s in data.get("symbols") or ()),
            symbols_cut=int(data.get("symbols_cut") or 0),
            api=tuple(ApiSignal.from_dict(s) for s in data.get("api") or ()),
            api_cut=int(data.get("api_cut") or 0),
            dependencies=tuple(DependencyChange.from_dict(d) for d in data.get("dependencies") or ()),
            dependencies_cut=int(data.get("dependencies_cut") or 0),
            security=tuple(SecuritySignal.from_dict(s) for s in data.get("security") or ()),
            security_cut=int(data.get("security_cut") or 0),
        )
