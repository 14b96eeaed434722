"""Repo Daily: a daily, personalized newsletter of analysed GitHub commits."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app from the environment, or from `config` overrides in tests."""
    from .config import instance_secret_key, load_config, setting_names
    from .db import Database
    from .extensions import csrf, limiter

    environ = dict(os.environ)
    # String overrides go through load_config too, so defaults derived from them (the instance
    # folder's database and outbox) follow the override.
    environ.update({k: v for k, v in (config or {}).items() if k in setting_names() and isinstance(v, str)})
    settings = load_config(environ)
    if config:
        settings.update(config)
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = instance_secret_key(settings["INSTANCE_PATH"])

    app = Flask(__name__, template_folder=str(TEMPLATES), instance_path=str(Path(settings["INSTANCE_PATH"]).resolve()),
                instance_relative_config=False)
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
    logging.basicConfig(level=settings["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One INFO line per HTTP request to GitHub or the LLM drowns the service's own log.
    for noisy in ("httpx", "httpx2", "urllib3", "github"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))

    if settings["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    app.extensions["db"] = Database(settings["DATABASE_URL"])
    app.teardown_appcontext(app.extensions["db"].remove)
    csrf.init_app(app)
    limiter.init_app(app)

    from . import archive, web, webhooks

    app.register_blueprint(web.bp)
    app.register_blueprint(archive.bp)
    app.register_blueprint(webhooks.bp)
    web.init_app(app)

    from .cli import register

    register(app)
    return app
