"""Repo Daily: a daily, personalized newsletter of analysed GitHub commits.

The pipeline, one package per stage: subscribers → sources → analysis → reports → email →
delivery, with web/ as the site's views. `create_app` builds the Flask app; the `newsletter`
command (cli.py) builds its group around it.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from .config import TEMPLATES, build_config, configure_logging
from .db import Database


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app from the environment, or from `config` overrides in tests."""
    settings = build_config(config)
    # static_folder=None: the site's blueprint serves /static from newsletter/web/static.
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=None,
                instance_path=str(Path(settings["INSTANCE_PATH"]).resolve()), instance_relative_config=False)
    app.config.update(settings)
    https = settings["BASE_URL"].startswith("https://")
    app.config.update(
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PREFERRED_URL_SCHEME="https" if https else "http",
        # A form left open for hours must still submit; the token is bound to the session anyway.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=https,
        RATELIMIT_STORAGE_URI=settings["REDIS_URL"],
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX=settings.get("RATELIMIT_KEY_PREFIX", "repo-daily"),
    )
    configure_logging(settings["LOG_LEVEL"])
    app.extensions["db"] = Database(settings["DATABASE_URL"])
    app.teardown_appcontext(app.extensions["db"].remove)

    # As in Flask's tutorial, the views are imported when an app is built, so a worker that only
    # needs the models and services never loads the site, its forms and its rate limiter.
    from . import web

    web.init_app(app)
    return app
