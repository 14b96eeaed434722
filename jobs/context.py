"""The app a job runs in: the CLI's when there is one, else one built per worker process."""
from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


def get_app() -> Flask:
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from newsletter import create_app

        _app = create_app()
    return _app


@contextmanager
def job_session():
    """The app's config and a database session that is closed when the job ends."""
    app = get_app()
    database = app.extensions["db"]
    with app.app_context():
        session = database.session()
        try:
            yield app.config, session
        finally:
            database.session.remove()


def redis_connection(config: dict):
    import redis

    return redis.Redis.from_url(config["REDIS_URL"])
