"""Translated strings, zh and en, in one place: `t("key", "zh", n=3)`.

Each catalog module holds CATALOG = {key: {"en": "...", "zh": "..."}}; values may use
str.format fields.
"""
from __future__ import annotations

from . import archive_strings, email_strings, heuristic_strings, report_strings, site_strings

LANGUAGES = ("zh", "en")  # every language a subscriber can read; reports are made in each
DEFAULT_LANGUAGE = "en"

_CATALOG: dict[str, dict[str, str]] = {}
for _module in (site_strings, report_strings, email_strings, archive_strings, heuristic_strings):
    for _key, _value in _module.CATALOG.items():
        if _key in _CATALOG:
            raise RuntimeError(f"duplicate translation key {_key!r}")
        _CATALOG[_key] = _value


def t(key: str, lang: str, /, **fields: object) -> str:
    """Translate key into lang (falling back to English) and fill its fields."""
    entry = _CATALOG[key]
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**fields) if fields else text


def has(key: str) -> bool:
    """Whether the catalog holds key (tests check every label a renderer uses exists)."""
    return key in _CATALOG
