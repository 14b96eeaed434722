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

from ..i18n import LANGUAGES
from ..sources.commit import CommitRecord
from ..text import plain
from .bots import DEFAULT_BOT_LOGINS, is_bot
from .result import HEURISTIC_MODEL, Analysis, Importance, Insight

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

_LABELS = {
    "en": {
        "feature": "feature", "fix": "bug-fix", "performance": "performance", "refactor": "refactoring",
        "security": "security", "docs": "documentation", "test": "test", "ci": "CI", "build": "build",
        "dependencies": "dependency", "style": "style", "chore": "maintenance", "revert": "revert",
        "merge": "merge", "other": "unclassified",
    },
    "zh": {
        "feature": "新功能", "fix": "缺陷修复", "performance": "性能", "refactor": "重构", "security": "安全",
        "docs": "文档", "test": "测试", "ci": "CI", "build": "构建", "dependencies": "依赖",
        "style": "代码风格", "chore": "维护", "revert": "回滚", "merge": "合并", "other": "未归类",
    },
}

# Every sentence the heuristic writes, in both languages; fields are filled with str.format.
_TEXT = {
    "summary": (
        "{Label} commit by {author}: “{subject}” ({files}, +{add:,}/-{dele:,}); summarised from the commit metadata, "
        "not from reading the code.",
        "{author} 提交的{label}变更：“{subject}”（{files}，+{add:,}/-{dele:,}）；依据提交元数据概括，未分析代码。",
    ),
    "summary_bot": (
        "Automated {label} commit by {author}: “{subject}”.",
        "{author} 自动提交的{label}变更：“{subject}”。",
    ),
    "summary_merge": (
        "Merges {n} commits (merge by {author}): “{subject}”.",
        "合并了 {n} 个提交（由 {author} 合并）：“{subject}”。",
    ),
    "reason_bot": (
        "Automated commit by {author}, rated low as routine maintenance.",
        "由自动化账号 {author} 提交，属于常规维护，评为低。",
    ),
    "reason_merge": (
        "A merge commit only combines changes that are analysed on their own.",
        "合并提交只是汇合各自单独分析的变更。",
    ),
    "reason_breaking": (
        "The message marks a breaking change, so dependants may have to adapt.",
        "提交信息标注了破坏性变更，依赖方可能需要适配。",
    ),
    "reason_typo": (
        "A typo or wording fix does not change behaviour.",
        "错别字或措辞修正不会改变行为。",
    ),
    "reason_security": (
        "The message points to a security fix ({terms}).",
        "提交信息指向安全修复（{terms}）。",
    ),
    "reason_security_type": (
        "The commit is labelled as security work.",
        "该提交被标注为安全相关工作。",
    ),
    "reason_docs": ("Documentation-only change with no effect on runtime behaviour.", "仅涉及文档，不影响运行时行为。"),
    "reason_style": ("Formatting or style change with no effect on behaviour.", "仅为格式或代码风格调整，不影响行为。"),
    "reason_test": ("Test-only change that does not alter shipped code.", "仅涉及测试，不改变发布的代码。"),
    "reason_ci": ("CI configuration change that does not alter shipped code.", "仅涉及 CI 配置，不改变发布的代码。"),
    "reason_chore": ("Routine maintenance with no expected behavioural change.", "常规维护，预计不改变行为。"),
    "reason_dependencies": (
        "Routine dependency update with no security signal in the message.",
        "常规依赖更新，提交信息中没有安全相关迹象。",
    ),
    "reason_core": (
        "{Label} change touching core paths ({paths}).",
        "触及核心路径（{paths}）的{label}变更。",
    ),
    "reason_large": (
        "Large {label} change: {lines} in {files} across {modules}.",
        "规模较大的{label}变更：{modules}、{files}，共 {lines}。",
    ),
    "reason_sized": (
        "{Label} change of moderate size ({lines} in {files}).",
        "中等规模的{label}变更（{files}，{lines}）。",
    ),
    "reason_refactor": (
        "Refactoring can shift behaviour even without new features ({lines} in {files}).",
        "重构即使不加新功能也可能改变行为（{files}，{lines}）。",
    ),
    "reason_revert": (
        "Reverting earlier work changes shipped behaviour back.",
        "回滚先前的改动会使已发布的行为发生回退。",
    ),
    "reason_build": ("Build configuration change ({lines} in {files}).", "构建配置变更（{files}，{lines}）。"),
    "reason_other_notable": (
        "Unclassified change of notable size ({lines} in {files}).",
        "未归类但规模较大的变更（{files}，{lines}）。",
    ),
    "reason_other_small": (
        "Small unclassified change ({lines} in {files}).",
        "未归类的小变更（{files}，{lines}）。",
    ),
    "arch_none": (
        "No file list is available, so the architectural impact cannot be judged from the metadata.",
        "没有文件列表，无法从元数据判断架构影响。",
    ),
    "arch_cross": (
        "Spans {n} modules ({modules}), so the change crosses module boundaries; inferred from file paths.",
        "涉及 {n} 个模块（{modules}），属于跨模块变更；依据文件路径推断。",
    ),
    "arch_files": (
        "Adds {added} and removes {removed} in {modules}; inferred from file paths.",
        "在 {modules} 中新增 {added}、删除 {removed}；依据文件路径推断。",
    ),
    "arch_added": (
        "Adds {added} in {modules}; inferred from file paths.",
        "在 {modules} 中新增 {added}；依据文件路径推断。",
    ),
    "arch_removed": (
        "Removes {removed} from {modules}; inferred from file paths.",
        "从 {modules} 中删除 {removed}；依据文件路径推断。",
    ),
    "arch_local": (
        "Contained in {modules}; no structural change is evident from file paths.",
        "集中在 {modules}；从文件路径看不出结构性变化。",
    ),
    "perf_yes": (
        "The message marks this as performance work; confirm the gain with a benchmark.",
        "提交信息表明这是性能优化；请用基准测试确认收益。",
    ),
    "perf_no": (
        "No performance-relevant change detected from paths or message.",
        "从路径和提交信息中未发现与性能相关的变更。",
    ),
    "sec_terms": (
        "The message mentions {terms}; review the fix and its test coverage carefully.",
        "提交信息提到 {terms}；请仔细审查修复及其测试覆盖。",
    ),
    "sec_type": (
        "The commit is labelled as security work; review it carefully.",
        "该提交被标注为安全相关工作；请仔细审查。",
    ),
    "sec_paths": (
        "Touches security-sensitive paths ({paths}), though the message names no security issue.",
        "触及安全敏感路径（{paths}），但提交信息未提及安全问题。",
    ),
    "sec_no": (
        "No security-relevant change detected from paths or message.",
        "从路径和提交信息中未发现与安全相关的变更。",
    ),
    "risk_breaking": (
        "Breaking change: dependent code or configuration may stop working until migrated.",
        "破坏性变更：依赖方的代码或配置在迁移前可能无法工作。",
    ),
    "risk_security": (
        "Security fix: an incomplete patch or a missing backport could leave users exposed.",
        "安全修复：补丁不完整或未向旧版本移植可能使用户继续暴露于风险。",
    ),
    "risk_large": (
        "A large change ({lines} in {files}) is hard to review thoroughly.",
        "大规模变更（{files}，{lines}）难以全面审查。",
    ),
    "risk_untested": (
        "No test files changed alongside this {label} change.",
        "此{label}变更未同时修改任何测试文件。",
    ),
    "risk_removed": (
        "Removes {removed}; callers of the removed code may break.",
        "删除了 {removed}；调用被删除代码的地方可能出错。",
    ),
    "risk_dependencies": (
        "Dependency updates can bring upstream behaviour changes.",
        "依赖更新可能带来上游的行为变化。",
    ),
    "risk_revert": (
        "Reverting may bring back the problem the original change addressed.",
        "回滚可能重新引入原改动所解决的问题。",
    ),
    "risk_bot": (
        "Automated change; its correctness rests on the bot's configuration and CI.",
        "自动化变更；其正确性依赖机器人的配置和 CI。",
    ),
    "risk_merge": (
        "No risk beyond that of the merged commits themselves.",
        "除被合并的提交本身外，没有额外风险。",
    ),
    "risk_none": (
        "No specific risk is evident from the commit metadata.",
        "从提交元数据看不出特定风险。",
    ),
    "rec_breaking": ("Document the migration path in the release notes.", "在发布说明中写明迁移方法。"),
    "rec_security": (
        "Release the fix promptly and check whether older versions need a backport.",
        "尽快发布修复，并确认旧版本是否需要移植补丁。",
    ),
    "rec_untested": ("Add or update tests that cover the change.", "补充或更新覆盖此变更的测试。"),
    "rec_large": ("Review the change in smaller parts, module by module.", "按模块分批审查此变更。"),
    "rec_dependencies": (
        "Check that CI passed and skim the upstream changelog before releasing.",
        "发布前确认 CI 通过并浏览上游变更日志。",
    ),
    "rec_performance": ("Benchmark before and after to confirm the improvement.", "在改动前后做基准测试以确认提升。"),
    "rec_bot": ("No action needed beyond checking that CI passed.", "除确认 CI 通过外无需其他操作。"),
    "rec_merge": ("See the analyses of the merged commits.", "请查看被合并提交各自的分析。"),
    "rec_none": ("No action needed beyond the usual review.", "除常规审查外无需其他操作。"),
    "no_subject": ("(no commit message)", "（无提交信息）"),
    "no_files": ("(no file list)", "（无文件列表）"),
    "unknown_author": ("an unknown author", "未知作者"),
}


def _t(key: str, language: str, **fields: object) -> str:
    text = _TEXT[key][0 if language == "en" else 1]
    return text.format(**fields) if fields else text


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
    label = _LABELS[language][kind]
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
        risks.append(_t("risk_untested", language, label=_LABELS[language][kind]))
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
    label = _LABELS[language][kind]
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


def apply_floor(commit: CommitRecord, analysis: Analysis) -> Analysis:
    """Hold a model's importance to the rules no analysis may break, whoever made it.

    Breaking changes and security fixes are at least high; typo fixes are low; docs, style, test,
    ci and chore commits are at most medium. When the importance moves, the reason is the rule's,
    so the reason always explains the importance shown.
    """
    facts = _facts(commit)
    author = plain(commit.author_login or commit.author_name or "", 60) or _t("unknown_author", analysis.language)
    rule, reason = _importance(facts, analysis.language, author, bot=False)
    kind = facts.change_type
    if kind == "merge":
        return analysis
    forced = None
    if (facts.breaking or rule is Importance.HIGH and facts.security_terms) and analysis.importance is not Importance.HIGH:
        forced = Importance.HIGH
    elif facts.typo and not facts.breaking and analysis.importance is not Importance.LOW:
        forced = Importance.LOW
    elif kind in _LOW_TYPES and rule is Importance.LOW and analysis.importance is Importance.HIGH:
        forced = Importance.MEDIUM
        reason = _t(f"reason_{kind}", analysis.language)
    if forced is None:
        return analysis
    return replace(analysis, importance=forced, importance_reason=reason)


class HeuristicAnalyzer:
    """Analyses every commit with the heuristic: no LLM, no network."""

    model = HEURISTIC_MODEL
    calls = 0

    def __init__(self, *, bot_logins: Iterable[str] = DEFAULT_BOT_LOGINS) -> None:
        self._bot_logins = frozenset(bot_logins)

    def analyze(self, commit: CommitRecord, language: str) -> Analysis:
        """The heuristic analysis of commit in language."""
        return analyze_heuristic(commit, language, bot=is_bot(commit, self._bot_logins))

    def analyze_many(self, items: Sequence[tuple[CommitRecord, str]]) -> list[Analysis]:
        """Analyses of (commit, language) pairs, in input order."""
        return [self.analyze(commit, language) for commit, language in items]

    def close(self) -> None:
        """Nothing to release; here so every analyzer can be closed alike."""
