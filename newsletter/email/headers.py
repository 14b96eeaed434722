"""The per-subscriber parts of a digest: the subject, the summary line, the footer and the mail headers."""
from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from ..i18n import t
from ..reports.wording import MARKS
from ..subscribers.validation import display_email
from ..text import header_value, plain, safe_url
from .layout import Section, is_weekly, top_highlights


@dataclass(frozen=True)
class SubscriberView:
    """What rendering needs of one subscriber; subscriptions are (owner/name, threshold) pairs, in email order."""

    email: str
    language: str
    subscriptions: tuple[tuple[str, str], ...]
    preferences_url: str
    unsubscribe_url: str
    send_empty: bool = False


@lru_cache(maxsize=16)
def site_host(base_url: str) -> str:
    """The host name of BASE_URL (List-Id, the footer)."""
    return urlsplit(base_url).hostname or "localhost"


def own_url(url: str) -> str:
    """One of our own links (subscribers.links): anything but a clean http(s) URL is a bug, not outside input."""
    safe = safe_url(url)
    if safe is None:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return safe


def personal_values(subscriber: SubscriberView) -> dict[str, str]:
    """The subscriber's own address (as the footer shows it) and links, checked: what placeholders stand for."""
    return {
        "email": plain(display_email(subscriber.email), 320),  # a Unicode domain as the reader wrote it
        "preferences_url": own_url(subscriber.preferences_url),
        "unsubscribe_url": own_url(subscriber.unsubscribe_url),
    }


def shown_commits(counts: Mapping[str, int]) -> int:
    """Commits an email shows, merges not counted (they are listed, but are no commits of the day's count)."""
    return counts["shown"] - counts.get("merge", 0)


def subscriber_values(config: Mapping[str, Any], subscriber: SubscriberView, sections: list[Section],
                      counts: dict[str, int], personal: Mapping[str, str] | None = None) -> dict[str, str]:
    """The per-subscriber strings of the skeleton (header summary, footer), as plain text.

    `personal`, when given, stands in for the subscriber's own address and links (placeholders of
    shared content); their real values are checked either way.
    """
    own = personal_values(subscriber)
    mine = own if personal is None else personal
    lang, sep = subscriber.language, t("digest.sep", subscriber.language)
    if counts["shown"]:
        # Merges are listed but are no commits of the count: they follow as their own item.
        commits, merges = shown_commits(counts), counts.get("merge", 0)
        parts = []
        if commits:
            shown_key = "digest.summary.shown_one" if commits == 1 else "digest.summary.shown"
            parts.append(t(shown_key, lang, n=commits))
            parts += [f"{MARKS[g]} {counts[g]}" for g in ("high", "medium", "low", "unanalyzed") if counts.get(g)]
        if merges:
            parts.append(t("report.stats.merge_one" if merges == 1 else "report.stats.merge", lang, n=merges))
        if counts["omitted"]:
            parts.append(t("digest.summary.omitted", lang, n=counts["omitted"]))
    else:
        parts = [t("digest.week.summary_nothing" if is_weekly(sections) else "digest.summary.nothing", lang)]
    if counts["failed"]:
        parts.append(t("digest.summary.failed", lang, n=counts["failed"]))
    repos = t("digest.list_sep", lang).join(s.repo.repo for s in sections)
    return {
        "summary": sep.join(parts),
        "preheader": preheader(lang, sections, counts, sep.join(parts)),
        "why": t("digest.footer.why", lang, email=mine["email"], repos=repos, site=site_host(config["BASE_URL"])),
        "preferences_url": mine["preferences_url"],
        "unsubscribe_url": mine["unsubscribe_url"],
    }


def preheader(lang: str, sections: list[Section], counts: Mapping[str, int], summary: str) -> str:
    """The inbox preview: the top highlight (else the summary line), and how many repositories failed."""
    top = top_highlights(sections)
    highlight = top[0].highlight if top else None
    if highlight is None:
        return summary
    more = len(top) - 1
    parts = [f"{MARKS[highlight.importance]} {highlight.title or t('report.no_message', lang)}"]
    if more:
        parts.append(t("digest.preheader.more", lang, n=more))
    if counts["failed"]:
        parts.append(t("digest.summary.failed", lang, n=counts["failed"]))
    return t("digest.sep", lang).join(parts)


def subject(date: datetime.date, lang: str, sections: list[Section], counts: dict[str, int]) -> str:
    """E.g. "[Repo Daily] 2026-01-24 · 3 repositories · 7 high" (a weekly email's: "[Repo Daily] Week to
    2026-01-24 · ..."); never holds commit text."""
    weekly = is_weekly(sections)
    sep = t("digest.sep", lang)
    # One repository is named (a validated owner/name, safe in a header); several are counted.
    where = sections[0].repo.repo if len(sections) == 1 else t("digest.subject.repos", lang, n=len(sections))
    if counts["high"]:
        what = t("digest.subject.high", lang, n=counts["high"])
    elif counts["medium"]:
        what = t("digest.subject.medium", lang, n=counts["medium"])
    elif shown_commits(counts):
        key = "digest.subject.commits_one" if shown_commits(counts) == 1 else "digest.subject.commits"
        what = t(key, lang, n=shown_commits(counts))
    elif counts.get("merge"):
        key = "digest.subject.merges_one" if counts["merge"] == 1 else "digest.subject.merges"
        what = t(key, lang, n=counts["merge"])
    else:
        what = t("digest.week.subject_nothing" if weekly else "digest.subject.nothing", lang)
    prefix = (t("digest.week.subject_prefix", lang, date=date.isoformat()) if weekly
              else f"{t('digest.subject.prefix', lang)} {date.isoformat()}")
    parts = [prefix, where, what]
    if counts["failed"]:
        parts.append(t("digest.subject.failed", lang, n=counts["failed"]))
    return header_value(sep.join(parts))


# Written raw, never RFC 2047-encoded (mail providers ignore an encoded List-Unsubscribe), so they
# must be ASCII; a mailer folds List-Unsubscribe only between its <...> items.
RAW_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post")


def list_headers(config: Mapping[str, Any], subscriber: SubscriberView) -> dict[str, str]:
    """List-Unsubscribe (one-click URL, plus mailto when configured), List-Unsubscribe-Post, List-Id."""
    # own_url percent-encodes anything outside ASCII, quote() does for the mailto address.
    targets = [f"<{own_url(subscriber.unsubscribe_url)}>"]
    mailto = (config.get("LIST_UNSUBSCRIBE_MAILTO") or "").strip()
    if mailto:
        address = mailto.removeprefix("mailto:")
        targets.append(f"<mailto:{quote(address, safe='@.+-_')}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": header_value(", ".join(targets), 2000),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": header_value(f"Repo Daily <daily.{site_host(config['BASE_URL'])}>"),
        "Auto-Submitted": "auto-generated",
    }
