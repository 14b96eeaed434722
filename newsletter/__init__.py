"""Repo Daily: a daily, personalized newsletter of analysed GitHub commits."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app from the environment, or from `config` overrides in tests."""
    from .config import instance_secret_key, load_config
    from .db import Database
    from .extensions import csrf, limiter

    settings = load_config()
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

    if settings["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    app.extensions["db"] = Database(settings["DATABASE_URL"])
    app.teardown_appcontext(app.extensions["db"].remove)
    csrf.init_app(app)
    limiter.init_app(app)

    from . import web

    app.register_blueprint(web.bp)
    web.init_app(app)

    from .cli import register

    register(app)
    return app
