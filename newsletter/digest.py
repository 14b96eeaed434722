"""The personalized daily email: each subscriber's repositories, filtered by their thresholds.

Two renderers give the same bytes. `render_naive` renders one Jinja template for the whole email
and compiles it with MRML, once per subscriber. `DigestRenderer` compiles every piece of a
repository's section once per day and language (all of a repository's pieces in one MJML
document), and a skeleton (head, header, footer) once per language; a subscriber's email is then
string assembly: the skeleton with their own values, around the cached pieces they chose.

Why the two agree: the template puts a `<mj-raw><!--d:piece-->` marker before every piece and
`<!--d:end-->` after the last, so compiled HTML splits at the markers into the same fragments
whichever document they were compiled in (MRML renders body-level sections independently). The
only per-document output is the <head> CSS (column widths, media queries); every piece uses one
full-width column, and each piece document's head is checked to equal the skeleton's. The naive
renderer removes the markers, the fast one joins fragments without them.
"""
from __future__ import annotations

import dataclasses
import datetime
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape
from mjml import mjml2html

from .analysis import LANGUAGES
from .emails import environment
from .i18n import has, t
from .mailers import OutgoingMessage, clean_header
from .report_render import GROUPS, IMPORTANCE_MARKS, safe_url, truncate

DEFAULT_HTML_BUDGET = 100_000  # bytes; Gmail clips HTML bodies past about 102 KB
THRESHOLD_GROUPS = {"high": ("high",), "medium": ("high", "medium"), "low": GROUPS}
IMPORTANCE_COLORS = {"high": "#cf222e", "medium": "#9a6700", "low": "#1a7f37", "merge": "#8250df"}
IMPORTANCE_TINTS = {"high": "#ffebe9", "medium": "#fff8c5", "low": "#dafbe1", "merge": "#fbefff"}
MERGE_MARK = "🔀"
TITLE_CHARS = 200  # a full commit title; one-line entries are cut shorter
LINE_TITLE_CHARS = 90
FIELD_CHARS = 2000  # one analysis field: bounds what a runaway LLM answer can add to an email
LIST_ITEMS = 12
ERROR_CHARS = 300

_PIECE_MARK = "<!--d:piece-->"
_END_MARK = "<!--d:end-->"
_MARKS = re.compile(r"<!--d:(?:piece|end)-->")
_TEXT_SLOT = "\x00slot\x00"
# Per-subscriber values are compiled into the skeleton as these tokens and substituted afterwards.
_TOKEN = re.compile(r"@@(\w+)@@")
_VALUE_NAMES = ("summary", "why", "preferences_url", "unsubscribe_url")
_TOKENS = {name: f"@@{name}@@" for name in _VALUE_NAMES}

_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
_SPACES = re.compile(r"\s+")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_CODE_STYLE = "font-family:Menlo,Consolas,monospace;font-size:90%;background:#eff1f3;border-radius:4px;padding:0 4px;"
# No web fonts: those would make every open a request to a third party.
FONT = "-apple-system,Segoe UI,Helvetica,Arial,PingFang SC,Microsoft YaHei,sans-serif"


# Public types -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscriberView:
    """What rendering needs of one subscriber; subscriptions are (owner/name, threshold) pairs, in email order."""

    email: str
    language: str
    subscriptions: tuple[tuple[str, str], ...]
    preferences_url: str
    unsubscribe_url: str
    send_empty: bool = False


@dataclass(frozen=True)
class RenderedDigest:
    """One subscriber's email, ready to send; counts say what it holds."""

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    counts: dict[str, int]

    def message(self) -> OutgoingMessage:
        """The email as an OutgoingMessage for a mailer."""
        return OutgoingMessage(to=self.to, subject=self.subject, html=self.html, text=self.text,
                               headers=dict(self.headers))


# Views: outside data cleaned once, shared by both renderers -----------------------------------

def _plain(text: Any, limit: int = FIELD_CHARS) -> str:
    """Outside text as one bounded line: no control characters, bidi overrides or line breaks."""
    text = _CONTROL.sub(" ", _BIDI.sub("", str(text or "")))
    return truncate(_SPACES.sub(" ", text).strip(), limit)


def rich_html(text: str) -> Markup:
    """Escaped analysis text whose `code spans` become <code>: the only markup LLM text gets."""
    escaped = str(escape(text))
    return Markup(_CODE_SPAN.sub(lambda m: f'<code style="{_CODE_STYLE}">{m.group(1)}</code>', escaped))


def report_url(config: dict, repo: str, date: datetime.date, lang: str) -> str:
    """The full web report of one repository, day and language."""
    owner, _, name = repo.partition("/")
    return f"{config['BASE_URL']}/r/{quote(owner, safe='')}/{quote(name, safe='')}/{date.isoformat()}?lang={lang}"


@dataclass(frozen=True)
class CommitView:
    """One commit as both formats show it: outside text cleaned to bounded single lines."""

    anchor: str
    group: str  # high, medium, low or merge
    title: str
    line_title: str
    url: str | None
    web_url: str
    sha: str
    author: str
    time: str
    mark: str
    color: str
    tint: str
    importance_label: str
    change_type: str = ""
    reason: str = ""
    summary: str = ""
    impact_scope: tuple[str, ...] = ()
    architecture: str = ""
    performance: str = ""
    security: str = ""
    risks: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()
    fallback: str | None = None
    note: str = ""  # why an unanalysed commit has no analysis


@dataclass(frozen=True)
class RepoView:
    """One repository's day in one language, ready for the templates."""

    repo: str
    lang: str
    date: str
    url: str
    anchor: str
    status: str  # ok, failed, or missing when there is no report
    error: str
    stats_line: str
    total: int
    commits: tuple[CommitView, ...]


def _items(values: Any) -> tuple[str, ...]:
    cleaned = (_plain(v) for v in list(values or ())[:LIST_ITEMS])
    return tuple(v for v in cleaned if v)


def _commit_view(entry: dict, lang: str, web_url: str, index: int, zone: str) -> CommitView:
    commit, analysis = entry.get("commit") or {}, entry.get("analysis")
    group = entry.get("group") if entry.get("group") in GROUPS else ("merge" if analysis is None else "low")
    sha = "".join(c for c in str(commit.get("sha") or "").lower() if c in "0123456789abcdef")
    anchor = str(entry.get("anchor") or "")
    anchor = anchor if re.fullmatch(r"c-[0-9a-z]+", anchor) else f"c-n{index}"
    title = _plain(entry.get("title") or "", TITLE_CHARS) or t("report.no_message", lang)
    base = dict(
        anchor=anchor, group=group, title=title, line_title=truncate(title, LINE_TITLE_CHARS),
        url=safe_url(commit.get("html_url")), web_url=f"{web_url}#{anchor}", sha=sha[:7] or "?",
        author=_plain(commit.get("author_name") or commit.get("author_login") or "?", 100),
        time=f"{_plain(entry.get('local_time'), 40)} ({zone})",
        color=IMPORTANCE_COLORS[group], tint=IMPORTANCE_TINTS[group],
    )
    if analysis is None:
        merge = len(commit.get("parents") or ()) > 1
        return CommitView(**base, mark=MERGE_MARK, importance_label=t("change_type.merge", lang),
                          note=t("report.merge_note" if merge else "report.unanalysed_note", lang))
    change_key = f"change_type.{analysis.get('change_type')}"
    insight = analysis.get("insight") or {}
    fallback = None
    if analysis.get("fallback"):
        reason = _plain(analysis.get("fallback_reason"), ERROR_CHARS) or t("report.fallback_unknown", lang)
        fallback = t("report.fallback_note", lang, reason=reason)
    return CommitView(
        **base, mark=IMPORTANCE_MARKS[group], importance_label=t(f"importance.{group}", lang),
        change_type=t(change_key if has(change_key) else "change_type.other", lang),
        reason=_plain(analysis.get("importance_reason")), summary=_plain(analysis.get("summary")),
        impact_scope=_items(analysis.get("impact_scope")),
        architecture=_plain(insight.get("architecture")), performance=_plain(insight.get("performance")),
        security=_plain(insight.get("security")), risks=_items(analysis.get("risks")),
        recommendations=_items(analysis.get("recommendations")), fallback=fallback,
    )


def repo_view(config: dict, date: datetime.date, repo: str, lang: str, data: dict | None) -> RepoView:
    """One repository's report (render_json output, or None when missing) as the email shows it."""
    url = report_url(config, repo, date, lang)
    anchor = "repo-" + re.sub(r"[^a-z0-9]+", "-", repo.lower()).strip("-")
    if data is None:
        return RepoView(repo, lang, date.isoformat(), url, anchor, "missing", "", "", 0, ())
    entries = list(data.get("entries") or ())
    # render_json already sorts; a stable re-sort keeps the grouping right for any other producer.
    entries.sort(key=lambda e: GROUPS.index(e.get("group")) if e.get("group") in GROUPS else len(GROUPS))
    zone = _plain(data.get("timezone") or "UTC", 60)
    commits, anchors = [], set()
    for i, entry in enumerate(entries):
        commit = _commit_view(entry, lang, url, i, zone)
        if commit.anchor in anchors:  # fragments are cached by anchor, so each must be unique
            commit = dataclasses.replace(commit, anchor=f"c-n{i}", web_url=f"{url}#c-n{i}")
        anchors.add(commit.anchor)
        commits.append(commit)
    commits = tuple(commits)
    status = "failed" if data.get("status") == "failed" else "ok"
    error = _plain(data.get("error"), ERROR_CHARS) or t("report.failed_unknown", lang)
    return RepoView(repo, lang, date.isoformat(), url, anchor, status, error,
                    _plain(data.get("stats_line"), 300), len(commits), commits)


# Plans: which pieces an email holds -------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Piece:
    """One fragment of an email, rendered by one macro: body-level MJML sections or mj-raw rows."""

    kind: str  # overview, repo, group, commit, line, rest, note
    key: tuple
    repo: RepoView | None = None
    commit: CommitView | None = None
    threshold: str = ""
    group: str = ""
    shown: dict = field(default_factory=dict)
    omitted: int = 0


@dataclass(frozen=True, eq=False)
class Section:
    """One repository at one threshold: its overview row, then its body in email order.

    A body item is a Piece, or a (full, one-line) pair for a commit that may be collapsed.
    """

    repo: RepoView
    threshold: str
    overview: Piece
    body: tuple
    shown: dict
    omitted: int

    @property
    def shown_total(self) -> int:
        return sum(self.shown.values())


def _threshold(value: Any) -> str:
    threshold = str(getattr(value, "value", value))  # models.Threshold or its value
    if threshold not in THRESHOLD_GROUPS:
        raise ValueError(f"unknown threshold {value!r}")
    return threshold


def section_plan(view: RepoView, threshold: str) -> Section:
    """The pieces of one repository's section for one threshold."""
    groups = THRESHOLD_GROUPS[threshold]
    shown = {g: sum(1 for c in view.commits if c.group == g) for g in groups}
    omitted = view.total - sum(shown.values())
    overview = Piece("overview", ("overview", threshold), repo=view, threshold=threshold, shown=shown,
                     omitted=omitted)
    body: list = [Piece("repo", ("repo",), repo=view)]
    for group in groups:
        commits = [c for c in view.commits if c.group == group]
        if commits:
            body.append(Piece("group", ("group", group), repo=view, group=group, shown={group: len(commits)}))
        for commit in commits:
            body.append((Piece("commit", ("commit", commit.anchor), repo=view, commit=commit),
                         Piece("line", ("line", commit.anchor), repo=view, commit=commit)))
    if view.status != "missing" and view.total and (omitted or not sum(shown.values())):
        body.append(Piece("rest", ("rest", threshold), repo=view, threshold=threshold, shown=shown,
                          omitted=omitted))
    return Section(view, threshold, overview, tuple(body), shown, omitted)


def all_pieces(view: RepoView) -> list[Piece]:
    """Every piece any threshold can need from one repository: what its piece document compiles."""
    pieces: dict[tuple, Piece] = {}
    for threshold in THRESHOLD_GROUPS:
        plan = section_plan(view, threshold)
        for item in (plan.overview, *plan.body):
            for piece in item if isinstance(item, tuple) else (item,):
                pieces.setdefault(piece.key, piece)
    return list(pieces.values())


def _subscriptions(subscriber: SubscriberView) -> list[tuple[str, str]]:
    """The subscriber's (repository, threshold) pairs, checked, each repository once."""
    if subscriber.language not in LANGUAGES:
        raise ValueError(f"unsupported language {subscriber.language!r}")
    seen, out = set(), []
    for repo, threshold in subscriber.subscriptions:
        if repo not in seen:
            seen.add(repo)
            out.append((repo, _threshold(threshold)))
    return out


@dataclass(frozen=True)
class Fit:
    """How an email was shrunk to its budget: the first `full` commits in full and the rest one line
    each; with `keep`, only the first `keep` body items at all. Fit() is the whole email."""

    full: int | None = None
    keep: int | None = None


_COLLAPSED_NOTE = Piece("note", ("note", "collapsed"), group="collapsed")
_TRUNCATED_NOTE = Piece("note", ("note", "truncated"), group="truncated")


def layout(sections: list[Section], fit: Fit = Fit()) -> list[Piece]:
    """The email's pieces: overview rows, then the sections, shrunk as `fit` says."""
    pieces = [s.overview for s in sections]
    if not any(s.shown_total for s in sections):
        return pieces
    if fit.keep is not None:
        pieces.append(_TRUNCATED_NOTE)
    elif fit.full is not None:
        pieces.append(_COLLAPSED_NOTE)
    body, seen = [], 0
    for section in sections:
        for item in section.body:
            if isinstance(item, tuple):
                body.append(item[0] if fit.full is None or seen < fit.full else item[1])
                seen += 1
            else:
                body.append(item)
    return pieces + (body if fit.keep is None else body[:fit.keep])


def _fit_counts(sections: list[Section], fit: Fit) -> dict[str, int]:
    if fit == Fit():
        return {"collapsed": 0, "dropped": 0}
    kinds = [p.kind for p in layout(sections, fit)]
    shown = sum(s.shown_total for s in sections)
    return {"collapsed": kinds.count("line"), "dropped": shown - kinds.count("line") - kinds.count("commit")}


# Per-subscriber values, subject and headers ------------------------------------------------------

def _site(config: dict) -> str:
    return _host(config["BASE_URL"])


@lru_cache(maxsize=16)
def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def totals(sections: list[Section]) -> dict[str, int]:
    """Commits shown per importance, repositories, commits left out and failed repositories."""
    counts = {g: sum(s.shown.get(g, 0) for s in sections) for g in GROUPS}
    counts.update(
        repositories=len(sections), shown=sum(s.shown_total for s in sections),
        omitted=sum(s.omitted for s in sections), failed=sum(s.repo.status == "failed" for s in sections),
    )
    return counts


def subscriber_values(config: dict, subscriber: SubscriberView, sections: list[Section],
                      counts: dict[str, int]) -> dict[str, str]:
    """The per-subscriber strings of the skeleton (header summary, footer), as plain text."""
    lang, sep = subscriber.language, t("digest.sep", subscriber.language)
    if counts["shown"]:
        shown_key = "digest.summary.shown_one" if counts["shown"] == 1 else "digest.summary.shown"
        parts = [t(shown_key, lang, n=counts["shown"])]
        parts += [f"{IMPORTANCE_MARKS[g]} {counts[g]}" for g in ("high", "medium", "low") if counts[g]]
        if counts["merge"]:
            parts.append(f"{MERGE_MARK} {counts['merge']}")
        if counts["omitted"]:
            parts.append(t("digest.summary.omitted", lang, n=counts["omitted"]))
    else:
        parts = [t("digest.summary.nothing", lang)]
    if counts["failed"]:
        parts.append(t("digest.summary.failed", lang, n=counts["failed"]))
    repos = t("digest.list_sep", lang).join(s.repo.repo for s in sections)
    return {
        "summary": sep.join(parts),
        "why": t("digest.footer.why", lang, email=_plain(subscriber.email, 320), repos=repos, site=_site(config)),
        "preferences_url": _own_url(subscriber.preferences_url),
        "unsubscribe_url": _own_url(subscriber.unsubscribe_url),
    }


def _own_url(url: str) -> str:
    # Our own links (newsletter.links): anything but a clean http(s) URL is a bug, not outside input.
    safe = safe_url(url)
    if safe is None:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return safe


def subject(date: datetime.date, lang: str, sections: list[Section], counts: dict[str, int]) -> str:
    """E.g. "[Repo Daily] 2026-01-24 · 3 repositories · 7 high"; never holds commit text."""
    sep = t("digest.sep", lang)
    # One repository is named (a validated owner/name, safe in a header); several are counted.
    where = sections[0].repo.repo if len(sections) == 1 else t("digest.subject.repos", lang, n=len(sections))
    if counts["high"]:
        what = t("digest.subject.high", lang, n=counts["high"])
    elif counts["medium"]:
        what = t("digest.subject.medium", lang, n=counts["medium"])
    elif counts["shown"]:
        key = "digest.subject.commits_one" if counts["shown"] == 1 else "digest.subject.commits"
        what = t(key, lang, n=counts["shown"])
    else:
        what = t("digest.subject.nothing", lang)
    return clean_header(sep.join([f"{t('digest.subject.prefix', lang)} {date.isoformat()}", where, what]))


def list_headers(config: dict, subscriber: SubscriberView) -> dict[str, str]:
    """List-Unsubscribe (one-click URL, plus mailto when configured), List-Unsubscribe-Post, List-Id."""
    targets = [f"<{_own_url(subscriber.unsubscribe_url)}>"]
    mailto = (config.get("LIST_UNSUBSCRIBE_MAILTO") or "").strip()
    if mailto:
        address = mailto.removeprefix("mailto:")
        targets.append(f"<mailto:{quote(address, safe='@.+-_')}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": clean_header(", ".join(targets), 2000),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": clean_header(f"Repo Daily <daily.{_site(config)}>"),
        "Auto-Submitted": "auto-generated",
    }


def _budget(config: dict) -> int:
    # DIGEST_HTML_BUDGET and LIST_UNSUBSCRIBE_MAILTO are optional: absent from a config, defaults apply.
    return int(config.get("DIGEST_HTML_BUDGET") or DEFAULT_HTML_BUDGET)


# Templates -----------------------------------------------------------------------------------

def overview_line(piece: Piece, lang: str) -> str:
    """A repository's row in the overview: its shown counts, or why it shows nothing."""
    view = piece.repo
    if view.status == "missing":
        return t("digest.overview.no_report", lang)
    if view.status == "failed":
        return t("digest.overview.failed", lang)
    if not view.total:
        return t("digest.overview.no_commits", lang)
    marks = {**IMPORTANCE_MARKS, "merge": MERGE_MARK}
    parts = [f"{marks[g]} {n}" for g, n in piece.shown.items() if n]
    if not parts:
        parts.append(t("digest.overview.none", lang))
    if piece.omitted:
        parts.append(t("digest.overview.omitted", lang, n=piece.omitted))
    return t("digest.sep", lang).join(parts)


def rest_line(piece: Piece, lang: str) -> str:
    """What a section left out: nothing at the threshold, and/or how many lower commits."""
    parts = []
    if not sum(piece.shown.values()):
        parts.append(t("digest.nothing_at_threshold", lang, threshold=t(f"threshold.{piece.threshold}", lang)))
    if piece.omitted:
        parts.append(t("digest.omitted_one" if piece.omitted == 1 else "digest.omitted", lang, n=piece.omitted))
    return " ".join(parts)


def importance_text(commit: CommitView, lang: str) -> str:
    """"🔴 High — reason", as the Markdown report words it."""
    importance = f"{commit.mark} {commit.importance_label}"
    return t("report.importance_reason", lang, importance=importance, reason=commit.reason) if commit.reason \
        else importance


def bullets(values: tuple[str, ...], lang: str) -> str:
    """Indented plain-text list lines ("None" when empty), without a final newline."""
    return "\n".join(f"    - {v}" for v in (values or (t("report.none", lang),)))


@lru_cache(maxsize=1)
def _environment():
    env = environment().overlay()
    env.filters["rich"] = rich_html
    env.globals.update(colors=IMPORTANCE_COLORS, font=FONT, overview_line=overview_line, rest_line=rest_line,
                       importance_text=importance_text, bullets=bullets)
    return env


def _document_context(date: datetime.date, lang: str, pieces: list[Piece], values: dict, **extra) -> dict:
    return {"lang": lang, "date": date.isoformat(), "pieces": pieces, **values, **extra}


def _mjml_document(date, lang, pieces, values) -> str:
    return _environment().get_template("digest_email.mjml").render(**_document_context(date, lang, pieces, values))


def _text_document(date, lang, pieces, values, slot: str = "") -> str:
    context = _document_context(date, lang, pieces, values, slot=slot)
    return _environment().get_template("digest_email.txt").render(**context)


def _compile(mjml: str) -> str:
    return mjml2html(mjml, fonts={})


def _size(html: str) -> int:
    return len(html.encode("utf-8"))


# The naive renderer: the baseline, and the reference the fast one is tested against ---------------

def render_naive(config: dict, date: datetime.date, reports: dict,
                 subscriber: SubscriberView) -> RenderedDigest | None:
    """One subscriber's email from scratch: Jinja for the whole email, then MRML (more compiles if over budget)."""
    lang = subscriber.language
    sections = [section_plan(repo_view(config, date, repo, lang, reports.get((repo, lang))), threshold)
                for repo, threshold in _subscriptions(subscriber)]
    if not sections or not (any(s.shown_total for s in sections) or subscriber.send_empty):
        return None
    counts = totals(sections)
    values = subscriber_values(config, subscriber, sections, counts)
    budget = _budget(config)

    def html_for(fit: Fit) -> str:
        return _MARKS.sub("", _compile(_mjml_document(date, lang, layout(sections, fit), values)))

    html, fit = html_for(Fit()), Fit()
    if _size(html) > budget:
        # Shrinking only lowers the size, so bisect for the least shrinking that fits.
        if _size(html_for(Fit(full=0))) <= budget:
            fit = Fit(full=_largest(0, sum(s.shown_total for s in sections),
                                    lambda n: _size(html_for(Fit(full=n))) <= budget))
        else:
            fit = Fit(full=0, keep=_largest(0, sum(len(s.body) for s in sections),
                                            lambda n: _size(html_for(Fit(full=0, keep=n))) <= budget))
        html = html_for(fit)
    text = _text_document(date, lang, layout(sections, fit), values)
    return _finish(config, date, subscriber, sections, counts, html, text, fit, _size(html))


def _largest(low: int, high: int, fits) -> int:
    """The largest n in [low, high] with fits(n), given fits is monotonic (low if none fits)."""
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _finish(config, date, subscriber, sections, counts, html, text, fit: Fit, size: int) -> RenderedDigest:
    counts = {**counts, **_fit_counts(sections, fit), "html_bytes": size}
    return RenderedDigest(to=subscriber.email, subject=subject(date, subscriber.language, sections, counts),
                          html=html, text=text, headers=list_headers(config, subscriber), counts=counts)


# The fast renderer --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Fragment:
    html: str
    text: str
    size: int


class _Template:
    """A compiled string with @@name@@ tokens, split once so filling it is a join."""

    def __init__(self, source: str):
        self.parts = _TOKEN.split(source)  # literal, name, literal, name, ..., literal

    def fill(self, values: dict[str, str]) -> str:
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


@dataclass(frozen=True)
class _CompiledSection:
    """A section for one (repository, threshold, language), compiled: what assembly copies."""

    plan: Section
    overview: _Fragment
    body: _Fragment  # every commit in full
    items: tuple  # per body item: a _Fragment, or (full, one-line) _Fragments for a commit


class DigestRenderer:
    """Renders many subscribers' emails for one day, compiling each repository section only once."""

    def __init__(self, config: dict, date: datetime.date, reports: dict[tuple[str, str], dict]):
        self.config = config
        self.date = date
        self.reports = reports
        self.budget = _budget(config)
        self._skeletons: dict[str, _Skeleton] = {}
        self._pieces: dict[tuple[str, str], tuple[RepoView, dict[tuple, _Fragment]]] = {}
        self._sections: dict[tuple[str, str, str], _CompiledSection] = {}
        self._note_fragments: dict[str, dict[tuple, _Fragment]] = {}
        # MRML compiles so far and the seconds spent preparing pieces: the bench and tests check that
        # compiling stays per repository and language, never per subscriber.
        self.compiles = 0
        self.prepare_seconds = 0.0

    # Compiling, once per language or per (repository, language) -------------------------------

    def _compile(self, mjml: str) -> str:
        self.compiles += 1
        return _compile(mjml)

    def _skeleton(self, lang: str) -> _Skeleton:
        skeleton = self._skeletons.get(lang)
        if skeleton is None:
            html = self._compile(_mjml_document(self.date, lang, [], _TOKENS))
            head, tail = html.split(_END_MARK)
            text = _text_document(self.date, lang, [], _TOKENS, slot=_TEXT_SLOT)
            text_head, text_tail = text.split(_TEXT_SLOT)
            skeleton = _Skeleton(head, tail, _Template(head), _Template(tail), _Template(text_head),
                                 _Template(text_tail))
            self._skeletons[lang] = skeleton
        return skeleton

    def _compile_pieces(self, lang: str, pieces: list[Piece]) -> dict[tuple, _Fragment]:
        """Compile pieces in one MJML document inside the skeleton and cut the HTML at the markers."""
        skeleton = self._skeleton(lang)
        html = self._compile(_mjml_document(self.date, lang, pieces, _TOKENS))
        body, tail = html.split(_END_MARK)
        head, *fragments = body.split(_PIECE_MARK)
        if head != skeleton.head or tail != skeleton.tail or len(fragments) != len(pieces):
            # A piece needed head CSS the skeleton lacks (e.g. a new column width): assembly would be wrong.
            raise RuntimeError("digest piece document does not match the skeleton; keep pieces to one full-width column")
        texts = _environment().get_template("digest_parts.txt").module
        return {piece.key: _Fragment(fragment, str(texts.piece(piece, lang)), _size(fragment))
                for piece, fragment in zip(pieces, fragments, strict=True)}

    def _repo_pieces(self, repo: str, lang: str) -> tuple[RepoView, dict[tuple, _Fragment]]:
        cached = self._pieces.get((repo, lang))
        if cached is None:
            started = time.perf_counter()
            view = repo_view(self.config, self.date, repo, lang, self.reports.get((repo, lang)))
            cached = self._pieces[(repo, lang)] = (view, self._compile_pieces(lang, all_pieces(view)))
            self.prepare_seconds += time.perf_counter() - started
        return cached

    def _section(self, repo: str, threshold: str, lang: str) -> _CompiledSection:
        key = (repo, threshold, lang)
        section = self._sections.get(key)
        if section is None:
            view, fragments = self._repo_pieces(repo, lang)
            plan = section_plan(view, threshold)
            items = tuple((fragments[i[0].key], fragments[i[1].key]) if isinstance(i, tuple) else fragments[i.key]
                          for i in plan.body)
            full = [i[0] if isinstance(i, tuple) else i for i in items]
            body = _Fragment("".join(f.html for f in full), "".join(f.text for f in full), sum(f.size for f in full))
            section = self._sections[key] = _CompiledSection(plan, fragments[plan.overview.key], body, items)
        return section

    def _notes(self, lang: str) -> dict[tuple, _Fragment]:
        if lang not in self._note_fragments:
            self._note_fragments[lang] = self._compile_pieces(lang, [_COLLAPSED_NOTE, _TRUNCATED_NOTE])
        return self._note_fragments[lang]

    # Assembly, per subscriber -----------------------------------------------------------------

    def render(self, subscriber: SubscriberView) -> RenderedDigest | None:
        """The subscriber's email, or None when nothing reaches their thresholds and send_empty is off."""
        lang = subscriber.language
        compiled = [self._section(repo, threshold, lang) for repo, threshold in _subscriptions(subscriber)]
        sections = [c.plan for c in compiled]
        notable = any(s.shown_total for s in sections)
        if not sections or not (notable or subscriber.send_empty):
            return None
        skeleton = self._skeleton(lang)
        counts = totals(sections)
        values = subscriber_values(self.config, subscriber, sections, counts)
        escaped = {name: str(escape(value)) for name, value in values.items()}
        head, tail = skeleton.html_head.fill(escaped), skeleton.html_tail.fill(escaped)
        html_parts, text_parts = [head], [skeleton.text_head.fill(values)]
        html_parts += [c.overview.html for c in compiled]
        text_parts += [c.overview.text for c in compiled]
        fit, size = Fit(), _size(head) + _size(tail) + sum(c.overview.size for c in compiled)
        if notable:
            body = sum(c.body.size for c in compiled)
            if size + body <= self.budget:
                html_parts += [c.body.html for c in compiled]
                text_parts += [c.body.text for c in compiled]
                size += body
            else:
                fit, size = self._shrink(lang, compiled, size, html_parts, text_parts)
        html_parts.append(tail)
        text_parts.append(skeleton.text_tail.fill(values))
        return _finish(self.config, self.date, subscriber, sections, counts, "".join(html_parts),
                       "".join(text_parts), fit, size)

    def _shrink(self, lang: str, compiled: list[_CompiledSection], frame: int, html_parts: list,
                text_parts: list) -> tuple[Fit, int]:
        """Append the body shrunk to the budget (the Fit render_naive bisects for); return it and the size."""
        notes = self._notes(lang)
        items = [item for section in compiled for item in section.items]
        lines = [item[1] if isinstance(item, tuple) else item for item in items]
        note = notes[_COLLAPSED_NOTE.key]
        size = frame + note.size + sum(f.size for f in lines)
        if size <= self.budget:
            # Stage one: every commit one line fits, so upgrade leading commits to full while they fit.
            full = 0
            for item in items:
                if isinstance(item, tuple):
                    if size + item[0].size - item[1].size > self.budget:
                        break
                    size += item[0].size - item[1].size
                    full += 1
            fit, chosen, seen = Fit(full=full), [], 0
            for item in items:
                if isinstance(item, tuple):
                    chosen.append(item[0] if seen < full else item[1])
                    seen += 1
                else:
                    chosen.append(item)
        else:
            # Stage two: even one line each is too much, so keep the leading items that fit.
            note = notes[_TRUNCATED_NOTE.key]
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
