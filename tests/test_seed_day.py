"""The seed-day fixture agrees with the real commits in shared/seed/dynamo-2026-01-24/commits.json."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.reports.days import day_bounds
from newsletter.sources.github import GitHubSource

from .fakes import seed_day
from .fakes.github import FakeGitHub
from .fakes.seed_day import (
    SEED_BASE_SHA,
    SEED_BASE_TIME,
    SEED_COMMITS,
    SEED_COMMITS_JSON,
    SEED_DATE,
    SEED_REPO,
    SEED_TIMEZONE,
    load_into,
)

HUNK_HEADER = re.compile(r"@@ -(\d+),(\d+) \+(\d+),(\d+) @@")


def _real() -> dict[str, dict]:
    return {c["sha"]: c for c in json.loads(SEED_COMMITS_JSON.read_text(encoding="utf-8"))}


REAL = _real()


def test_the_fixture_has_the_fifteen_real_commits_oldest_first():
    assert len(REAL) == 15 and {c.sha for c in SEED_COMMITS} == set(REAL)
    times = [c.committed_at for c in SEED_COMMITS]
    assert times == sorted(times) and len(set(times)) == 15


@pytest.mark.parametrize("commit", SEED_COMMITS, ids=lambda c: c.sha[:8])
def test_each_commit_matches_commits_json(commit):
    real = REAL[commit.sha]
    assert commit.parents == tuple(real["parents"])
    assert commit.committed_at == datetime.fromisoformat(real["committed_at"])
    assert commit.committed_at.utcoffset() == timedelta(0)  # in UTC, as every source gives it
    assert (commit.author_name, commit.message) == (real["author_name"], real["message"])
    assert [(f.filename, f.status, f.additions, f.deletions) for f in commit.files] == [
        (f["filename"], f["status"], f["additions"], f["deletions"]) for f in real["files"]]
    assert commit.additions == sum(f["additions"] for f in real["files"])
    assert commit.deletions == sum(f["deletions"] for f in real["files"])


def test_the_parents_form_the_real_chain_on_the_real_base():
    assert SEED_BASE_SHA == "30c6228b822426f84b8adc85da20900087539c54"
    assert [c.parents for c in SEED_COMMITS] == [(SEED_BASE_SHA,)] + [(c.sha,) for c in SEED_COMMITS[:-1]]


def test_nuke_forward_pass_metrics_is_its_real_size():
    (commit,) = [c for c in SEED_COMMITS if c.sha.startswith("feb6d27")]
    assert commit.title == "chore: nuke ForwardPassMetrics (#5531)"
    assert (len(commit.files), commit.additions, commit.deletions) == (19, 171, 993)
    assert commit.committed_at == datetime(2026, 1, 23, 16, 26, 1, tzinfo=UTC)


def test_every_commit_is_on_the_seed_day_in_shanghai_and_not_all_in_utc():
    start, end = day_bounds(SEED_DATE, SEED_TIMEZONE)
    assert all(start <= c.committed_at < end for c in SEED_COMMITS)
    assert SEED_BASE_TIME < start  # the base commit is not part of the day
    utc_start, utc_end = day_bounds(SEED_DATE, "UTC")
    assert sum(utc_start <= c.committed_at < utc_end for c in SEED_COMMITS) == 8
    # The seed report's first and last table rows.
    zone = ZoneInfo(SEED_TIMEZONE)
    assert SEED_COMMITS[0].committed_at.astimezone(zone).strftime("%H:%M:%S") == "00:26:01"
    assert SEED_COMMITS[-1].committed_at.astimezone(zone).strftime("%H:%M:%S") == "10:47:00"


def test_patch_excerpts_are_parts_of_the_real_change():
    excerpts = 0
    for commit in SEED_COMMITS:
        for change in commit.files:
            if change.patch is None:
                continue
            excerpts += 1
            header, *lines = change.patch.split("\n")
            match = HUNK_HEADER.fullmatch(header)
            assert match, (commit.sha, change.filename, header)
            added = sum(line.startswith("+") for line in lines)
            removed = sum(line.startswith("-") for line in lines)
            assert all(line[:1] in "+- " and line for line in lines), (commit.sha, change.filename)
            assert added <= change.additions and removed <= change.deletions, (commit.sha, change.filename)
            assert int(match[2]) == len(lines) - added and int(match[4]) == len(lines) - removed
    # Most files have no patch text (GitHub's answer for large diffs); some carry an excerpt.
    files = sum(len(c.files) for c in SEED_COMMITS)
    assert (files, excerpts) == (87, 31)


def test_the_fake_github_serves_the_real_files_and_authors():
    with FakeGitHub() as fake:
        load_into(fake)
        repo = fake.repo(SEED_REPO)
        for sha, real in REAL.items():
            stored = repo.commits[sha]
            assert stored.author_email == real["author_email"]
            assert stored.author_date == datetime.fromisoformat(real["authored_at"])
            assert stored.committer_name == real["committer_name"]
            assert [(f.filename, f.previous_filename) for f in stored.files] == [
                (f["filename"], f.get("previous_filename")) for f in real["files"]]
        source = GitHubSource(api_url=fake.url)
        try:
            records = [source.commit(SEED_REPO, c.sha) for c in SEED_COMMITS]
        finally:
            source.close()
    assert records == SEED_COMMITS


def test_a_missing_commits_json_fails_with_a_clear_message(monkeypatch, tmp_path):
    missing = tmp_path / "shared" / "seed" / "dynamo-2026-01-24" / "commits.json"
    monkeypatch.setattr(seed_day, "SEED_COMMITS_JSON", missing)
    with pytest.raises(seed_day.SeedDataError, match=f"needs {re.escape(str(missing))}.*It is missing"):
        seed_day._read_commits_json()


@pytest.mark.skipif(not seed_day.SHARED_COMMITS_JSON.is_file(), reason="no ../shared beside this clone")
def test_the_copy_in_tests_data_is_the_shared_file():
    assert seed_day.COPIED_COMMITS_JSON.read_bytes() == seed_day.SHARED_COMMITS_JSON.read_bytes()
