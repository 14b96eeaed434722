"""gunicorn's logger with link tokens masked in the access and error logs.

    gunicorn --logger-class newsletter.web.access_log.MaskedLogger --access-logfile - wsgi:app

(scripts/docker-entrypoint runs it so). The app masks every record it makes once it is loaded
(newsletter.config.configure_logging); this covers gunicorn's own lines in every process, the
arbiter's included, whatever handlers the log settings give them.
"""
from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no type information

from ..config import TokenFilter


class MaskedLogger(Logger):  # type: ignore[misc]  # Logger is Any to mypy
    """gunicorn's Logger whose error and access loggers mask link tokens in every line."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then put the token filter on both loggers (once)."""
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            if not any(isinstance(f, TokenFilter) for f in logger.filters):
                logger.addFilter(TokenFilter())
