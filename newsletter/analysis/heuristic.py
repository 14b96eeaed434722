"""Heuristic analysis: every field of an Analysis written from the commit's facts, with no LLM.

Used when no LLM is configured, for bot and merge commits, and as the fallback when an LLM call
fails. The importance is evidence.judge's verdict (its module docstring lists the rules); every
text cites what the facts say about this commit (names, files, versions, counts) and a field with
nothing specific to say is left empty rather than filled with a stock sentence.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..i18n import LANGUAGES, t
from ..i18n import has as t_has
from ..sources.commit import CommitRecord
from ..text import plain
from .bots import DEFAULT_BOT_LOGINS, is_bot
from .evidence import Reading, Verdict, bounds, judge, read
from .facts import CommitFacts, facts_of, role_of
from .result import HEURISTIC_MODEL, Analysis, AnalysisSet, Importance, Insight, Texts

MAX_SCOPE = 8
MAX_SUBJECT_CHARS = 160
MAX_NAMES = 3
_CONTAINER_DIRS = {"src", "lib", "libs", "pkg", "packages", "internal", "cmd", "modules", "services", "crates",
                   "plugins", "components", "apps"}
_ORDER = {Importance.LOW: 1, Importance.MEDIUM: 2, Importance.HIGH: 3}


def _t(key: str, language: str, **fields: object) -> str:
    return t(f"heuristic.{key}", language, **fields)


def _code(text: object, limit: int = 80) -> str:
    """text as an inline code span (backticks inside are dropped)."""
    return f"`{plain(str(text), limit).replace('`', '')}`"


def _join(items: Iterable[str], language: str) -> str:
    return ("、" if language == "zh" else ", ").join(items)


def _names(items: Sequence[str], language: str, limit: int = MAX_NAMES) -> str:
    shown = [_code(item) for item in items[:limit]]
    more = len(items) - limit
    text = _join(shown, language)
    return text + (_t("more", language, n=more) if more > 0 else "")


def _label(kind: str, language: str) -> str:
    """The change type as the report header names it, lower-cased mid-sentence in English."""
    label = t(f"change_type.{kind}", language) if kind != "shipped" else _t("change", language)
    return label if language == "zh" else label[:1].lower() + label[1:]


def _count(n: int, language: str, unit: str) -> str:
    return _t(f"count.{unit}.{'one' if n == 1 else 'many'}", language, n=f"{n:,}")


# Diff shape ---------------------------------------------------------------------------------------

def _shape(commit: CommitRecord, roles: Iterable[str] | None, language: str) -> str:
    """What happened to the files of the given roles (all files when None), with their names and lines."""
    wanted = None if roles is None else set(roles)
    files = [f for f in commit.files if wanted is None or role_of(f.filename) in wanted] or list(commit.files)
    if not files:
        return ""
    if len(files) == 1:
        f = files[0]
        add, dele = max(f.additions, 0), max(f.deletions, 0)
        name = _code(f.filename, 100)
        if f.status == "added":
            return _t("shape.added", language, file=name, lines=_count(add, language, "line"))
        if f.status == "removed":
            return _t("shape.removed", language, file=name, lines=_count(dele, language, "line"))
        if f.status == "renamed" and add + dele == 0:
            return _t("shape.renamed", language, file=name)
        if dele == 0:
            return _t("shape.grown", language, file=name, lines=_count(add, language, "line"))
        if add == 0:
            return _t("shape.cut", language, file=name, lines=_count(dele, language, "line"))
        return _t("shape.edited", language, file=name, add=f"{add:,}", dele=f"{dele:,}")
    statuses = {f.status for f in files}
    names = _names([f.filename for f in files], language)
    key = "shape.many_added" if statuses == {"added"} else "shape.many_renamed" if statuses == {"renamed"} \
        else "shape.many"
    add = sum(max(f.additions, 0) for f in files)
    dele = sum(max(f.deletions, 0) for f in files)
    return _t(key, language, files=_count(len(files), language, "file"), names=names, add=f"{add:,}", dele=f"{dele:,}")


def _roles_phrase(facts: CommitFacts, language: str) -> str:
    parts = [_t(f"role.{role}", language, files=_count(count.files, language, "file"))
             for role, count in facts.roles.items()]
    return _join(parts, language)


# Importance reason --------------------------------------------------------------------------------

def _reason(verdict: Verdict, commit: CommitRecord, reading: Reading | None, language: str, author: str) -> str:
    e = verdict.evidence
    rule = verdict.rule
    if rule == "merge":
        return _t("reason.merge", language, n=e["parents"])
    if rule == "empty":
        return _t("reason.empty", language)
    if rule in ("bot", "bot.dependency"):
        if rule == "bot.dependency":
            return _t("reason.bot_dependency", language, author=author, name=_code(e["name"]),
                      old=_code(e["old"] or "—"), new=_code(e["new"] or "—"))
        return _t("reason.bot", language, author=author, shape=_shape(commit, None, language))
    if rule.startswith("api."):
        kind = rule[4:]
        key = f"reason.api.{kind}" if t_has(f"heuristic.reason.api.{kind}") else "reason.api.other"
        more = _t("reason.api_more", language, n=e["count"] - 1) if e.get("count", 1) > 1 else ""
        return _t(key, language, name=_code(e["name"]), file=e["file"], detail=e.get("detail") or "",
                  kind=kind.replace("_", " ")) + more
    if rule in ("security.weakens", "security.hardens") or rule.startswith("security.") and "evidence" in e:
        kind = _t(f"security_kind.{e['kind']}", language) if t_has(f"heuristic.security_kind.{e['kind']}") \
            else e["kind"].replace("_", " ")
        key = "reason.security_weakens" if rule == "security.weakens" else "reason.security_hardens"
        return _t(key, language, kind=kind, file=e["file"], evidence=_code(e["evidence"], 90))
    if rule == "security.advisory_dependency":
        return _t("reason.advisory_dependency", language, term=e["term"], name=_code(e["name"]),
                  old=_code(e["old"] or "—"), new=_code(e["new"] or "—"))
    if rule == "security.advisory":
        return _t("reason.advisory", language, term=e["term"], lines=_count(e["lines"], language, "line"))
    if rule == "marker.breaking":
        return _t("reason.marker_breaking", language, lines=_count(e["lines"], language, "line"),
                  files=_count(e["files"], language, "file"))
    if rule.startswith("only.") and rule not in ("only.comments", "only.inert"):
        roles = e.get("roles") or []
        return _t(f"reason.{rule}", language, shape=_shape(commit, roles or None, language),
                  roles=_join([_t(f"role_name.{r}", language) for r in roles], language))
    if rule == "only.comments":
        return _t("reason.only_comments", language, shape=_shape(commit, ["source"], language))
    if rule == "only.inert":
        return _t("reason.only_inert", language, shape=_shape(commit, None, language),
                  roles=_join([_t(f"role_name.{r}", language) for r in e["roles"]], language))
    if rule == "mostly_unshipped":
        return _t("reason.mostly_unshipped", language, shipped=_count(e["shipped"], language, "line"),
                  lines=_count(e["lines"], language, "line"))
    if rule in ("cosmetic.whitespace", "cosmetic.spelling", "hint.typo", "hint.format", "hint.lint"):
        return _t(f"reason.{rule.replace('.', '_')}", language, shape=_shape(commit, None, language))
    if rule == "toolchain":
        return _t("reason.toolchain", language, file=e["file"], old=_code(e["old"]), new=_code(e["new"]))
    if rule == "dependency.major":
        more = _t("reason.dependency_more", language, n=e["count"] - 1) if e["count"] > 1 else ""
        return _t("reason.dependency_major", language, name=_code(e["name"]), old=_code(e["old"] or "—"),
                  new=_code(e["new"] or "—")) + more
    if rule in ("dependency.dev", "dependency.routine"):
        more = _t("reason.dependency_more", language, n=e["count"] - 1) if e["count"] > 1 else ""
        return _t(f"reason.{rule.replace('.', '_')}", language, name=_code(e["name"]), old=_code(e["old"] or "—"),
                  new=_code(e["new"] or "—")) + more
    if rule == "dependency.lockfile":
        return _t("reason.dependency_lockfile", language, shape=_shape(commit, ["lockfile"], language))
    if rule == "release":
        return _t("reason.release", language, version=_code(e["version"]), shape=_shape(commit, None, language))
    if rule == "reach.root":
        return _t("reason.reach_root", language, files=_count(e["files"], language, "file"),
                  lines=_count(e["lines"], language, "line"))
    if rule == "reach.size":
        return _t("reason.reach_size", language, lines=_count(e["lines"], language, "line"), times=e["times"],
                  typical=_count(e["typical"], language, "line"))
    # shipped: a behaviour change in shipped code
    label = _label(verdict.change_type if verdict.change_type != "other" else "shipped", language)
    kind = e.get("kind", "lines")
    fields = dict(label=label, name=_code(e.get("name", "")), file=e.get("file", ""),
                  detail=e.get("detail", ""), lines=_count(e["lines"], language, "line"),
                  files=_count(e["files"], language, "file"))
    if kind in ("added", "changed", "internal") and e.get("count", 1) > 1:
        fields["name"] += _t("more", language, n=e["count"] - 1)
    if kind == "lines":
        return _t("reason.shipped_lines", language, shape=_shape(commit, ["source", "migration", "build"], language),
                  label=label)
    return _t(f"reason.shipped_{kind}", language, **fields)


# Other fields -------------------------------------------------------------------------------------

def _module_of(filename: str) -> str | None:
    parts = [p for p in filename.strip().replace("\\", "/").split("/") if p]
    if not parts:
        return None
    if len(parts) > 2 and parts[0].lower() in _CONTAINER_DIRS:
        return plain(f"{parts[0]}/{parts[1]}", 80) or None
    return plain(parts[0], 80) or None


def _scope(commit: CommitRecord) -> tuple[str, ...]:
    churn: dict[str, int] = {}
    for change in commit.files:
        module = _module_of(change.filename)
        if module:
            churn[module] = churn.get(module, 0) + max(change.additions, 0) + max(change.deletions, 0)
    return tuple(sorted(churn, key=lambda m: -churn[m]))[:MAX_SCOPE]


def _summary(commit: CommitRecord, verdict: Verdict, facts: CommitFacts, language: str, author: str) -> str:
    subject = plain(commit.title, MAX_SUBJECT_CHARS) or _t("no_subject", language)
    label = _label(verdict.change_type, language)
    if verdict.rule == "merge":
        return _t("summary_merge", language, n=len(commit.parents), author=author, subject=subject)
    if facts.empty:
        return _t("summary_empty", language, author=author, subject=subject)
    by_change: dict[str, list[str]] = {}
    for symbol in facts.symbols:
        if role_of(symbol.file) == "test":
            continue
        names = by_change.setdefault(symbol.change, [])
        if symbol.name not in names:
            names.append(symbol.name)
    clauses = [_t(f"summary_symbols.{change}", language, names=_names(names, language))
               for change, names in by_change.items() if t_has(f"heuristic.summary_symbols.{change}")][:3]
    what = _join(clauses, language) if clauses else _shape(commit, None, language)
    return _t("summary", language, label=label[:1].upper() + label[1:], subject=subject, what=what,
              roles=_roles_phrase(facts, language), add=f"{facts.additions:,}", dele=f"{facts.deletions:,}")


def _architecture(commit: CommitRecord, reading: Reading, language: str) -> str:
    facts = reading.facts
    parts: list[str] = []
    added = [f.filename for f in commit.files if f.status == "added" and role_of(f.filename) not in ("test", "docs")]
    removed = [f.filename for f in commit.files if f.status == "removed" and role_of(f.filename) not in ("test", "docs")]
    if added:
        parts.append(_t("arch.added", language, n=_count(len(added), language, "file"), names=_names(added, language)))
    if removed:
        parts.append(_t("arch.removed", language, n=_count(len(removed), language, "file"),
                        names=_names(removed, language)))
    public_new = [s.name for s in facts.symbols if s.public and s.change == "added" and role_of(s.file) != "test"]
    if public_new:
        parts.append(_t("arch.public_added", language, names=_names(public_new, language)))
    moved = [s.name for s in facts.api if s.kind == "symbol_moved"]
    if moved:
        parts.append(_t("arch.moved", language, names=_names(moved, language)))
    for found in reading.extra_breaks:
        if found.kind == "package_made_internal":
            parts.append(_t("arch.internal", language, name=_code(found.name)))
    new_deps = [d.name for d in facts.dependencies if d.change == "added" and not d.dev]
    gone_deps = [d.name for d in facts.dependencies if d.change == "removed" and not d.dev]
    if new_deps:
        parts.append(_t("arch.dependency_added", language, names=_names(new_deps, language)))
    if gone_deps:
        parts.append(_t("arch.dependency_removed", language, names=_names(gone_deps, language)))
    if "migration" in facts.roles:
        migrations = [f.filename for f in commit.files if role_of(f.filename) == "migration"]
        parts.append(_t("arch.migration", language, names=_names(migrations, language)))
    return _t("sentence", language, text=("；" if language == "zh" else "; ").join(parts)) if parts else ""


def _performance(commit: CommitRecord, reading: Reading, verdict: Verdict, language: str) -> str:
    if verdict.change_type != "performance":
        return ""
    facts = reading.facts
    benches = [s.name for s in facts.symbols if role_of(s.file) == "test" and s.change == "added"
               and "bench" in s.name.lower()]
    code = [s.name for s in facts.symbols if role_of(s.file) != "test"]
    where = _names(code, language) if code else _names([f.filename for f in commit.files], language)
    if benches:
        return _t("perf.benchmarked", language, where=where, bench=_names(benches, language))
    return _t("perf.claimed", language, where=where)


def _security(reading: Reading, verdict: Verdict, language: str) -> str:
    parts = []
    for signal in reading.security[:3]:
        kind = _t(f"security_kind.{signal.kind}", language) if t_has(f"heuristic.security_kind.{signal.kind}") \
            else signal.kind.replace("_", " ")
        parts.append(_t(f"sec.{signal.direction}", language, kind=kind, file=signal.file,
                        evidence=_code(signal.evidence, 90)))
    for found in reading.hardening[:2]:
        parts.append(_t("sec.hardens", language, kind=_t(f"security_kind.{found.kind}", language), file=found.file,
                        evidence=_code(found.evidence, 90)))
    if not parts and verdict.rule.startswith("security.advisory"):
        parts.append(_t("sec.advisory", language, term=verdict.evidence["term"]))
    return _join(parts, language) if parts else ""


def _risks_and_recommendations(commit: CommitRecord, reading: Reading, verdict: Verdict,
                               language: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    facts = reading.facts
    risks: list[str] = []
    recs: list[str] = []
    for signal in reading.breaking[:3]:
        detail = f" ({plain(signal.detail, 120)})" if signal.detail else ""
        risks.append(_t("risk.breaking", language, name=_code(signal.name), file=signal.file, detail=detail))
        replacement = _replacement(signal.name, facts)
        if replacement:
            recs.append(_t("rec.migrate_to", language, name=_code(signal.name), new=_code(replacement)))
    for found in reading.extra_breaks[:2]:
        risks.append(_t(f"risk.{found.kind}", language, name=_code(found.name), file=found.file))
        recs.append(_t("rec.release_note", language, name=_code(found.name)))
    weakened = next((s for s in reading.security if s.direction == "weakens"), None)
    if weakened is not None:
        kind = _t(f"security_kind.{weakened.kind}", language) \
            if t_has(f"heuristic.security_kind.{weakened.kind}") else weakened.kind
        risks.append(_t("risk.weakens", language, kind=kind, file=weakened.file, evidence=_code(weakened.evidence, 90)))
        recs.append(_t("rec.weakens", language, kind=kind, file=weakened.file))
    for dep in reading.runtime_majors[:2]:
        risks.append(_t("risk.major", language, name=_code(dep.name), old=_code(dep.old or "—"),
                        new=_code(dep.new or "—")))
        recs.append(_t("rec.major", language, name=_code(dep.name), new=_code(dep.new or "—")))
    for found in reading.toolchain[:1]:
        risks.append(_t("risk.toolchain", language, old=_code(found.old), new=_code(found.new), file=found.file))
    for signal in facts.api:
        if signal.kind == "default_changed" and signal.detail:
            risks.append(_t("risk.default", language, name=_code(signal.name), detail=plain(signal.detail, 100)))
            break
    if facts.reverted_sha and facts.reverted_title:
        risks.append(_t("risk.revert", language, sha=_code(facts.reverted_sha[:12]),
                        title=plain(facts.reverted_title, 100)))
    if facts.truncated_files or facts.files_without_patch:
        n = facts.truncated_files + facts.files_without_patch
        risks.append(_t("risk.unread", language, files=_count(n, language, "file")))
    return tuple(dict.fromkeys(risks)), tuple(dict.fromkeys(recs))


def _replacement(name: str, facts: CommitFacts) -> str | None:
    """The new name of a renamed symbol, or the one added in the same file that shares the most of its name."""
    for symbol in facts.symbols:
        if symbol.change == "renamed" and symbol.old_name and symbol.old_name.split(".")[-1] == name.split(".")[-1]:
            return symbol.name
    for signal in facts.api:
        if signal.kind == "symbol_renamed" and signal.name == name and signal.detail and "→" in signal.detail:
            return signal.detail.split("→", 1)[1].strip()
    return None


# The analyzer -------------------------------------------------------------------------------------

def analyze_heuristic(commit: CommitRecord, language: str, *, bot: bool = False,
                      typical_lines: int | None = None) -> Analysis:
    """Analyse a commit from its facts, in language ("zh" or "en"), with model "heuristic".

    typical_lines is the changed lines of the repository's typical commit (the median), when known
    (default: the record's own): only then can size alone make a commit high (see evidence.judge).
    """
    return heuristic_analyses(commit, (language,), bot=bot, typical_lines=typical_lines)[language]


def heuristic_analyses(commit: CommitRecord, languages: Sequence[str], *, bot: bool = False,
                       typical_lines: int | None = None) -> dict[str, Analysis]:
    """The heuristic analysis in each language: the facts and the verdict are read once, the words per language."""
    for language in languages:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    facts = facts_of(commit)
    verdict = judge(commit, facts, bot=bot,
                    typical_lines=commit.typical_lines if typical_lines is None else typical_lines)
    reading = read(commit, facts)
    return {language: _analysis(commit, facts, verdict, reading, language) for language in languages}


def _analysis(commit: CommitRecord, facts: CommitFacts, verdict: Verdict, reading: Reading, language: str) -> Analysis:
    author = plain(commit.author_login or commit.author_name or "", 60) or _t("unknown_author", language)
    if verdict.rule == "merge":
        risks: tuple[str, ...] = ()
        recommendations: tuple[str, ...] = ()
        insight = Insight("", "", "")
    else:
        risks, recommendations = _risks_and_recommendations(commit, reading, verdict, language)
        insight = Insight(architecture=_architecture(commit, reading, language),
                          performance=_performance(commit, reading, verdict, language),
                          security=_security(reading, verdict, language))
    return Analysis(
        change_type=verdict.change_type,
        importance=verdict.importance,
        importance_reason=_reason(verdict, commit, reading, language, author),
        summary=_summary(commit, verdict, facts, language, author),
        impact_scope=_scope(commit),
        insight=insight,
        risks=risks,
        recommendations=recommendations,
        language=language,
        model=HEURISTIC_MODEL,
    )


def apply_floor(commit: CommitRecord, analysis: AnalysisSet) -> AnalysisSet:
    """Hold a model's importance to the evidence rules no analysis may break, whoever made it.

    The verdict's floor and ceiling (evidence.judge) bound the model's importance: a breaking public
    API change or a security signal in shipped code is high, a major runtime dependency or toolchain
    floor at least medium, a tests/docs/CI-only, whitespace-, spelling- or typo-only, formatting or lint
    commit and an empty one low; a model that types its commit docs, style, test, ci or chore cannot
    call it high. When the importance moves, each language's reason is the rule's, so the reason always
    explains the importance shown.
    """
    if commit.is_merge:
        return analysis
    facts = facts_of(commit)
    verdict = judge(commit, facts, typical_lines=commit.typical_lines)  # the bounds the prompt announced
    floor, ceiling = bounds(verdict, analysis.change_type)
    shown = analysis.importance
    if _ORDER[shown] < _ORDER[floor]:
        forced = floor
    elif _ORDER[shown] > _ORDER[ceiling]:
        forced = ceiling
    else:
        return analysis
    reading = read(commit, facts)
    texts = {}
    for language, text in analysis.texts.items():
        author = plain(commit.author_login or commit.author_name or "", 60) or _t("unknown_author", language)
        if forced is verdict.importance:
            reason = _reason(verdict, commit, reading, language, author)
        else:
            reason = _t("reason.model_type", language, label=_label(analysis.change_type, language))
        texts[language] = replace(text, importance_reason=reason)
    return replace(analysis, importance=forced, texts=texts)


class HeuristicAnalyzer:
    """Analyses every commit with the heuristic: no LLM, no network.

    A commit's size is judged against its record's typical_lines (the repository's median commit,
    set by the daily run); without it, size never makes a commit high.
    """

    model = HEURISTIC_MODEL
    calls = 0

    def __init__(self, *, bot_logins: Iterable[str] = DEFAULT_BOT_LOGINS) -> None:
        self._bot_logins = frozenset(bot_logins)

    def analyze(self, commit: CommitRecord, languages: Sequence[str], known: AnalysisSet | None = None) -> AnalysisSet:
        """The heuristic analysis of commit in languages (only their texts added to known, when given)."""
        analyses = heuristic_analyses(commit, languages, bot=is_bot(commit, self._bot_logins))
        if known is not None:
            return known.with_texts({language: Texts.of(a) for language, a in analyses.items()})
        return AnalysisSet.of(analyses)

    def analyze_many(self, items: Sequence[tuple[CommitRecord, Sequence[str], AnalysisSet | None]]
                     ) -> list[AnalysisSet]:
        """Analyses of (commit, languages, known) items, in input order."""
        return [self.analyze(commit, languages, known) for commit, languages, known in items]

    def close(self) -> None:
        """Nothing to release; here so every analyzer can be closed alike."""
