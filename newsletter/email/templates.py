"""The Jinja environment of the email templates (MJML + plain text under templates/email/)."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from mjml import mjml2html

from ..config import TEMPLATES
from ..i18n import t


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


# Outlook-only markup written as `<!--mso ... -->`: MRML parses the inside of an mj-raw's conditional
# comments and refuses unbalanced tags there, so a table opened in one mj-raw and closed in another
# (one Outlook wrapper around many pieces) is written as a plain comment, which MRML copies as is,
# and becomes a conditional comment after compiling. Outside text is escaped: it cannot hold one.
_MSO = re.compile(r"<!--mso (.*?) -->", re.S)


def compile_mjml(mjml: str) -> str:
    """MJML to HTML with MRML; no web fonts (they would make every open a request to a third party)."""
    return _MSO.sub(r"<!--[if mso | IE]>\1<![endif]-->", str(mjml2html(mjml, fonts={})))


def render_mjml(name: str, **context: Any) -> str:
    """Render an .mjml template with Jinja, then compile it to HTML."""
    return compile_mjml(environment().get_template(name).render(**context))


def render_text(name: str, **context: Any) -> str:
    """Render a plain-text template."""
    return environment().get_template(name).render(**context)
