"""A daily run that fails is resumed, never lost: faults in the LLM answer, the database and Redis.

Each fault is injected at the network edge (the fake OpenAI server, PostgreSQL's own
pg_terminate_backend, a Redis port nobody listens on), never inside our code.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from newsletter.models import CommitAnalysis, DailyRun, Report, RepoRun, RepoRunStatus, RunStatus
from newsletter.reports import run, store

from .factories import subscriber
from .fakes.openai import Behaviour, FakeOpenAI
from .fakes.seed_day import SEED_DATE, SEED_REPO, SEED_TIMEZONE, load_into

SEED_NOW = datetime(2026, 1, 25, 7, 0, tzinfo=UTC)


@pytest.fixture
def config(config):
    """Report days in the seed's time zone: its 15 commits are one day there (two days in UTC)."""
    return {**config, "DIGEST_TIMEZONE": SEED_TIMEZONE}


@pytest.fixture
def llm():
    with FakeOpenAI() as fake:
        yield fake


def _services(app, llm, **overrides):
    config = {**app.config, "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "test-model"}
    return run.make_services(config, **{"sleep": lambda _s: None, **overrides})


def _day_run(session) -> DailyRun:
    session.expire_all()
    return session.scalar(select(DailyRun).where(DailyRun.date == SEED_DATE))


def _reports(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Report).where(Report.date == SEED_DATE))


def test_a_lone_surrogate_in_an_llm_answer_is_stored_and_the_day_is_done(app, session, github, llm):
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    llm.script(Behaviour(answer={"summary": "bad \ud800 answer", "risks": ["nul \x00 inside"]}))
    summary = run.run_sync(session, _services(app, llm), SEED_DATE, now=SEED_NOW)
    assert summary["status"] == "done" and summary["ok"] == 1
    stored = [row.analysis["texts"]["en"] for row in session.scalars(select(CommitAnalysis))]
    odd = [a for a in stored if "bad" in a["summary"]]
    assert len(odd) == 1 and odd[0]["summary"] == "bad \ufffd answer" and odd[0]["risks"] == ["nul inside"]
    report = session.scalar(select(Report).where(Report.date == SEED_DATE))
    assert "bad \ufffd answer" in report.markdown and "\ud800" not in report.markdown
    # The cached analysis is storable too, so asking the model again cannot crash on it.
    again = run.retry_fallbacks(session, _services(app, llm), SEED_DATE)
    assert again["retried"] == 0


def test_the_database_lost_mid_analysis_fails_the_run_and_a_rerun_resumes_it(app, session, github, llm):
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("terminating a server connection needs PostgreSQL")
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    subscriber(session, "b@example.com", "octo/other")
    github.add_repo("octo/other")
    github.add_commits("octo/other", 2, start=datetime(2026, 1, 24, 9, tzinfo=UTC))
    killer = create_engine(app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT")

    def terminate_everyone_else(_body) -> None:
        # PostgreSQL drops every other connection to the database, as a failover or restart would.
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        llm.on_request = None

    llm.on_request = terminate_everyone_else
    services = _services(app, llm)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a dead connection
        run.run_sync(session, services, SEED_DATE, now=SEED_NOW)
    killer.dispose()
    session.rollback()
    failed = _day_run(session)
    assert failed.status is RunStatus.FAILED and failed.error
    # Before the fix the guard said "already made" for ever; now a rerun resumes and finishes the day.
    summary = run.run_sync(session, services, SEED_DATE, now=SEED_NOW)
    assert summary is not None and summary["status"] == "done"
    resumed = _day_run(session)
    assert resumed.status is RunStatus.DONE and resumed.attempts == 2
    assert _reports(session) == 2 and {r.status for r in session.scalars(select(RepoRun))} == {RepoRunStatus.OK}
    # A third trigger has nothing left to do.
    assert run.run_sync(session, services, SEED_DATE, now=SEED_NOW) is None


def test_redis_unreachable_after_the_run_rows_are_committed_leaves_a_resumable_run(app, session, github):
    from jobs.daily import start_daily

    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    good_redis = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    with app.app_context():
        with pytest.raises(Exception, match="(?i)connect"):
            start_daily(SEED_DATE.isoformat())
        failed = _day_run(session)
        assert failed.status is RunStatus.FAILED and "could not enqueue" in failed.error
        app.config["REDIS_URL"] = good_redis
        assert start_daily(SEED_DATE.isoformat()) == "2026-01-24: 1 repositories resumed"
    assert _day_run(session).status is RunStatus.RUNNING


def test_a_stale_running_run_is_resumed_and_a_live_one_is_left_alone(app, session, github):
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    opened = run.open_run(session, SEED_DATE, "manual", SEED_TIMEZONE, now=SEED_NOW)
    assert opened is not None and not opened.resumed
    lease = timedelta(minutes=40)
    assert run.open_run(session, SEED_DATE, "manual", SEED_TIMEZONE, now=SEED_NOW, lease=lease) is None  # alive
    day_run = _day_run(session)
    day_run.heartbeat_at = datetime.now(UTC) - timedelta(hours=2)
    session.commit()
    assert run.unfinished_days(session, SEED_DATE - timedelta(days=7), lease) == [SEED_DATE]
    again = run.open_run(session, SEED_DATE, "cron", SEED_TIMEZONE, now=SEED_NOW, lease=lease)
    assert again is not None and again.resumed and again.repo_run_ids == opened.repo_run_ids


def test_a_crashed_repository_job_stays_pending_and_the_run_is_not_done(app, session, github, llm):
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("terminating a server connection needs PostgreSQL")
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    opened = run.open_run(session, SEED_DATE, "manual", SEED_TIMEZONE, now=SEED_NOW)
    killer = create_engine(app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT")

    def terminate_everyone_else(_body) -> None:
        with killer.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        llm.on_request = None

    llm.on_request = terminate_everyone_else
    services = _services(app, llm)
    with pytest.raises(Exception):  # noqa: B017 - the job fails as RQ would see it fail
        run.run_repository(session, services, opened.repo_run_ids[0])
    killer.dispose()
    session.rollback()
    summary = run.close_run(session, opened.run_id)  # the follow-up job
    assert summary["status"] == "failed" and summary["unfinished"] == [SEED_REPO]
    assert not store.day_is_ready(session, SEED_DATE)
    again = run.open_run(session, SEED_DATE, "manual", SEED_TIMEZONE, now=SEED_NOW)
    assert again is not None and again.resumed and again.repo_run_ids == opened.repo_run_ids
    run.run_repository(session, services, again.repo_run_ids[0])
    assert run.close_run(session, again.run_id)["status"] == "done" and store.day_is_ready(session, SEED_DATE)


def test_close_run_with_an_unfinished_repository_fails_the_run(app, session, github):
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    opened = run.open_run(session, SEED_DATE, "manual", SEED_TIMEZONE, now=SEED_NOW)
    summary = run.close_run(session, opened.run_id)
    assert summary["status"] == "failed" and summary["unfinished"] == [SEED_REPO]
    assert "1 repositories have no report yet" in summary["error"]
    assert not store.day_is_ready(session, SEED_DATE)


def test_llm_calls_in_the_summary_are_http_requests_retries_included(app, session, github, llm):
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    llm.script("server_error", "rate_limited", "ok")
    summary = run.run_sync(session, _services(app, llm), SEED_DATE, now=SEED_NOW)
    assert summary["llm_calls"] == llm.calls == 15 + 2


def test_run_daily_with_redis_down_says_so_in_one_line(app, session, github, runner):
    load_into(github)
    subscriber(session, "a@example.com", SEED_REPO)
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"
    result = runner.invoke(args=["run-daily", "--date", SEED_DATE.isoformat()])
    assert result.exit_code == 1 and "Redis is unreachable" in result.output
    assert "Traceback" not in result.output
    assert _day_run(session).status is RunStatus.FAILED
