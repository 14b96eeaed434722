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
from .facts import ApiSignal, CommitFacts, is_public_path, language_of, role_of
from .facts.diff import ADDED, CONTEXT, REMOVED, Hunk, clean, parse_patch

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
# A regular expression literal or pattern argument on a line (Python raw strings, JS /.../ literals, Go/Java strings
# passed to a compile call); and a group that repeats something itself repeated: `(a+)+`, `((?:x|y)*)*`, the shape
# that backtracks exponentially on a crafted input (ReDoS).
_REGEX_CALL = re.compile(r"\b(?:re|regex)\.(?:compile|match|search|fullmatch|findall|finditer|sub|split)\(|\bnew RegExp\("
                         r"|\bPattern\.compile\(|\bregexp\.(?:MustCompile|Compile)\(|\bRegex::new\(|=\s*/[^/\s].*/[gimsuy]*\s*;?\s*$")
_NESTED_QUANTIFIER = re.compile(r"\((?:\?:)?(?:[^()]|\([^()]*\))*[*+](?:[^()]|\([^()]*\))*\)[*+{]")
# Reflective class loading from a name (a deserialiser's type field), and an allow-list that now gates it.
_CLASS_BY_NAME = re.compile(r"\bClass\.forName\(\s*[a-z]\w*|\.loadClass\(\s*[a-z]\w*")
_ALLOW_LIST = re.compile(r"\ballow(?:ed)?[-_ ]?(?:list|prefixes|types|classes|names)\b|\bwhite[-_ ]?list\w*|\bpermitted\w*"
                         r"|\bsetObjectInputFilter\(|\bObjectInputFilter\b|\bPolymorphicTypeValidator\b", re.IGNORECASE)
# Rust: an item gated behind a Cargo feature, and the manifest line that makes a feature default.
_CFG_FEATURE = re.compile(r'^\s*#\[cfg\(\s*feature\s*=\s*"([\w-]+)"\s*\)\]\s*$')
_RUST_ITEM = re.compile(r"^\s*pub\s+(?:async\s+|unsafe\s+|const\s+)*(?:fn|mod|struct|enum|trait|impl|type|use)\b")
_DEFAULT_FEATURES = re.compile(r"^\s*default\s*=\s*\[(.*)\]")
# A boolean default set on a line: `name=True`, `name: true`, `NAME(false)` (a Java enum constant), `x.name ?? true`.
_BOOL_SETTING = re.compile(r"\b([A-Za-z_]\w*)\s*(?:=|:|\(|\?\?)\s*(true|false|True|False)\b")
_BOOL_DEFAULT = re.compile(r"^(\w+) default (True|False|true|false) → (True|False|true|false)$")
# Words in an option's name that make it stricter when on, and those that make it stricter when off.
_STRICT_ON = frozenset({"strict", "fail", "safe", "secure", "validate", "verify", "escape", "sanitize", "require",
                        "reject", "deny", "enforce", "autoescape"})
_STRICT_OFF = frozenset({"allow", "lenient", "permissive", "insecure", "unsafe", "ignore", "accept", "loose", "trust"})
# TypeScript: a method or function declaration with its parameter list and declared return type.
_TS_SIGNATURE = re.compile(r"^\s*(?P<mods>(?:export\s+)?(?:(?:public|private|protected|static|async|readonly|abstract|override)\s+)*)"
                           r"(?:function\s+)?(?P<name>[A-Za-z$][\w$]*)\s*(?:<[^>]*>)?\s*\((?P<params>.*)\)\s*:\s*"
                           r"(?P<returns>[^{;=]+?)\s*[{;]?\s*$")


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
        backtracking = _nested_quantifier_removed(removed, code_added)
        if backtracking:
            found.append(Finding("regex_backtracking", file.name, evidence=clean(backtracking.strip(), 100)))
        loader = next((line for line in removed if _CLASS_BY_NAME.search(line)), None)
        if loader and not any(_CLASS_BY_NAME.search(line) for line in code_added):
            gate = next((line for other in _files(commit) if other.role == _SOURCE
                         for line in other.lines(ADDED)
                         if _ALLOW_LIST.search(line) and not _is_comment(line, other.language)), None)
            if gate:
                found.append(Finding("type_allow_list", file.name, evidence=clean(gate.strip(), 100),
                                     old=clean(loader.strip(), 100)))
    return found


def _nested_quantifier_removed(removed: list[str], added: list[str]) -> str | None:
    """The added pattern line that replaces a removed one whose regex repeats a repeated group (a ReDoS
    shape), when no added pattern keeps that shape; None otherwise."""
    nested = [line for line in removed if _REGEX_CALL.search(line) and _NESTED_QUANTIFIER.search(line)]
    if not nested:
        return None
    patterns = [line for line in added if _REGEX_CALL.search(line)]
    if not patterns or any(_NESTED_QUANTIFIER.search(line) for line in patterns):
        return None
    return patterns[0]


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
    found += _feature_gated(files)
    found += _return_types_changed(files)
    found += _stricter_defaults(files, facts)
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


def _feature_gated(files: list[_File]) -> list[Finding]:
    """Public Rust items that existed before and now sit behind a `#[cfg(feature = ...)]` the commit adds,
    for a feature the manifest does not turn on by default: crates using them without the feature stop
    compiling."""
    defaults: set[str] = set()
    for file in files:
        if file.role == _MANIFEST and file.name.lower().endswith("cargo.toml"):
            for line in file.lines(ADDED):
                if match := _DEFAULT_FEATURES.match(line):
                    defaults |= {part.strip(' "\'') for part in match.group(1).split(",")}
    found: list[Finding] = []
    for file in files:
        if file.role != _SOURCE or file.language != "rust" or not is_public_path(file.name):
            continue
        for hunk in file.hunks:
            lines = hunk.lines
            for i, (kind, text) in enumerate(lines):
                gate = _CFG_FEATURE.match(text) if kind == ADDED else None
                if not gate or gate.group(1) in defaults:
                    continue
                item = next(((k, t) for k, t in lines[i + 1:] if k != ADDED or not t.strip().startswith("#[")), None)
                if item and item[0] == CONTEXT and _RUST_ITEM.match(item[1]):
                    found.append(Finding("feature_gated", file.name, name=gate.group(1),
                                         evidence=clean(item[1].strip(), 100)))
                    break
    return found[:1] + [f for f in found[1:] if f.name != found[0].name]


def _returns(text: str) -> set[str]:
    return {part.strip() for part in text.split("|") if part.strip()}


def _return_types_changed(files: list[_File]) -> list[Finding]:
    """Public TypeScript functions and methods whose declared return type gains a member (undefined to
    null, T to T | undefined): callers that test for the old value take the wrong branch."""
    found: list[Finding] = []
    for file in files:
        if file.role != _SOURCE or file.language != "typescript" or not is_public_path(file.name):
            continue
        for hunk in file.hunks:
            old = {m.group("name"): m for text in hunk.removed if (m := _TS_SIGNATURE.match(text))}
            for text in hunk.added:
                new = _TS_SIGNATURE.match(text)
                if not new or new.group("name") not in old or new.group("name").startswith(("_", "$")):
                    continue
                before = old[new.group("name")]
                if re.search(r"\b(?:private|protected)\b", new.group("mods")) or new.group("name") in (
                        "if", "for", "while", "switch", "catch", "constructor"):
                    continue
                if before.group("params").replace(" ", "") != new.group("params").replace(" ", ""):
                    continue
                gained = _returns(new.group("returns")) - _returns(before.group("returns"))
                if gained and _returns(before.group("returns")):
                    found.append(Finding("return_type_changed", file.name, name=new.group("name"),
                                         evidence=f"{clean(before.group('returns'), 50)} → {clean(new.group('returns'), 50)}"))
    return found


def _words(name: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}


def _stricter(name: str, old: bool, new: bool) -> bool:
    words = _words(name)
    return old != new and bool(words & (_STRICT_ON if new else _STRICT_OFF))


def _stricter_defaults(files: list[_File], facts: CommitFacts) -> list[Finding]:
    """Defaults of public options flipped to the stricter side (strict, fail-on, safe mode turned on; allow,
    lenient, ignore turned off): input that callers on defaults had accepted is now rejected or rewritten."""
    found: list[Finding] = []
    for signal in facts.api:
        match = _BOOL_DEFAULT.match(signal.detail or "") if signal.kind == "default_changed" else None
        if match and _stricter(match.group(1), match.group(2).lower() == "true", match.group(3).lower() == "true"):
            found.append(Finding("default_stricter", signal.file, name=match.group(1), evidence=signal.detail or ""))
    for file in files:
        if file.role != _SOURCE or not is_public_path(file.name) or found:
            continue
        for hunk in file.hunks:
            before: dict[str, bool] = {}
            mentioned = " ".join(line for line in hunk.removed if not _is_comment(line, file.language))
            for line in hunk.removed:
                if not _is_comment(line, file.language):
                    before.update((m.group(1), m.group(2).lower() == "true") for m in _BOOL_SETTING.finditer(line))
            for line in hunk.added:
                if _is_comment(line, file.language):
                    continue
                for m in _BOOL_SETTING.finditer(line):
                    name, new = m.group(1), m.group(2).lower() == "true"
                    # `x.strict ?? true` where the line read `x.strict`: the unset option was falsy.
                    old = before.get(name, False if "??" in m.group(0) and re.search(rf"\b{name}\b", mentioned) else None)
                    if old is not None and _stricter(name, old, new):
                        found.append(Finding("default_stricter", file.name, name=name,
                                             evidence=f"{name} default {str(old).lower()} → {str(new).lower()}"))
    return found[:1]
