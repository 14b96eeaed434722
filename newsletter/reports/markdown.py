"""The daily report as Markdown, in the seed report's structure; a pure function of the report model.

Both the table of contents and each commit's body take the importance from the same field
(`Entry.group`), and every analyzed commit is rendered by the same function with the same
fields in the same order, so the report cannot disagree with itself.
"""
from __future__ import annotations

from ..analysis.result import Importance
from ..i18n import t
from ..text import markdown_list_item, markdown_rich, markdown_text, plain, truncate
from .model import DailyReport, Entry, Highlight
from .wording import (
    IMPORTANCE_MARKS,
    MARKS,
    change_type_label,
    failure_text,
    fallback_note,
    merge_brings_sentence,
    no_message,
    notes,
    stats_line,
    unanalyzed_note,
)

TITLE_LIMIT = 60  # characters of a commit title in the table and the table of contents


class _Renderer:
    """Holds what every line needs (the report, its language) while one report is rendered."""

    def __init__(self, report: DailyReport):
        self.report = report
        self.lang = report.language
        self.relations = report.relations()

    def t(self, key: str, **fields: object) -> str:
        return t(key, self.lang, **fields)

    def title(self, entry: Entry) -> str:
        return entry.title or no_message(self.lang)

    def label(self, key: str) -> str:
        return f"**{self.t(key)}**{self.t('report.colon')}"

    def block_label(self, key: str) -> str:
        return self.label(key).rstrip()

    def commit_link(self, entry: Entry, text: str) -> str:
        return f"[{text}]({entry.url})" if entry.url else "—"

    def render(self) -> str:
        report = self.report
        lines = [f"# {self.t('report.title', date=report.date.isoformat())}", "",
                 f"## {markdown_text(report.repo)}", ""]
        if report.failed:
            lines += [f"> {markdown_text(failure_text(report))}", ""]
        if report.shows_body:
            lines += self.body()
        return "\n".join(lines).rstrip("\n") + "\n"

    def body(self) -> list[str]:
        report = self.report
        lines = self.notes() + self.highlights()
        lines += [f"### {self.t('report.section.stats')}", "",
                  f"> {stats_line(report.counts(), self.lang)}", ""]
        if not report.entries:
            return lines + [self.t("report.empty", date=report.date.isoformat())]
        lines += self.table()
        groups = report.groups()
        lines += self.contents(groups)
        for group, entries in groups:
            lines += [f"### {self.t(f'report.group.{group}', n=len(entries))}", ""]
            for entry in entries:
                lines += self.analyzed(entry) if entry.analysis is not None else self.unanalyzed(entry)
        return lines

    def notes(self) -> list[str]:
        lines = notes(self.report, escape=markdown_text)
        if not lines:
            return []
        # Consecutive quote lines would merge into one paragraph; a lone ">" keeps them apart.
        return ["\n>\n".join(f"> {line}" for line in lines), ""]

    def highlights(self) -> list[str]:
        """The day's most important changes, one line each, linked to their sections; none, no heading."""
        items = [self.highlight(h) for h in self.report.highlights()]
        return [f"### {self.t('report.section.highlights')}", "", *items, ""] if items else []

    def highlight(self, highlight: Highlight) -> str:
        title = f"[{markdown_text(highlight.title or no_message(self.lang))}](#{highlight.anchor})"
        mark, reason = MARKS[highlight.importance], markdown_rich(highlight.reason)
        return "- " + (self.t("report.highlight", mark=mark, title=title, reason=reason) if reason
                       else f"{mark} {title}")

    def table(self) -> list[str]:
        header = [self.t("report.table.time", tz=markdown_text(self.report.timezone)),
                  self.t("report.table.author"), self.t("report.table.message"), self.t("report.table.link")]
        lines = [f"### {self.t('report.section.commits')}", "",
                 "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for entry in self.report.by_time():
            message = f"[{markdown_text(truncate(self.title(entry), TITLE_LIMIT))}](#{entry.anchor})"
            link = self.commit_link(entry, f"`{entry.short_sha}`")
            lines.append(f"| {entry.local_time} | {markdown_text(entry.author)} | {message} | {link} |")
        return lines + [""]

    def contents(self, groups: list[tuple[str, list[Entry]]]) -> list[str]:
        lines = [f"### {self.t('report.section.toc')}", ""]
        for group, entries in groups:
            lines.append(f"- {self.t(f'report.group.{group}', n=len(entries))}")
            for entry in entries:
                lines.append(f"  - [{markdown_text(truncate(self.title(entry), TITLE_LIMIT))}](#{entry.anchor})")
        return lines + [""]

    def heading(self, entry: Entry) -> list[str]:
        meta = " · ".join([
            f"{self.label('report.field.sha')}`{entry.short_sha}`",
            f"👤 {markdown_text(entry.author)}",
            f"🕒 {entry.local_time}",
            f"🔗 {self.commit_link(entry, self.t('report.view_commit'))}",
        ])
        anchor = f'<a id="{entry.anchor}"></a>'
        return [anchor, "", f"#### {markdown_text(self.title(entry))}", "", meta, ""]

    def bullets(self, items: tuple[str, ...]) -> list[str]:
        return [f"- {markdown_list_item(item)}" for item in items if plain(item)]

    def block(self, key: str, items: tuple[str, ...]) -> list[str]:
        """A labelled list, or nothing at all when the analysis has nothing to say there."""
        bullets = self.bullets(items)
        return [self.block_label(key), "", *bullets, ""] if bullets else []

    def related(self, entry: Entry) -> str | None:
        """"Reverts X" or "Same change as X" for an entry that has such a relation."""
        relation = self.relations.get(entry.sha)
        if relation is None:
            return None
        if relation.anchor:
            target = f"[{markdown_text(truncate(relation.title or relation.short_sha, TITLE_LIMIT))}](#{relation.anchor})"
        else:
            target = f"`{relation.short_sha}`"
        return self.t(f"report.relation.{relation.kind}", target=target)

    def analyzed(self, entry: Entry) -> list[str]:
        analysis = entry.analysis
        assert analysis is not None
        lines = self.heading(entry)
        related = self.related(entry)
        if related:
            lines += [related, ""]
            if self.relations[entry.sha].kind == "same_change":
                return lines + ["---", ""]  # shown once: the analysis is the original's
        note = fallback_note(analysis, self.lang, escape=markdown_text)
        if note:
            lines += [f"> {note}", ""]
        importance = Importance(analysis.importance).value
        importance_text = f"{IMPORTANCE_MARKS[importance]} {self.t(f'importance.{importance}')}"
        reason = markdown_rich(analysis.importance_reason)
        if reason:
            importance_text = self.t("report.importance_reason", importance=importance_text, reason=reason)
        lines += [f"{self.label('report.field.change_type')}{change_type_label(analysis, self.lang)}", "",
                  f"{self.label('report.field.importance')}{importance_text}", ""]
        # A field with nothing specific to say is left out, label and all: no "none" placeholders.
        summary = markdown_rich(analysis.summary)
        if summary:
            lines += [f"{self.label('report.field.summary')}{summary}", ""]
        lines += self.block("report.field.impact_scope", analysis.impact_scope)
        insight = [f"- {self.label(f'report.field.{name}')}{text}" for name, text in (
            ("architecture", markdown_rich(analysis.insight.architecture)),
            ("performance", markdown_rich(analysis.insight.performance)),
            ("security", markdown_rich(analysis.insight.security))) if text]
        if insight:
            lines += [self.block_label("report.field.insight"), "", *insight, ""]
        lines += self.block("report.field.risks", analysis.risks)
        lines += self.block("report.field.recommendations", analysis.recommendations)
        return lines + ["---", ""]

    def unanalyzed(self, entry: Entry) -> list[str]:
        note = unanalyzed_note(entry, self.lang)
        if entry.pull_request_url:
            link = f"[{self.t('report.pull_request', n=entry.pull_request)}]({entry.pull_request_url})"
            note += self.t("report.merge_pull_request", link=link)
        note += merge_brings_sentence(entry, self.lang)
        return self.heading(entry) + [note, "", "---", ""]


def render_markdown(report: DailyReport) -> str:
    """The report as Markdown: title, notes, highlights, stats, commit table, contents, then every commit."""
    return _Renderer(report).render()
