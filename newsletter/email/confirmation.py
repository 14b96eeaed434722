"""The double opt-in email: a link that confirms one signup request."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..i18n import t
from ..models import SignupRequest
from ..subscribers import links
from ..text import header_value
from .message import OutgoingMessage
from .templates import render_mjml, render_text


def confirmation_message(config: Mapping[str, Any], request: SignupRequest) -> OutgoingMessage:
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
        subject=header_value(t("mail.confirm.subject", lang)),
        html=render_mjml("confirm.mjml", **context),
        text=render_text("confirm.txt", **context),
        headers={"Auto-Submitted": "auto-generated"},
    )
