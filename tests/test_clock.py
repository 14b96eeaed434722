"""Each subscriber's clock: slots in their zone, the daylight-saving rule, windows, defaults."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.clock import Clock, describe, due_slot, region_zones, weekday_number, window_start
from newsletter.errors import ValidationError
from newsletter.subscribers.validation import parse_schedule

NEW_YORK = ZoneInfo("America/New_York")


def _hourly(start: datetime, hours: int) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(hours)]


def _deliveries(clock: Clock, ticks: list[datetime]) -> list[datetime]:
    """The slots a subscriber gets emails at when the scheduler ticks at these instants."""
    sent: list[datetime] = []
    for now in ticks:
        slot = due_slot(clock, now, confirmed_at=ticks[0] - timedelta(days=1), previous_slot=sent[-1] if sent else None)
        if slot is not None:
            sent.append(slot)
    return sent


@pytest.mark.parametrize("hour", [0, 1, 2, 3, 8, 23])
def test_one_email_per_local_day_across_both_new_york_switches(hour):
    """2026-03-08 (spring forward, 02:00 does not exist) and 2026-11-01 (fall back, 01:00 happens
    twice): hourly ticks for a week around each give one slot per local day, at the hour or, when
    the hour does not exist, right after the gap."""
    clock = Clock("America/New_York", hour)
    for first in (date(2026, 3, 5), date(2026, 10, 29)):
        ticks = _hourly(datetime(first.year, first.month, first.day, tzinfo=UTC), 24 * 8)
        sent = _deliveries(clock, ticks)
        local = [s.astimezone(NEW_YORK) for s in sent]
        days = [moment.date() for moment in local]
        assert days == sorted(set(days)) and len(days) >= 7, local
        assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:], strict=False))
        for moment in local:
            if hour == 2 and moment.date() == date(2026, 3, 8):
                assert (moment.hour, moment.minute) == (3, 0)  # 02:00 does not exist: 03:00 EDT
            else:
                assert moment.hour == hour


def test_the_daylight_saving_rule_in_utc():
    clock = Clock("America/New_York", 2)
    # Spring forward: 02:00 EST would be 07:00 UTC, the instant the clocks jump to 03:00 EDT.
    assert clock.slot_on(date(2026, 3, 8)) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    # Fall back: 01:00 happens at 05:00 UTC (EDT) and again at 06:00 UTC (EST); the first counts.
    assert Clock("America/New_York", 1).slot_on(date(2026, 11, 1)) == datetime(2026, 11, 1, 5, tzinfo=UTC)
    # 08:00 is 13:00 UTC the day before the switch, 12:00 UTC the day of it.
    assert Clock("America/New_York", 8).slot_on(date(2026, 3, 7)) == datetime(2026, 3, 7, 13, tzinfo=UTC)
    assert Clock("America/New_York", 8).slot_on(date(2026, 3, 8)) == datetime(2026, 3, 8, 12, tzinfo=UTC)


def test_weekly_once_a_week_on_the_weekday_and_a_change_mid_week_waits():
    clock = Clock("Europe/Berlin", 9, "weekly", weekday_number("tue"))
    ticks = _hourly(datetime(2026, 3, 1, tzinfo=UTC), 24 * 28)
    sent = [s.astimezone(ZoneInfo("Europe/Berlin")) for s in _deliveries(clock, ticks)]
    assert [s.weekday() for s in sent] == [1, 1, 1, 1] and all(s.hour == 9 for s in sent)
    # Berlin's switch (2026-03-29) in between changes nothing local.
    assert sent[-1].date() == date(2026, 3, 24)
    # Moved from Tuesday to Thursday right after Tuesday's email: not twice that week.
    thursday = Clock("Europe/Berlin", 9, "weekly", 3)
    tuesday_slot = clock.slot_on(date(2026, 3, 3))
    assert due_slot(thursday, thursday.slot_on(date(2026, 3, 5)), None, tuesday_slot) is None
    assert due_slot(thursday, thursday.slot_on(date(2026, 3, 12)), None, tuesday_slot) == \
        thursday.slot_on(date(2026, 3, 12))
    # Moved from Thursday back to Tuesday: the next Tuesday, five days on, has its email.
    assert due_slot(clock, clock.slot_on(date(2026, 3, 10)), None, thursday.slot_on(date(2026, 3, 5))) is not None


def test_first_email_at_the_first_slot_after_confirming_covering_the_period_before():
    clock = Clock("Asia/Shanghai", 8)
    confirmed = datetime(2026, 3, 9, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai: today's 08:00 has passed
    assert due_slot(clock, datetime(2026, 3, 9, 2, tzinfo=UTC), confirmed, None) is None
    slot = due_slot(clock, datetime(2026, 3, 10, 0, 5, tzinfo=UTC), confirmed, None)
    assert slot == datetime(2026, 3, 10, 0, tzinfo=UTC)
    assert window_start(clock, slot, None) == slot - timedelta(days=1)
    weekly = Clock("Asia/Shanghai", 8, "weekly", 1)
    assert window_start(weekly, slot, None) == slot - timedelta(days=7)
    # Later emails start where the previous one's window ended.
    cut = datetime(2026, 3, 9, 0, 5, tzinfo=UTC)
    assert window_start(clock, slot, cut) == cut


def test_missed_slots_give_one_email_at_the_next_tick():
    clock = Clock("UTC", 8)
    previous = datetime(2026, 3, 1, 8, tzinfo=UTC)
    # The scheduler was down for three days: one email, for the latest slot.
    assert due_slot(clock, datetime(2026, 3, 4, 9, 5, tzinfo=UTC), None, previous) == datetime(2026, 3, 4, 8, tzinfo=UTC)
    # Ticking again within the hour plans nothing more.
    assert due_slot(clock, datetime(2026, 3, 4, 9, 35, tzinfo=UTC), None, datetime(2026, 3, 4, 8, tzinfo=UTC)) is None
    # An hour moved later the same day does not give a second email that day.
    later = Clock("UTC", 20)
    assert due_slot(later, datetime(2026, 3, 4, 20, 5, tzinfo=UTC), None, datetime(2026, 3, 4, 8, tzinfo=UTC)) is None


def test_schedule_defaults_and_errors():
    assert parse_schedule("zh") == {"timezone": "Asia/Shanghai", "hour": 8, "frequency": "daily", "weekday": 0}
    assert parse_schedule("en") == {"timezone": "UTC", "hour": 8, "frequency": "daily", "weekday": 0}
    assert parse_schedule("en", "Europe/Berlin", "7", "weekly", "fri")["weekday"] == 4
    for args, code in [(("en", "Mars/Olympus"), "timezone_invalid"), (("en", "../etc/passwd"), "timezone_invalid"),
                       (("en", None, "24"), "hour_invalid"), (("en", None, "8.5"), "hour_invalid"),
                       (("en", None, None, "hourly"), "frequency_invalid"),
                       (("en", None, None, "weekly", "someday"), "weekday_invalid")]:
        with pytest.raises(ValidationError) as caught:
            parse_schedule(*args)
        assert caught.value.code == code
        assert caught.value.message("zh") != caught.value.message("en")


def test_zone_list_grouped_by_region_and_times_described_in_the_readers_zone():
    zones = region_zones()
    assert zones["UTC"] == ["UTC"]
    assert "Asia/Shanghai" in zones["Asia"] and "America/New_York" in zones["America"]
    assert "Europe/Berlin" in zones["Europe"] and not any(name.startswith("Etc/") for names in zones.values()
                                                            for name in names)
    slot = Clock("Asia/Shanghai", 8).slot_on(date(2026, 3, 10))
    assert describe(Clock("Asia/Shanghai", 8), slot, "en") == "Tue 2026-03-10 08:00 (Asia/Shanghai)"
    assert describe(Clock("Asia/Shanghai", 8), slot, "zh") == "2026-03-10 周二 08:00 (Asia/Shanghai)"
