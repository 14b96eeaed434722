"""What a job runs with: the settings and a database session.

Inside `newsletter worker` (and in-process calls from the CLI or tests) that is the Flask app's
config and database; a bare `rq worker` builds them once per process from the environment. Jobs
never build the Flask app itself.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from newsletter.config import build_config, configure_logging
from newsletter.db import Database

_process: tuple[dict[str, Any], Database] | None = None


def _settings() -> tuple[Mapping[str, Any], Database]:
    global _process
    if has_app_context():
        return current_app.config, current_app.extensions["db"]
    if _process is None:
        config = build_config()
        configure_logging(config["LOG_LEVEL"])
        _process = (config, Database(config["DATABASE_URL"]))
    return _process


@contextmanager
def job_session() -> Iterator[tuple[Mapping[str, Any], Session]]:
    """The settings and a database session that is closed when the job ends."""
    config, database = _settings()
    session = database.session()
    try:
        yield config, session
    finally:
        database.session.remove()


def redis_connection(config: Mapping[str, Any]) -> redis.Redis:
    return redis.Redis.from_url(config["REDIS_URL"])
