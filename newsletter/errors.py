"""Every exception the service raises on purpose, in one place."""
from __future__ import annotations

from .i18n import t


class NewsletterError(Exception):
    """Base class for the service's own errors."""


class ConfigError(NewsletterError):
    """A setting is missing or malformed."""


class ValidationError(NewsletterError):
    """Input from a user or operator is not acceptable.

    Carries a code from the `error.*` keys of the translation catalog, so the site can show the
    message in the reader's language; str() gives the English text for logs and the CLI.
    """

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str) -> str:
        return t(f"error.{self.code}", lang, **self.params)


class InvalidToken(NewsletterError):
    """A signed link is forged, expired, for another purpose, or for a deleted subscriber."""


class SourceError(NewsletterError):
    """A commit source (GitHub, a local git repository) failed."""


class RepositoryNotFound(SourceError):
    """The repository does not exist or is private to us."""


class SourceUnavailable(SourceError):
    """The source still fails after retries (rate limit, 5xx, network)."""


class AnalysisError(NewsletterError):
    """The LLM could not produce a valid analysis after retries."""


class DeliveryError(NewsletterError):
    """A mail backend refused or failed to take a message."""
