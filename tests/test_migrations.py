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


def test_0008_keeps_every_row_and_moves_subscribers_and_deliveries_to_clocks(tmp_path, monkeypatch):
    """Existing subscribers get DIGEST_TIMEZONE and DIGEST_CRON's hour, daily; a delivery of report day D
    becomes the slot it went at (D+1 at that hour); commits of a report count as seen by the end of
    its day. Rebuilding tables on SQLite deletes no child row (subscriptions, analyses)."""
    import sqlalchemy as sa

    monkeypatch.setenv("DIGEST_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("DIGEST_CRON", "30 7 * * *")
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url, "0007")
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO subscriber (id, email, email_key, status, language, paused, send_empty, "
                          "created_at) VALUES (1, 'a@example.com', 'a@example.com', 'confirmed', 'en', 0, 0, "
                          "'2026-01-01')"))
        c.execute(sa.text("INSERT INTO subscription (subscriber_id, repo, threshold, created_at, granted) "
                          "VALUES (1, 'o/r', 'low', '2026-01-01', 0)"))
        c.execute(sa.text("INSERT INTO repository (id, name, created_at) VALUES (1, 'o/r', '2026-01-01')"))
        c.execute(sa.text("INSERT INTO repo_commit (id, repository_id, sha, committed_at, record, report_date, "
                          "created_at) VALUES (1, 1, 'abc', '2026-01-24 03:00:00', '{}', '2026-01-24', "
                          "'2026-01-25 00:00:00'), (2, 1, 'def', '2026-01-25 03:00:00', '{}', NULL, "
                          "'2026-01-25 05:00:00')"))
        c.execute(sa.text("INSERT INTO commit_analysis (commit_id, model, prompt_version, analysis, fallback, "
                          "prompt_tokens, completion_tokens, created_at, updated_at) VALUES (1, 'h', '1', '{}', 0, "
                          "0, 0, '2026-01-25', '2026-01-25')"))
        for day in ("2026-01-23", "2026-01-24"):
            c.execute(sa.text("INSERT INTO delivery (subscriber_id, date, status, content_key, attempts, created_at, "
                              "updated_at) VALUES (1, :day, 'sent', '', 1, '2026-01-25', '2026-01-25')"), {"day": day})
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as c:
        assert tuple(c.execute(sa.text("SELECT timezone, hour, frequency FROM subscriber")).one()) == \
            ("Asia/Shanghai", 7, "daily")
        assert c.execute(sa.text("SELECT count(*) FROM subscription")).scalar() == 1
        assert c.execute(sa.text("SELECT count(*) FROM commit_analysis")).scalar() == 1
        seen = dict(c.execute(sa.text("SELECT sha, first_seen_at FROM repo_commit")).all())
        rows = c.execute(sa.text("SELECT date, slot, window_start, window_end FROM delivery ORDER BY date")).all()
    engine.dispose()
    # The end of 2026-01-24 in Shanghai is 16:00 UTC that day, before the commit was stored.
    assert seen["abc"].startswith("2026-01-24 16:00:00") and seen["def"].startswith("2026-01-25 05:00:00")
    assert [r[0] for r in rows] == ["2026-01-24", "2026-01-25"]
    # Subscribers' hours are whole: 07:00 in Shanghai on 2026-01-25 is 23:00 UTC the day before.
    assert rows[1][1].startswith("2026-01-24 23:00:00") and rows[1][3] == rows[1][1]
    downgrade(url, "0007")
    engine = make_engine(url)
    with engine.connect() as c:
        assert [r[0] for r in c.execute(sa.text("SELECT date FROM delivery ORDER BY date"))] == \
            ["2026-01-23", "2026-01-24"]
        assert c.execute(sa.text("SELECT count(*) FROM subscription")).scalar() == 1
    engine.dispose()
