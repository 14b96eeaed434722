"""The web archive of daily reports: a page per report and an index of days per repository."""
from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import Database
from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from ..models import FetchedCommit, Repository
from ..reports import store
from ..reports.model import DailyReport, Entry, Relation
from ..reports.wording import (
    MARKS,
    change_type_label,
    failure_text,
    fallback_note,
    importance_label,
    merge_brings_sentence,
    no_message,
    notes,
    stats_line,
    unanalyzed_note,
)
from ..sources.router import local_is_private, served_locally
from ..text import plain, rich_html, safe_url, truncate

bp = Blueprint("archive", __name__, url_prefix="/r")

PAGE_DAYS = 30  # days per page of a repository's index
TITLE_LIMIT = 60  # characters of a commit title in the table and the table of contents

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# fromisoformat alone would also take "20260124" and "2026-W04-6": one spelling per page.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def db() -> Session:
    """The request's session: the one the Database's scoped session hands this thread."""
    database: Database = current_app.extensions["db"]
    return database.session()


def parse_day(text: str | None) -> datetime.date | None:
    """A YYYY-MM-DD date, or None for anything else (2026-13-45, "yesterday", 20260124)."""
    if not text or not _DATE.fullmatch(text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def repository_or_404(owner: str, name: str) -> Repository:
    """The repository of a public archive page, else 404.

    A private repository answers exactly like one that does not exist: its row says so (set by the
    daily run from GitHub), and a local one is private unless PUBLIC_LOCAL_REPOSITORIES, whatever
    settings the run that stored it had.
    """
    repository = store.find_repository(db(), f"{owner}/{name}".lower())
    if repository is None or repository.private:
        abort(404)
    config = current_app.config
    if served_locally(config, repository.name) and local_is_private(config):
        abort(404)
    return repository


def path_parts(repository: Repository) -> tuple[str, str]:
    owner, _, name = repository.name.partition("/")
    return owner, name


def pick_language(asked: str | None, available: Collection[str]) -> str:
    """The asked language if it exists, else English, else whichever exists."""
    if asked is not None and asked in available:
        return asked
    if DEFAULT_LANGUAGE in available:
        return DEFAULT_LANGUAGE
    return next(code for code in LANGUAGES if code in available)


def report_helpers(lang: str) -> dict[str, Callable[..., Any]]:
    """What report.html and the feed call to word a report: the same words the email uses."""

    def title(entry: Entry) -> str:
        return entry.title or no_message(lang)

    def short_title(entry: Entry) -> str:
        return truncate(title(entry), TITLE_LIMIT)

    def rich(value: object) -> Markup:
        return rich_html(value) if plain(value) else Markup(escape(t("report.none", lang)))

    def bullet_items(values: Sequence[str]) -> list[Markup]:
        """The list's non-empty items; none at all when it has nothing to say (the caller leaves it out)."""
        return [rich_html(v) for v in values if plain(v)]

    def filled(value: object) -> bool:
        """Whether a field says anything: an empty one is left out, label and all."""
        if isinstance(value, (list, tuple)):
            return any(plain(v) for v in value)
        return bool(plain(value))

    def importance_html(entry: Entry) -> Markup:
        """"🔴 High — reason" with the reason's code spans."""
        label = importance_label(entry.group, lang)
        reason = entry.analysis.importance_reason if entry.analysis else ""
        if not plain(reason):
            return Markup(escape(label))
        return Markup(escape(t("report.importance_reason", lang))).format(importance=label, reason=rich_html(reason))

    def note_html(entry: Entry) -> Markup:
        """Why a commit has no analysis; for a merge also the pull request it merges (linked) and what it
        brings, as the Markdown report words them."""
        note = Markup(escape(unanalyzed_note(entry, lang)))
        if entry.pull_request_url:
            link = Markup('<a href="{}" rel="noopener noreferrer">{}</a>').format(
                entry.pull_request_url, t("report.pull_request", lang, n=entry.pull_request))
            note += Markup(escape(t("report.merge_pull_request", lang))).format(link=link)
        return note + merge_brings_sentence(entry, lang)

    def relation_html(relation: Relation) -> Markup:
        """"↩️ Reverts <sha title>" or "♻️ The same change as <sha title>": linked to its section when it
        is in the report, else to its commit page when that is known."""
        sha = Markup("<code>{}</code>").format(relation.short_sha)
        if relation.anchor:
            text = Markup("{} {}").format(sha, truncate(relation.title, TITLE_LIMIT)) if relation.title else sha
            target = Markup('<a href="#{}">{}</a>').format(relation.anchor, text)
        elif relation.url:
            target = Markup('<a href="{}" rel="noopener noreferrer">{}</a>').format(relation.url, sha)
        else:
            target = sha
        return Markup(escape(t(f"report.relation.{relation.kind}", lang))).format(target=target)

    return {
        "title": title, "short_title": short_title, "rich": rich, "bullet_items": bullet_items, "filled": filled,
        "importance_html": importance_html, "relation_html": relation_html,
        "change_type_label": lambda analysis: change_type_label(analysis, lang),
        "fallback_note": lambda analysis: fallback_note(analysis, lang),
        "unanalyzed_note": note_html,
    }


# The report page ------------------------------------------------------------------------------

@bp.get("/<owner>/<name>/<day>", endpoint="report")
def report_page(owner: str, name: str, day: str) -> ResponseReturnValue:
    """One repository's report of one day, in the asked language when it exists."""
    repository = repository_or_404(owner, name)
    date = parse_day(day)
    if date is None:
        abort(404)
    reports = store.reports_of_day(db(), repository, date)
    repo_owner, repo_name = path_parts(repository)
    if not reports:
        # A day without a report: a 404 that leads on, to the nearest days that have one.
        nearest = [(d.isoformat(), url_for("archive.report", owner=repo_owner, name=repo_name, day=d.isoformat(),
                                           lang=g.lang))
                   for d in store.nearest_days(db(), repository, date) if d is not None]
        return render_template("web/no_report.html", repo=repository.name, day=date.isoformat(), nearest=nearest,
                               index_url=url_for("archive.index", owner=repo_owner, name=repo_name, lang=g.lang)), 404
    asked = request.args.get("lang")
    lang = pick_language(asked, reports)
    report = DailyReport.from_json(reports[lang].data)
    # The page speaks the language of the report it shows, so labels and content agree.
    g.lang = lang
    others = [code for code in LANGUAGES if code in reports and code != lang]
    return render_template(
        "web/report.html",
        report=report,
        repo=report.repo or repository.name,
        notes=notes(report),
        stats=stats_line(report.counts(), lang),
        failure=failure_text(report) if report.failed else "",
        missing=asked if asked in LANGUAGES and asked not in reports else None,
        others=[(code, url_for("archive.report", owner=repo_owner, name=repo_name, day=day, lang=code))
                for code in others],
        index_url=url_for("archive.index", owner=repo_owner, name=repo_name, lang=lang),
        feed_url=url_for("feed.feed", owner=repo_owner, name=repo_name, lang=lang),
        subscribe_url=url_for("web.index", lang=lang),
        marks=MARKS,
        relations=report.relations(),
        **report_helpers(lang),
    )


# The index of days ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DayLink:
    date: str
    url: str  # the page in the shown language
    stats: str  # empty for a failed day with nothing to count
    failed: bool
    links: list[tuple[str, str]]  # (language code, page URL) of every language that exists


@bp.get("/<owner>/<name>/", strict_slashes=False)
def index(owner: str, name: str) -> ResponseReturnValue:
    """A repository's days, newest first, PAGE_DAYS at a time (?before=YYYY-MM-DD for older ones)."""
    repository = repository_or_404(owner, name)
    before = request.args.get("before")
    before_date = None
    if before is not None:
        before_date = parse_day(before)
        if before_date is None:
            abort(400)
    dates, more, by_date = store.day_index(db(), repository, before_date, PAGE_DAYS)
    lang = g.lang
    repo_owner, repo_name = path_parts(repository)
    days = []
    for date in dates:
        reports = by_date[date]
        shown = reports[pick_language(lang, reports)]
        links = [(code, url_for("archive.report", owner=repo_owner, name=repo_name, day=date.isoformat(), lang=code))
                 for code in LANGUAGES if code in reports]
        days.append(DayLink(
            date=date.isoformat(), url=dict(links)[shown.language], failed=shown.failed, links=links,
            stats="" if shown.failed and not shown.total else stats_line(shown.counts(), lang)))
    older_url = None
    if more:
        older_url = url_for("archive.index", owner=repo_owner, name=repo_name, lang=lang,
                            before=dates[-1].isoformat())
    return render_template(
        "web/archive_index.html", repo=repository.name, days=days, older_url=older_url,
        newest_url=url_for("archive.index", owner=repo_owner, name=repo_name, lang=lang) if before else None,
        feed_url=url_for("feed.feed", owner=repo_owner, name=repo_name, lang=lang),
    )


@bp.get("/<owner>/<name>/c/<sha>", endpoint="commit")
def commit_link(owner: str, name: str, sha: str) -> ResponseReturnValue:
    """A commit's permalink, what emails link to (an email's window spans report days, some not built
    yet): its place in the daily report that holds it, in the asked language when that report has it;
    until a report holds it, its own page on the forge."""
    repository = repository_or_404(owner, name)
    if not _SHA.fullmatch(sha):
        abort(404)
    commit = db().scalar(select(FetchedCommit).where(FetchedCommit.repository_id == repository.id,
                                                     FetchedCommit.sha == sha))
    if commit is None:
        abort(404)
    if commit.report_date is not None:
        reports = store.reports_of_day(db(), repository, commit.report_date)
        if reports:
            lang = pick_language(request.args.get("lang"), reports)
            report = DailyReport.from_json(reports[lang].data)
            anchor = next((e.anchor for e in report.entries if e.commit.sha == commit.sha), "")
            repo_owner, repo_name = path_parts(repository)
            page = url_for("archive.report", owner=repo_owner, name=repo_name, day=commit.report_date.isoformat(),
                           lang=lang)
            return redirect(f"{page}#{anchor}" if anchor else page)
    url = safe_url(commit.record.get("html_url"))
    if url is None:
        abort(404)
    return redirect(url)
