"""An email ready for any backend: what rendering produces and a Mailer hands over."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OutgoingMessage:
    """One email to one address."""

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)  # e.g. delivery id, for webhooks
