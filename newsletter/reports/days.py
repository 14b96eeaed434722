"""Report days: their bounds in DIGEST_TIMEZONE, the default one, and when the daily run fires.

The daily run fires at DIGEST_CRON in DIGEST_TIMEZONE, whatever time zone rq evaluates cron in.

rq 2.x evaluates cron expressions in UTC and rq 3.x in the process's local time. Rather than
depend on either, the scheduler is given a wider expression (`rq_cron_expression`) that fires at
least at every minute where DIGEST_CRON could fire in DIGEST_TIMEZONE, for any UTC offset that zone
or the evaluating zone takes during the year; the tick job (`due_report_date`) then checks the
real expression in DIGEST_TIMEZONE. Extra ticks cost one small job each and do nothing; the
database guard in `run.open_run` makes any double trigger harmless.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

# A tick up to this long after the fire time (a busy queue, a worker restart) still counts.
GRACE = timedelta(minutes=50)


def _offsets_minutes(tz: ZoneInfo | None, year: int) -> set[int]:
    """Every UTC offset (in minutes) the zone takes during year and the next one.

    An unknown zone (None) could be any: every quarter hour from -12:00 to +14:00.
    """
    if tz is None:
        return set(range(-12 * 60, 14 * 60 + 1, 15))
    offsets: set[int] = set()
    start = datetime(year, 1, 1, 12)
    for day in range(0, 731, 7):
        moment = (start + timedelta(days=day)).replace(tzinfo=tz)
        offset = moment.utcoffset()
        assert offset is not None  # moment is aware: a ZoneInfo always has an offset
        offsets.add(int(offset.total_seconds() // 60))
    return offsets


def _fire_times_of_day(expression: str) -> set[tuple[int, int]]:
    """The (hour, minute) pairs at which the expression can fire on some day."""
    minute_field, hour_field = expression.split()[:2]
    fields = croniter(expression).expanded
    minutes = fields[0] if minute_field != "*" else list(range(60))
    hours = fields[1] if hour_field != "*" else list(range(24))
    return {(h, m) for h in hours for m in minutes if isinstance(h, int) and isinstance(m, int)}


def rq_cron_expression(expression: str, timezone: str, evaluator_timezone: str | None = "UTC",
                       year: int | None = None) -> str:
    """A cron expression, read in evaluator_timezone, that fires whenever expression would in timezone."""
    year = year or datetime.now().year
    target = _offsets_minutes(ZoneInfo(timezone), year)
    evaluator = _offsets_minutes(ZoneInfo(evaluator_timezone) if evaluator_timezone else None, year)
    pairs = _fire_times_of_day(expression)
    if len(pairs) >= 24 * 60:
        return "* * * * *"
    minutes, hours = set(), set()
    for hour, minute in pairs:
        for t in target:
            for e in evaluator:
                shifted = (hour * 60 + minute - t + e) % (24 * 60)
                hours.add(shifted // 60)
                minutes.add(shifted % 60)
    # The day fields may shift across midnight, so the wide expression leaves them open.
    return f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * *"


def hourly(expression: str) -> str:
    """Every hour at the minutes of expression's minute field (the tick runs at least hourly)."""
    return f"{expression.split()[0]} * * * *"


def last_fire(expression: str, timezone: str, now: datetime) -> datetime:
    """The latest instant at or before now at which expression fires in timezone, aware in that zone."""
    tz = ZoneInfo(timezone)
    local_now = now.astimezone(tz).replace(tzinfo=None) + timedelta(seconds=1)
    return croniter(expression, local_now).get_prev(datetime).replace(tzinfo=tz)


def due_report_date(expression: str, timezone: str, now: datetime, grace: timedelta = GRACE) -> date | None:
    """The report date to run if expression fired in timezone within `grace` before now, else None.

    A report covers the calendar day before the fire time (in timezone).
    """
    fired = last_fire(expression, timezone, now)
    if now - fired > grace:
        return None
    return fired.date() - timedelta(days=1)


def next_fire(expression: str, timezone: str, now: datetime) -> datetime:
    """The next moment after now at which expression fires in timezone, aware in that zone."""
    tz = ZoneInfo(timezone)
    local_now = now.astimezone(tz).replace(tzinfo=None)
    return croniter(expression, local_now).get_next(datetime).replace(tzinfo=tz)


def default_report_date(timezone: str, now: datetime | None = None) -> date:
    """The report date of a run started now: yesterday in timezone."""
    now = now or datetime.now(UTC)
    return now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in timezone, as aware datetimes."""
    tz = ZoneInfo(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end_day = day + timedelta(days=1)
    return start, datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
