"""The one place that reads the environment.

Every setting is listed in SETTINGS with its default and a line of documentation; the README's
settings table is checked against this list by a test. A test or a script passes its own mapping
to `load_config` instead of touching os.environ.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from .errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
MIGRATIONS = ROOT / "migrations"
SECRET_KEY_FILE = "secret_key"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    doc: str
    kind: str = "str"  # str, int, bool, float


SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY", None, "Signs sessions and links. Unset: a random key is generated once and kept in `instance/secret_key` (fine for one host; set it explicitly when several hosts serve the site)."),
    Setting("INSTANCE_PATH", None, "Folder for the SQLite database, outbox and generated secret key. Default: `instance/` in the current directory."),
    Setting("DATABASE_URL", None, "SQLAlchemy URL. Default: a SQLite file `newsletter.sqlite3` in the instance folder. PostgreSQL: `postgresql+psycopg://user@host/db`."),
    Setting("REDIS_URL", "redis://localhost:6379/0", "Redis for RQ jobs and rate limits."),
    Setting("BASE_URL", "http://localhost:5000", "Public URL of the site, used in every link in emails."),
    Setting("MAIL_BACKEND", "outbox", "`outbox` (write .eml files to OUTBOX_DIR), `smtp` (SMTP_URL) or `sendgrid` (SENDGRID_API_KEY)."),
    Setting("MAIL_FROM", "Repo Daily <newsletter@localhost>", "From address of every email."),
    Setting("OUTBOX_DIR", None, "Where the outbox backend writes .eml files. Default: `outbox/` in the instance folder."),
    Setting("SMTP_URL", "smtp://localhost:25", "`smtp://user:pass@host:port` (STARTTLS when offered, `?starttls=require` to insist) or `smtps://...` for implicit TLS."),
    Setting("SMTP_TIMEOUT", "30", "Seconds before an SMTP connection attempt gives up.", "float"),
    Setting("SENDGRID_API_KEY", None, "SendGrid API key, for MAIL_BACKEND=sendgrid."),
    Setting("SENDGRID_API_HOST", "https://api.sendgrid.com", "SendGrid API host (tests point it at a fake server)."),
    Setting("SENDGRID_WEBHOOK_PUBLIC_KEY", None, "Verification key of SendGrid's Signed Event Webhook (the base64 key SendGrid shows). Unset: POST /webhooks/sendgrid refuses every request with 403."),
    Setting("SENDGRID_WEBHOOK_MAX_AGE", "600", "Seconds a signed SendGrid webhook request stays acceptable (replay protection); older or as far in the future gets 403.", "int"),
    Setting("CONFIRM_MAX_AGE_DAYS", "7", "Days a confirmation link stays valid.", "int"),
    Setting("PREFERENCES_MAX_AGE_DAYS", "365", "Days a preferences link stays valid (unsubscribe links never expire).", "int"),
    Setting("RATELIMIT_SUBSCRIBE", "10 per hour;3 per minute", "Limit on real submissions of the subscribe form (POST /) per client address; adding a row or a refused post does not count (Flask-Limiter syntax)."),
    Setting("RATELIMIT_CONFIRM", "30 per hour", "Flask-Limiter limit on POST /confirm/<token> per client address."),
    Setting("RATELIMIT_ENABLED", "1", "0 turns rate limiting off.", "bool"),
    Setting("MAX_CONTENT_LENGTH", "65536", "Largest request body accepted, in bytes; larger gets 413.", "int"),
    Setting("TRUSTED_PROXIES", "0", "Number of reverse proxies in front of the site whose X-Forwarded-* headers are trusted.", "int"),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    # The daily analysis
    Setting("GITHUB_API_URL", "https://api.github.com", "GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3)."),
    Setting("GITHUB_TOKEN", None, "GitHub token; optional, raises the rate limit from 60 to 5,000 requests an hour."),
    Setting("OPENAI_API_KEY", None, "Key for the OpenAI-compatible server. With neither it nor OPENAI_BASE_URL set, the heuristic analyzer is used."),
    Setting("OPENAI_BASE_URL", None, "Any OpenAI-compatible server (OpenAI, vLLM, Ollama: http://localhost:11434/v1)."),
    Setting("OPENAI_MODEL", "gpt-4o-mini", "Model name sent to the server; part of the analysis cache key."),
    Setting("LLM_CONCURRENCY", "8", "LLM calls in flight at once for a repository (and for a whole --sync run).", "int"),
    Setting("LLM_TIMEOUT", "60", "Seconds before one LLM call is abandoned and retried.", "float"),
    Setting("LLM_MAX_RETRIES", "3", "Retries of one commit's LLM call before the heuristic analysis stands in (flagged).", "int"),
    Setting("LLM_STRUCTURED_OUTPUT", "auto", "How answers are constrained to the JSON schema: auto (json_schema first, then what the server accepts), json_schema, json_object or prompt."),
    Setting("LLM_CONTEXT_TOKENS", "16384", "The model's context window: the prompt plus the answer must fit it, so the diff budget shrinks as needed.", "int"),
    Setting("DIFF_TOKEN_BUDGET", "6000", "Tokens of diff put into one commit's prompt; the prompt says what was cut.", "int"),
    Setting("BOT_LOGINS", "dependabot[bot],renovate[bot],github-actions[bot],pre-commit-ci[bot]", "Comma-separated logins whose commits get a one-line analysis instead of an LLM call (any login ending in [bot] counts too)."),
    Setting("DIGEST_CRON", "0 7 * * *", "When the daily reports (archive, feed, `newsletter report`) of the day just over are built (cron syntax), in DIGEST_TIMEZONE. Existing subscribers were migrated to its hour; emails follow each subscriber's own clock."),
    Setting("DIGEST_TIMEZONE", "UTC", "IANA time zone of DIGEST_CRON, INGEST_CRON and of report days (a report day is a calendar day in this zone)."),
    Setting("INGEST_CRON", "5 * * * *", "When watched repositories are fetched and their new commits analysed (cron syntax, in DIGEST_TIMEZONE); the scheduler's tick runs at these minutes every hour, and plans the emails due."),
    Setting("JOB_TIMEOUT", "1800", "Seconds an RQ repository job may run.", "int"),
    Setting("LOCAL_REPOSITORIES", "", "Local git repositories served under an owner/name: `local/app=/srv/git/app.git,team/x=/path` (self-hosted git, the demo)."),
    Setting("PUBLIC_LOCAL_REPOSITORIES", "0", "1 makes LOCAL_REPOSITORIES public: anyone may subscribe to them on the site and their archive is public. 0: like private GitHub repositories, only `newsletter subscribe` can add them and their archive answers 404.", "bool"),
    # Delivery
    Setting("DELIVERY_BATCH_SIZE", "500", "Subscribers per fan-out job on the email queue.", "int"),
    Setting("DELIVERY_SWEEP_SECONDS", "60", "Seconds between two runs of the scheduler's delivery sweep, which retries emails whose retry time has come, recovers rows a killed worker left and re-enqueues batches whose job died (it also runs once when the scheduler starts).", "int"),
    Setting("DELIVERY_RETRY_HOURS", "24", "Hours an email that failed for a transient reason (connection refused, timeout, 429, 5xx) keeps being retried, with backoff, before it is marked failed.", "int"),
    Setting("SENDGRID_TIMEOUT", "30", "Seconds one request to SendGrid may take before it counts as a transient failure.", "float"),
    Setting("CONFIRM_EMAILS_PER_DAY", "3", "Confirmation emails one address can be sent in 24 hours, however many client addresses ask.", "int"),
    Setting("DIGEST_HTML_BUDGET", "100000", "Largest email HTML in bytes (Gmail clips at about 102 KB); beyond it later commits collapse to one line.", "int"),
    Setting("LIST_UNSUBSCRIBE_MAILTO", "", "Optional address added to List-Unsubscribe as a mailto: target."),
)


def _convert(setting: Setting, raw: str) -> Any:
    try:
        if setting.kind == "int":
            return int(raw)
        if setting.kind == "float":
            return float(raw)
        if setting.kind == "bool":
            value = raw.strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
    except ValueError:
        raise ConfigError(f"{setting.name}={raw!r} is not a valid {setting.kind}") from None
    return raw


def load_config(environ: Mapping[str, str] | None = None,
                instance_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read every setting from environ (default: os.environ) into a config dict."""
    environ = os.environ if environ is None else environ
    instance = Path(instance_path) if instance_path else Path.cwd() / "instance"
    # SECRET_KEY stays None here when unset; build_config fills it from the instance folder.
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None or raw == "":
            config[setting.name] = None if setting.default is None else _convert(setting, setting.default)
        else:
            config[setting.name] = _convert(setting, raw)

    if config["INSTANCE_PATH"]:
        instance = Path(config["INSTANCE_PATH"])
    config["INSTANCE_PATH"] = str(instance)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{instance / 'newsletter.sqlite3'}"
    if not config["OUTBOX_DIR"]:
        config["OUTBOX_DIR"] = str(instance / "outbox")
    config["BASE_URL"] = config["BASE_URL"].rstrip("/")
    if not config["BASE_URL"].startswith(("http://", "https://")):
        raise ConfigError(f"BASE_URL must start with http:// or https://, got {config['BASE_URL']!r}")
    if config["LLM_STRUCTURED_OUTPUT"] not in ("auto", "json_schema", "json_object", "prompt"):
        raise ConfigError("LLM_STRUCTURED_OUTPUT must be auto, json_schema, json_object or prompt, "
                          f"got {config['LLM_STRUCTURED_OUTPUT']!r}")
    if config["MAIL_BACKEND"] not in ("outbox", "smtp", "sendgrid"):
        raise ConfigError(f"MAIL_BACKEND must be outbox, smtp or sendgrid, got {config['MAIL_BACKEND']!r}")
    try:
        ZoneInfo(config["DIGEST_TIMEZONE"])
    except (KeyError, ValueError):
        raise ConfigError(f"DIGEST_TIMEZONE {config['DIGEST_TIMEZONE']!r} is not an IANA time zone") from None
    for name in ("DIGEST_CRON", "INGEST_CRON"):
        if not croniter.is_valid(config[name]):
            raise ConfigError(f"{name} {config[name]!r} is not a valid cron expression")
    if config["MAIL_BACKEND"] == "sendgrid" and not config["SENDGRID_API_KEY"]:
        raise ConfigError("MAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
    return config


def build_config(overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings of a process: the environment, then overrides (tests, scripts), then the secret key.

    String overrides go through load_config too, so defaults derived from them (the instance
    folder's database and outbox) follow the override.
    """
    merged = dict(os.environ if environ is None else environ)
    merged.update({k: v for k, v in (overrides or {}).items() if k in setting_names() and isinstance(v, str)})
    settings = load_config(merged)
    # Other overrides (typed values, keys that are not settings) as given; strings were converted above.
    settings.update({k: v for k, v in (overrides or {}).items() if not (k in setting_names() and isinstance(v, str))})
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = instance_secret_key(settings["INSTANCE_PATH"])
    return settings


def instance_secret_key(instance_path: str | os.PathLike[str]) -> str:
    """Return the instance folder's generated secret key, creating it (mode 0600) on first use."""
    path = Path(instance_path) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < 32:
            raise ConfigError(f"{path} holds no usable secret key; delete it or set SECRET_KEY") from None
        return key
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def local_repositories(config: Mapping[str, Any]) -> dict[str, str]:
    """LOCAL_REPOSITORIES as {owner/name: path}."""
    mapping = {}
    for item in (config.get("LOCAL_REPOSITORIES") or "").split(","):
        if not item.strip():
            continue
        name, sep, path = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"LOCAL_REPOSITORIES entry {item!r} is not owner/name=/path")
        mapping[name.strip().lower()] = path.strip()
    return mapping


def setting_names() -> list[str]:
    return [s.name for s in SETTINGS]


# Logging -------------------------------------------------------------------------------------------

# The token of a link path (/confirm/<token>, /preferences/<token>, /unsubscribe/<token>), alone or
# inside a URL or a request line: whoever reads a log must not be able to open someone's links.
_TOKEN_PATH = re.compile(r"(/(?:confirm|preferences|unsubscribe)/)[^/?#\s\"'<>]+")
TOKEN_MASK = "[token]"


def mask_tokens(text: str) -> str:
    """text with the token of every link path replaced by [token]."""
    return _TOKEN_PATH.sub(lambda match: match.group(1) + TOKEN_MASK, text)


def mask_record(record: logging.LogRecord) -> None:
    """Mask link tokens in a record's message, traceback and stack, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a format string that does not fit its arguments: logging reports it on emit
        return
    masked = mask_tokens(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        # Format the traceback now, so the formatter prints the masked text instead of its own.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_tokens(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_tokens(record.stack_info)


class TokenFilter(logging.Filter):
    """A filter that masks link tokens in every record it sees and lets all of them through."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def _masking_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        mask_record(record)
        return record

    factory.masks_tokens = True  # type: ignore[attr-defined]  # marks it installed
    return factory


def configure_logging(level: str) -> None:
    """One log format for every process; the HTTP clients' per-request INFO lines are kept out; link
    tokens are masked in every record the process makes."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "urllib3", "github"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # A record factory rather than a filter on some handlers: it also covers loggers that do not
    # propagate or have handlers of their own (werkzeug's request lines, rq, gunicorn in its workers).
    current = logging.getLogRecordFactory()
    if not getattr(current, "masks_tokens", False):
        logging.setLogRecordFactory(_masking_factory(current))
