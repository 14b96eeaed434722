"""The personalized daily email (the digest): each subscriber's repositories, filtered by their thresholds.

`DigestRenderer` compiles every piece of a repository's section once per day and language (all
of a repository's pieces in one MJML document), and a skeleton (head, header, footer) once per
language; a subscriber's email is then string assembly: the skeleton with their own values,
around the cached pieces they chose. bench/naive.py renders the same email from scratch, one
Jinja + MJML compile per subscriber: the baseline of bench/render.py and the tests' reference.

Why the two agree: the template puts a `<mj-raw><!--d:piece-->` marker before every piece and
`<!--d:end-->` after the last, so compiled HTML splits at the markers into the same fragments
whichever document they were compiled in (MRML renders body-level sections independently). The
only per-document output is the <head> CSS (column widths, media queries); every piece uses one
full-width column, and each piece document's head is checked to equal the skeleton's.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from markupsafe import Markup, escape

from ..analysis.result import Analysis
from ..clock import zone
from ..i18n import LANGUAGES, t
from ..reports.model import TIME_FORMAT, DailyReport, Entry, first_sentence
from ..reports.wording import (
    MARKS,
    change_type_label,
    fallback_note,
    group_label,
    importance_label,
    merge_brings,
    no_message,
    unanalyzed_note,
)
from ..text import plain, rich_html, truncate
from .headers import SubscriberView, list_headers, personal_values, subject, subscriber_values
from .layout import (
    COLLAPSED_NOTE,
    HIGHLIGHTS_HEADING,
    TRUNCATED_NOTE,
    WEEK_HIGHLIGHTS_HEADING,
    Fit,
    Piece,
    RepoDay,
    Section,
    all_pieces,
    fit_counts,
    head_pieces,
    repo_day,
    section_plan,
    threshold_value,
    totals,
    week_of,
)
from .message import OutgoingMessage
from .placeholders import (
    HTML_PLACEHOLDERS,
    PLACEHOLDER_NONCE,
    TEXT_PLACEHOLDERS,
    TIME_PLACEHOLDERS,
    TIME_STAMP,
    fill,
)
from .templates import compile_mjml, environment

DEFAULT_HTML_BUDGET = 100_000  # bytes; Gmail clips HTML bodies past about 102 KB
IMPORTANCE_COLORS = {"high": "#cf222e", "medium": "#9a6700", "low": "#1a7f37", "unanalyzed": "#57606a",
                     "merge": "#8250df"}
IMPORTANCE_TINTS = {"high": "#ffebe9", "medium": "#fff8c5", "low": "#dafbe1", "unanalyzed": "#eaeef2",
                    "merge": "#fbefff"}
TITLE_CHARS = 200  # a full commit title; one-line entries are cut shorter
LINE_TITLE_CHARS = 90
FIELD_CHARS = 2000  # one analysis field: bounds what a runaway LLM answer can add to an email
LIST_ITEMS = 12

PIECE_MARK = "<!--d:piece-->"
END_MARK = "<!--d:end-->"
MARKS_PATTERN = re.compile(r"<!--d:(?:piece|end)-->")
_TEXT_SLOT = "\x00slot\x00"
# Per-subscriber values are compiled into the skeleton as these tokens and substituted afterwards.
_TOKEN = re.compile(r"@@(\w+)@@")
_VALUE_NAMES = ("summary", "preheader", "why", "preferences_url", "unsubscribe_url")
_TOKENS = {name: f"@@{name}@@" for name in _VALUE_NAMES}
# No web fonts: those would make every open a request to a third party.
FONT = "-apple-system,Segoe UI,Helvetica,Arial,PingFang SC,Microsoft YaHei,sans-serif"
# After the preheader, so a client's preview stops there instead of running into the body.
PREHEADER_PADDING = Markup("&#847;&zwnj;&nbsp;" * 60)
BRIEF_CHARS = 140  # a medium commit's one line of summary
TEXT_COLUMNS = 78  # the plain-text part is wrapped here; a URL too long for a line keeps a line of its own

Reports = Mapping[tuple[str, str], DailyReport]



@lru_cache(maxsize=4096)
def _local_time(stamp: str, timezone: str) -> str:
    moment = datetime.datetime.strptime(stamp, TIME_STAMP).replace(tzinfo=datetime.UTC)
    return f"{moment.astimezone(ZoneInfo(timezone)).strftime(TIME_FORMAT)} ({timezone})"


def localize_times(digest: RenderedDigest, timezone: str, shared: bool = False) -> RenderedDigest:
    """A window's email with its commit times (time placeholders) in the reader's zone.

    shared: the placeholders stay and the reader's local times become their substitutions, so readers
    of every zone get the same content and share provider requests; otherwise they are filled in.
    """
    times = {match.group(): _local_time(match.group(1), timezone)
             for content in (digest.html, digest.text) for match in TIME_PLACEHOLDERS.finditer(content)}
    if not times:
        return digest
    if shared:
        return dataclasses.replace(digest, substitutions={**digest.substitutions, **times})
    return dataclasses.replace(digest, html=fill(digest.html, times), text=fill(digest.text, times))


@dataclass(frozen=True)
class RenderedDigest:
    """One subscriber's email, ready to send; counts say what it holds.

    Rendered shared (DigestRenderer.render(..., shared=True)), subject, html and text hold
    placeholders where the subscriber's own address and links go, and substitutions maps each
    placeholder to its value; otherwise substitutions is empty and the values are in place.
    """

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    counts: dict[str, int]
    substitutions: dict[str, str] = field(default_factory=dict)

    def filled(self) -> RenderedDigest:
        """The subscriber's own email: placeholders replaced by their values."""
        if not self.substitutions:
            return self
        values = self.substitutions
        return dataclasses.replace(self, subject=fill(self.subject, values), html=fill(self.html, values),
                                   text=fill(self.text, values), substitutions={})

    def message(self) -> OutgoingMessage:
        """The email as an OutgoingMessage for a mailer."""
        own = self.filled()
        return OutgoingMessage(to=own.to, subject=own.subject, html=own.html, text=own.text,
                               headers=dict(own.headers))


# What the templates call --------------------------------------------------------------------------

def email_rich(value: object) -> Markup:
    """Analysis text as email HTML: escaped, bounded, `code spans` as <code> (styled by the email's <style>)."""
    return rich_html(value, FIELD_CHARS)


def email_plain(value: object) -> str:
    """Analysis text as one bounded plain line."""
    return plain(value, FIELD_CHARS)


def items(values: Sequence[str]) -> list[str]:
    """The non-empty items of a list field, at most LIST_ITEMS."""
    return [v for v in (plain(v, FIELD_CHARS) for v in list(values)[:LIST_ITEMS]) if v]


def title(entry: Entry, lang: str, limit: int = TITLE_CHARS) -> str:
    """The entry's title cut to limit, or the words for an empty message."""
    return truncate(plain(entry.title), limit) or no_message(lang)


def brief(entry: Entry) -> str:
    """A medium commit's one line of summary: the summary's first sentence, bounded."""
    summary = entry.analysis.summary if entry.analysis is not None else ""
    return truncate(first_sentence(summary), BRIEF_CHARS) if plain(summary) else ""


# Plain text wrapped at TEXT_COLUMNS -----------------------------------------------------------------

_UNBREAKABLE = re.compile(r"://|@|^-rd-")  # URLs, addresses and placeholders are never split
_PIECES = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff"
                     r"\u3000-\u303f\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+")
_BULLET = re.compile(r"^(?:[-*▸] |\d+\. )")


@lru_cache(maxsize=8192)
def _char_width(c: str) -> int:
    return 0 if unicodedata.combining(c) or c in "\u200d\ufe0f" else 2 if unicodedata.east_asian_width(c) in "WF" else 1


def width(text: str) -> int:
    """Terminal columns of text: wide (CJK, emoji) characters take two, combining ones none."""
    return len(text) if text.isascii() else sum(map(_char_width, text))


def _wrap_line(line: str) -> list[str]:
    if width(line) <= TEXT_COLUMNS:
        return [line]
    body = line.lstrip(" ")
    indent = line[:len(line) - len(body)]
    bullet = _BULLET.match(body)
    hanging = indent + " " * (len(bullet.group()) if bullet else 0)
    out, current, filled = [], indent, False
    used = len(indent)  # width(current), kept as current grows
    for word in body.split(" "):
        if not word:
            continue
        parts = [word] if _UNBREAKABLE.search(word) else _PIECES.findall(word)
        for index, part in enumerate(parts):
            space = " " if index == 0 and filled else ""
            wide = width(part)
            if filled and used + len(space) + wide > TEXT_COLUMNS:
                out.append(current)
                current, filled, space, used = hanging, False, "", len(hanging)
            while not filled and used + wide > TEXT_COLUMNS and not _UNBREAKABLE.search(part) and len(part) > 1:
                # A word longer than a line is cut (a URL or an address keeps its own line instead).
                cut, taken = 0, 0
                while cut < len(part) and used + taken + _char_width(part[cut]) <= TEXT_COLUMNS:
                    taken += _char_width(part[cut])
                    cut += 1
                cut = max(cut, 1)
                out.append(current + part[:cut])
                current, part, used = hanging, part[cut:], len(hanging)
                wide = width(part)
            current += space + part
            used += len(space) + wide
            filled = True
    out.append(current)
    return [o.rstrip() for o in out]


# A time placeholder stays on the line of the word before it ("🕒 <time>"), as its value would.
_BEFORE_TIME = " -rd-" + PLACEHOLDER_NONCE + "-time"
_GLUED_TIME = "\x00-rd-" + PLACEHOLDER_NONCE + "-time"


def wrap_text(text: str) -> str:
    """text with every line longer than TEXT_COLUMNS wrapped (continuations indented under their line)."""
    glued = text.replace(_BEFORE_TIME, _GLUED_TIME)
    wrapped = "\n".join(wrapped for line in glued.split("\n") for wrapped in _wrap_line(line))
    return wrapped.replace(_GLUED_TIME, _BEFORE_TIME)


def text_values(values: Mapping[str, str], email: str, shown_email: str) -> dict[str, str]:
    """The plain-text values of the skeleton: the summary and the footer wrapped at TEXT_COLUMNS.

    shown_email is what `values` holds for the address (a placeholder in shared content). The address
    gets a line of its own in the footer, so the lines around it break the same way whatever its
    length: readers whose emails differ only in their address keep sharing one content.
    """
    why = values["why"]
    before, found, after = why.partition(shown_email)
    if found:
        why = "\n".join(part for part in (wrap_text(before.rstrip()), shown_email, wrap_text(after.strip())) if part)
    else:
        why = wrap_text(why)
    return {**values, "summary": wrap_text(values["summary"]), "why": why}


def overview_line(piece: Piece, lang: str) -> str:
    """A repository's row in the overview: its shown counts, or why it shows nothing."""
    repo = piece.repo
    assert repo is not None
    if repo.status == "missing":
        return t("digest.overview.no_report", lang)
    if repo.status == "failed":
        return t("digest.overview.failed", lang)
    if not repo.total:
        return t("digest.overview.no_commits", lang)
    parts = [f"{MARKS[g]} {n}" for g, n in piece.shown.items() if n]
    if not parts:
        parts.append(t("digest.overview.none", lang))
    if piece.omitted:
        parts.append(t("digest.overview.omitted", lang, n=piece.omitted))
    return t("digest.sep", lang).join(parts)


def rest_line(piece: Piece, lang: str) -> str:
    """What a section left out: nothing at the threshold, and/or how many lower commits."""
    parts = []
    if not sum(piece.shown.values()):
        key = "digest.week.nothing_at_threshold" if piece.repo is not None and piece.repo.weekly \
            else "digest.nothing_at_threshold"
        parts.append(t(key, lang, threshold=t(f"threshold.{piece.threshold}", lang)))
    if piece.omitted:
        parts.append(t("digest.omitted_one" if piece.omitted == 1 else "digest.omitted", lang, n=piece.omitted))
    return " ".join(parts)


def importance_text(entry: Entry, analysis: Analysis, lang: str) -> str:
    """"🔴 High — reason", as the Markdown report words it."""
    label = importance_label(entry.group, lang)
    reason = email_plain(analysis.importance_reason)
    return t("report.importance_reason", lang, importance=label, reason=reason) if reason else label


def bullets(values: Sequence[str], lang: str) -> str:
    """Indented plain-text list lines ("None" when empty), without a final newline."""
    return "\n".join(f"    - {v}" for v in (items(values) or [t("report.none", lang)]))


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The email environment with the digest's filters and helpers."""
    env = environment().overlay()
    env.filters.update(rich=email_rich, plain=email_plain, cut=lambda value, n: plain(value, n))
    env.globals.update(colors=IMPORTANCE_COLORS, tints=IMPORTANCE_TINTS, marks=MARKS, font=FONT,
                       overview_line=overview_line, rest_line=rest_line, importance_text=importance_text,
                       importance_label=importance_label, group_label=group_label,
                       change_type_label=change_type_label,
                       fallback_note=fallback_note, unanalyzed_note=unanalyzed_note, merge_brings=merge_brings, bullets=bullets,
                       items=items, title=title, line_title_chars=LINE_TITLE_CHARS, brief=brief,
                       preheader_padding=PREHEADER_PADDING)
    return env


def mjml_document(date: datetime.date, lang: str, pieces: list[Piece], values: Mapping[str, str],
                  week: datetime.date | None = None) -> str:
    """The MJML of an email holding pieces, with values in the skeleton; week: a weekly email's first day."""
    return template_environment().get_template("digest_email.mjml").render(
        lang=lang, date=date.isoformat(), week=week.isoformat() if week else "", pieces=pieces, **values)


def text_document(date: datetime.date, lang: str, pieces: list[Piece], values: Mapping[str, str],
                  slot: str = "", week: datetime.date | None = None) -> str:
    """The plain-text part of an email holding pieces."""
    return wrap_text(template_environment().get_template("digest_email.txt").render(
        lang=lang, date=date.isoformat(), week=week.isoformat() if week else "", pieces=pieces, slot=slot,
        **values))


def week_start(date: datetime.date, reports: Reports) -> datetime.date:
    """A weekly email's first day: the local date of its window's start when the reports know it
    (WindowReports' start and timezone), else the sixth day before date."""
    start, timezone = getattr(reports, "start", None), getattr(reports, "timezone", None)
    if isinstance(start, datetime.datetime) and isinstance(timezone, str):
        try:
            first = start.astimezone(zone(timezone)).date()
        except ValueError:
            first = None
        if first is not None and first <= date:
            return first
    return date - datetime.timedelta(days=6)


def html_size(html: str) -> int:
    return len(html.encode("utf-8"))


def html_budget(config: Mapping[str, Any]) -> int:
    # DIGEST_HTML_BUDGET is optional: absent from a config, the default applies.
    return int(config.get("DIGEST_HTML_BUDGET") or DEFAULT_HTML_BUDGET)


def subscriptions_of(subscriber: SubscriberView) -> list[tuple[str, str]]:
    """The subscriber's (repository, threshold) pairs, checked, each repository once."""
    if subscriber.language not in LANGUAGES:
        raise ValueError(f"unsupported language {subscriber.language!r}")
    seen, out = set(), []
    for repo, threshold in subscriber.subscriptions:
        if repo not in seen:
            seen.add(repo)
            out.append((repo, threshold_value(threshold)))
    return out


def finish(config: Mapping[str, Any], date: datetime.date, subscriber: SubscriberView, sections: list[Section],
           counts: dict[str, int], html: str, text: str, fit: Fit, size: int,
           substitutions: dict[str, str] | None = None) -> RenderedDigest:
    """The rendered email with its subject, headers and counts."""
    counts = {**counts, **fit_counts(sections, fit), "html_bytes": size}
    return RenderedDigest(to=subscriber.email, subject=subject(date, subscriber.language, sections, counts),
                          html=html, text=text, headers=list_headers(config, subscriber), counts=counts,
                          substitutions=substitutions or {})


# The renderer ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Fragment:
    html: str
    text: str
    size: int


class _Template:
    """A compiled string with @@name@@ tokens, split once so filling it is a join."""

    def __init__(self, source: str):
        self.parts = _TOKEN.split(source)  # literal, name, literal, name, ..., literal

    def fill(self, values: Mapping[str, str]) -> str:
        parts = self.parts[:]
        parts[1::2] = [values[name] for name in parts[1::2]]
        return "".join(parts)


@dataclass(frozen=True)
class _Skeleton:
    head: str  # compiled HTML up to the pieces, with tokens, for the head check
    tail: str
    html_head: _Template
    html_tail: _Template
    text_head: _Template
    text_tail: _Template


# A compiled body item: a fragment, or (full, one-line) fragments for a commit that may be collapsed.
_Item = _Fragment | tuple[_Fragment, _Fragment]


@dataclass(frozen=True)
class _CompiledSection:
    """A section for one (repository, threshold, language), compiled: what assembly copies."""

    plan: Section
    overview: _Fragment
    body: _Fragment  # every commit in full
    items: tuple[_Item, ...]


# Compiled commit pieces shared by every renderer of the process, oldest first (a bounded cache).
SHARED_PIECES = 8_000
_SHARED: dict[tuple[Any, ...], _Fragment] = {}
_SHARED_KINDS = frozenset({"commit", "brief", "line"})


def _shared_key(config: Mapping[str, Any], lang: str, piece: Piece) -> tuple[Any, ...] | None:
    """What a commit piece's output depends on, or None for pieces that read a whole report (counts,
    headings): the commit with its analysis, anchor and time, and the repository's links and modes."""
    if piece.kind not in _SHARED_KINDS or piece.entry is None or piece.repo is None:
        return None
    repo = piece.repo
    what = repr((piece.entry, repo.repo, repo.url, repo.permalink, repo.window, repo.weekly, repo.timezone))
    return (config["BASE_URL"], lang, piece.kind, piece.key, hashlib.sha256(what.encode()).hexdigest())


class DigestRenderer:
    """Renders many subscribers' emails for one day (or one email window, weekly's too), compiling each
    repository section only once."""

    def __init__(self, config: Mapping[str, Any], date: datetime.date, reports: Reports,
                 private: frozenset[str] = frozenset(), window: bool = False, weekly: bool = False):
        self.config = config
        self.date = date
        self.reports = reports
        self.window = window  # reports of an email's window, not of one day: links go to permalinks
        # The weekly email's layout, and the week's first day: a weekly renderer compiles its own
        # skeleton and pieces, so nothing weekly reaches a daily renderer's caches, nor the reverse.
        self.weekly = weekly
        self.week_start = week_start(date, reports) if weekly else None
        self.private = private  # repositories without a public web report: no links to one
        self.budget = html_budget(config)
        self._skeletons: dict[str, _Skeleton] = {}
        self._pieces: dict[tuple[str, str], dict[tuple[str, ...], _Fragment]] = {}
        self._sections: dict[tuple[str, str, str], _CompiledSection] = {}
        self._note_fragments: dict[str, dict[tuple[str, ...], _Fragment]] = {}
        # MRML compiles so far and the seconds spent preparing pieces: the bench and tests check that
        # compiling stays per repository and language, never per subscriber.
        self.compiles = 0
        self.prepare_seconds = 0.0

    # Compiling, once per language or per (repository, language) -------------------------------

    def _compile(self, mjml: str) -> str:
        self.compiles += 1
        return compile_mjml(mjml)

    def _skeleton(self, lang: str) -> _Skeleton:
        skeleton = self._skeletons.get(lang)
        if skeleton is None:
            html = self._compile(mjml_document(self.date, lang, [], _TOKENS, self.week_start))
            head, tail = html.split(END_MARK)
            text = text_document(self.date, lang, [], _TOKENS, slot=_TEXT_SLOT, week=self.week_start)
            text_head, text_tail = text.split(_TEXT_SLOT)
            skeleton = _Skeleton(head, tail, _Template(head), _Template(tail), _Template(text_head),
                                 _Template(text_tail))
            self._skeletons[lang] = skeleton
        return skeleton

    def _compile_pieces(self, lang: str, pieces: list[Piece]) -> dict[tuple[str, ...], _Fragment]:
        """Compile pieces in one MJML document inside the skeleton and cut the HTML at the markers."""
        skeleton = self._skeleton(lang)
        html = self._compile(mjml_document(self.date, lang, pieces, _TOKENS, self.week_start))
        body, tail = html.split(END_MARK)
        head, *fragments = body.split(PIECE_MARK)
        if head != skeleton.head or tail != skeleton.tail or len(fragments) != len(pieces):
            # A piece needed head CSS the skeleton lacks (e.g. a new column width): assembly would be wrong.
            raise RuntimeError("digest piece document does not match the skeleton; keep pieces to one full-width column")
        texts = template_environment().get_template("digest_parts.txt").module
        return {piece.key: _Fragment(fragment, wrap_text(str(texts.piece(piece, lang))), html_size(fragment))  # type: ignore[attr-defined]
                for piece, fragment in zip(pieces, fragments, strict=True)}

    def _repo_day(self, repo: str, lang: str) -> RepoDay:
        day = repo_day(self.config, self.date, repo, lang, self.reports.get((repo, lang)), repo in self.private,
                       self.window)
        if not self.weekly:
            return day
        # The daily reports of the week's commits, when the reports know them (WindowReports does).
        report_days, unreported = getattr(self.reports, "report_days", None), getattr(self.reports, "unreported", None)
        return week_of(self.config, day, report_days(repo) if report_days and day.report is not None else (),
                       unreported(repo) if unreported and day.report is not None else 0)

    def _repo_pieces(self, repo: str, lang: str) -> dict[tuple[str, ...], _Fragment]:
        cached = self._pieces.get((repo, lang))
        if cached is None:
            started = time.perf_counter()
            pieces = all_pieces(self._repo_day(repo, lang))
            # A commit's own pieces (its card, its lines) read nothing but the commit and the
            # repository's links: another renderer of this process (the next hour's window, another
            # date) may have compiled them already.
            keys = {piece.key: _shared_key(self.config, lang, piece) for piece in pieces}
            cached = {key: _SHARED[shared] for key, shared in keys.items() if shared is not None and shared in _SHARED}
            fresh = [piece for piece in pieces if piece.key not in cached]
            if fresh:
                compiled = self._compile_pieces(lang, fresh)
                cached.update(compiled)
                for key, fragment in compiled.items():
                    shared = keys[key]
                    if shared is not None:
                        _SHARED[shared] = fragment
                while len(_SHARED) > SHARED_PIECES:
                    _SHARED.pop(next(iter(_SHARED)))
            self._pieces[(repo, lang)] = cached
            self.prepare_seconds += time.perf_counter() - started
        return cached

    def _section(self, repo: str, threshold: str, lang: str) -> _CompiledSection:
        key = (repo, threshold, lang)
        section = self._sections.get(key)
        if section is None:
            fragments = self._repo_pieces(repo, lang)
            plan = section_plan(self._repo_day(repo, lang), threshold)
            compiled: tuple[_Item, ...] = tuple(
                (fragments[i[0].key], fragments[i[1].key]) if isinstance(i, tuple) else fragments[i.key]
                for i in plan.body)
            full = [i[0] if isinstance(i, tuple) else i for i in compiled]
            body = _Fragment("".join(f.html for f in full), "".join(f.text for f in full), sum(f.size for f in full))
            section = self._sections[key] = _CompiledSection(plan, fragments[plan.overview.key], body, compiled)
        return section

    def _notes(self, lang: str) -> dict[tuple[str, ...], _Fragment]:
        if lang not in self._note_fragments:
            heading = WEEK_HIGHLIGHTS_HEADING if self.weekly else HIGHLIGHTS_HEADING
            self._note_fragments[lang] = self._compile_pieces(lang, [COLLAPSED_NOTE, TRUNCATED_NOTE, heading])
        return self._note_fragments[lang]

    # Assembly, per subscriber -----------------------------------------------------------------

    def render(self, subscriber: SubscriberView, shared: bool = False) -> RenderedDigest | None:
        """The subscriber's email, or None when nothing reaches their thresholds and send_empty is off.

        shared: placeholders where the subscriber's own address and links go (RenderedDigest.substitutions
        maps them to the values), so every subscriber of the same content gets the same subject, html and text.
        """
        lang = subscriber.language
        compiled = [self._section(repo, threshold, lang) for repo, threshold in subscriptions_of(subscriber)]
        compiled.sort(key=lambda c: c.plan.repo.status == "failed")  # as layout.failed_last orders sections
        sections = [c.plan for c in compiled]
        notable = any(s.shown_total for s in sections)
        if not sections or not (notable or subscriber.send_empty):
            return None
        skeleton = self._skeleton(lang)
        counts = totals(sections)
        values = subscriber_values(self.config, subscriber, sections, counts)
        escaped = {name: str(escape(value)) for name, value in values.items()}
        head, tail = skeleton.html_head.fill(escaped), skeleton.html_tail.fill(escaped)
        own_email = personal_values(subscriber)["email"]
        texts = text_values(values, own_email, own_email)
        fragments = self._head_fragments(lang, sections)
        # The size budget counts the subscriber's own values, shared or not: the same email either way.
        fit, size = Fit(), html_size(head) + html_size(tail) + sum(f.size for f in fragments)
        substitutions: dict[str, str] = {}
        if shared:
            values = subscriber_values(self.config, subscriber, sections, counts, personal=TEXT_PLACEHOLDERS)
            texts = text_values(values, own_email, TEXT_PLACEHOLDERS["email"])
            html_values = subscriber_values(self.config, subscriber, sections, counts, personal=HTML_PLACEHOLDERS)
            escaped = {name: str(escape(value)) for name, value in html_values.items()}
            head, tail = skeleton.html_head.fill(escaped), skeleton.html_tail.fill(escaped)
            # Escaping works character by character, so escaping text that holds a placeholder and then
            # putting the escaped value in gives the bytes of escaping the text with the value in it.
            for name, value in personal_values(subscriber).items():
                substitutions[TEXT_PLACEHOLDERS[name]] = value
                substitutions[HTML_PLACEHOLDERS[name]] = str(escape(value))
        html_parts, text_parts = [head], [skeleton.text_head.fill(texts)]
        html_parts += [f.html for f in fragments]
        text_parts += [f.text for f in fragments]
        if notable:
            body = sum(c.body.size for c in compiled)
            if size + body <= self.budget:
                html_parts += [c.body.html for c in compiled]
                text_parts += [c.body.text for c in compiled]
                size += body
            else:
                fit, size = self._shrink(lang, compiled, size, html_parts, text_parts)
        html_parts.append(tail)
        text_parts.append(skeleton.text_tail.fill(texts))
        return finish(self.config, self.date, subscriber, sections, counts, "".join(html_parts),
                      "".join(text_parts), fit, size, substitutions)

    def _head_fragments(self, lang: str, sections: list[Section]) -> list[_Fragment]:
        """The compiled highlights and overview rows, as layout.head_pieces orders them."""
        notes = self._notes(lang)
        return [notes[p.key] if p.repo is None else self._repo_pieces(p.repo.repo, lang)[p.key]
                for p in head_pieces(sections)]

    def missing(self, subscriber: SubscriberView) -> list[str]:
        """The subscriber's repositories without a report for the day in their language."""
        return [repo for repo, _threshold in subscriptions_of(subscriber)
                if (repo, subscriber.language) not in self.reports]

    def _shrink(self, lang: str, compiled: list[_CompiledSection], frame: int, html_parts: list[str],
                text_parts: list[str]) -> tuple[Fit, int]:
        """Append the body shrunk to the budget (the Fit bench/naive.py bisects for); return it and the size."""
        notes = self._notes(lang)
        items_ = [item for section in compiled for item in section.items]
        lines = [item[1] if isinstance(item, tuple) else item for item in items_]
        note = notes[COLLAPSED_NOTE.key]
        size = frame + note.size + sum(f.size for f in lines)
        chosen: list[_Fragment]
        if size <= self.budget:
            # Stage one: every commit one line fits, so upgrade leading commits to full while they fit.
            full = 0
            for item in items_:
                if isinstance(item, tuple):
                    if size + item[0].size - item[1].size > self.budget:
                        break
                    size += item[0].size - item[1].size
                    full += 1
            fit, chosen, seen = Fit(full=full), [], 0
            for item in items_:
                if isinstance(item, tuple):
                    chosen.append(item[0] if seen < full else item[1])
                    seen += 1
                else:
                    chosen.append(item)
        else:
            # Stage two: even one line each is too much, so keep the leading items that fit.
            note = notes[TRUNCATED_NOTE.key]
            size, keep = frame + note.size, 0
            for fragment in lines:
                if size + fragment.size > self.budget:
                    break
                size += fragment.size
                keep += 1
            fit, chosen = Fit(full=0, keep=keep), lines[:keep]
        html_parts.append(note.html)
        text_parts.append(note.text)
        html_parts += [f.html for f in chosen]
        text_parts += [f.text for f in chosen]
        return fit, size
