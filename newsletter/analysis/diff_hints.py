"""What the importance rules read from a patch beyond the commit facts: comment-only edits,
toolchain floors, memory-safety and randomness fixes, and API breaks the symbol reader cannot see.

Each reader looks at changed lines only and says what it found with the file and the line as
evidence; none of them looks at the commit message, directory names or the repository.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..sources.commit import CommitRecord
from .facts import ApiSignal, CommitFacts, language_of, role_of
from .facts.diff import ADDED, REMOVED, Hunk, clean, parse_patch

_SOURCE, _MANIFEST, _BUILD = "source", "manifest", "build"
_MAX_PATCH = 500_000

# A line that is only a comment, per comment syntax (C family, shell/Python/Ruby, SQL/Lua, Javadoc bodies).
_COMMENT_LINE = {
    "slash": re.compile(r"^\s*(?://|/\*|\*/?(?:\s|$)|\*\s|\*$)"),
    "hash": re.compile(r"^\s*#(?![!\[])"),
    "dash": re.compile(r"^\s*--"),
}
_COMMENT_STYLE = {
    "python": ("hash",), "ruby": ("hash",), "shell": ("hash",), "perl": ("hash",), "r": ("hash",),
    "lua": ("dash",), "sql": ("dash",), "haskell": ("dash",),
}
_DEFAULT_STYLE = ("slash",)

# Lines that set the language or toolchain a project needs, in manifests and build files.
_TOOLCHAIN = re.compile(
    r"""^\s*(?:requires-python|python_requires|rust-version|"node"|go|toolchain|cmake_minimum_required"""
    r"""|set\s*\(\s*CMAKE_CXX_STANDARD|set\s*\(\s*CMAKE_C_STANDARD|<java\.version>|<maven\.compiler\.(?:release|source|target)>"""
    r"""|sourceCompatibility|targetCompatibility|jvmTarget|FROM)\b""",
    re.IGNORECASE,
)
_CXX_FEATURE = re.compile(r"\bcxx_std_\d+|\bc_std_\d+")
_VERSION = re.compile(r"\d+(?:\.\d+)*")

_C_FAMILY = {"c", "cpp"}
_BOUND_CHECK = re.compile(r"^\s*(?:\}\s*else\s+)?if\s*\(.*(?:\bsizeof\s*\(|\b[A-Z_]*MAX\b|\boverflow)")
_UNCHECKED = re.compile(r"\bget_unchecked(?:_mut)?\b|\bunsafe\s*\{")
_WEAK_RANDOM = re.compile(r"""["']math/rand["']|^\s*import\s+random\b|\bMath\.random\(|\bnew\s+Random\(|\brand\(\)""")
_STRONG_RANDOM = re.compile(r"""["']crypto/rand["']|^\s*import\s+secrets\b|\bsecrets\.|getRandomValues|randomBytes"""
                            r"""|randomUUID|\bSecureRandom\b|\bOsRng\b|\bgetrandom\(""")
_PROTOTYPE_GUARD = re.compile(r"""Object\.create\(\s*null\s*\)|["']__proto__["']""")
_DEFAULT_EXPORT = re.compile(r"^\s*export\s+default\b|^\s*module\.exports\s*=")
_GO_IMPORT = re.compile(r'^\s*(?:import\s+)?(?:\w+\s+)?"([\w.\-/]+)"\s*$')
_THROWS = re.compile(r"\bthrows\s+([\w.]+(?:\s*,\s*[\w.]+)*)")
_REQUIRED_PARAM = re.compile(r"adds required parameter (\w+)")


@dataclass(frozen=True)
class Finding:
    """One thing a reader found: its kind, the name or file it concerns, and the line as evidence."""

    kind: str
    file: str
    name: str = ""
    evidence: str = ""
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class _File:
    name: str
    status: str
    role: str
    language: str | None
    hunks: list[Hunk]

    def lines(self, tag: str) -> Iterator[str]:
        for hunk in self.hunks:
            for kind, text in hunk.lines:
                if kind == tag:
                    yield text


def _files(commit: CommitRecord) -> list[_File]:
    files = []
    for change in commit.files:
        patch = change.patch if change.patch and len(change.patch) <= _MAX_PATCH else None
        hunks = parse_patch(patch)
        files.append(_File(change.filename, change.status, role_of(change.filename, hunks),
                           language_of(change.filename), hunks))
    return files


def _is_comment(line: str, language: str | None) -> bool:
    if not line.strip():
        return True
    return any(_COMMENT_LINE[style].match(line) for style in _COMMENT_STYLE.get(language or "", _DEFAULT_STYLE))


def comment_only_sources(commit: CommitRecord) -> tuple[str, ...]:
    """The source files of a commit whose changed lines are all comments (doc comments included);
    empty when any source file changes code, or has no readable patch."""
    found = []
    for file in _files(commit):
        if file.role != _SOURCE:
            continue
        changed = [*file.lines(ADDED), *file.lines(REMOVED)]
        if not file.hunks or not changed or not all(_is_comment(line, file.language) for line in changed):
            return ()
        found.append(file.name)
    return tuple(found)


def _version(line: str) -> str:
    found = _VERSION.findall(line.split("=", 1)[-1] if "=" in line else line)
    return found[-1] if found else ""


def toolchain_changes(commit: CommitRecord) -> list[Finding]:
    """Language or toolchain floors a manifest or build file moves: requires-python, rust-version,
    engines.node, the go directive, the C++ standard, the Java release, a container's base image."""
    found: list[Finding] = []
    for file in _files(commit):
        if file.role not in (_MANIFEST, _BUILD):
            continue
        removed = [line for line in file.lines(REMOVED) if _TOOLCHAIN.match(line) or _CXX_FEATURE.search(line)]
        added = [line for line in file.lines(ADDED) if _TOOLCHAIN.match(line) or _CXX_FEATURE.search(line)]
        for old, new in zip(removed, added, strict=False):
            if old.strip() != new.strip() and (_version(old) != _version(new)):
                what = (_TOOLCHAIN.match(new) or _CXX_FEATURE.search(new))
                name = what.group(0).strip(' "<>(').split("(")[-1].strip() if what else ""
                found.append(Finding("toolchain", file.name, name=clean(name, 40), evidence=clean(new.strip(), 100),
                                     old=clean(old.strip(), 100), new=clean(new.strip(), 100)))
    return found


def hardening(commit: CommitRecord) -> list[Finding]:
    """Protection added to shipped code that the facts' security rules do not cover: bounds checks in
    C and C++, unchecked access removed in Rust, a weak random source replaced, prototype guards."""
    found: list[Finding] = []
    for file in _files(commit):
        if file.role != _SOURCE:
            continue
        added, removed = list(file.lines(ADDED)), list(file.lines(REMOVED))
        code_added = [line for line in added if not _is_comment(line, file.language)]
        if file.language in _C_FAMILY:
            bound = next((line for line in code_added if _BOUND_CHECK.match(line)), None)
            if bound:
                found.append(Finding("bounds_check", file.name, evidence=clean(bound.strip(), 100)))
        if file.language == "rust":
            unchecked = next((line for line in removed if _UNCHECKED.search(line)), None)
            if unchecked and sum(map(bool, map(_UNCHECKED.search, removed))) > \
                    sum(map(bool, map(_UNCHECKED.search, code_added))):
                found.append(Finding("unchecked_access", file.name, evidence=clean(unchecked.strip(), 100)))
        weak = next((line for line in removed if _WEAK_RANDOM.search(line)), None)
        strong = next((line for line in code_added if _STRONG_RANDOM.search(line)), None)
        if weak and strong and not any(_WEAK_RANDOM.search(line) for line in code_added):
            found.append(Finding("random", file.name, evidence=clean(strong.strip(), 100), old=clean(weak.strip(), 100)))
        if file.language in ("javascript", "typescript"):
            guard = next((line for line in code_added if _PROTOTYPE_GUARD.search(line)), None)
            if guard and not any(_PROTOTYPE_GUARD.search(line) for line in removed):
                found.append(Finding("prototype", file.name, evidence=clean(guard.strip(), 100)))
    return found


def api_breaks(commit: CommitRecord, facts: CommitFacts) -> list[Finding]:
    """Public API breaks the symbol reader misses: a module's default export removed, Go packages
    moved under internal/, a checked exception added to a public Java method."""
    found: list[Finding] = []
    files = _files(commit)
    for file in files:
        if file.role != _SOURCE or file.language not in ("javascript", "typescript"):
            continue
        gone = [line for line in file.lines(REMOVED) if _DEFAULT_EXPORT.match(line)]
        if gone and not any(_DEFAULT_EXPORT.match(line) for line in file.lines(ADDED)):
            found.append(Finding("default_export_removed", file.name, name="default", evidence=clean(gone[0].strip(), 100)))
    moved: dict[str, str] = {}
    for file in files:
        if file.role != _SOURCE or file.language != "go":
            continue
        imported = {m.group(1) for line in file.lines(REMOVED) if (m := _GO_IMPORT.match(line))}
        for line in file.lines(ADDED):
            match = _GO_IMPORT.match(line)
            if match and "/internal/" in f"{match.group(1)}/" and match.group(1) not in imported:
                tail = match.group(1).split("/internal/", 1)[-1]
                before = next((path for path in imported if path.endswith("/" + tail) and "/internal/" not in path),
                              None)
                if before:
                    moved.setdefault(before, file.name)
    for before, where in sorted(moved.items()):
        found.append(Finding("package_made_internal", where, name=before))
    for signal in facts.api:
        if signal.kind == "signature_changed" and not signal.breaking and signal.detail and "→" in signal.detail:
            old, new = signal.detail.split("→", 1)
            if language_of(signal.file) == "java" and _THROWS.search(new) and not _THROWS.search(old):
                found.append(Finding("checked_exception_added", signal.file, name=signal.name,
                                     evidence=clean(new.strip(), 100)))
    return found


def cli_parameters(facts: CommitFacts) -> frozenset[str]:
    """Signature changes that only add the parameter behind a CLI option the same commit adds: the
    function is a command, so the option (additive) is the interface, not the Python signature."""
    options = {signal.name.lstrip("-").replace("-", "_") for signal in facts.api if signal.kind == "cli_option_added"}
    return frozenset(signal.name for signal in facts.api if signal.kind == "signature_changed" and signal.detail
                     and (params := _REQUIRED_PARAM.findall(signal.detail)) and set(params) <= options)


def breaking_signals(facts: CommitFacts) -> tuple[ApiSignal, ...]:
    """The facts' breaking API signals, without signature changes that only add a CLI option's parameter."""
    commands = cli_parameters(facts)
    return tuple(signal for signal in facts.breaking_api
                 if not (signal.kind == "signature_changed" and signal.name in commands))
