"""The schedule, as data: the file `rq cron` loads (`newsletter scheduler` does it for you).

One entry: a tick that starts the daily run when DIGEST_CRON fires in DIGEST_TIMEZONE. The
expression given to rq is widened so it fires at those moments whichever zone rq reads it in
(UTC for rq 2.x, the process's local time for rq 3.x); the tick itself checks the real one.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypedDict

import rq
from rq import cron

from jobs.daily import tick
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
        "cron": days.rq_cron_expression(_config["DIGEST_CRON"], _config["DIGEST_TIMEZONE"], _evaluator_zone()),
        "name": "daily-digest-tick",
    },
]

for _entry in ENTRIES:
    cron.register(_entry["func"], _entry["queue_name"], cron=_entry["cron"], name=_entry["name"])
