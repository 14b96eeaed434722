"""Placeholders of shared content, and filling them in.

A backend that takes one content for many recipients (SendGrid) fills each recipient's own address
and links in at placeholders, and so would any outside text (a commit message, an LLM summary)
that held one. So the renderer puts placeholders only where it puts those values, and each carries
a nonce drawn at random once per process: outside text cannot contain one, and a look-alike such as
"-rd-preferences-" stays literal. Text and HTML get their own (the HTML value is escaped); no
placeholder is a prefix of another, so a backend may substitute them in any order.

A commit time in a window's email (readers of many zones share it) is a placeholder too, written by
the template (layout.RepoDay.time_token) and carrying the UTC instant, the same in text and HTML (its
value, a time and a zone name, reads the same escaped): each reader's substitution is their local time.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

PLACEHOLDER_NONCE = secrets.token_hex(8)
_PERSONAL = {"email": "email", "preferences_url": "preferences", "unsubscribe_url": "unsubscribe"}
TEXT_PLACEHOLDERS = {name: f"-rd-{PLACEHOLDER_NONCE}-{short}-t-" for name, short in _PERSONAL.items()}
HTML_PLACEHOLDERS = {name: f"-rd-{PLACEHOLDER_NONCE}-{short}-h-" for name, short in _PERSONAL.items()}
TIME_STAMP = "%Y%m%d%H%M%S"  # the UTC instant inside a time placeholder
TIME_PLACEHOLDER = "-rd-" + PLACEHOLDER_NONCE + "-time{stamp}-x-"
TIME_PLACEHOLDERS = re.compile(f"-rd-{PLACEHOLDER_NONCE}-time(\\d{{14}})-x-")
_PLACEHOLDER = re.compile(f"-rd-{PLACEHOLDER_NONCE}-(?:(?:email|preferences|unsubscribe)-[th]|time\\d{{14}}-x)-")


def fill(content: str, substitutions: Mapping[str, str]) -> str:
    """content with every placeholder replaced by its value, in one pass (a value is never read again)."""
    return _PLACEHOLDER.sub(lambda match: substitutions[match.group()], content)
