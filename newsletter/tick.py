"""One tick of the service's clock: what the scheduler does every hour, at one instant.

1. Ingest, if INGEST_CRON fired since the last ingestion: every watched repository's new commits,
   fetched and analysed (reports/ingest.py).
2. Daily reports: once DIGEST_CRON has fired after a DIGEST_TIMEZONE day ended, that day's report
   is built (archive, feed, `newsletter report`); runs that failed or went stale are resumed.
3. Deliveries: every subscriber whose slot is at or before the instant and has not had its email
   is planned and sent (delivery/fanout.py); slots missed while nothing ticked go out now, once.

`newsletter tick [--now]` runs all three in the foreground; the scheduler's tick job (jobs/daily.py)
runs them with the daily run and the email batches as RQ jobs. `--now` replays any instant.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .delivery import fanout
from .delivery.mailers import Mailer
from .models import DailyRun
from .reports import ingest, run
from .reports.days import GRACE, last_fire

log = logging.getLogger(__name__)

RESUME_DAYS = 7  # how far back failed or stale daily runs are resumed


def days_to_build(session: Session, config: Mapping[str, Any], now: datetime) -> list[date]:
    """The day before DIGEST_CRON last fired, if it has no run yet (a fire missed while nothing ticked
    is caught up; one long past is not, so a new installation does not backfill), and recent
    unfinished runs."""
    fired = last_fire(str(config["DIGEST_CRON"]), str(config["DIGEST_TIMEZONE"]), now)
    due = fired.date() - timedelta(days=1)
    wanted = [] if now - fired > max(GRACE, timedelta(days=1)) else [due]
    behind = run.unfinished_days(session, due - timedelta(days=RESUME_DAYS), run.run_lease(config))
    have = set(session.scalars(select(DailyRun.date).where(DailyRun.date.in_(wanted))))
    return sorted({*behind, *(d for d in wanted if d not in have)})


def tick(session: Session, config: Mapping[str, Any], mailer: Mailer, now: datetime | None = None,
         services: run.Services | None = None, deliver: bool = True) -> dict[str, Any]:
    """Ingest if due, build the due daily reports, then plan and send every email due at now."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    own = services is None
    services = services or run.make_services(config)
    summary: dict[str, Any] = {"now": now.isoformat()}
    try:
        fire = last_fire(str(config["INGEST_CRON"]), str(config["DIGEST_TIMEZONE"]), now)
        summary["ingest"] = ingest.ingest(session, services, now, due_at=fire)
        built = []
        for day in days_to_build(session, config, now):
            result = run.run_sync(session, services, day, trigger="cron", now=now)
            if result is not None:
                built.append(result)
        summary["reports"] = built
    finally:
        if own:
            services.close()
    if deliver:
        summary["delivery"] = fanout.deliver_sync(session, config, mailer, now)
    return summary
