"""Each subscriber's clock: their delivery slots, and the window of commits each email covers.

A subscriber gets their email at `hour` o'clock in their `timezone`, every day (daily) or on their
`weekday` (weekly). The instant of one such delivery hour is a *slot*.

Daylight-saving rule (the same as `zoneinfo` with fold=0, and what cron daemons such as cronie do):
- a local hour that does not exist (02:00 on a spring-forward day in America/New_York) is taken
  as the same wall time before the switch, which is the instant right after the gap: 02:00 EST is
  03:00 EDT, so the email goes at 03:00 that day;
- a local hour that happens twice (01:00 on a fall-back day) is its first occurrence.
Either way every local day has exactly one slot.

Windows: an email holds the commits first seen after the previous email's cut-off and up to its own
(the instant it was planned). A subscriber's first email covers the period before its slot: the
day before it (daily) or the week before it (weekly). A subscriber who missed several slots (the
scheduler was down) gets one email, at the next tick, for the latest of them, covering them all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOUR = 8
DEFAULT_TIMEZONES = {"zh": "Asia/Shanghai", "en": "UTC"}

# A daily subscriber gets at most one email per local date; a weekly one waits at least this many
# local days after the previous (a weekday changed mid-week takes effect the next week, not twice).
WEEKLY_MIN_GAP_DAYS = 4


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError for a name that is not one."""
    try:
        if not name or name != name.strip() or name.startswith("/"):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None


def default_timezone(language: str) -> str:
    return DEFAULT_TIMEZONES.get(language, "UTC")


def weekday_number(value: str | int) -> int:
    """0 (Monday) .. 6 (Sunday) from a number or a name (mon, tue, ... or monday, ...)."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        if 0 <= number <= 6:
            return number
        raise ValueError(f"weekday {value!r} is not 0 (Monday) to 6 (Sunday)")
    key = str(value).strip().lower()[:3]
    if key in WEEKDAYS and str(value).strip().lower() in (key, _full(key)):
        return WEEKDAYS.index(key)
    raise ValueError(f"weekday {value!r} is not one of {', '.join(WEEKDAYS)}")


def _full(short: str) -> str:
    return {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
            "sat": "saturday", "sun": "sunday"}[short]


def region_zones() -> dict[str, list[str]]:
    """Every canonical IANA zone name, grouped by region (Africa, America, Asia, ...), sorted; UTC apart."""
    groups: dict[str, list[str]] = {}
    for name in available_timezones():
        region, _, rest = name.partition("/")
        if not rest or region in ("Etc", "SystemV", "US", "Canada", "Brazil", "Chile", "Mexico") or name.startswith("posix/") \
                or name.startswith("right/"):
            continue
        groups.setdefault(region, []).append(name)
    return {"UTC": ["UTC"], **{region: sorted(names) for region, names in sorted(groups.items())}}


@dataclass(frozen=True)
class Clock:
    """When one subscriber wants their email."""

    timezone: str = "UTC"
    hour: int = DEFAULT_HOUR
    frequency: str = "daily"  # daily | weekly
    weekday: int = 0  # weekly: 0 Monday .. 6 Sunday

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def weekly(self) -> bool:
        return self.frequency == "weekly"

    def slot_on(self, day: date) -> datetime:
        """The instant of the delivery hour on a local date (the DST rule of the module docstring), in UTC."""
        local = datetime(day.year, day.month, day.day, self.hour, tzinfo=self.tz)  # fold=0
        return local.astimezone(UTC)

    def delivers_on(self, day: date) -> bool:
        return not self.weekly or day.weekday() == self.weekday

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def latest_slot(self, now: datetime) -> datetime:
        """The last slot at or before now."""
        day = self.local_date(now) + timedelta(days=1)
        for _ in range(16):
            if self.delivers_on(day):
                slot = self.slot_on(day)
                if slot <= now:
                    return slot
            day -= timedelta(days=1)
        raise AssertionError("a slot exists in every week")  # pragma: no cover

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after `after`."""
        day = self.local_date(after) - timedelta(days=1)
        for _ in range(16):
            if self.delivers_on(day):
                slot = self.slot_on(day)
                if slot > after:
                    return slot
            day += timedelta(days=1)
        raise AssertionError("a slot exists in every week")  # pragma: no cover

    def period_before(self, slot: datetime) -> datetime:
        """The start of the period a first email covers: the same local hour a day (or a week) earlier."""
        day = self.local_date(slot) - timedelta(days=7 if self.weekly else 1)
        return self.slot_on(day)

    def far_enough(self, previous_slot: datetime, slot: datetime) -> bool:
        """Whether slot may have an email after one at previous_slot (dates read in this clock's zone)."""
        gap = (self.local_date(slot) - self.local_date(previous_slot)).days
        return gap >= (WEEKLY_MIN_GAP_DAYS if self.weekly else 1)

    def may_follow(self, previous_slot: datetime | None, slot: datetime) -> bool:
        """Whether slot may have an email, given the slot of the previous one (None: there was none)."""
        if previous_slot is None:
            return True
        previous = _aware(previous_slot)
        return slot > previous and self.far_enough(previous, slot)

    def next_email_slot(self, after: datetime, previous_slot: datetime | None) -> datetime:
        """The first slot after `after` that may have an email: the next email a reader will get."""
        slot = self.next_slot(after)
        for _ in range(8):
            if self.may_follow(previous_slot, slot):
                break
            slot = self.next_slot(slot)
        return slot


def due_slot(clock: Clock, now: datetime, confirmed_at: datetime | None,
             previous_slot: datetime | None) -> datetime | None:
    """The slot to plan an email for at `now`, or None.

    The latest slot at or before now, if it comes after the subscriber confirmed (their first email
    goes at their first slot after confirming) and far enough after their previous email's slot.
    """
    slot = clock.latest_slot(now)
    if confirmed_at is not None and slot <= _aware(confirmed_at):
        return None
    return slot if clock.may_follow(previous_slot, slot) else None


def window_start(clock: Clock, slot: datetime, previous_cutoff: datetime | None) -> datetime:
    """Where an email's window starts: the previous email's cut-off, or the period before a first one."""
    return _aware(previous_cutoff) if previous_cutoff is not None else clock.period_before(slot)


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; every timestamp stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def describe(clock: Clock, moment: datetime, language: str) -> str:
    """A slot as the reader reads it: "Tue 2026-03-10 08:00 (Asia/Shanghai)" / "2026-03-10 周二 08:00 (Asia/Shanghai)"."""
    local = moment.astimezone(clock.tz)
    if language == "zh":
        weekday = "一二三四五六日"[local.weekday()]
        return f"{local:%Y-%m-%d} 周{weekday} {local:%H:%M} ({clock.timezone})"
    return f"{local:%a %Y-%m-%d %H:%M} ({clock.timezone})"


def clock_of(subscriber: Any) -> Clock:
    """A Subscriber's clock (models.Subscriber, or anything with the same four attributes)."""
    frequency = getattr(subscriber.frequency, "value", subscriber.frequency)
    return Clock(subscriber.timezone, subscriber.hour, str(frequency), subscriber.weekday)


def clock_line(subscriber: Any, now: datetime | None = None) -> str:
    """For operators: "daily at 08:00 Asia/Shanghai, next email Tue 2026-03-10 08:00 (Asia/Shanghai)"."""
    clock = clock_of(subscriber)
    when = f"weekly on {WEEKDAYS[clock.weekday]}" if clock.weekly else "daily"
    upcoming = clock.next_slot(now or datetime.now(UTC))
    return f"{when} at {clock.hour:02d}:00 {clock.timezone}, next email {describe(clock, upcoming, 'en')}"
