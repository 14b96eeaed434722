"""Render one repository's daily report to Markdown and to JSON; pure functions, no I/O.

Both the table of contents and each commit's body take the importance from the same field
(`Analysis.importance`), and every analysed commit is rendered by the same function with the
same fields in the same order, so the report cannot disagree with itself.
"""
from __future__ import annotations

import dataclasses
import datetime
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.analysis import HEURISTIC_MODEL, LANGUAGES, Analysis, Importance
from newsletter.commits import CommitRecord, FileChange
from newsletter.i18n import has, t

JSON_SCHEMA_VERSION = 1
STATUSES = ("ok", "failed")
GROUPS = ("high", "medium", "low", "merge")  # display order; "merge" holds every unanalysed commit
TITLE_LIMIT = 60  # characters of a commit title in the table and the table of contents
ERROR_LIMIT = 500  # characters of a fetch error shown in the report
SHORT_SHA = 7
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
IMPORTANCE_MARKS = {"high": "🔴", "medium": "🟡", "low": "🟢"}


@dataclass(frozen=True)
class ReportEntry:
    """One commit of the day and its analysis (None for merge commits: shown, not analysed)."""

    commit: CommitRecord
    analysis: Analysis | None


@dataclass(frozen=True)
class ReportData:
    """Everything one repository's daily report shows; entries in any order."""

    repo: str
    date: datetime.date
    language: str
    entries: tuple[ReportEntry, ...]
    timezone: str = "UTC"
    analyzer: str = HEURISTIC_MODEL
    status: str = "ok"
    error: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable of entries but store a tuple so the report stays hashable and immutable.
        object.__setattr__(self, "entries", tuple(self.entries))
        if self.language not in LANGUAGES:
            raise ValueError(f"unsupported report language {self.language!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown report status {self.status!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc

    def counts(self) -> dict[str, int]:
        """Commits per importance; "merge" counts the commits shown without analysis."""
        counts = {"total": len(self.entries), "high": 0, "medium": 0, "low": 0, "merge": 0}
        for entry in self.entries:
            counts[_group(entry)] += 1
        return counts

    def prompt_tokens(self) -> int:
        """Prompt tokens summed over every analysis."""
        return sum(e.analysis.prompt_tokens for e in self.entries if e.analysis is not None)

    def completion_tokens(self) -> int:
        """Completion tokens summed over every analysis."""
        return sum(e.analysis.completion_tokens for e in self.entries if e.analysis is not None)

    @property
    def heuristic(self) -> bool:
        """True when no LLM took part: the report must say so."""
        return self.analyzer == HEURISTIC_MODEL


# Ordering -----------------------------------------------------------------------------------

def _group(entry: ReportEntry) -> str:
    return "merge" if entry.analysis is None else Importance(entry.analysis.importance).value


def _utc(moment: datetime.datetime) -> datetime.datetime:
    # CommitRecord promises aware datetimes; a naive one is taken as UTC rather than local time.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _newest_first(entry: ReportEntry) -> tuple[float, str]:
    return (-_utc(entry.commit.committed_at).timestamp(), entry.commit.sha)


def sorted_entries(report: ReportData) -> list[ReportEntry]:
    """High, medium, low, then merges; newest first within each group."""
    return sorted(report.entries, key=lambda e: (GROUPS.index(_group(e)), *_newest_first(e)))


def _by_time(report: ReportData) -> list[ReportEntry]:
    return sorted(report.entries, key=_newest_first)


def stats_line(report: ReportData) -> str:
    """One line of counts, e.g. "15 commits | 🔴 high 7 | 🟡 medium 4 | 🟢 low 4"."""
    counts, lang = report.counts(), report.language
    total_key = "report.stats.commits_one" if counts["total"] == 1 else "report.stats.commits"
    parts = [t(total_key, lang, n=counts["total"])]
    parts += [t(f"report.stats.{group}", lang, n=counts[group]) for group in ("high", "medium", "low")]
    if counts["merge"]:
        parts.append(t("report.stats.merge", lang, n=counts["merge"]))
    return " | ".join(parts)


# Escaping -----------------------------------------------------------------------------------

# str.splitlines() boundaries: a title is what comes before the first of them.
_LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Bidirectional overrides can make text display differently from what it says.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
# Every ASCII punctuation character that can start Markdown or HTML syntax inline.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!&~])")
# A list item that itself starts like a list, a quote or a rule must not become one.
_BLOCK_START = re.compile(r"^([-+=])|^(\d+)([.)])")
# A CommonMark code span: a maximal backtick run closed by the next run of the same length.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def _clean(text: str) -> str:
    text = _BIDI.sub("", text or "")
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return _SPACES.sub(" ", text).strip()


def _escape_plain(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)


def escape_text(text: str) -> str:
    """Commit-sourced text as one inert Markdown line: no HTML, links, emphasis or table breaks."""
    return _escape_plain(_clean(text))


def escape_rich(text: str) -> str:
    """Analysis text as one inert Markdown line, keeping its `code spans` (whose content is literal)."""
    text, out, pos = _clean(text), [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos:match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _list_item(text: str) -> str:
    def neutralise(match: re.Match) -> str:
        return f"\\{match.group(1)}" if match.group(1) else f"{match.group(2)}\\{match.group(3)}"

    return _BLOCK_START.sub(neutralise, escape_rich(text))


def safe_url(url) -> str | None:
    """An absolute http(s) URL, percent-encoded so it cannot leave a link or attribute; None otherwise.

    The one check every format (Markdown, email, web page, feed) uses before making a link.
    """
    url = str(url or "").strip()
    if any(unicodedata.category(c) == "Cc" for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # Percent-encode everything that could end the destination or break a table cell.
    return quote(url, safe=":/?#@!$&'*+,;=%~-._")


def commit_title(commit: CommitRecord) -> str:
    """The commit message's first non-blank line, cleaned of control characters."""
    return _clean(_LINE_BREAK.split((commit.message or "").strip(), maxsplit=1)[0])


# Code points that belong to the character before them: cutting before one splits a glyph.
def _extends(char: str) -> bool:
    code = ord(char)
    return bool(unicodedata.combining(char)) or char == "\u200d" or 0xFE00 <= code <= 0xFE0F \
        or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F


def truncate(text: str, limit: int = TITLE_LIMIT) -> str:
    """Text cut to at most limit characters with "…", on a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = limit - 1
    space = text.rfind(" ", 0, cut + 1)
    if space >= limit // 2:
        cut = space
    else:
        while cut > 0 and (_extends(text[cut]) or text[cut - 1] == "\u200d"):
            cut -= 1
    return text[:cut].rstrip() + "…"


# Markdown -----------------------------------------------------------------------------------

def _hex(sha: str) -> str:
    return "".join(c for c in (sha or "").lower() if c in "0123456789abcdef")


def _anchors(shas: list[str]) -> dict[str, str]:
    """Anchor ids keyed by SHA: c- plus the short SHA, lengthened only where two would collide."""
    hexes = {sha: _hex(sha) for sha in shas}
    anchors: dict[str, str] = {}
    for i, (sha, digits) in enumerate(hexes.items()):
        length = SHORT_SHA
        others = [o for o in hexes.values() if o != digits]
        while length < len(digits) and any(o[:length] == digits[:length] for o in others):
            length += 1
        anchors[sha] = f"c-{digits[:length]}" if digits else f"c-n{i}"
    return anchors


class _Renderer:
    """Holds what every line needs (language, time zone, anchors) while one report is rendered."""

    def __init__(self, report: ReportData):
        self.report = report
        self.lang = report.language
        self.zone = ZoneInfo(report.timezone)
        self.anchors = _anchors([e.commit.sha for e in report.entries])

    def anchor(self, entry: ReportEntry) -> str:
        return self.anchors[entry.commit.sha]

    def t(self, key: str, **fields) -> str:
        return t(key, self.lang, **fields)

    def time(self, entry: ReportEntry) -> str:
        return _utc(entry.commit.committed_at).astimezone(self.zone).strftime(TIME_FORMAT)

    def title(self, entry: ReportEntry) -> str:
        return commit_title(entry.commit) or self.t("report.no_message")

    def author(self, entry: ReportEntry) -> str:
        return escape_text(entry.commit.author_name or entry.commit.author_login or "?")

    def label(self, key: str) -> str:
        return f"**{self.t(key)}**{self.t('report.colon')}"

    def block_label(self, key: str) -> str:
        return self.label(key).rstrip()

    def commit_link(self, entry: ReportEntry, text: str) -> str:
        url = safe_url(entry.commit.html_url)
        return f"[{text}]({url})" if url else "—"

    def short_sha(self, entry: ReportEntry) -> str:
        # Hex digits only: the SHA sits inside a code span, where escapes would show literally.
        return _hex(entry.commit.sha)[:SHORT_SHA] or "?"

    def render(self) -> str:
        report = self.report
        lines = [f"# {self.t('report.title', date=report.date.isoformat())}", "",
                 f"## {escape_text(report.repo)}", ""]
        if report.status == "failed":
            error = escape_text(truncate(_clean(report.error or ""), ERROR_LIMIT))
            lines += [f"> {self.t('report.failed', error=error or self.t('report.failed_unknown'))}", ""]
        # A failed fetch with nothing to show ends at the failure: "0 commits" would be a false claim.
        if report.entries or report.status == "ok":
            lines += self.body()
        return "\n".join(lines).rstrip("\n") + "\n"

    def body(self) -> list[str]:
        report = self.report
        lines = self.notes()
        lines += [f"### {self.t('report.section.stats')}", "", f"> {stats_line(report)}", ""]
        if not report.entries:
            return lines + [self.t("report.empty", date=report.date.isoformat())]
        lines += self.table()
        ordered = sorted_entries(report)
        groups = {g: [e for e in ordered if _group(e) == g] for g in GROUPS}
        lines += self.contents(groups)
        for group in GROUPS:
            if groups[group]:
                lines += [f"### {self.t(f'report.group.{group}', n=len(groups[group]))}", ""]
            for entry in groups[group]:
                lines += self.unanalysed(entry) if group == "merge" else self.analysed(entry)
        return lines

    def notes(self) -> list[str]:
        report, notes = self.report, []
        if not report.entries:
            return []
        if report.heuristic:
            notes.append(self.t("report.heuristic_note"))
        else:
            notes.append(self.t("report.model_note", model=escape_text(report.analyzer)))
            analysed = [e for e in report.entries if e.analysis is not None]
            fallbacks = sum(1 for e in analysed if e.analysis.fallback)
            if fallbacks:
                notes.append(self.t("report.fallback_summary", n=fallbacks, total=len(analysed)))
        prompt, completion = report.prompt_tokens(), report.completion_tokens()
        if prompt or completion:
            total = prompt + completion
            notes.append(self.t("report.tokens", prompt=prompt, completion=completion, total=total))
        # Consecutive quote lines would merge into one paragraph; a lone ">" keeps them apart.
        return ["\n>\n".join(f"> {n}" for n in notes), ""]

    def table(self) -> list[str]:
        header = [self.t("report.table.time", tz=escape_text(self.report.timezone)),
                  self.t("report.table.author"), self.t("report.table.message"), self.t("report.table.link")]
        lines = [f"### {self.t('report.section.commits')}", "",
                 "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for entry in _by_time(self.report):
            message = f"[{escape_text(truncate(self.title(entry)))}](#{self.anchor(entry)})"
            link = self.commit_link(entry, f"`{self.short_sha(entry)}`")
            lines.append(f"| {self.time(entry)} | {self.author(entry)} | {message} | {link} |")
        return lines + [""]

    def contents(self, groups: dict[str, list[ReportEntry]]) -> list[str]:
        lines = [f"### {self.t('report.section.toc')}", ""]
        for group in GROUPS:
            if not groups[group]:
                continue
            lines.append(f"- {self.t(f'report.group.{group}', n=len(groups[group]))}")
            for entry in groups[group]:
                lines.append(f"  - [{escape_text(truncate(self.title(entry)))}](#{self.anchor(entry)})")
        return lines + [""]

    def heading(self, entry: ReportEntry) -> list[str]:
        meta = " · ".join([
            f"{self.label('report.field.sha')}`{self.short_sha(entry)}`",
            f"👤 {self.author(entry)}",
            f"🕒 {self.time(entry)}",
            f"🔗 {self.commit_link(entry, self.t('report.view_commit'))}",
        ])
        anchor = f'<a id="{self.anchor(entry)}"></a>'
        return [anchor, "", f"#### {escape_text(self.title(entry))}", "", meta, ""]

    def bullets(self, items: tuple[str, ...]) -> list[str]:
        items = [i for i in items if _clean(i)]
        if not items:
            return [f"- {self.t('report.none')}"]
        return [f"- {_list_item(item)}" for item in items]

    def text(self, value: str) -> str:
        return escape_rich(value) or self.t("report.none")

    def analysed(self, entry: ReportEntry) -> list[str]:
        analysis = entry.analysis
        lines = self.heading(entry)
        if analysis.fallback:
            reason = escape_text(analysis.fallback_reason or "") or self.t("report.fallback_unknown")
            lines += [f"> {self.t('report.fallback_note', reason=reason)}", ""]
        change_key = f"change_type.{analysis.change_type}"
        change_type = self.t(change_key if has(change_key) else "change_type.other")
        importance = Importance(analysis.importance).value
        importance_text = f"{IMPORTANCE_MARKS[importance]} {self.t(f'importance.{importance}')}"
        reason = escape_rich(analysis.importance_reason)
        if reason:
            importance_text = self.t("report.importance_reason", importance=importance_text, reason=reason)
        insight = analysis.insight
        lines += [
            f"{self.label('report.field.change_type')}{change_type}", "",
            f"{self.label('report.field.importance')}{importance_text}", "",
            f"{self.label('report.field.summary')}{self.text(analysis.summary)}", "",
            self.block_label("report.field.impact_scope"), "", *self.bullets(analysis.impact_scope), "",
            self.block_label("report.field.insight"), "",
            f"- {self.label('report.field.architecture')}{self.text(insight.architecture)}",
            f"- {self.label('report.field.performance')}{self.text(insight.performance)}",
            f"- {self.label('report.field.security')}{self.text(insight.security)}", "",
            self.block_label("report.field.risks"), "", *self.bullets(analysis.risks), "",
            self.block_label("report.field.recommendations"), "", *self.bullets(analysis.recommendations), "",
            "---", "",
        ]
        return lines

    def unanalysed(self, entry: ReportEntry) -> list[str]:
        note = self.t("report.merge_note" if entry.commit.is_merge else "report.unanalysed_note")
        return self.heading(entry) + [note, "", "---", ""]


def render_markdown(report: ReportData) -> str:
    """The report as Markdown: title, notes, stats, commit table, contents, then every commit."""
    return _Renderer(report).render()


# JSON ---------------------------------------------------------------------------------------

_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileChange))


def _commit_json(commit: CommitRecord, include_patches: bool) -> dict:
    data = commit.to_dict()
    data["committed_at"] = _utc(commit.committed_at).isoformat()
    files = []
    for change in commit.files:
        item = {"filename": change.filename, "status": change.status,
                "additions": change.additions, "deletions": change.deletions,
                "patch_chars": None if change.patch is None else len(change.patch)}
        if include_patches:
            item["patch"] = change.patch
        files.append(item)
    data["files"] = files
    return data


def render_json(report: ReportData, *, include_patches: bool = False) -> dict:
    """The report as JSON-serialisable data; patches are replaced by their size unless asked for."""
    renderer = _Renderer(report)
    entries = []
    for entry in sorted_entries(report):
        entries.append({
            "anchor": renderer.anchor(entry),
            "group": _group(entry),
            "local_time": renderer.time(entry),
            "title": commit_title(entry.commit),
            "commit": _commit_json(entry.commit, include_patches),
            "analysis": None if entry.analysis is None else entry.analysis.to_dict(),
        })
    prompt, completion = report.prompt_tokens(), report.completion_tokens()
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "repo": report.repo,
        "date": report.date.isoformat(),
        "language": report.language,
        "timezone": report.timezone,
        "analyzer": report.analyzer,
        "status": report.status,
        "error": report.error,
        "counts": report.counts(),
        "stats_line": stats_line(report),
        "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        "entries": entries,
    }


def _commit_from_json(data: dict) -> CommitRecord:
    # Drop the derived patch_chars: FileChange only takes its own fields.
    files = [{k: v for k, v in f.items() if k in _FILE_FIELDS} for f in data.get("files") or ()]
    return CommitRecord.from_dict({**data, "files": files})


def report_from_json(data: dict) -> ReportData:
    """Rebuild a report from render_json output (patches come back only if they were included)."""
    version = data.get("schema_version", JSON_SCHEMA_VERSION)
    if version > JSON_SCHEMA_VERSION:
        raise ValueError(f"report JSON schema {version} is newer than {JSON_SCHEMA_VERSION}")
    entries = tuple(
        ReportEntry(
            commit=_commit_from_json(item["commit"]),
            analysis=None if item.get("analysis") is None else Analysis.from_dict(item["analysis"]),
        )
        for item in data.get("entries") or ()
    )
    return ReportData(
        repo=data["repo"],
        date=datetime.date.fromisoformat(data["date"]),
        language=data["language"],
        entries=entries,
        timezone=data.get("timezone", "UTC"),
        analyzer=data.get("analyzer", HEURISTIC_MODEL),
        status=data.get("status", "ok"),
        error=data.get("error"),
    )
