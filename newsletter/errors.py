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


# What kind of failure a repository's report records (DailyReport.error_kind): readers are told
# the kind in their language, never the exception text, which stays in the logs and run records.
FAILURE_KINDS = ("not_found", "unreachable", "rate_limited", "other")


class SourceError(NewsletterError):
    """A commit source (GitHub, a local git repository) failed."""

    kind = "other"


class RepositoryNotFound(SourceError):
    """The repository does not exist or is private to us."""

    kind = "not_found"


class SourceUnavailable(SourceError):
    """The source still fails after retries (rate limit, 5xx, network)."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        # Raised with our own wording: a rate limit the source asked us to outwait says so.
        self.kind = kind or ("rate_limited" if "rate limit" in message.lower() else "unreachable")


def failure_kind(exc: BaseException) -> str:
    """The FAILURE_KINDS entry of a source failure (HTTP 404 and 429 answers count as theirs)."""
    status = getattr(exc, "status", None)
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    kind = getattr(exc, "kind", "other")
    return kind if kind in FAILURE_KINDS else "other"


class AnalysisError(NewsletterError):
    """The LLM could not produce a valid analysis after retries."""


class DeliveryError(NewsletterError):
    """A mail backend refused or failed to take a message."""
