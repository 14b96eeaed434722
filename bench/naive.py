"""The naive digest renderer: one Jinja render and one MJML compile per subscriber (more when over budget).

It is the baseline bench/render.py measures DigestRenderer against, and the reference the tests
compare every fast render with: both must give the same subject, text and HTML bytes.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from newsletter.email.digest import (
    MARKS_PATTERN,
    RenderedDigest,
    Reports,
    finish,
    html_budget,
    html_size,
    mjml_document,
    subscriptions_of,
    text_document,
    text_values,
)
from newsletter.email.headers import SubscriberView, personal_values, subscriber_values
from newsletter.email.layout import Fit, failed_last, layout, repo_day, section_plan, totals
from newsletter.email.templates import compile_mjml


def render_naive(config: Mapping[str, Any], date: datetime.date, reports: Reports,
                 subscriber: SubscriberView, private: frozenset[str] = frozenset()) -> RenderedDigest | None:
    """One subscriber's email from scratch: Jinja for the whole email, then MRML (more compiles if over budget)."""
    lang = subscriber.language
    sections = failed_last([section_plan(repo_day(config, date, repo, lang, reports.get((repo, lang)), repo in private), threshold)
                for repo, threshold in subscriptions_of(subscriber)])
    if not sections or not (any(s.shown_total for s in sections) or subscriber.send_empty):
        return None
    counts = totals(sections)
    values = subscriber_values(config, subscriber, sections, counts)
    budget = html_budget(config)

    def html_for(fit: Fit) -> str:
        return MARKS_PATTERN.sub("", compile_mjml(mjml_document(date, lang, layout(sections, fit), values)))

    html, fit = html_for(Fit()), Fit()
    if html_size(html) > budget:
        # Shrinking only lowers the size, so bisect for the least shrinking that fits.
        if html_size(html_for(Fit(full=0))) <= budget:
            fit = Fit(full=_largest(0, sum(s.shown_total for s in sections),
                                    lambda n: html_size(html_for(Fit(full=n))) <= budget))
        else:
            fit = Fit(full=0, keep=_largest(0, sum(len(s.body) for s in sections),
                                            lambda n: html_size(html_for(Fit(full=0, keep=n))) <= budget))
        html = html_for(fit)
    email = personal_values(subscriber)["email"]
    text = text_document(date, lang, layout(sections, fit), text_values(values, email, email))
    return finish(config, date, subscriber, sections, counts, html, text, fit, html_size(html))


def _largest(low: int, high: int, fits: Callable[[int], bool]) -> int:
    """The largest n in [low, high] with fits(n), given fits is monotonic (low if none fits)."""
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low
