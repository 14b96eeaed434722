"""Importance from evidence: one verdict per commit, read from its facts, that both analyzers obey.

`judge(commit, facts)` returns the change type, the importance, the rule that decided it with its
evidence, and the bounds (floor and ceiling) any analyzer's importance is held to. Rules, first
match wins:

1. merge commits are low (their commits are analysed on their own); an empty commit is low.
2. high, and a floor of high for every analyzer:
   - a breaking change to a public API in shipped code (a public name removed or renamed, an
     incompatible signature, an option, key, route or metric removed, a default export removed,
     packages moved under internal/, a checked exception added);
   - a security signal in shipped code, hardening or weakening (escaping, bounds checks, constant-
     time comparison, path restriction, secure randomness, ...): closing a hole and re-opening one
     matter alike;
   - a message that names a vulnerability (CVE, GHSA, XSS, SQL injection, ...) on a commit that
     changes shipped code or a runtime dependency: the message alone never raises docs or tests;
   - a breaking marker (`type!:` or `BREAKING CHANGE:`) on a commit that changes shipped code.
3. low, and a ceiling of low: a commit that changes nothing shipped (tests, docs, CI only, comment-
   only source edits), whitespace- or spelling-only commits, typo fixes by the title, formatting
   and lint fixes by the title when the diff adds, removes or renames no definition.
4. dependencies: a major version of a runtime dependency, or a raised language/toolchain floor,
   is medium (floor medium); development-only, lockfile-only and routine bumps are low.
5. a release marker (the project's own version, nothing else shipped) is low; tooling and repository
   metadata (config, generated, vendored files only) are low.
6. shipped code that changes behaviour (source, migrations, build files) is medium, or high by its
   reach: when the caller passes the repository's typical commit size (typical_lines, changed lines
   of its usual commit) and the shipped lines reach REACH_FACTOR times it, or for a root commit.

A conventional-commit prefix names the change type when the files agree, and never moves the
importance. Directory names never do. A revert is judged as the change its patch makes now.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..sources.commit import CommitRecord
from .diff_hints import (
    Finding,
    api_breaks,
    breaking_signals,
    comment_only_sources,
    hardening,
    toolchain_changes,
)
from .facts import ApiSignal, CommitFacts, DependencyChange, SecuritySignal, role_of
from .result import Importance

# A commit whose shipped lines reach this many times the repository's typical commit is high by reach.
REACH_FACTOR = 4
# A title that says "typo" is believed up to this many changed lines per file (a real typo fix is tiny).
TYPO_LINES_PER_FILE = 12
# A release marker may change this many lines of shipped code (the version string itself).
RELEASE_LINES = 4
# Roles of files that never ship: a commit touching only these cannot be above low.
NOT_SHIPPED = frozenset({"test", "docs", "ci"})
# Roles that ship only through what they contain (a dependency, a version): low on their own.
INERT = frozenset({"config", "generated", "vendored", "asset", "other", "lockfile"})
SHIPPED_CODE = frozenset({"source", "migration", "build"})
_SHIPPED_SIGNAL_ROLES = frozenset({"source", "config", "build", "migration", "manifest"})

_CONVENTIONAL = re.compile(
    r"^\s*(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?\s*:\s*(?P<subject>.*)$")
_CONVENTIONAL_TYPES = {
    "feat": "feature", "feature": "feature", "fix": "fix", "bugfix": "fix", "hotfix": "fix", "bug": "fix",
    "perf": "performance", "performance": "performance", "refactor": "refactor", "docs": "docs", "doc": "docs",
    "style": "style", "test": "test", "tests": "test", "ci": "ci", "build": "build", "chore": "chore",
    "revert": "revert", "security": "security", "sec": "security", "deps": "dependencies", "dep": "dependencies",
}
_DEPENDENCY_SCOPES = {"deps", "deps-dev", "dev-deps", "dependencies", "dependency", "dep"}
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE\s*:", re.MULTILINE)
_ADVISORY = re.compile(
    r"\bCVE-\d{4}-\d{3,}\b|\bGHSA(?:-[0-9a-z]{4}){3}\b|\bvulnerab\w*|\bXSS\b|\bCSRF\b|\bSSRF\b|\bXXE\b|\bRCE\b|\bReDoS\b"
    r"|\b(?:SQL|command|shell|code|header|LDAP|XPath) injection\b|\bauth(?:entication|orization)?[ -]bypass\b"
    r"|\bsecurity (?:fix|issue|flaw|hole|bug|advisory|release|vulnerability|problem)\b|^security(?:\([^)]*\))?:"
    r"|\bsaniti[sz]e\w* (?:user )?input\b|\b(?:path|directory) traversal\b|\bprivilege escalation\b"
    r"|\bremote code execution\b|\bdenial[ -]of[ -]service\b|\bopen redirect\b|\bprototype pollution\b"
    r"|\btiming attack\b|\bbuffer overflow\b|\buse[ -]after[ -]free\b|安全漏洞|漏洞|越权|提权",
    re.IGNORECASE | re.MULTILINE,
)
_TYPO = re.compile(r"\btypos?\b|\bspelling\b|\bmisspel\w*|\bgrammar\b|错别字|拼写", re.IGNORECASE)
_FORMAT = re.compile(
    r"^\s*style(?:\([^)]*\))?:|\b(?:re)?format(?:ting|ted)?\b|\bprettier\b|\bblack\b|clang-format|rustfmt|\b(?:cargo|go) fmt\b"
    r"|gofmt|\bisort\b|\bsort(?:ed)? (?:the )?imports\b|\bimport order\b", re.IGNORECASE)
_LINT = re.compile(r"\blint(?:er|ing|s)?\b|\bclippy\b|\beslint\b|\bcheckstyle\b|\bstaticcheck\b|\bpep ?8\b"
                   r"|\bpycodestyle\b|\bflake8\b|\bruff\b|\bpylint\b|\bgolangci\b|\bmypy\b|\bgo vet\b", re.IGNORECASE)
_REVERT = re.compile(r'^\s*(?:revert|reapply)\b', re.IGNORECASE)
# Titles without a conventional prefix: the type they hint at, first match wins.
_KEYWORD_TYPES = (
    (re.compile(r"\b(?:fix(?:es|ed)?|bug|hotfix|resolve[sd]?|crash\w*|regression|handle)\b|修复", re.IGNORECASE), "fix"),
    (re.compile(r"\b(?:perf|performance|optimi[sz]\w*|speed ?up|faster|reduce allocations?|cache[sd]?)\b|性能|优化",
                re.IGNORECASE), "performance"),
    (re.compile(r"^(?:add|adds|added|implement\w*|introduce\w*|support|new|create|enable|allow)\b|新增|添加|支持",
                re.IGNORECASE), "feature"),
    (re.compile(r"^(?:refactor\w*|restructure\w*|rename\w*|move\w*|extract\w*|simplif\w*|split\w*|clean ?up"
                r"|convert\w*)\b|重构", re.IGNORECASE), "refactor"),
)
_LOW_TYPES = frozenset({"docs", "style", "test", "ci", "chore"})


@dataclass(frozen=True)
class Verdict:
    """The rule that decided a commit's importance, with its evidence and the bounds every analyzer keeps.

    rule names the sentence that explains the verdict (heuristic.reason.<rule>); evidence holds the
    values it shows (names, files, counts, versions), so the reason cites what the rule saw.
    """

    change_type: str
    importance: Importance
    rule: str
    evidence: dict[str, Any] = field(default_factory=dict)
    floor: Importance = Importance.LOW
    ceiling: Importance = Importance.HIGH


@dataclass(frozen=True)
class Reading:
    """What the rules read off one commit, computed once and shared by the texts."""

    facts: CommitFacts
    breaking: tuple[ApiSignal, ...]
    extra_breaks: tuple[Finding, ...]
    security: tuple[SecuritySignal, ...]  # in shipped files
    hardening: tuple[Finding, ...]
    toolchain: tuple[Finding, ...]
    comment_only: tuple[str, ...]
    advisory: str | None
    breaking_marker: bool
    conventional: str | None
    roles: frozenset[str]
    shipped_lines: int  # changed lines in source, migration and build files (comment-only edits excluded)
    title: str

    @property
    def runtime_majors(self) -> tuple[DependencyChange, ...]:
        return tuple(d for d in self.facts.dependencies if d.major and not d.dev and not d.indirect
                     and d.change in ("upgraded", "downgraded", "changed"))


def _roles_lines(facts: CommitFacts, roles: frozenset[str]) -> int:
    return sum(count.additions + count.deletions for role, count in facts.roles.items() if role in roles)


def read(commit: CommitRecord, facts: CommitFacts) -> Reading:
    """The evidence of a commit: facts plus what diff_hints reads, and the message's hints."""
    match = _CONVENTIONAL.match(commit.title)
    conventional = None
    if match and match.group("type").lower() in _CONVENTIONAL_TYPES:
        conventional = _CONVENTIONAL_TYPES[match.group("type").lower()]
        if (match.group("scope") or "").strip().lower() in _DEPENDENCY_SCOPES:
            conventional = "dependencies"
    advisory = _ADVISORY.search(commit.message or "")
    comment_only = comment_only_sources(commit) if "source" in facts.roles else ()
    shipped = _roles_lines(facts, SHIPPED_CODE)
    if comment_only:
        shipped -= _roles_lines(facts, frozenset({"source"}))
    return Reading(
        facts=facts,
        breaking=breaking_signals(facts),
        extra_breaks=tuple(api_breaks(commit, facts)),
        security=tuple(s for s in facts.security if s.role in _SHIPPED_SIGNAL_ROLES),
        hardening=tuple(hardening(commit)),
        toolchain=tuple(toolchain_changes(commit)),
        comment_only=comment_only,
        advisory=advisory.group(0) if advisory else None,
        breaking_marker=bool(match and match.group("bang")) or bool(_BREAKING_FOOTER.search(commit.message or "")),
        conventional=conventional,
        roles=facts.only_roles,
        shipped_lines=max(shipped, 0),
        title=commit.title,
    )


def _title_type(reading: Reading) -> str | None:
    if reading.conventional:
        return reading.conventional
    if _REVERT.match(reading.title):
        return "revert"
    for pattern, change_type in _KEYWORD_TYPES:
        if pattern.search(reading.title):
            return change_type
    return None


def _code_type(reading: Reading, fallback: str = "other") -> str:
    """The type of a change to shipped code: the title's hint when it names a code type, else the facts'."""
    hinted = _title_type(reading)
    if reading.facts.reverted_sha or hinted == "revert":
        return "revert"
    if hinted in ("feature", "fix", "performance", "refactor", "security"):
        return hinted
    if any(s.change == "added" and s.public for s in reading.facts.symbols):
        return "feature"
    return fallback


def _high(change_type: str, rule: str, **evidence: Any) -> Verdict:
    return Verdict(change_type, Importance.HIGH, rule, evidence, floor=Importance.HIGH)


def _low(change_type: str, rule: str, **evidence: Any) -> Verdict:
    return Verdict(change_type, Importance.LOW, rule, evidence, ceiling=Importance.LOW)


def _security_type(reading: Reading) -> str:
    return "revert" if reading.facts.reverted_sha or _title_type(reading) == "revert" else "security"


def _high_evidence(reading: Reading) -> Verdict | None:
    """Rule 2: breaking public API, security in shipped code, a named vulnerability, a breaking marker."""
    facts = reading.facts
    if reading.breaking:
        signal = reading.breaking[0]
        return _high(_code_type(reading, "refactor"), f"api.{signal.kind}", name=signal.name, file=signal.file,
                     detail=signal.detail or "", count=len(reading.breaking))
    if reading.extra_breaks:
        found = reading.extra_breaks[0]
        return _high(_code_type(reading, "refactor"), f"api.{found.kind}", name=found.name, file=found.file,
                     detail=found.evidence, count=len(reading.extra_breaks))
    weakens = [s for s in reading.security if s.direction == "weakens"]
    hardens = [s for s in reading.security if s.direction == "hardens"]
    for direction, signals in (("weakens", weakens), ("hardens", hardens)):
        if signals:
            return _high(_security_type(reading), f"security.{direction}", kind=signals[0].kind,
                         file=signals[0].file, evidence=signals[0].evidence)
    if reading.hardening:
        found = reading.hardening[0]
        return _high(_security_type(reading), f"security.{found.kind}", kind=found.kind, file=found.file,
                     evidence=found.evidence)
    runtime_deps = [d for d in facts.dependencies if not d.dev]
    shipped = reading.shipped_lines > 0 or bool(runtime_deps) or "lockfile" in reading.roles
    if reading.advisory and shipped and not _mostly_unshipped(reading):
        if runtime_deps:
            dep = runtime_deps[0]
            return _high("security", "security.advisory_dependency", term=reading.advisory, name=dep.name,
                         old=dep.old or "", new=dep.new or "")
        return _high("security", "security.advisory", term=reading.advisory, lines=reading.shipped_lines)
    if reading.breaking_marker and (reading.shipped_lines > 0 or runtime_deps or reading.toolchain):
        return _high(_code_type(reading, "other"), "marker.breaking", lines=reading.shipped_lines,
                     files=_shipped_files(facts))
    return None


def _shipped_files(facts: CommitFacts) -> int:
    return sum(count.files for role, count in facts.roles.items() if role in SHIPPED_CODE)


def _mostly_unshipped(reading: Reading) -> bool:
    """Tests, docs and CI make up nearly all of the change (a stray import in shipped code aside)."""
    unshipped = _roles_lines(reading.facts, NOT_SHIPPED)
    return reading.shipped_lines <= 5 and unshipped >= 10 * max(reading.shipped_lines, 1)


def _unshipped_rule(reading: Reading) -> Verdict | None:
    """Rule 3: nothing shipped changes, or only its form does."""
    facts = reading.facts
    roles = reading.roles
    counted = {role: facts.roles[role].files for role in roles}
    if reading.comment_only:
        counted["docs"] = counted.get("docs", 0) + counted.pop("source", 0)
        roles = frozenset(counted)
    dev_only = bool(facts.dependencies) and all(d.dev for d in facts.dependencies)
    if roles <= NOT_SHIPPED or (roles & NOT_SHIPPED and roles <= NOT_SHIPPED | {"manifest", "lockfile"} and dev_only):
        only = sorted(roles - {"manifest", "lockfile"})
        kind = only[0] if len(only) == 1 else "mixed"
        change_type = {"test": "test", "docs": "docs", "ci": "ci"}.get(kind, "chore")
        if reading.comment_only and kind == "docs":
            return _low("docs", "only.comments", files=len(reading.comment_only), file=reading.comment_only[0])
        return _low(change_type, f"only.{kind}", files=sum(counted.values()),
                    lines=facts.additions + facts.deletions, roles=only)
    if _mostly_unshipped(reading) and not reading.breaking and not reading.security:
        hinted = _title_type(reading)
        return _low(hinted if hinted in _LOW_TYPES and hinted else "test", "mostly_unshipped",
                    shipped=reading.shipped_lines, lines=_roles_lines(facts, NOT_SHIPPED))
    structural = any(s.change in ("added", "removed", "renamed") for s in facts.symbols if s.public)
    if facts.whitespace_only:
        return _low("style", "cosmetic.whitespace", files=facts.files)
    if facts.spelling_only:
        return _low("docs" if roles <= NOT_SHIPPED else "fix", "cosmetic.spelling", files=facts.files)
    lines = facts.additions + facts.deletions
    if _TYPO.search(reading.title) and not structural and lines <= TYPO_LINES_PER_FILE * max(facts.files, 1):
        return _low("docs" if roles <= NOT_SHIPPED else "fix", "hint.typo", files=facts.files,
                    lines=facts.additions + facts.deletions)
    # A formatting or lint pass rewrites lines in place: about as many lines go as come. A title that
    # merely mentions a format ("Prometheus Exposition Format") on a commit deleting 1,976 lines is not one.
    balanced = min(facts.additions, facts.deletions) * 2 >= max(facts.additions, facts.deletions)
    if not structural and not facts.dependencies and (balanced or lines <= TYPO_LINES_PER_FILE * max(facts.files, 1)):
        if _FORMAT.search(reading.title):
            return _low("style", "hint.format", files=facts.files, lines=facts.additions + facts.deletions)
        if _LINT.search(reading.title):
            return _low("style", "hint.lint", files=facts.files, lines=facts.additions + facts.deletions)
    return None


def _major_bump(reading: Reading) -> Verdict:
    """A major version of a runtime dependency: medium, and never below it."""
    majors = reading.runtime_majors
    dep = majors[0]
    return Verdict("dependencies", Importance.MEDIUM, "dependency.major",
                   {"name": dep.name, "old": dep.old or "", "new": dep.new or "", "count": len(majors)},
                   floor=Importance.MEDIUM)


def _dependency_rule(reading: Reading) -> Verdict | None:
    """Rule 4 and 5: dependency, toolchain and release changes when no shipped code changes."""
    facts = reading.facts
    if reading.toolchain:
        found = reading.toolchain[0]
        return Verdict("build" if "manifest" not in reading.roles else "dependencies", Importance.MEDIUM,
                       "toolchain", {"file": found.file, "old": found.old, "new": found.new},
                       floor=Importance.MEDIUM)
    if reading.runtime_majors:
        return _major_bump(reading)
    if facts.release_version and reading.shipped_lines <= RELEASE_LINES and not facts.symbols:
        return _low("chore", "release", version=facts.release_version)
    if reading.shipped_lines > 0:
        return None
    if facts.release_version:
        return _low("chore", "release", version=facts.release_version)
    if facts.dependencies:
        dep = facts.dependencies[0]
        rule = "dependency.dev" if all(d.dev for d in facts.dependencies) else "dependency.routine"
        return _low("dependencies", rule, name=dep.name, old=dep.old or "", new=dep.new or "",
                    count=len(facts.dependencies) + facts.dependencies_cut)
    if "lockfile" in reading.roles and reading.roles <= NOT_SHIPPED | {"lockfile", "manifest"}:
        count = facts.roles["lockfile"]
        return _low("dependencies", "dependency.lockfile", files=count.files, lines=count.additions + count.deletions)
    if reading.roles <= NOT_SHIPPED | INERT | {"manifest"}:
        inert = sorted(reading.roles & (INERT | {"manifest"}))
        return _low("chore", "only.inert", roles=inert, files=facts.files)
    return None


def judge(commit: CommitRecord, facts: CommitFacts, *, bot: bool = False, typical_lines: int | None = None) -> Verdict:
    """The verdict on a commit by the rules in the module docstring.

    Args:
        commit: the commit, for its message and parents.
        facts: its facts (facts_of(commit)).
        bot: the commit comes from an automation account: low unless its files show a major version
            of a runtime dependency or a security signal (rules 2 and 4); the message is not trusted.
        typical_lines: changed lines of the repository's typical commit (its median), when the caller
            knows it; without it, size never makes a commit high.
    """
    if commit.is_merge:
        return Verdict("merge", Importance.LOW, "merge", {"parents": len(commit.parents)})
    if facts.empty:
        return _low("chore", "empty")
    reading = read(commit, facts)
    if bot:
        return _bot(reading)
    high = _high_evidence(reading)
    if high is not None:
        return high
    low = _unshipped_rule(reading)
    if low is not None:
        return low
    dependency = _dependency_rule(reading)
    if dependency is not None:
        return dependency
    change_type = _code_type(reading)
    if not commit.parents and reading.shipped_lines > 0:
        return Verdict(change_type if change_type != "other" else "feature", Importance.HIGH, "reach.root",
                       {"files": facts.files, "lines": facts.additions + facts.deletions})
    if typical_lines and typical_lines > 0 and reading.shipped_lines >= REACH_FACTOR * typical_lines:
        return Verdict(change_type, Importance.HIGH, "reach.size",
                       {"lines": reading.shipped_lines, "typical": typical_lines,
                        "times": reading.shipped_lines // typical_lines})
    return Verdict(change_type, Importance.MEDIUM, "shipped", _shipped_evidence(reading))


def _bot(reading: Reading) -> Verdict:
    """Automated commits: low, unless the files show a runtime major or a security signal."""
    facts = reading.facts
    kind = "dependencies" if facts.dependencies or "lockfile" in reading.roles else (reading.conventional or "chore")
    if kind not in ("dependencies", "chore", "ci", "build", "docs", "style", "test"):
        kind = "chore"
    if reading.security:
        signal = reading.security[0]
        return _high("security", f"security.{signal.direction}", kind=signal.kind, file=signal.file,
                     evidence=signal.evidence)
    if reading.runtime_majors:
        return _major_bump(reading)
    if facts.dependencies:
        dep = facts.dependencies[0]
        return Verdict(kind, Importance.LOW, "bot.dependency", {"name": dep.name, "old": dep.old or "",
                                                                "new": dep.new or ""})
    return Verdict(kind, Importance.LOW, "bot", {"files": facts.files})


def _shipped_evidence(reading: Reading) -> dict[str, Any]:
    """What a medium verdict cites: the most telling changed public symbol, else the files and lines."""
    facts = reading.facts
    public = [s for s in facts.symbols if s.public and s.change in ("added", "signature", "modified")]
    evidence: dict[str, Any] = {"lines": reading.shipped_lines, "files": _shipped_files(reading.facts)}
    defaults = [s for s in facts.api if s.kind == "default_changed"]
    if defaults:
        evidence.update(kind="default", name=defaults[0].name, detail=defaults[0].detail or "",
                        file=defaults[0].file)
    elif any(s.change == "added" for s in public):
        added = [s for s in public if s.change == "added"]
        evidence.update(kind="added", name=added[0].name, file=added[0].file, count=len(added))
    elif public:
        evidence.update(kind="changed", name=public[0].name, file=public[0].file, count=len(public))
    elif shipped_symbols := [s for s in facts.symbols if role_of(s.file) != "test"]:
        symbol = shipped_symbols[0]
        evidence.update(kind="internal", name=symbol.name, file=symbol.file, count=len(shipped_symbols))
    else:
        evidence.update(kind="lines")
    return evidence


def bounds(verdict: Verdict, model_type: str | None = None) -> tuple[Importance, Importance]:
    """The floor and ceiling an analyzer's importance is held to; a model that types the commit docs,
    style, test, ci or chore cannot call it high unless the evidence floor says so."""
    ceiling = verdict.ceiling
    if model_type in _LOW_TYPES and verdict.floor is not Importance.HIGH and ceiling is Importance.HIGH:
        ceiling = Importance.MEDIUM
    return verdict.floor, ceiling
