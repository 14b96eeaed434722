"""Email templates (MJML + plain text under templates/email/) rendered into OutgoingMessages."""
from __future__ import annotations

import logging
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from mjml import mjml2html

from . import TEMPLATES, links
from .errors import DeliveryError
from .i18n import t
from .mailers import OutgoingMessage, clean_header
from .models import SignupRequest

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Jinja for emails: HTML-escaping in .mjml templates, none in .txt ones."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES / "email")),
        autoescape=select_autoescape(enabled_extensions=("mjml",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["t"] = t
    return env


def render_mjml(name: str, **context) -> str:
    """Render an .mjml template with Jinja, then compile it to HTML with MRML."""
    return mjml2html(environment().get_template(name).render(**context))


def render_text(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


def confirmation_message(config: dict, request: SignupRequest) -> OutgoingMessage:
    """The double opt-in email for a signup request."""
    lang = request.language
    context = {
        "lang": lang,
        "repos": request.repos,
        "confirm_url": links.confirm_url(config, request),
        "days": config["CONFIRM_MAX_AGE_DAYS"],
        "base_url": config["BASE_URL"],
    }
    return OutgoingMessage(
        to=request.subscriber.email,
        subject=clean_header(t("mail.confirm.subject", lang)),
        html=render_mjml("confirm.mjml", **context),
        text=render_text("confirm.txt", **context),
        headers={"Auto-Submitted": "auto-generated"},
    )


def send_confirmation(config: dict, mailer, request: SignupRequest) -> bool:
    """Send the confirmation email; False (logged) when the backend fails."""
    try:
        mailer.send(confirmation_message(config, request))
    except DeliveryError:
        log.exception("confirmation email for signup %s could not be sent", request.id)
        return False
    return True
