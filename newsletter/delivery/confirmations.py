"""The confirmation email, sent at once (inside the subscribe request or the CLI command)."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..email.confirmation import confirmation_message
from ..errors import DeliveryError
from ..models import SignupRequest
from .mailers import Mailer

log = logging.getLogger(__name__)


def send_confirmation(config: Mapping[str, Any], mailer: Mailer, request: SignupRequest) -> bool:
    """Send the confirmation email; False (logged) when the backend fails."""
    try:
        mailer.send(confirmation_message(config, request))
    except DeliveryError:
        log.exception("confirmation email for signup %s could not be sent", request.id)
        return False
    return True
