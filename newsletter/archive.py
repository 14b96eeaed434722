"""The web archive of daily reports: a page per report, an index and an Atom feed per repository."""
from __future__ import annotations

import datetime
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, abort, current_app, g, render_template, request, url_for
from markupsafe import Markup, escape
from sqlalchemy import select

from .analysis import HEURISTIC_MODEL
from .i18n import DEFAULT_LANGUAGE, LANGUAGES, has, t
from .models import Report, ReportStatus, Repository
from .report_render import ERROR_LIMIT, GROUPS, IMPORTANCE_MARKS, TITLE_LIMIT, safe_url, truncate

bp = Blueprint("archive", __name__, url_prefix="/r")

PAGE_DAYS = 30  # days per page of a repository's index
FEED_ENTRIES = 30  # newest reports in a feed
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# fromisoformat alone would also take "20260124" and "2026-W04-6": one spelling per page.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Bidirectional overrides can make text display differently from what it says.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
# Code spans of analysis text, matched on already-escaped text so their content stays escaped.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# Characters XML 1.0 forbids; ElementTree writes them anyway and the feed would not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def db():
    return current_app.extensions["db"].session


# Text helpers ---------------------------------------------------------------------------------

def plain(text) -> str:
    """Outside text on one line: no control characters, no bidi overrides, spaces collapsed."""
    text = _BIDI.sub("", str(text or ""))
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return _SPACES.sub(" ", text).strip()


def rich(text) -> Markup:
    """Escaped analysis text whose `code spans` become <code>: the only markup LLM text gets."""
    escaped = str(escape(plain(text)))
    return Markup(_CODE_SPAN.sub(lambda m: f"<code>{m.group(2).strip()}</code>", escaped))


def stats_text(counts: dict, lang: str) -> str:
    """report_render.stats_line from stored counts, e.g. "15 commits | 🔴 high 7 | 🟡 medium 4 | 🟢 low 4"."""
    total = int(counts.get("total") or 0)
    parts = [t("report.stats.commits_one" if total == 1 else "report.stats.commits", lang, n=total)]
    parts += [t(f"report.stats.{group}", lang, n=int(counts.get(group) or 0)) for group in ("high", "medium", "low")]
    if counts.get("merge"):
        parts.append(t("report.stats.merge", lang, n=counts["merge"]))
    return " | ".join(parts)


def _row_counts(report) -> dict:
    merge = report.total - report.high - report.medium - report.low
    return {"total": report.total, "high": report.high, "medium": report.medium, "low": report.low,
            "merge": max(merge, 0)}


def _format(key: str, lang: str, **fields) -> Markup:
    """A translated pattern filled with fields, each escaped unless it is already Markup."""
    return Markup(escape(t(key, lang))).format(**fields)


# Lookups --------------------------------------------------------------------------------------

def _repository(owner: str, name: str) -> Repository:
    repository = db().scalar(select(Repository).where(Repository.name == f"{owner}/{name}".lower()))
    if repository is None:
        abort(404)
    return repository


def parse_day(text: str | None) -> datetime.date | None:
    """A YYYY-MM-DD date, or None for anything else (2026-13-45, "yesterday", 20260124)."""
    if not text or not _DATE.fullmatch(text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def _path_parts(repository: Repository) -> tuple[str, str]:
    owner, _, name = repository.name.partition("/")
    return owner, name


def _utc(moment: datetime.datetime) -> datetime.datetime:
    # SQLite hands back naive datetimes; they were written as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _pick_language(asked: str | None, available) -> str:
    """The asked language if it exists, else English, else whichever exists."""
    if asked in available:
        return asked
    if DEFAULT_LANGUAGE in available:
        return DEFAULT_LANGUAGE
    return next(code for code in LANGUAGES if code in available)


# The report page ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnalysisView:
    change_type: str
    importance: str  # high, medium or low
    importance_html: Markup
    summary: Markup
    impact_scope: tuple[Markup, ...]
    architecture: Markup
    performance: Markup
    security: Markup
    risks: tuple[Markup, ...]
    recommendations: tuple[Markup, ...]
    fallback_note: str | None


@dataclass(frozen=True)
class CommitView:
    anchor: str
    group: str  # high, medium, low or merge
    time: str
    committed_at: str
    title: str
    short_title: str
    author: str
    sha: str
    url: str | None
    note: str | None  # why an unanalysed commit has no analysis
    analysis: AnalysisView | None


def _items(values, lang: str) -> tuple[Markup, ...]:
    items = tuple(rich(v) for v in values or () if plain(v))
    return items or (Markup(escape(t("report.none", lang))),)


def _text(value, lang: str) -> Markup:
    return rich(value) if plain(value) else Markup(escape(t("report.none", lang)))


def _analysis_view(data: dict, lang: str) -> AnalysisView:
    change_key = f"change_type.{data.get('change_type')}"
    importance = data.get("importance") if data.get("importance") in IMPORTANCE_MARKS else "low"
    label = f"{IMPORTANCE_MARKS[importance]} {t(f'importance.{importance}', lang)}"
    importance_html = Markup(escape(label))
    if plain(data.get("importance_reason")):
        importance_html = _format("report.importance_reason", lang, importance=label,
                                  reason=rich(data["importance_reason"]))
    fallback_note = None
    if data.get("fallback"):
        reason = plain(data.get("fallback_reason")) or t("report.fallback_unknown", lang)
        fallback_note = t("report.fallback_note", lang, reason=reason)
    insight = data.get("insight") or {}
    return AnalysisView(
        change_type=t(change_key if has(change_key) else "change_type.other", lang),
        importance=importance,
        importance_html=importance_html,
        summary=_text(data.get("summary"), lang),
        impact_scope=_items(data.get("impact_scope"), lang),
        architecture=_text(insight.get("architecture"), lang),
        performance=_text(insight.get("performance"), lang),
        security=_text(insight.get("security"), lang),
        risks=_items(data.get("risks"), lang),
        recommendations=_items(data.get("recommendations"), lang),
        fallback_note=fallback_note,
    )


def _commit_view(entry: dict, lang: str) -> CommitView:
    commit = entry.get("commit") or {}
    analysis = None if entry.get("analysis") is None else _analysis_view(entry["analysis"], lang)
    title = plain(entry.get("title")) or t("report.no_message", lang)
    note = None
    if analysis is None:
        note = t("report.merge_note" if len(commit.get("parents") or ()) > 1 else "report.unanalysed_note", lang)
    return CommitView(
        anchor=entry.get("anchor") or "",
        # The contents and the body both take the group from the analysis, so they cannot disagree.
        group="merge" if analysis is None else analysis.importance,
        time=plain(entry.get("local_time")),
        committed_at=str(commit.get("committed_at") or ""),
        title=title,
        short_title=truncate(title, TITLE_LIMIT),
        author=plain(commit.get("author_name") or commit.get("author_login")) or "?",
        sha="".join(c for c in str(commit.get("sha") or "").lower() if c in "0123456789abcdef")[:7] or "?",
        url=safe_url(commit.get("html_url")),
        note=note,
        analysis=analysis,
    )


def _notes(data: dict, commits: list[CommitView], lang: str) -> list[str]:
    """The lines above the stats: who analysed, how many fell back, tokens (as in the Markdown)."""
    if not commits:
        return []
    analyzer = plain(data.get("analyzer")) or HEURISTIC_MODEL
    if analyzer == HEURISTIC_MODEL:
        notes = [t("report.heuristic_note", lang)]
    else:
        notes = [t("report.model_note", lang, model=analyzer)]
        analysed = [c for c in commits if c.analysis is not None]
        fallbacks = sum(1 for c in analysed if c.analysis.fallback_note)
        if fallbacks:
            notes.append(t("report.fallback_summary", lang, n=fallbacks, total=len(analysed)))
    tokens = data.get("tokens") or {}
    prompt, completion = int(tokens.get("prompt") or 0), int(tokens.get("completion") or 0)
    if prompt or completion:
        notes.append(t("report.tokens", lang, prompt=prompt, completion=completion, total=prompt + completion))
    return notes


def _newest_first(commit: CommitView) -> tuple[float, str]:
    try:
        moment = _utc(datetime.datetime.fromisoformat(commit.committed_at)).timestamp()
    except ValueError:
        moment = 0.0
    return (-moment, commit.sha)


def report_view(report: Report) -> dict:
    """What report.html shows, built from the stored render_json data of one report."""
    data, lang = report.data or {}, report.language
    commits = [_commit_view(entry, lang) for entry in data.get("entries") or ()]
    failed = report.status is ReportStatus.FAILED
    error = None
    if failed:
        error = truncate(plain(data.get("error")), ERROR_LIMIT) or t("report.failed_unknown", lang)
    return {
        "repo": data.get("repo") or report.repository.name,
        "date": report.date.isoformat(),
        "language": lang,
        "timezone": plain(data.get("timezone")) or "UTC",
        "failed": failed,
        "error": error,
        # A failed fetch with nothing to show ends at the failure: "0 commits" would be a false claim.
        "show_body": bool(commits) or not failed,
        "notes": _notes(data, commits, lang),
        "stats": stats_text(data.get("counts") or _row_counts(report), lang),
        "by_time": sorted(commits, key=_newest_first),
        "groups": [(group, sorted((c for c in commits if c.group == group), key=_newest_first)) for group in GROUPS
                   if any(c.group == group for c in commits)],
    }


@bp.get("/<owner>/<name>/<day>", endpoint="report")
def report_page(owner: str, name: str, day: str):
    """One repository's report of one day, in the asked language when it exists."""
    repository = _repository(owner, name)
    date = parse_day(day)
    if date is None:
        abort(404)
    where = (Report.repository_id == repository.id, Report.date == date)
    available = set(db().scalars(select(Report.language).where(*where)))
    if not available:
        abort(404)
    asked = request.args.get("lang")
    lang = _pick_language(asked, available)
    row = db().scalar(select(Report).where(*where, Report.language == lang))
    # The page speaks the language of the report it shows, so labels and content agree.
    g.lang = lang
    repo_owner, repo_name = _path_parts(repository)
    others = [code for code in LANGUAGES if code in available and code != lang]
    return render_template(
        "web/report.html",
        report=report_view(row),
        missing=asked if asked in LANGUAGES and asked not in available else None,
        others=[(code, url_for("archive.report", owner=repo_owner, name=repo_name, day=day, lang=code))
                for code in others],
        index_url=url_for("archive.index", owner=repo_owner, name=repo_name, lang=lang),
        feed_url=url_for("archive.feed", owner=repo_owner, name=repo_name, lang=lang),
    )


# The index of days ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DayView:
    date: str
    url: str  # the page in the shown language
    stats: str  # empty for a failed day with nothing to count
    failed: bool
    links: list[tuple[str, str]]  # (language code, page URL) of every language that exists


@bp.get("/<owner>/<name>/", strict_slashes=False)
def index(owner: str, name: str):
    """A repository's days, newest first, PAGE_DAYS at a time (?before=YYYY-MM-DD for older ones)."""
    repository = _repository(owner, name)
    query = (select(Report.date).where(Report.repository_id == repository.id).distinct()
             .order_by(Report.date.desc()).limit(PAGE_DAYS + 1))
    before = request.args.get("before")
    if before is not None:
        before_date = parse_day(before)
        if before_date is None:
            abort(400)
        query = query.where(Report.date < before_date)
    dates = list(db().scalars(query))
    more, dates = len(dates) > PAGE_DAYS, dates[:PAGE_DAYS]
    # Only the counts: the stored report data is large and not needed here.
    rows = db().execute(
        select(Report.date, Report.language, Report.status, Report.total, Report.high, Report.medium, Report.low)
        .where(Report.repository_id == repository.id, Report.date.in_(dates))
    ).all() if dates else []
    by_date: dict[datetime.date, dict] = {}
    for row in rows:
        by_date.setdefault(row.date, {})[row.language] = row
    lang = g.lang
    repo_owner, repo_name = _path_parts(repository)
    days = []
    for date in dates:
        reports = by_date[date]
        shown = reports[_pick_language(lang, reports)]
        links = [(code, url_for("archive.report", owner=repo_owner, name=repo_name, day=date.isoformat(), lang=code))
                 for code in LANGUAGES if code in reports]
        failed = shown.status is ReportStatus.FAILED
        days.append(DayView(
            date=date.isoformat(), url=dict(links)[shown.language], failed=failed, links=links,
            stats="" if failed and not shown.total else stats_text(_row_counts(shown), lang)))
    older_url = None
    if more:
        older_url = url_for("archive.index", owner=repo_owner, name=repo_name, lang=lang,
                            before=dates[-1].isoformat())
    return render_template(
        "web/archive_index.html", repo=repository.name, days=days, older_url=older_url,
        newest_url=url_for("archive.index", owner=repo_owner, name=repo_name, lang=lang) if before else None,
        feed_url=url_for("archive.feed", owner=repo_owner, name=repo_name, lang=lang),
    )


# The Atom feed --------------------------------------------------------------------------------

def _xml(text) -> str:
    return _NOT_XML.sub("", str(text))


def _element(parent: ET.Element, tag: str, text=None, **attributes) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: _xml(value) for key, value in attributes.items()})
    if text is not None:
        element.text = _xml(text)
    return element


def _rfc3339(moment: datetime.datetime) -> str:
    return _utc(moment).astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _html_lang(lang: str) -> str:
    return "zh-CN" if lang == "zh" else "en"


def _absolute(repository: Repository, rest: str) -> str:
    """An absolute URL under the repository's /r/owner/name/, built on BASE_URL."""
    owner, name = _path_parts(repository)
    base = current_app.config["BASE_URL"].rstrip("/")
    return f"{base}/r/{quote(owner, safe='')}/{quote(name, safe='')}/{rest}"


def page_url(repository: Repository, date: datetime.date, lang: str) -> str:
    """The absolute URL of a report page, the same as the emails link to."""
    return _absolute(repository, f"{date.isoformat()}?lang={lang}")


def _entry_html(report: Report, url: str) -> str:
    """The feed entry's content: failure or stats, then every commit linked to its section."""
    view = report_view(report)
    lang = report.language
    parts = []
    if view["failed"]:
        parts.append(Markup("<p>{}</p>").format(t("report.failed", lang, error=view["error"])))
    if view["show_body"]:
        parts.append(Markup("<p>{}</p>").format(view["stats"]))
    for group, commits in view["groups"]:
        items = []
        for commit in commits:
            summary = commit.analysis.summary if commit.analysis else commit.note
            items.append(Markup('<li><a href="{}">{}</a> — {}</li>').format(
                f"{url}#{commit.anchor}", commit.title, summary))
        parts.append(Markup("<h3>{}</h3><ul>{}</ul>").format(
            t(f"report.group.{group}", lang, n=len(commits)), Markup("").join(items)))
    return str(Markup("").join(parts))


@bp.get("/<owner>/<name>/feed.atom")
def feed(owner: str, name: str):
    """The newest reports of a repository as Atom 1.0; ?lang= keeps one language, else English first."""
    repository = _repository(owner, name)
    asked = request.args.get("lang")
    lang = asked if asked in LANGUAGES else None
    query = select(Report).where(Report.repository_id == repository.id).order_by(Report.date.desc())
    if lang:
        query = query.where(Report.language == lang).limit(FEED_ENTRIES)
    else:
        query = query.limit(FEED_ENTRIES * len(LANGUAGES))
    by_date: dict[datetime.date, dict[str, Report]] = {}
    for row in db().scalars(query):
        by_date.setdefault(row.date, {})[row.language] = row
    reports = [languages[_pick_language(lang, languages)] for _, languages in
               sorted(by_date.items(), reverse=True)][:FEED_ENTRIES]

    query_string = f"?{urlencode({'lang': lang})}" if lang else ""
    self_url = _absolute(repository, f"feed.atom{query_string}")
    feed_lang = lang or DEFAULT_LANGUAGE
    updated = max((r.updated_at for r in reports), key=_utc, default=repository.created_at)

    root = ET.Element("feed", {"xmlns": ATOM_NS})
    if lang:
        root.set(XML_LANG, _html_lang(lang))
    _element(root, "id", self_url)
    _element(root, "title", t("archive.feed_title", feed_lang, repo=repository.name))
    _element(root, "subtitle", t("archive.feed_subtitle", feed_lang, repo=repository.name))
    _element(root, "updated", _rfc3339(updated))
    _element(root, "link", rel="self", type="application/atom+xml", href=self_url)
    _element(root, "link", rel="alternate", type="text/html",
             href=_absolute(repository, query_string))
    author = _element(root, "author")
    _element(author, "name", "Repo Daily")
    _element(root, "generator", "Repo Daily")
    for report in reports:
        url = page_url(repository, report.date, report.language)
        if report.status is ReportStatus.FAILED and not report.total:
            headline = t("archive.failed_day", report.language)
        else:
            headline = stats_text(_row_counts(report), report.language)
        entry = _element(root, "entry", **{XML_LANG: _html_lang(report.language)})
        _element(entry, "id", url)
        _element(entry, "title", f"{repository.name} · {report.date.isoformat()} · {headline}")
        _element(entry, "updated", _rfc3339(report.updated_at))
        _element(entry, "published", _rfc3339(report.created_at))
        _element(entry, "link", rel="alternate", type="text/html", href=url,
                 hreflang=_html_lang(report.language))
        _element(entry, "content", _entry_html(report, url), type="html")
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    response = Response(body, content_type="application/atom+xml; charset=utf-8")
    # Readers poll often and reports change once a day: let them and proxies reuse a copy a while.
    response.headers["Cache-Control"] = "public, max-age=900"
    return response
