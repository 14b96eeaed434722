"""The words every output of a report shares: the stats line, the notes, labels of groups and types.

The Markdown report, the email, the web page and the feed take these from here, so a count, a
label or a note reads the same wherever a reader meets it.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..analysis.result import Analysis
from ..errors import FAILURE_KINDS
from ..i18n import has, t
from ..text import plain

if TYPE_CHECKING:
    from .model import DailyReport, Entry

IMPORTANCE_MARKS = {"high": "🔴", "medium": "🟡", "low": "🟢"}
UNANALYZED_MARK = "⏸️"
MERGE_MARK = "🔀"
MARKS = {**IMPORTANCE_MARKS, "unanalyzed": UNANALYZED_MARK, "merge": MERGE_MARK}


def stats_line(counts: Mapping[str, int], lang: str) -> str:
    """One line of counts, e.g. "15 commits | 🔴 high 7 | 🟡 medium 4 | 🟢 low 4 · 🔀 2 merges".

    Merges are no commits of the count: they come last, after " · ", and only when there are some;
    so do commits without an analysis, which are counted in the total.
    """
    total = int(counts.get("total") or 0)
    parts = [t("report.stats.commits_one" if total == 1 else "report.stats.commits", lang, n=total)]
    parts += [t(f"report.stats.{group}", lang, n=int(counts.get(group) or 0)) for group in ("high", "medium", "low")]
    if counts.get("unanalyzed"):
        parts.append(t("report.stats.unanalyzed", lang, n=counts["unanalyzed"]))
    line = " | ".join(parts)
    merges = int(counts.get("merge") or 0)
    if merges:
        line += " · " + t("report.stats.merge_one" if merges == 1 else "report.stats.merge", lang, n=merges)
    return line


def notes(report: DailyReport, escape: Callable[[str], str] = plain) -> list[str]:
    """The lines above the stats: who analyzed, how many analyses fell back, the tokens used."""
    if not report.entries:
        return []
    lang = report.language
    if report.heuristic:
        lines = [t("report.heuristic_note", lang)]
    else:
        lines = [t("report.model_note", lang, model=escape(report.analyzer))]
        if report.fallbacks():
            lines.append(t("report.fallback_summary", lang, n=report.fallbacks(), total=report.analyzed()))
    prompt, completion = report.prompt_tokens(), report.completion_tokens()
    if prompt or completion:
        lines.append(t("report.tokens", lang, prompt=prompt, completion=completion, total=prompt + completion))
    return lines


def change_type_label(analysis: Analysis, lang: str) -> str:
    """The change type in lang; "other" for a type the catalog does not know."""
    key = f"change_type.{analysis.change_type}"
    return t(key if has(key) else "change_type.other", lang)


def group_label(group: str, lang: str) -> str:
    """"High", "Medium", "Low", "Not analysed", or "Merge"."""
    if group == "merge":
        return t("change_type.merge", lang)
    return t("report.label.unanalyzed" if group == "unanalyzed" else f"importance.{group}", lang)


def importance_label(group: str, lang: str) -> str:
    """"🔴 High", "⏸️ Not analysed", or "🔀 Merge"."""
    return f"{MARKS[group]} {group_label(group, lang)}"


def fallback_note(analysis: Analysis, lang: str, escape: Callable[[str], str] = plain) -> str | None:
    """Why the heuristic stood in for the model, or None when it did not."""
    if not analysis.fallback:
        return None
    key = f"report.fallback_reason.{plain(analysis.fallback_reason, 60)}"
    # A plain sentence in the report's language; a code we have no sentence for reads as unknown.
    reason = t(key, lang) if has(key) else t("report.fallback_unknown", lang)
    return t("report.fallback_note", lang, reason=escape(reason))


def unanalyzed_note(entry: Entry, lang: str) -> str:
    """Why a commit has no analysis: a merge, or otherwise not analyzed."""
    return t("report.merge_note" if entry.is_merge else "report.unanalyzed_note", lang)


def merge_brings(entry: Entry, lang: str) -> str | None:
    """What a merge brings, e.g. "brings 7 commits, 5 from earlier days"; None when it is no merge or the
    source could not say. Days before the report's day only are "earlier": the merged commits of the
    day itself are listed in the report on their own."""
    merged = entry.commit.merged if entry.is_merge else None
    if merged is None:
        return None
    n, earlier = merged.count, merged.earlier or 0
    if n == 0:
        key = "report.merge_brings_none"
    elif earlier == 0:
        key = "report.merge_brings_one" if n == 1 else "report.merge_brings"
    elif earlier == n:
        key = "report.merge_brings_one_earlier" if n == 1 else "report.merge_brings_all_earlier"
    else:
        key = "report.merge_brings_earlier_one" if earlier == 1 else "report.merge_brings_earlier"
    return t(key, lang, n=n, earlier=earlier)


def merge_brings_sentence(entry: Entry, lang: str) -> str:
    """merge_brings as a sentence that follows the merge note (with its leading space in English); ""
    when there is nothing to say."""
    brings = merge_brings(entry, lang)
    return t("report.merge_brings_sentence", lang, brings=brings) if brings else ""


def no_message(lang: str) -> str:
    """What stands for an empty commit message."""
    return t("report.no_message", lang)


# Reports stored before error_kind was kept: the kind read from the operator's error text.
_OLD_ERROR_KINDS = (
    ("not_found", re.compile(r"RepositoryNotFound|not found|not a git repository|HTTP 404", re.I)),
    ("rate_limited", re.compile(r"rate limit|HTTP 429", re.I)),
    ("unreachable", re.compile(r"SourceUnavailable|still failing|network error|Max retries|NameResolution|"
                               r"Connection|timed? ?out|HTTP 5\d\d|\b5\d\d\b", re.I)),
)


def failure_kind(report: DailyReport) -> str:
    """Why a failed report failed, as one of errors.FAILURE_KINDS (old reports: read from the error text)."""
    if report.error_kind in FAILURE_KINDS:
        return report.error_kind
    error = report.error or ""
    return next((kind for kind, pattern in _OLD_ERROR_KINDS if pattern.search(error)), "other")


def failure_text(report: DailyReport) -> str:
    """What a reader is told about a failed fetch: the kind in their language and that we will try again.

    Never the exception text: that stays in the logs and the run records, for operators.
    """
    lang = report.language
    return t("report.failed", lang, reason=t(f"report.failure.{failure_kind(report)}", lang))
