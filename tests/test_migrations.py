"""The Alembic migrations build exactly the models' schema, and go down and up again."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from newsletter.db import Base, current_heads, downgrade, make_engine, upgrade


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_and_upgrade_on_a_fresh_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url)
    heads = current_heads(url)
    downgrade(url, "base")
    assert current_heads(url) == set()
    upgrade(url)
    assert current_heads(url) == heads


def test_0007_recounts_stored_reports_without_merges(tmp_path):
    """Old rows counted merges in total; after 0007 total is the commits, merges and unanalyzed apart."""
    import json

    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url, "0006")
    entries = [{"commit": {"sha": "a", "parents": ["p", "q"]}, "analysis": None},
               {"commit": {"sha": "b", "parents": ["p"]}, "analysis": {"importance": "high"}},
               {"commit": {"sha": "c", "parents": ["p"]}, "analysis": None}]
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO repository (id, name, created_at) VALUES (1, 'o/r', '2026-01-01')"))
        connection.execute(sa.text(
            "INSERT INTO report (repository_id, date, language, status, analyzer, data, markdown, total, high, medium,"
            " low, prompt_tokens, completion_tokens, created_at, updated_at) VALUES (1, '2026-01-24', 'en', 'ok', 'h',"
            " :data, '', 3, 1, 0, 0, 0, 0, '2026-01-25', '2026-01-25')"), {"data": json.dumps({"entries": entries})})
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT total, merges, unanalyzed FROM report")).one()
    engine.dispose()
    assert tuple(row) == (2, 1, 1)
    downgrade(url, "0006")
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT total FROM report")).scalar() == 3
    engine.dispose()
