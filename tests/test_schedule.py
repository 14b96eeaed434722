"""DIGEST_CRON fires at its time in DIGEST_TIMEZONE whichever zone rq reads cron expressions in."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from newsletter.reports.days import (
    day_bounds,
    default_report_date,
    due_report_date,
    next_fire,
    rq_cron_expression,
)


@pytest.mark.parametrize("tz, expected", [
    ("UTC", "0 7 * * *"),
    ("Asia/Shanghai", "0 23 * * *"),
    ("Europe/Berlin", "0 5,6 * * *"),
    ("Asia/Kolkata", "30 1 * * *"),
])
def test_widened_expression_for_rq2_utc(tz, expected):
    assert rq_cron_expression("0 7 * * *", tz, "UTC", year=2026) == expected


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
@pytest.mark.parametrize("evaluator", ["UTC", "America/Los_Angeles", "Asia/Shanghai", None])
def test_every_fire_time_of_a_year_is_covered(tz, evaluator):
    """For each day of 2026, the instant DIGEST_CRON fires locally matches the widened expression
    read in the evaluator's zone (rq 2.x: UTC; rq 3.x: the process's zone), and the tick at that
    instant starts the right report date."""
    expression = "15 7 * * 1-5"
    wide = rq_cron_expression(expression, tz, evaluator, year=2026)
    zone, ev = ZoneInfo(tz), ZoneInfo(evaluator or "UTC")
    day = datetime(2026, 1, 1, 7, 15, tzinfo=zone)
    checked = 0
    while day.year == 2026:
        if croniter.match(expression, day.replace(tzinfo=None)):
            instant = day.astimezone(UTC)
            if evaluator is not None:
                assert croniter.match(wide, instant.astimezone(ev).replace(tzinfo=None)), (day, wide)
            assert due_report_date(expression, tz, instant) == day.date() - timedelta(days=1)
            checked += 1
        day = datetime.combine(day.date() + timedelta(days=1), day.timetz())
    assert checked > 250


def test_ticks_outside_the_fire_window_do_nothing():
    fire = datetime(2026, 3, 2, 7, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert due_report_date("0 7 * * *", "Europe/Berlin", fire + timedelta(minutes=10)) == date(2026, 3, 1)
    assert due_report_date("0 7 * * *", "Europe/Berlin", fire - timedelta(hours=1)) is None
    assert due_report_date("0 7 * * *", "Europe/Berlin", fire + timedelta(hours=2)) is None


def test_report_date_and_day_bounds_in_the_zone():
    now = datetime(2026, 1, 24, 23, 30, tzinfo=UTC)  # already the 25th in Shanghai
    assert default_report_date("UTC", now) == date(2026, 1, 23)
    assert default_report_date("Asia/Shanghai", now) == date(2026, 1, 24)
    start, end = day_bounds(date(2026, 1, 24), "Asia/Shanghai")
    assert start.astimezone(UTC) == datetime(2026, 1, 23, 16, tzinfo=UTC)
    assert end - start == timedelta(days=1)


def test_next_fire_is_local_time_across_daylight_saving():
    """The confirmed page's "first email at": DIGEST_CRON read in DIGEST_TIMEZONE, on both sides of a switch."""
    new_york = ZoneInfo("America/New_York")
    # 2026-03-08 is the spring-forward day in New York: 08:00 local is 12:00 UTC that day, 13:00 the day before.
    assert next_fire("0 8 * * *", "America/New_York", datetime(2026, 3, 7, 14, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 8, 8, 0, tzinfo=new_york)
    assert next_fire("0 8 * * *", "America/New_York", datetime(2026, 3, 8, 11, 59, tzinfo=UTC)).astimezone(UTC) == \
        datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    # Exactly at a fire time, the next one is the day after.
    assert next_fire("30 7 * * *", "Asia/Shanghai", datetime(2026, 1, 24, 23, 30, tzinfo=UTC)) == \
        datetime(2026, 1, 26, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
