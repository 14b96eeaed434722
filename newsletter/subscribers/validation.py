"""Validation of what people type: email addresses, repositories, thresholds, languages."""
from __future__ import annotations

import re
from collections.abc import Callable

import idna
from email_validator import EmailNotValidError, validate_email

from ..clock import DEFAULT_HOUR, default_timezone, weekday_number, zone
from ..errors import ValidationError
from ..i18n import LANGUAGES
from ..models import Threshold

MAX_REPOS = 50
# GitHub: owners are 1-39 letters, digits or single hyphens, not starting with a hyphen;
# repository names are 1-100 letters, digits, '.', '-' or '_', and never '.' or '..'.
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_NAME = r"[A-Za-z0-9._-]{1,100}"
_REPO_RE = re.compile(rf"^({_OWNER})/({_NAME})$")
_URL_PREFIXES = ("https://github.com/", "http://github.com/", "github.com/")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_email(raw: str | None, smtputf8: Callable[[], bool] | None = None) -> str:
    """The address as stored and mailed to, or ValidationError with a message for the form.

    The domain takes its ASCII form (IDNA: `bücher.de` is `xn--bcher-kva.de`), so a mailbox has one
    spelling and mail goes to a name every server accepts; `display_email` gives the Unicode form
    back for pages. A local part that is not ASCII can only be delivered over SMTPUTF8: `smtputf8`
    says whether the mail backend can, and is asked only for such an address (None: it cannot).
    """
    if raw is not None and not isinstance(raw, str):
        raise ValidationError("text_expected")  # a multipart form can send a file part in its place
    if raw is None or not raw.strip():
        raise ValidationError("email_required")
    value = raw.strip()
    if _CONTROL.search(value) or "\ufffd" in value:
        raise ValidationError("email_characters")
    if len(value) > 254:
        raise ValidationError("email_too_long")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError("email_invalid", detail=str(exc)) from None
    if result.ascii_email is None and (smtputf8 is None or not smtputf8()):
        raise ValidationError("email_utf8_local")
    return f"{result.local_part}@{result.ascii_domain}"


def email_key(email: str) -> str:
    """The form uniqueness is checked on: the address with its domain in ASCII form, case-folded."""
    local, at, domain = email.rpartition("@")
    if at and not domain.isascii():
        try:
            # The same mapping email-validator gives ascii_domain (UTS 46, then IDNA 2008).
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            pass  # not a domain normalize_email would accept: compared as it is
    return f"{local}{at}{domain}".casefold()


def display_email(email: str) -> str:
    """The address as a reader recognises it: an ASCII (xn--) domain shown in Unicode."""
    local, at, domain = email.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return email
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError):
        return email


def parse_repo(raw: str) -> str:
    """Return 'owner/name' lower-cased, accepting a github.com URL too."""
    if raw is not None and not isinstance(raw, str):
        raise ValidationError("text_expected")
    value = (raw or "").strip()
    if not value:
        raise ValidationError("repo_required")
    if _CONTROL.search(value):
        raise ValidationError("repo_characters")
    for prefix in _URL_PREFIXES:
        if value.lower().startswith(prefix):
            value = value[len(prefix):]
            break
    value = value.rstrip("/")
    if value.endswith(".git"):
        value = value[:-4]
    match = _REPO_RE.match(value)
    if not match or match.group(2) in (".", "..") or "--" in match.group(1) or match.group(1).endswith("-"):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValidationError("repo_invalid", repo=shown)
    return value.lower()


def parse_threshold(raw: str) -> Threshold:
    try:
        return Threshold((raw or "").strip().lower())
    except ValueError:
        raise ValidationError("threshold_invalid", value=str(raw)[:20]) from None


def parse_language(raw: str) -> str:
    value = (raw or "").strip().lower()
    if value not in LANGUAGES:
        raise ValidationError("language_invalid", value=str(raw)[:20])
    return value


def parse_repo_spec(spec: str) -> tuple[str, Threshold]:
    """Parse the CLI form 'owner/name:threshold' (threshold defaults to medium)."""
    repo, sep, threshold = (spec or "").rpartition(":")
    if not sep:
        return parse_repo(spec), Threshold.MEDIUM
    return parse_repo(repo), parse_threshold(threshold)


def check_repo_list(repos: list[tuple[str, Threshold]]) -> list[tuple[str, Threshold]]:
    """Reject empty, too long or duplicated lists."""
    if not repos:
        raise ValidationError("repos_required")
    if len(repos) > MAX_REPOS:
        raise ValidationError("repos_too_many", limit=MAX_REPOS)
    seen = set()
    for repo, _threshold in repos:
        if repo in seen:
            raise ValidationError("repo_duplicate", repo=repo)
        seen.add(repo)
    return repos


# Each subscriber's clock ----------------------------------------------------------------------------

def parse_schedule(language: str, timezone: str | None = None, hour: str | int | None = None,
                   frequency: str | None = None, weekday: str | int | None = None) -> dict[str, object]:
    """The clock a subscriber asked for, with defaults for what they left out: the language's zone
    (Asia/Shanghai for zh, UTC for en), 08:00, daily, Monday. ValidationError names a bad field."""
    name = (timezone or "").strip() or default_timezone(language)
    try:
        zone(name)
    except ValueError:
        raise ValidationError("timezone_invalid", value=name[:64]) from None
    raw_hour = DEFAULT_HOUR if hour is None or str(hour).strip() == "" else hour
    try:
        number = int(str(raw_hour).strip())
    except ValueError:
        raise ValidationError("hour_invalid", value=str(raw_hour)[:20]) from None
    if not 0 <= number <= 23:
        raise ValidationError("hour_invalid", value=str(raw_hour)[:20])
    how = (frequency or "daily").strip().lower()
    if how not in ("daily", "weekly"):
        raise ValidationError("frequency_invalid", value=how[:20])
    try:
        day = weekday_number(weekday if weekday is not None and str(weekday).strip() else 0)
    except ValueError:
        raise ValidationError("weekday_invalid", value=str(weekday)[:20]) from None
    return {"timezone": name, "hour": number, "frequency": how, "weekday": day}
