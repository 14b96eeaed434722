"""The `newsletter` command: subscribe and db upgrade, through Click's runner and as a real process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from newsletter.models import SubscriberStatus

from .conftest import body_text
from .factories import find_subscriber
from .helpers import csrf_token


def test_subscribe_confirmed_sends_nothing(runner, session, outbox):
    result = runner.invoke(args=["subscribe", "Ops@Example.com", "--repo", "pallets/flask:high",
                                 "--repo", "rq/rq:low", "--lang", "zh", "--confirmed"])
    assert result.exit_code == 0, result.output
    subscriber = find_subscriber(session, "ops@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED and subscriber.language == "zh"
    assert sorted((s.repo, s.threshold.value) for s in subscriber.subscriptions) == [("pallets/flask", "high"), ("rq/rq", "low")]
    assert outbox.messages() == []


def test_subscribe_without_confirmed_starts_double_opt_in(runner, session, outbox):
    result = runner.invoke(args=["subscribe", "new@example.com", "--repo", "ai-dynamo/dynamo"])
    assert result.exit_code == 0, result.output
    assert find_subscriber(session, "new@example.com").status is SubscriberStatus.PENDING
    assert "ai-dynamo/dynamo" in body_text(outbox.last()) and "/confirm/" in body_text(outbox.last())


def test_operator_subscriptions_are_granted_and_unchecked(runner, app, session, outbox, github, tmp_path):
    # The operator may subscribe someone to a private or local repository: no check, and marked granted.
    github.add_repo("octo/secret", private=True)
    app.config["LOCAL_REPOSITORIES"] = f"local/app={tmp_path}"
    result = runner.invoke(args=["subscribe", "ops@example.com", "--repo", "octo/secret:high",
                                 "--repo", "local/app", "--confirmed"])
    assert result.exit_code == 0, result.output
    assert [(s.repo, s.granted) for s in find_subscriber(session, "ops@example.com").subscriptions] == [
        ("local/app", True), ("octo/secret", True)]
    # Double opt-in from the command line: granted once the reader confirms.
    result = runner.invoke(args=["subscribe", "later@example.com", "--repo", "octo/secret"])
    assert result.exit_code == 0, result.output
    confirm = re.search(r"/confirm/[A-Za-z0-9_.\-]+", body_text(outbox.last())).group(0)
    client = app.test_client()
    page = client.get(confirm).get_data(as_text=True)
    assert client.post(confirm, data={"csrf_token": csrf_token(page)}).status_code == 200
    assert [(s.repo, s.granted) for s in find_subscriber(session, "later@example.com").subscriptions] == [
        ("octo/secret", True)]
    assert github.request_count() == 0


def test_subscribe_bad_input_is_a_usage_error(runner, session):
    for args in (["x", "--repo", "rq/rq"], ["a@example.com", "--repo", "not a repo"],
                 ["a@example.com", "--repo", "rq/rq:urgent"]):
        result = runner.invoke(args=["subscribe", *args])
        assert result.exit_code == 2 and "Error" in result.output
    assert find_subscriber(session, "a@example.com") is None


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


def test_flask_app_wsgi_has_the_same_commands(tmp_path):
    """`flask --app wsgi ...` is documented: the commands reach it as Flask command plugins."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:6379/14"}
    env.pop("DATABASE_URL", None)
    listed = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "--help"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for command in ("db", "subscribe", "run-daily", "report", "worker", "scheduler", "deliver", "preview", "demo"):
        assert f"\n  {command} " in listed.stdout, command
    upgrade = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0 and (tmp_path / "newsletter.sqlite3").exists(), upgrade.stderr


def _git_repo(path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    for i, (day, message) in enumerate([("2026-01-22T10:00:00Z", "feat: first feature"),
                                        ("2026-01-23T09:00:00Z", "fix!: breaking fix"),
                                        ("2026-01-23T11:00:00Z", "docs: <script>alert(1)</script> typo")]):
        (path / f"file{i}.py").write_text(f"print({i})\n")
        subprocess.run(["git", "-C", str(path), "add", "."], check=True, env=env)
        subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", message], check=True,
                       env={**env, "GIT_AUTHOR_DATE": day, "GIT_COMMITTER_DATE": day})


def test_demo_runs_days_end_to_end_offline(runner, app, tmp_path):
    repo = tmp_path / "sample-project"
    repo.mkdir()
    _git_repo(repo)
    result = runner.invoke(args=["demo", "--repo-path", str(repo), "--days", "2"])
    assert result.exit_code == 0, result.output
    assert "local/sample-project" in result.output
    assert "2026-01-22: 1 commits" in result.output and "2026-01-23: 2 commits" in result.output
    htmls = sorted((tmp_path / "instance" / "outbox" / "demo").glob("*.html"))
    assert len(htmls) == 2
    html = htmls[-1].read_text()
    assert "breaking fix" in html and "<script>alert(1)" not in html
    # The demo's links work on the site serving the demo's database (make demo-site): the report page,
    # and the reader's own preferences page (the link is signed with the instance's key, which both share).
    assert "make demo-site" in result.output
    from email import message_from_bytes
    from email import policy as email_policy

    from newsletter import create_app

    message = message_from_bytes(sorted((tmp_path / "instance" / "outbox" / "demo").glob("*.eml"))[-1].read_bytes(),
                                 policy=email_policy.default)
    text = message.get_body(("plain",)).get_content()
    base = app.config["BASE_URL"]
    links = {url.split("?")[0] for url in re.findall(re.escape(base) + r"/[^\s>)\]]+", text)}
    site = create_app({**app.config, "DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'demo.sqlite3'}"})
    client = site.test_client()
    report = next(u for u in links if "/r/local/sample-project/" in u)
    preferences = next(u for u in links if "/preferences/" in u)
    # A commit's permalink (or the repository's archive) leads to the daily report that holds it.
    page = client.get(report.removeprefix(base), follow_redirects=True)
    assert page.status_code == 200 and "local/sample-project" in page.get_data(as_text=True)
    page = client.get(preferences.removeprefix(base))
    assert page.status_code == 200 and "demo@example.com" in page.get_data(as_text=True)
    site.extensions["db"].dispose()
    # Run again: a fresh demo database, the same emails again.
    again = runner.invoke(args=["demo", "--repo-path", str(repo), "--days", "2"])
    assert again.exit_code == 0 and again.output.count("email: ") == 2


def test_preview_writes_what_a_subscriber_would_get(runner, app, session, tmp_path):
    from datetime import date

    from newsletter.models import Threshold
    from newsletter.reports import run
    from newsletter.subscribers import subscriptions

    repo = tmp_path / "previewed"
    repo.mkdir()
    _git_repo(repo)
    app.config["LOCAL_REPOSITORIES"] = f"local/previewed={repo}"
    subscriptions.subscribe_confirmed(session, "p@example.com", [("local/previewed", Threshold.HIGH)], "en")
    session.commit()
    run.run_sync(session, run.make_services(app.config), date(2026, 1, 23))
    out = tmp_path / "preview"
    # The next email: what was first seen since the period before the next slot, up to now.
    result = runner.invoke(args=["preview", "p@example.com", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "subject: [Repo Daily] " in result.output
    (html,) = out.glob("*.html")
    assert "breaking fix" in html.read_text() and "typo" not in html.read_text()  # the docs commit is low
    missing = runner.invoke(args=["preview", "nobody@example.com"])
    assert missing.exit_code == 1 and "no subscriber" in missing.output
