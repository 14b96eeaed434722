"""Nine days around the US daylight-saving switch (2026-03-08), one `newsletter tick --now` per hour.

The fake GitHub's branches advance with the test's clock: a commit is pushed only once its time has
come (and one is pushed late, two days after its commit date). Readers in UTC, Asia/Shanghai and
America/New_York (08:00, and 02:00, an hour that does not exist on the switch day) get daily emails,
one in Europe/Berlin a weekly one on Mondays. Per reader: one email per local day (per week) at their
hour, and the union of their emails is the commits of their repositories, each exactly once.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter.models import Delivery, DeliveryStatus, FetchedCommit, Repository, Subscriber
from newsletter.subscribers import subscriptions
from newsletter.subscribers.validation import parse_schedule

from .conftest import body_text

START = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
HOURS = 9 * 24
ROCKET, ENGINE = "acme/rocket", "acme/engine"

READERS = {
    # address: (zone, hour, frequency, weekday, language, repositories)
    "utc@example.com": ("UTC", 8, "daily", "mon", "en", (ROCKET, ENGINE)),
    "shanghai@example.com": ("Asia/Shanghai", 8, "daily", "mon", "zh", (ROCKET,)),
    "newyork@example.com": ("America/New_York", 8, "daily", "mon", "en", (ROCKET, ENGINE)),
    "night@example.com": ("America/New_York", 2, "daily", "mon", "en", (ENGINE,)),
    "berlin@example.com": ("Europe/Berlin", 9, "weekly", "mon", "en", (ROCKET, ENGINE)),
}


def _pushes() -> list[tuple[datetime, str, datetime, str]]:
    """(push time, repository, commit date, message), in push order: rocket every 5 hours, engine every
    7, and one engine commit dated 2026-03-05 pushed on 2026-03-07 (a late push of an old commit)."""
    pushes = []
    for hour in range(-4, HOURS, 5):  # the first before the travel starts, seen at the first tick
        at = START + timedelta(hours=hour, minutes=20)
        pushes.append((at, ROCKET, at - timedelta(minutes=10), f"fix: rocket change at hour {hour}"))
    for hour in range(-2, HOURS, 7):
        at = START + timedelta(hours=hour, minutes=40)
        pushes.append((at, ENGINE, at - timedelta(minutes=30), f"docs: engine note at hour {hour}"))
    late = datetime(2026, 3, 7, 10, 15, tzinfo=UTC)
    pushes.append((late, ENGINE, datetime(2026, 3, 5, 9, 0, tzinfo=UTC), "fix: engine change rebased late"))
    return sorted(pushes)


@pytest.mark.travel
def test_nine_days_of_hourly_ticks_around_the_daylight_saving_switch(app, session, runner, github, outbox):
    app.config["DIGEST_TIMEZONE"] = "UTC"
    app.config["DIGEST_HTML_BUDGET"] = 400_000  # a week of commits in full: nothing folded away
    for name in (ROCKET, ENGINE):
        github.add_repo(name)
        github.add_commit(name, "initial import", date=START - timedelta(days=3))  # older than any window
    for address, (zone, hour, frequency, weekday, language, repos) in READERS.items():
        reader = subscriptions.subscribe_confirmed(
            session, address, [(r, subscriptions.Threshold.LOW) for r in repos], language,
            schedule=parse_schedule(language, zone, hour, frequency, weekday))
        reader.confirmed_at = START - timedelta(minutes=1)
    session.commit()

    pending = _pushes()
    pushed: dict[str, str] = {}  # sha -> repository
    for tick in range(HOURS + 1):
        now = START + timedelta(hours=tick)
        while pending and pending[0][0] <= now:
            _, repo, when, message = pending.pop(0)
            pushed[github.add_commit(repo, message, date=when)] = repo
        result = runner.invoke(args=["tick", "--now", now.isoformat()])
        assert result.exit_code == 0, result.output

    session.expire_all()
    commits = {c.sha: c for c in session.scalars(select(FetchedCommit))}
    names = {r.id: r.name for r in session.scalars(select(Repository))}
    assert set(pushed) <= set(commits), "every pushed commit was ingested"
    late = next(sha for sha, c in commits.items() if c.record["message"].startswith("fix: engine change rebased"))
    assert commits[late].first_seen_at.replace(tzinfo=UTC) == datetime(2026, 3, 7, 11, tzinfo=UTC)

    messages: dict[str, list] = {}
    for message in outbox.messages():
        messages.setdefault(message["To"], []).append(message)
    for address, (zone, hour, frequency, _weekday, _language, repos) in READERS.items():
        reader = session.scalar(select(Subscriber).where(Subscriber.email == address))
        rows = session.scalars(select(Delivery).where(Delivery.subscriber_id == reader.id).order_by(Delivery.slot)).all()
        assert rows and all(r.status is DeliveryStatus.SENT for r in rows), (address, [r.error for r in rows])
        tz = ZoneInfo(zone)
        slots = [r.slot.replace(tzinfo=UTC).astimezone(tz) for r in rows]
        days = [s.date() for s in slots]
        if frequency == "daily":
            # One per local day, every day from the first to the last, at their hour (02:00 on the
            # spring-forward day in New York does not exist: 03:00, right after the gap).
            assert days == [days[0] + timedelta(days=i) for i in range(len(days))], (address, slots)
            assert len(days) >= 8, (address, slots)
            for slot in slots:
                expected = 3 if (zone, hour, slot.date()) == ("America/New_York", 2, date(2026, 3, 8)) else hour
                assert (slot.hour, slot.minute) == (expected, 0), (address, slot)
        else:
            assert [s.weekday() for s in slots] == [0] and all(s.hour == hour for s in slots), (address, slots)
        # The emails' windows follow on from each other, from the first to the last.
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.window_start == before.window_end
        # Their emails hold every commit of their repositories first seen up to the last cut-off, once.
        cut = rows[-1].window_end.replace(tzinfo=UTC)
        expected = {sha for sha, c in commits.items()
                    if names[c.repository_id] in repos and c.sha in pushed and c.first_seen_at.replace(tzinfo=UTC) <= cut}
        received = messages.get(address, [])
        assert len(received) == len(rows), address
        # A commit's links (its permalink on the site, or its page on GitHub), counted once per email.
        seen = Counter(sha for m in received
                       for sha in set(re.findall(r"/(?:c|commit)/([0-9a-f]{40})", body_text(m))))
        assert set(seen) == expected, (address, len(seen), len(expected))
        assert max(seen.values()) == 1, f"{address} got a commit twice"
    # The late push landed in the next email after it was first seen, not in the one of its commit date.
    utc_rows = session.scalars(select(Delivery).join(Subscriber).where(Subscriber.email == "utc@example.com")
                               .order_by(Delivery.slot)).all()
    holder = next(r for r in utc_rows if r.window_start.replace(tzinfo=UTC) < datetime(2026, 3, 7, 11, tzinfo=UTC)
                  <= r.window_end.replace(tzinfo=UTC))
    assert holder.date == date(2026, 3, 8)
    # Every link of the last email works: a permalink leads to the daily report holding the commit
    # (or, until one does, to the commit on GitHub), the repository link to its archive.
    client = app.test_client()
    text = body_text(messages["utc@example.com"][-1])
    for url in sorted(set(re.findall(r"http://localhost(/r/[^\s]+)", text))):
        response = client.get(url)
        assert response.status_code in (200, 302), url
        if response.status_code == 302:
            target = response.headers["Location"]
            assert target.startswith("https://github.com/acme/") or client.get(target).status_code == 200, (url, target)
