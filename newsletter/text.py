"""Outside text made safe for every output: the one module that cleans it.

Commit messages, author names, file names, diffs and LLM answers come from outside. Every output
(the Markdown report, the email, the web page, the feed, mail headers) passes them through the
functions here, so the same input renders the same way everywhere:

- `plain`: one line, no control characters or bidi overrides, spaces collapsed, optionally cut;
- `code_spans`: CommonMark code spans (a backtick run closed by the next run of the same length),
  the only markup analysis text gets; `rich_html` and `markdown_rich` render them;
- `markdown_text`, `markdown_rich`, `markdown_list_item`: inert Markdown;
- `safe_url`: the one check before anything becomes a link;
- `header_value`: a mail header value; `xml_text`: text XML 1.0 accepts.
"""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

# Bidirectional overrides can make text display differently from what it says.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
_SPACES = re.compile(r"\s+")
# str.splitlines() boundaries: a title is what comes before the first of them.
_LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# A CommonMark code span: a maximal backtick run closed by the next run of the same length.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# Every ASCII punctuation character that can start Markdown or HTML syntax inline.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!&~])")
# A list item that itself starts like a list, a quote or a rule must not become one.
_BLOCK_START = re.compile(r"^([-+=])|^(\d+)([.)])")
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
# Characters XML 1.0 forbids; ElementTree writes them anyway and the document would not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def plain(value: object, limit: int | None = None) -> str:
    """Outside text as one line: control characters become spaces, bidi overrides go, spaces collapse,
    lone surrogates (which no encoder accepts) become U+FFFD.

    With a limit the result is cut to at most that many characters (see `truncate`).
    """
    text = _CONTROL.sub(" ", _BIDI.sub("", "" if value is None else str(value)))
    text = _SPACES.sub(" ", _UNSTORABLE.sub("\ufffd", text)).strip()
    return truncate(text, limit) if limit is not None else text


def _extends(char: str) -> bool:
    """Code points that belong to the character before them: cutting before one splits a glyph."""
    code = ord(char)
    return bool(unicodedata.combining(char)) or char == "\u200d" or 0xFE00 <= code <= 0xFE0F \
        or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F


def truncate(text: str, limit: int) -> str:
    """Text cut to at most limit characters with "…", on a word boundary when one is near."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = limit - 1
    space = text.rfind(" ", 0, cut + 1)
    if space >= limit // 2:
        cut = space
    else:
        while cut > 0 and (_extends(text[cut]) or text[cut - 1] == "\u200d"):
            cut -= 1
    return text[:cut].rstrip() + "…"


def commit_title(message: str | None) -> str:
    """A commit message's first non-blank line, cleaned; "" when there is none."""
    return plain(_LINE_BREAK.split((message or "").strip(), maxsplit=1)[0])


def code_spans(text: str) -> list[tuple[bool, str, str]]:
    """Split cleaned text into (is_code, content, source) triples.

    A code part's content is the span's text (CommonMark strips one space from each side when both
    have one); its source is the span as written, backticks included.
    """
    parts: list[tuple[bool, str, str]] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        if match.start() > position:
            between = text[position:match.start()]
            parts.append((False, between, between))
        content = match.group(2)
        if len(content) > 2 and content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        parts.append((True, content, match.group(0)))
        position = match.end()
    if position < len(text):
        parts.append((False, text[position:], text[position:]))
    return parts


def rich_html(value: object, limit: int | None = None, code_style: str | None = None) -> Markup:
    """Escaped one-line analysis text whose `code spans` become <code>: the only markup it gets."""
    style = Markup(' style="{}"').format(code_style) if code_style else Markup("")
    out = []
    for is_code, part, _source in code_spans(plain(value, limit)):
        out.append(Markup("<code{}>{}</code>").format(style, part) if is_code else escape(part))
    return Markup("").join(out)


def _markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_text(value: object) -> str:
    """Outside text as one inert Markdown line: no HTML, links, emphasis or table breaks."""
    return _markdown_escape(plain(value))


def markdown_rich(value: object) -> str:
    """Analysis text as one inert Markdown line, keeping its `code spans` (their content stays literal)."""
    return "".join(source if is_code else _markdown_escape(source)
                   for is_code, _content, source in code_spans(plain(value)))


def markdown_list_item(value: object) -> str:
    """markdown_rich text that cannot turn into a nested list, quote or rule at the start of an item."""
    def neutralise(match: re.Match[str]) -> str:
        return f"\\{match.group(1)}" if match.group(1) else f"{match.group(2)}\\{match.group(3)}"

    return _BLOCK_START.sub(neutralise, markdown_rich(value))


def safe_url(url: object) -> str | None:
    """An absolute http(s) URL, percent-encoded so it cannot leave a link or attribute; None otherwise.

    The one check every format (Markdown, email, web page, feed) uses before making a link.
    """
    text = str(url or "").strip()
    if _CONTROL.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # Percent-encode everything that could end the destination or break a table cell.
    return quote(text, safe=":/?#@!$&'*+,;=%~-._")


def header_value(value: object, limit: int = 200) -> str:
    """Outside text safe for a mail header: no line breaks or control characters, bounded length."""
    text = _HEADER_UNSAFE.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def xml_text(value: object) -> str:
    """Text without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", str(value))


def hex_digits(value: object) -> str:
    """The lower-case hex digits of a sha-like value, nothing else (safe in ids and code spans)."""
    return "".join(c for c in str(value or "").lower() if c in "0123456789abcdef")


# Characters a database cannot hold: NUL (PostgreSQL refuses it in text and JSON) and lone surrogates
# (not encodable as UTF-8). Both come from outside: a commit message, a patch, an LLM answer, a webhook.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    """Text any database and UTF-8 encoder accepts: NUL and lone surrogates become U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def storable_json(value: object) -> object:
    """A JSON-like value (dicts, lists, strings, numbers) with every string, keys included, made storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(k) if isinstance(k, str) else k: storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value
