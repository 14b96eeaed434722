"""The Atom feed of a repository's daily reports."""
from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, request
from markupsafe import Markup

from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from ..models import Report, Repository, aware
from ..reports import store
from ..reports.days import day_bounds
from ..reports.model import DailyReport
from ..reports.wording import failure_text, stats_line
from ..text import rich_html, xml_text
from .archive import db, path_parts, pick_language, report_helpers, repository_or_404

bp = Blueprint("feed", __name__, url_prefix="/r")

FEED_ENTRIES = 30  # newest reports in a feed
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _element(parent: ET.Element, tag: str, text: object = None, **attributes: object) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: xml_text(value) for key, value in attributes.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _rfc3339(moment: datetime.datetime) -> str:
    return aware(moment).astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _html_lang(lang: str) -> str:
    return "zh-CN" if lang == "zh" else "en"


def _absolute(repository: Repository, rest: str) -> str:
    """An absolute URL under the repository's /r/owner/name/, built on BASE_URL."""
    owner, name = path_parts(repository)
    base = current_app.config["BASE_URL"].rstrip("/")
    return f"{base}/r/{quote(owner, safe='')}/{quote(name, safe='')}/{rest}"


def page_url(repository: Repository, date: datetime.date, lang: str) -> str:
    """The absolute URL of a report page, the same as the emails link to."""
    return _absolute(repository, f"{date.isoformat()}?lang={lang}")


def _entry_html(report: DailyReport, url: str) -> str:
    """The feed entry's content: failure or stats, then every commit linked to its section."""
    lang = report.language
    words = report_helpers(lang)
    parts = []
    if report.failed:
        parts.append(Markup("<p>{}</p>").format(failure_text(report)))
    if report.shows_body:
        parts.append(Markup("<p>{}</p>").format(stats_line(report.counts(), lang)))
    for group, entries in report.groups():
        items = []
        for entry in entries:
            summary = rich_html(entry.analysis.summary) if entry.analysis else words["unanalyzed_note"](entry)
            items.append(Markup('<li><a href="{}">{}</a> — {}</li>').format(
                f"{url}#{entry.anchor}", words["title"](entry), summary))
        parts.append(Markup("<h3>{}</h3><ul>{}</ul>").format(
            t(f"report.group.{group}", lang, n=len(entries)), Markup("").join(items)))
    return str(Markup("").join(parts))


def _report_moment(row: Report) -> datetime.datetime:
    """When a report's day ended in the report's time zone: the moment its report could be published."""
    zone = (row.data or {}).get("timezone") or current_app.config.get("DIGEST_TIMEZONE") or "UTC"
    try:
        return day_bounds(row.date, str(zone))[1]
    except (KeyError, ValueError):  # an unknown zone name in an old report
        return day_bounds(row.date, "UTC")[1]


@bp.get("/<owner>/<name>/feed.atom")
def feed(owner: str, name: str) -> Response:
    """The newest reports of a repository as Atom 1.0; ?lang= keeps one language, else English first."""
    repository = repository_or_404(owner, name)
    asked = request.args.get("lang")
    lang = asked if asked in LANGUAGES else None
    by_date: dict[datetime.date, dict[str, Report]] = {}
    for row in store.newest_reports(db(), repository, lang, FEED_ENTRIES):
        by_date.setdefault(row.date, {})[row.language] = row
    reports = [languages[pick_language(lang, languages)] for _, languages in
               sorted(by_date.items(), reverse=True)][:FEED_ENTRIES]

    query_string = f"?{urlencode({'lang': lang})}" if lang else ""
    self_url = _absolute(repository, f"feed.atom{query_string}")
    feed_lang = lang or DEFAULT_LANGUAGE
    updated = max((_report_moment(r) for r in reports), default=aware(repository.created_at))

    # The feed's language is the one asked for, else the default one its titles are in; every entry
    # carries its own too.
    root = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: _html_lang(feed_lang)})
    _element(root, "id", self_url)
    _element(root, "title", t("archive.feed_title", feed_lang, repo=repository.name))
    _element(root, "subtitle", t("archive.feed_subtitle", feed_lang, repo=repository.name))
    _element(root, "updated", _rfc3339(updated))
    _element(root, "link", rel="self", type="application/atom+xml", href=self_url)
    _element(root, "link", rel="alternate", type="text/html", href=_absolute(repository, query_string))
    author = _element(root, "author")
    _element(author, "name", "Repo Daily")
    _element(root, "generator", "Repo Daily")
    for row in reports:
        url = page_url(repository, row.date, row.language)
        if row.failed and not row.total:
            headline = t("archive.failed_day", row.language)
        else:
            headline = stats_line(row.counts(), row.language)
        entry = _element(root, "entry", **{XML_LANG: _html_lang(row.language)})
        _element(entry, "id", url)
        _element(entry, "title", f"{repository.name} · {row.date.isoformat()} · {headline}")
        # Dated by the report's day (it is published once that day is over), not by when it was built:
        # a backfill of ten days must not make ten entries of this morning.
        _element(entry, "updated", _rfc3339(_report_moment(row)))
        _element(entry, "published", _rfc3339(_report_moment(row)))
        _element(entry, "link", rel="alternate", type="text/html", href=url, hreflang=_html_lang(row.language))
        _element(entry, "content", _entry_html(DailyReport.from_json(row.data), url), type="html")
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    response = Response(body, content_type="application/atom+xml; charset=utf-8")
    # Readers poll often and reports change once a day: let them and proxies reuse a copy a while.
    response.headers["Cache-Control"] = "public, max-age=900"
    return response
