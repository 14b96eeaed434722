"""The site's views: subscribe and preferences (site.py, forms.py), the report archive (archive.py)
and its feed (feed.py), and the mail provider's webhook (webhooks.py). Views validate, call a
service and render; they hold no SQL. access_log.py is gunicorn's logger class (tokens masked)."""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ..subscribers.repositories import RepositoryCheck
from ..subscribers.smtputf8 import Smtputf8Support
from . import archive, feed, site, webhooks
from .extensions import csrf, limiter


def init_app(app: Flask) -> None:
    """Bind the extensions, register the blueprints and the error pages."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    csrf.init_app(app)
    limiter.init_app(app)
    # Per app, so per process: the answers they keep last as long as the process.
    app.extensions["repository_check"] = RepositoryCheck(app.config)
    app.extensions["smtputf8"] = Smtputf8Support(app.config)
    app.register_blueprint(site.bp)
    app.register_blueprint(archive.bp)
    app.register_blueprint(feed.bp)
    app.register_blueprint(webhooks.bp)
    site.init_error_pages(app)
