"""The schedule, as data: the file `rq cron` loads (`newsletter scheduler` does it for you).

ENTRIES, by cron: the tick (jobs.daily.tick), every hour at INGEST_CRON's minutes: it ingests when
INGEST_CRON fired, builds the daily reports when DIGEST_CRON fired, and plans and sends the emails
whose slot has come. The expression given to rq is widened so it fires at those minutes whichever
zone rq reads it in (UTC for rq 2.x, the process's local time for rq 3.x); the tick checks the real ones.

INTERVAL_ENTRIES, every so many seconds (and once as soon as the scheduler starts): the delivery
sweep (jobs.deliver.sweep), which retries emails whose retry time has come and finishes a
fan-out whose worker was killed, every DELIVERY_SWEEP_SECONDS (default 60).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypedDict

import rq
from rq import cron

from jobs.daily import tick
from jobs.deliver import DEFAULT_SWEEP_SECONDS, EMAIL_QUEUE, sweep
from newsletter.config import load_config
from newsletter.reports import days


def _evaluator_zone() -> str | None:
    """The zone rq evaluates cron in: UTC before rq 3, else the local zone (None when unknown)."""
    if int(rq.__version__.split(".")[0]) < 3:
        return "UTC"
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        return os.readlink("/etc/localtime").split("zoneinfo/", 1)[1]
    except (OSError, IndexError):
        return None


class _Entry(TypedDict):
    func: Callable[..., Any]
    queue_name: str
    cron: str
    name: str


_config = load_config()
ENTRIES: list[_Entry] = [
    {
        "func": tick,
        "queue_name": "default",
        "cron": days.rq_cron_expression(days.hourly(_config["INGEST_CRON"]), _config["DIGEST_TIMEZONE"],
                                        _evaluator_zone()),
        "name": "hourly-tick",
    },
]



class _IntervalEntry(TypedDict):
    func: Callable[..., Any]
    queue_name: str
    interval: int
    name: str


# DELIVERY_SWEEP_SECONDS is optional: absent from the settings, the default applies.
SWEEP_SECONDS = max(1, int(_config.get("DELIVERY_SWEEP_SECONDS") or DEFAULT_SWEEP_SECONDS))
INTERVAL_ENTRIES: list[_IntervalEntry] = [
    {
        # On the email queue: whatever serves the fan-out also runs its upkeep.
        "func": sweep,
        "queue_name": EMAIL_QUEUE,
        "interval": SWEEP_SECONDS,
        "name": "delivery-sweep",
    },
]

for _entry in ENTRIES:
    cron.register(_entry["func"], _entry["queue_name"], cron=_entry["cron"], name=_entry["name"])
for _interval in INTERVAL_ENTRIES:
    # A sweep still queued after a few intervals is dropped: a newer one does the same work.
    cron.register(_interval["func"], _interval["queue_name"], interval=_interval["interval"], name=_interval["name"],
                  ttl=max(3 * _interval["interval"], 180), result_ttl=3600)
