"""The `newsletter` command: subscribe and db upgrade, through Click's runner and as a real process."""
from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from newsletter.models import Subscriber, SubscriberStatus

from .conftest import body_text


def _subscriber(session, email):
    session.expire_all()
    return session.scalar(select(Subscriber).where(Subscriber.email_key == email.casefold()))


def test_subscribe_confirmed_sends_nothing(runner, session, outbox):
    result = runner.invoke(args=["subscribe", "Ops@Example.com", "--repo", "pallets/flask:high",
                                 "--repo", "rq/rq:low", "--lang", "zh", "--confirmed"])
    assert result.exit_code == 0, result.output
    subscriber = _subscriber(session, "ops@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED and subscriber.language == "zh"
    assert sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions) == [("pallets/flask", "high"), ("rq/rq", "low")]
    assert outbox.messages() == []


def test_subscribe_without_confirmed_starts_double_opt_in(runner, session, outbox):
    result = runner.invoke(args=["subscribe", "new@example.com", "--repo", "ai-dynamo/dynamo"])
    assert result.exit_code == 0, result.output
    assert _subscriber(session, "new@example.com").status is SubscriberStatus.PENDING
    assert "ai-dynamo/dynamo" in body_text(outbox.last()) and "/confirm/" in body_text(outbox.last())


def test_subscribe_bad_input_is_a_usage_error(runner, session):
    for args in (["x", "--repo", "rq/rq"], ["a@example.com", "--repo", "not a repo"],
                 ["a@example.com", "--repo", "rq/rq:urgent"]):
        result = runner.invoke(args=["subscribe", *args])
        assert result.exit_code == 2 and "Error" in result.output
    assert _subscriber(session, "a@example.com") is None


def test_console_script_upgrades_a_fresh_sqlite_database(tmp_path):
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:6379/14"}
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-c", "from newsletter.cli import main; main()"]
    upgrade = subprocess.run([*cmd, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "newsletter.sqlite3").exists()
    sub = subprocess.run([*cmd, "subscribe", "x@example.com", "--repo", "rq/rq:low", "--confirmed"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert sub.returncode == 0 and "x@example.com confirmed" in sub.stdout, sub.stderr
