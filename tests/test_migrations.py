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
