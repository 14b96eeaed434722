"""Heuristic analysis: every field of an Analysis derived from the commit metadata alone.

Used when no LLM is configured, for bot and merge commits, and as the fallback when an
LLM call fails. Importance follows floor rules, applied in this order:

1. merge commits and bot commits are low;
2. breaking changes (``BREAKING CHANGE:`` footer or ``type!:``) are high;
3. typo, spelling and wording fixes are low, even when labelled ``fix:``;
4. security signals in the title or body are high, unless the commit is docs, style,
   test, ci or chore work;
5. docs, style, test, ci, chore and plain dependency updates are low;
6. features, fixes, performance and security work are medium, or high when large
   (many lines, files or modules) or touching core paths; other types by size.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..i18n import LANGUAGES, t
from ..sources.commit import CommitRecord
from ..text import plain
from .bots import DEFAULT_BOT_LOGINS, is_bot
from .result import HEURISTIC_MODEL, Analysis, AnalysisSet, Importance, Insight, Texts

# "Large" thresholds for features, fixes and performance work: past these a change is
# hard to review and likely to have wide effects, which is what "high" means in reports.
LARGE_LINES = 400
LARGE_FILES = 15
LARGE_MODULES = 4
# Unclassified commits are worth a reader's attention only when they are sizeable.
NOTABLE_OTHER_LINES = 100
MAX_SCOPE = 8
MAX_SUBJECT_CHARS = 160

_CONVENTIONAL = re.compile(
    r"^\s*(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?\s*:\s*(?P<subject>.*)$"
)
_CONVENTIONAL_TYPES = {
    "feat": "feature", "feature": "feature",
    "fix": "fix", "bugfix": "fix", "hotfix": "fix", "bug": "fix",
    "perf": "performance", "performance": "performance",
    "refactor": "refactor",
    "docs": "docs", "doc": "docs",
    "style": "style",
    "test": "test", "tests": "test",
    "ci": "ci",
    "build": "build",
    "chore": "chore",
    "revert": "revert",
    "security": "security", "sec": "security",
    "deps": "dependencies", "dep": "dependencies",
}
_DEPENDENCY_SCOPES = {"deps", "deps-dev", "dev-deps", "dependencies", "dependency", "dep"}
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE\s*:", re.MULTILINE)
_TYPO = re.compile(r"\btypos?\b|\bspelling\b|\bmisspell\w*|\bgrammar\b|\bwording\b|错别字|拼写", re.IGNORECASE)
_SECURITY = re.compile(
    r"\bCVE-\d{4}-\d{3,}\b|\bGHSA(?:-[0-9a-z]{4}){3}\b|\bvulnerab\w*|\bXSS\b|\bCSRF\b|\bSSRF\b|\bXXE\b|\bRCE\b"
    r"|(?<!dependency )(?<!dependency-)\binjection\b|\bauth(?:entication|orization)?[ -]bypass\b"
    r"|\bsecurity\b|\bsaniti[sz]\w*|\b(?:path|directory) traversal\b|\bprivilege escalation\b"
    r"|\bremote code execution\b|\bdenial[ -]of[ -]service\b|\bopen redirect\b|\bexploit\w*"
    r"|\btiming attack\b|\b(?:leak\w*|expos\w*) (?:of )?(?:secrets?|credentials?|tokens?|passwords?)\b"
    r"|安全|漏洞|注入|越权|提权",
    re.IGNORECASE,
)
_LOW_TYPES = {"docs", "style", "test", "ci", "chore"}
_SIZED_TYPES = {"feature", "fix", "performance", "security"}
_CODE_TYPES = {"feature", "fix", "performance", "refactor", "security"}

_CI_PREFIXES = (".github/workflows/", ".github/actions/", ".circleci/", ".buildkite/", ".gitlab/ci/")
_CI_FILES = {".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml", "jenkinsfile", "appveyor.yml", ".drone.yml"}
_LOCKFILES = {
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "poetry.lock",
    "pipfile.lock", "pdm.lock", "uv.lock", "cargo.lock", "go.sum", "gemfile.lock", "composer.lock",
    "mix.lock", "packages.lock.json", "flake.lock", "podfile.lock", "pubspec.lock",
}
_REQUIREMENTS = re.compile(r"^(?:requirements|constraints)[\w.-]*\.(?:txt|in)$")
_TEST_DIRS = {"test", "tests", "__tests__", "spec", "specs", "testing", "e2e"}
_TEST_FILE = re.compile(r"^test_.*\.py$|_test\.(?:py|go|rb|exs?)$|\.(?:test|spec)\.[jt]sx?$|Tests?\.(?:java|kt|cs)$")
_DOC_DIRS = {"docs", "doc", "documentation"}
_DOC_EXTENSIONS = (".md", ".rst", ".adoc", ".mdx")
_DOC_FILES = re.compile(r"^(?:readme|changelog|changes|license|licence|authors|contributing|notice|history)(?:\.\w+)?$")
_CORE_SEGMENTS = {
    "core", "kernel", "engine", "runtime", "auth", "authentication", "security", "crypto",
    "migrations", "schema", "db", "database",
}
_SENSITIVE_SEGMENTS = {
    "auth", "authentication", "authorization", "security", "crypto", "oauth", "permissions",
    "acl", "session", "sessions", "login",
}
_SENSITIVE_NAME = re.compile(r"auth|crypt|passw|secret|token|permission|csrf|saniti[sz]", re.IGNORECASE)
_CONTAINER_DIRS = {
    "src", "lib", "libs", "pkg", "packages", "internal", "cmd", "modules", "services", "crates",
    "plugins", "components", "apps",
}

# Non-conventional titles: first match wins, so the more specific patterns come first.
_KEYWORD_TYPES = (
    (re.compile(r"^revert\b", re.IGNORECASE), "revert"),
    (re.compile(r"^(?:bump|upgrade|update)\s+\S+.*\b(?:from|to)\s+v?\d|\bupdate (?:the )?dependenc|\b(?:lock ?file)",
                re.IGNORECASE), "dependencies"),
    (re.compile(r"\b(?:fix(?:es|ed)?|bug|hotfix|resolve[sd]?|crash|regression)\b|修复", re.IGNORECASE), "fix"),
    (re.compile(r"\b(?:perf|performance|optimi[sz]\w*|speed ?up|faster)\b|性能|优化", re.IGNORECASE), "performance"),
    (re.compile(r"^(?:add|adds|added|implement\w*|introduce\w*|support|new|create|enable)\b|新增|添加|支持",
                re.IGNORECASE), "feature"),
    (re.compile(r"^(?:refactor\w*|restructure\w*|rename\w*|move\w*|extract\w*|simplif\w*|clean ?up)\b|重构",
                re.IGNORECASE), "refactor"),
    (re.compile(r"^(?:format\w*|reformat\w*|lint\w*)\b", re.IGNORECASE), "style"),
    (re.compile(r"^(?:release|prepare release|bump version|v?\d+\.\d+(?:\.\d+)?$)", re.IGNORECASE), "chore"),
)

def _t(key: str, language: str, **fields: object) -> str:
    return t(f"heuristic.{key}", language, **fields)


def _label(kind: str, language: str) -> str:
    """The change type as the heuristic's sentences name it ("bug-fix", "缺陷修复")."""
    return t(f"heuristic.label.{kind}", language)


def _count(n: int, language: str, en_one: str, en_many: str, zh_unit: str) -> str:
    if language == "zh":
        return f"{n:,} {zh_unit}"
    return f"{n:,} {en_one if n == 1 else en_many}"


def _files(n: int, language: str) -> str:
    return _count(n, language, "file", "files", "个文件")


def _lines(n: int, language: str) -> str:
    return _count(n, language, "line", "lines", "行")


def _modules(n: int, language: str) -> str:
    return _count(n, language, "module", "modules", "个模块")


def _join(items: Iterable[str], language: str) -> str:
    return ("、" if language == "zh" else ", ").join(items)


@dataclass(frozen=True)
class _Facts:
    """What the heuristic reads off a commit, computed once."""

    change_type: str
    subject: str
    breaking: bool
    typo: bool
    security_terms: tuple[str, ...]
    additions: int
    deletions: int
    files: int
    added: int
    removed: int
    scope: tuple[str, ...]  # every module, most churn first
    module_count: int
    core_paths: tuple[str, ...]
    sensitive_paths: tuple[str, ...]
    has_tests: bool

    @property
    def lines(self) -> int:
        return self.additions + self.deletions


def _path_parts(filename: str) -> list[str]:
    return [part for part in filename.strip().replace("\\", "/").split("/") if part]


def _path_category(filename: str) -> str | None:
    """docs, test, ci or dependencies when a path clearly belongs to one; None for code."""
    parts = _path_parts(filename)
    if not parts:
        return None
    lower = "/".join(parts).lower()
    name = parts[-1].lower()
    if lower.startswith(_CI_PREFIXES) or (name in _CI_FILES and len(parts) == 1):
        return "ci"
    if name in _LOCKFILES or _REQUIREMENTS.match(name):
        return "dependencies"
    if any(part.lower() in _TEST_DIRS for part in parts[:-1]) or _TEST_FILE.search(parts[-1]):
        return "test"
    if parts[0].lower() in _DOC_DIRS or name.endswith(_DOC_EXTENSIONS) or _DOC_FILES.match(name):
        return "docs"
    return None


def _module_of(filename: str) -> str | None:
    """The top-level directory (two levels under src/, packages/, ...) or the root file's name."""
    parts = _path_parts(filename)
    if not parts:
        return None
    if len(parts) > 2 and parts[0].lower() in _CONTAINER_DIRS:
        return plain(f"{parts[0]}/{parts[1]}", 80) or None
    return plain(parts[0], 80) or None


def _infer_type(title: str, categories: set[str | None], has_files: bool, typo: bool, security: bool) -> str:
    """Change type for a title without a conventional-commit prefix."""
    if typo:
        return "docs" if not has_files or categories == {"docs"} else "fix"
    if len(categories) == 1 and (only := next(iter(categories))) is not None:
        return only
    if security:
        return "security"
    for pattern, change_type in _KEYWORD_TYPES:
        if pattern.search(title):
            return change_type
    return "other"


def _facts(commit: CommitRecord) -> _Facts:
    title = commit.title
    body = commit.message.strip()[len(title):] if commit.message.strip() else ""
    match = _CONVENTIONAL.match(title)
    subject = (match.group("subject") if match else title).strip() or title.strip()
    typo = bool(_TYPO.search(title))
    terms: list[str] = []
    for found in _SECURITY.finditer(f"{title}\n{body}"):
        term = plain(found.group(0), 40)
        if term.lower() not in (t.lower() for t in terms):
            terms.append(term)
    security_terms = tuple(terms[:4])

    categories = {_path_category(f.filename) for f in commit.files}
    if commit.is_merge:
        change_type = "merge"
    elif match and match.group("type").lower() in _CONVENTIONAL_TYPES:
        change_type = _CONVENTIONAL_TYPES[match.group("type").lower()]
        scope = (match.group("scope") or "").strip().lower()
        if scope in _DEPENDENCY_SCOPES:
            change_type = "dependencies"
        elif change_type == "fix" and security_terms and not typo:
            change_type = "security"
    else:
        change_type = _infer_type(title, categories, bool(commit.files), typo, bool(security_terms))

    churn: dict[str, int] = {}
    directory_modules: set[str] = set()
    root_files = False
    core: list[str] = []
    sensitive: list[str] = []
    for change in commit.files:
        module = _module_of(change.filename)
        if module is None:
            continue
        parts = [p.lower() for p in _path_parts(change.filename)]
        if len(parts) == 1:
            root_files = True
        else:
            directory_modules.add(module)
        churn[module] = churn.get(module, 0) + max(change.additions, 0) + max(change.deletions, 0)
        dirs = parts[:-1]
        if any(part in _CORE_SEGMENTS for part in dirs) and module not in core:
            core.append(module)
        if (any(part in _SENSITIVE_SEGMENTS for part in dirs) or _SENSITIVE_NAME.search(parts[-1])) \
                and module not in sensitive:
            sensitive.append(module)
    # Sorted by churn so the cap keeps the modules where most of the change happened.
    scope = tuple(sorted(churn, key=lambda m: -churn[m]))
    additions, deletions = max(commit.additions, 0), max(commit.deletions, 0)
    if additions + deletions == 0:
        # Some sources only give per-file stats.
        additions = sum(max(f.additions, 0) for f in commit.files)
        deletions = sum(max(f.deletions, 0) for f in commit.files)
    return _Facts(
        change_type=change_type,
        subject=subject,
        breaking=bool(match and match.group("bang")) or bool(_BREAKING_FOOTER.search(commit.message)),
        typo=typo,
        security_terms=security_terms,
        additions=additions,
        deletions=deletions,
        files=len(commit.files),
        added=sum(1 for f in commit.files if f.status == "added"),
        removed=sum(1 for f in commit.files if f.status == "removed"),
        scope=scope,
        module_count=len(directory_modules) + (1 if root_files else 0),
        core_paths=tuple(core),
        sensitive_paths=tuple(sensitive),
        has_tests="test" in categories,
    )


def _is_large(facts: _Facts) -> bool:
    return facts.lines >= LARGE_LINES or facts.files >= LARGE_FILES or facts.module_count >= LARGE_MODULES


def _importance(facts: _Facts, language: str, author: str, *, bot: bool) -> tuple[Importance, str]:
    """Importance and its one-sentence reason, by the floor rules in the module docstring."""
    kind = facts.change_type
    label = _label(kind, language)
    sizes = {"lines": _lines(facts.lines, language), "files": _files(facts.files, language)}
    if kind == "merge":
        return Importance.LOW, _t("reason_merge", language)
    if bot:
        return Importance.LOW, _t("reason_bot", language, author=author)
    if facts.breaking:
        return Importance.HIGH, _t("reason_breaking", language)
    if facts.typo:
        return Importance.LOW, _t("reason_typo", language)
    if kind not in _LOW_TYPES and (facts.security_terms or kind == "security"):
        if facts.security_terms:
            return Importance.HIGH, _t("reason_security", language, terms=_join(facts.security_terms, language))
        return Importance.HIGH, _t("reason_security_type", language)
    if kind in _LOW_TYPES or kind == "dependencies":
        return Importance.LOW, _t(f"reason_{kind}", language)
    if kind in _SIZED_TYPES:
        if facts.core_paths:
            paths = _join(facts.core_paths[:3], language)
            return Importance.HIGH, _t("reason_core", language, Label=label[:1].upper() + label[1:],
                                       label=label, paths=paths)
        if _is_large(facts):
            return Importance.HIGH, _t("reason_large", language, label=label,
                                       modules=_modules(facts.module_count, language), **sizes)
        return Importance.MEDIUM, _t("reason_sized", language, Label=label[:1].upper() + label[1:],
                                     label=label, **sizes)
    if kind == "refactor":
        return Importance.MEDIUM, _t("reason_refactor", language, **sizes)
    if kind == "revert":
        return Importance.MEDIUM, _t("reason_revert", language)
    if kind == "build":
        return (Importance.MEDIUM if _is_large(facts) else Importance.LOW), _t("reason_build", language, **sizes)
    if facts.lines >= NOTABLE_OTHER_LINES or _is_large(facts):
        return Importance.MEDIUM, _t("reason_other_notable", language, **sizes)
    return Importance.LOW, _t("reason_other_small", language, **sizes)


def _insight(facts: _Facts, language: str) -> Insight:
    modules = _join(facts.scope[:5], language)
    if not facts.scope:
        architecture = _t("arch_none", language)
    elif facts.module_count >= 3:
        architecture = _t("arch_cross", language, n=facts.module_count, modules=modules)
    elif facts.added or facts.removed:
        key = "arch_files" if facts.added and facts.removed else "arch_added" if facts.added else "arch_removed"
        architecture = _t(key, language, modules=modules, added=_files(facts.added, language),
                          removed=_files(facts.removed, language))
    else:
        architecture = _t("arch_local", language, modules=modules)
    performance = _t("perf_yes" if facts.change_type == "performance" else "perf_no", language)
    if facts.security_terms and facts.change_type not in _LOW_TYPES and not facts.typo:
        security = _t("sec_terms", language, terms=_join(facts.security_terms, language))
    elif facts.change_type == "security":
        security = _t("sec_type", language)
    elif facts.sensitive_paths:
        security = _t("sec_paths", language, paths=_join(facts.sensitive_paths[:3], language))
    else:
        security = _t("sec_no", language)
    return Insight(architecture=architecture, performance=performance, security=security)


def _risks_and_recommendations(facts: _Facts, importance: Importance, language: str, *,
                               bot: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    kind = facts.change_type
    if kind == "merge":
        return (_t("risk_merge", language),), (_t("rec_merge", language),)
    if bot:
        risk = "risk_dependencies" if kind == "dependencies" else "risk_bot"
        return (_t(risk, language),), (_t("rec_bot", language),)
    sizes = {"lines": _lines(facts.lines, language), "files": _files(facts.files, language)}
    security = importance is Importance.HIGH and (facts.security_terms or kind == "security")
    untested = kind in _CODE_TYPES and facts.files > 0 and not facts.has_tests and not facts.typo
    risks: list[str] = []
    recommendations: list[str] = []
    if facts.breaking:
        risks.append(_t("risk_breaking", language))
        recommendations.append(_t("rec_breaking", language))
    if security:
        risks.append(_t("risk_security", language))
        recommendations.append(_t("rec_security", language))
    if _is_large(facts) and kind not in _LOW_TYPES and kind != "dependencies":
        risks.append(_t("risk_large", language, **sizes))
        recommendations.append(_t("rec_large", language))
    if untested:
        risks.append(_t("risk_untested", language, label=_label(kind, language)))
        recommendations.append(_t("rec_untested", language))
    if facts.removed and kind not in _LOW_TYPES:
        risks.append(_t("risk_removed", language, removed=_files(facts.removed, language)))
    if kind == "dependencies":
        risks.append(_t("risk_dependencies", language))
        recommendations.append(_t("rec_dependencies", language))
    if kind == "revert":
        risks.append(_t("risk_revert", language))
    if kind == "performance":
        recommendations.append(_t("rec_performance", language))
    return (tuple(risks) or (_t("risk_none", language),)), (tuple(recommendations) or (_t("rec_none", language),))


def analyze_heuristic(commit: CommitRecord, language: str, *, bot: bool = False) -> Analysis:
    """Analyse a commit from its metadata alone, in language ("zh" or "en"), with model "heuristic"."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    facts = _facts(commit)
    kind = facts.change_type
    label = _label(kind, language)
    author = plain(commit.author_login or commit.author_name or "", 60) or _t("unknown_author", language)
    subject = plain(facts.subject, MAX_SUBJECT_CHARS) or _t("no_subject", language)
    importance, reason = _importance(facts, language, author, bot=bot)

    if kind == "merge":
        summary = _t("summary_merge", language, n=len(commit.parents), author=author, subject=subject)
    elif bot:
        summary = _t("summary_bot", language, label=label, author=author, subject=subject)
    else:
        summary = _t("summary", language, Label=label[:1].upper() + label[1:], label=label, author=author,
                     subject=subject, files=_files(facts.files, language),
                     add=facts.additions, dele=facts.deletions)
    scope = facts.scope[:MAX_SCOPE] or (_t("no_files", language),)
    risks, recommendations = _risks_and_recommendations(facts, importance, language, bot=bot)
    return Analysis(
        change_type=kind,
        importance=importance,
        importance_reason=reason,
        summary=summary,
        impact_scope=scope,
        insight=_insight(facts, language),
        risks=risks,
        recommendations=recommendations,
        language=language,
        model=HEURISTIC_MODEL,
    )


def apply_floor(commit: CommitRecord, analysis: AnalysisSet) -> AnalysisSet:
    """Hold a model's importance to the rules no analysis may break, whoever made it.

    Breaking changes and security fixes are at least high; typo fixes are low; docs, style, test,
    ci and chore commits (by the metadata or by the model's own type) are at most medium. When the
    importance moves, each language's reason is the rule's, so the reason always explains the
    importance shown.
    """
    facts = _facts(commit)
    kind = facts.change_type
    if kind == "merge":
        return analysis
    forced, reason_key = None, None
    rule = _importance(facts, "en", "", bot=False)[0]
    if (facts.breaking or rule is Importance.HIGH and facts.security_terms) and analysis.importance is not Importance.HIGH:
        forced = Importance.HIGH
    elif facts.typo and not facts.breaking and analysis.importance is not Importance.LOW:
        forced = Importance.LOW
    elif kind in _LOW_TYPES and rule is Importance.LOW and analysis.importance is Importance.HIGH:
        forced, reason_key = Importance.MEDIUM, f"reason_{kind}"
    elif analysis.change_type in _LOW_TYPES and analysis.importance is Importance.HIGH \
            and not (facts.breaking or facts.security_terms):
        # The model's own type says docs, style, test, ci or chore: at most medium, as for the heuristic.
        forced, reason_key = Importance.MEDIUM, f"reason_{analysis.change_type}"
    if forced is None:
        return analysis
    texts = {}
    for language, text in analysis.texts.items():
        author = plain(commit.author_login or commit.author_name or "", 60) or _t("unknown_author", language)
        reason = _t(reason_key, language) if reason_key else _importance(facts, language, author, bot=False)[1]
        texts[language] = replace(text, importance_reason=reason)
    return replace(analysis, importance=forced, texts=texts)


class HeuristicAnalyzer:
    """Analyses every commit with the heuristic: no LLM, no network."""

    model = HEURISTIC_MODEL
    calls = 0

    def __init__(self, *, bot_logins: Iterable[str] = DEFAULT_BOT_LOGINS) -> None:
        self._bot_logins = frozenset(bot_logins)

    def analyze(self, commit: CommitRecord, languages: Sequence[str], known: AnalysisSet | None = None) -> AnalysisSet:
        """The heuristic analysis of commit in languages (only their texts added to known, when given)."""
        bot = is_bot(commit, self._bot_logins)
        analyses = {language: analyze_heuristic(commit, language, bot=bot) for language in languages}
        if known is not None:
            return known.with_texts({language: Texts.of(a) for language, a in analyses.items()})
        return AnalysisSet.of(analyses)

    def analyze_many(self, items: Sequence[tuple[CommitRecord, Sequence[str], AnalysisSet | None]]
                     ) -> list[AnalysisSet]:
        """Analyses of (commit, languages, known) items, in input order."""
        return [self.analyze(commit, languages, known) for commit, languages, known in items]

    def close(self) -> None:
        """Nothing to release; here so every analyzer can be closed alike."""
