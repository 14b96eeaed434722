"""Revision 0005: existing addresses move to the ASCII form of their domain, and no row is merged or lost."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, text

from newsletter.db import current_heads, downgrade, upgrade
from newsletter.subscribers.validation import email_key

ROWS = [
    # id, email as an older version stored it
    (1, "a@bücher.de"),            # the Unicode domain...
    (2, "a@xn--bcher-kva.de"),     # ... and the same mailbox, signed up again in its ASCII form
    (3, "Ben@Müller.example"),     # only a Unicode domain: rewritten
    (4, "plain@example.com"),      # nothing to do
    (5, "用户@例子.广告"),          # a UTF-8 local part keeps it; the domain still becomes ASCII
    (6, "c@xn--bcher-kva.de"),     # the ASCII form first ...
    (7, "c@BÜCHER.de"),            # ... then the Unicode one, newer: left as it is
]


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url, "0004")
    engine = create_engine(url)
    with engine.begin() as connection:
        for row_id, email in ROWS:
            connection.execute(text(
                "INSERT INTO subscriber (id, email, email_key, status, language, paused, send_empty, created_at) "
                "VALUES (:id, :email, :key, 'confirmed', 'en', 0, 0, '2026-01-01 00:00:00')"),
                {"id": row_id, "email": email, "key": email.casefold()})
    engine.dispose()
    return url


def _rows(url: str) -> dict[int, tuple[str, str]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = {r.id: (r.email, r.email_key) for r in connection.execute(text("SELECT id, email, email_key FROM subscriber"))}
    engine.dispose()
    return rows


def test_addresses_move_to_the_ascii_domain_without_merging(url, caplog):
    caplog.set_level(logging.WARNING)
    upgrade(url)
    rows = _rows(url)
    assert rows == {
        1: ("a@bücher.de", "a@bücher.de"),  # would collide with 2: both kept, 1 left alone and logged
        2: ("a@xn--bcher-kva.de", "a@xn--bcher-kva.de"),
        3: ("Ben@xn--mller-kva.example", "ben@xn--mller-kva.example"),
        4: ("plain@example.com", "plain@example.com"),
        5: ("用户@xn--fsqu00a.xn--4rr70v", "用户@xn--fsqu00a.xn--4rr70v"),
        6: ("c@xn--bcher-kva.de", "c@xn--bcher-kva.de"),
        7: ("c@BÜCHER.de", "c@bücher.de"),
    }
    # The keys the service computes now find the rewritten rows.
    assert rows[3][1] == email_key("ben@MÜLLER.example") and rows[5][1] == email_key("用户@例子.广告")
    assert "subscriber 1" in caplog.text and "subscriber 2" in caplog.text
    assert "subscriber 7" in caplog.text and "subscriber 6" in caplog.text
    heads = current_heads(url)
    downgrade(url, "0004")  # the ASCII form is as good an address for the old code: nothing to undo
    assert _rows(url) == rows
    upgrade(url)
    assert current_heads(url) == heads and _rows(url) == rows
