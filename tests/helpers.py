"""Small helpers shared by the web tests."""
from __future__ import annotations

import os
import re
from html import unescape

from sqlalchemy import func, select

from newsletter.models import Subscriber

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
LINK_RE = re.compile(r"https?://[^\s\"'<>]+/(confirm|preferences|unsubscribe)/[A-Za-z0-9_.\-]+")


def csrf_token(html: str) -> str:
    match = re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html) or CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return unescape(next(g for g in match.groups() if g))


def subscribe_form(email: str, repos: list[tuple[str, str]], language: str = "en", token: str | None = None) -> dict:
    data = {"email": email, "language": language, "submit": "1"}
    for i, (repo, threshold) in enumerate(repos):
        data[f"repos-{i}-repo"] = repo
        data[f"repos-{i}-threshold"] = threshold
    if token:
        data["csrf_token"] = token
    return data


def post_subscribe(client, email, repos, language="en", **extra):
    page = client.get("/")
    data = subscribe_form(email, repos, language, csrf_token(page.get_data(as_text=True)))
    data.update(extra)
    return client.post("/", data=data)


def link_in(text: str, kind: str) -> str:
    for match in LINK_RE.finditer(text):
        if match.group(1) == kind:
            return match.group(0)
    raise AssertionError(f"no {kind} link in message")


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def count_subscribers(session) -> int:
    return session.scalar(select(func.count()).select_from(Subscriber))


def descendants(pid: int) -> list[int]:
    """Child processes of pid (and theirs), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def raw_header(raw: bytes, name: bytes) -> list[bytes]:
    """The physical lines of a header in raw message bytes: the first and its continuation lines ([] if absent)."""
    head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(head):
        if line.lower().startswith(name.lower() + b":"):
            lines = [line]
            for more in head[i + 1:]:
                if more[:1] not in (b" ", b"\t"):
                    break
                lines.append(more)
            return lines
    return []
