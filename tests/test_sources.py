"""Commit sources against a fake GitHub server (through real PyGithub) and real git repositories."""
from __future__ import annotations

import itertools
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import ConfigError, RepositoryNotFound, SourceError, SourceUnavailable
from newsletter.sources.commit import CommitRecord, MergedCommits
from newsletter.sources.git import GitSource
from newsletter.sources.github import GitHubSource
from newsletter.sources.protocol import RepoInfo
from newsletter.sources.router import SourceRouter
from tests.fakes.github import FakeFile, FakeGitHub
from tests.fakes.seed_day import SEED_BASE_SHA, SEED_COMMITS, SEED_DATE, SEED_REPO, SEED_TIMEZONE, load_into

UTC = UTC
REPO = "octo/demo"
T0 = datetime(2026, 1, 24, tzinfo=UTC)
PROPERTY_REPOS = itertools.count()
SEED_REPORT = Path("/work/shared/seed/daily-report-ai-dynamo-dynamo-2026-01-24.zh.md")


class RecordingSleep:
    """A sleep that records delays instead of waiting."""

    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake():
    with FakeGitHub(token="good-token") as server:
        yield server


@pytest.fixture
def sleep():
    return RecordingSleep()


@pytest.fixture
def source(fake, sleep):
    gh = GitHubSource(api_url=fake.url, token="good-token", sleep=sleep)
    yield gh
    gh.close()


@pytest.fixture
def demo(fake):
    """octo/demo with ten commits on main, one a minute from T0."""
    fake.add_repo(REPO)
    return fake.add_commits(REPO, 10, start=T0)


def day(offset: int = 0) -> tuple[datetime, datetime]:
    start = T0 + timedelta(days=offset)
    return start, start + timedelta(days=1)


# -- GitHubSource: the commit graph -------------------------------------------------------


def test_resolve_returns_default_branch_and_head_in_two_requests(fake, source):
    fake.add_repo("Octo/Trunk", default_branch="trunk")
    shas = fake.add_commits("Octo/Trunk", 3)

    info = source.resolve("octo/trunk")

    assert info == RepoInfo(full_name="Octo/Trunk", default_branch="trunk", head_sha=shas[-1])
    assert [r.path for r in fake.requests] == ["/repos/octo/trunk", "/repos/octo/trunk/branches/trunk"]
    assert source.requests == 2


def test_resolve_empty_repository_has_no_head(fake, source):
    fake.add_repo("octo/empty")

    assert source.resolve("octo/empty") == RepoInfo("octo/empty", "main", None)
    assert source.new_commit_shas("octo/empty", None, "a" * 40) == []
    assert source.day_commit_shas("octo/empty", "main", *day()) == []


def test_enterprise_base_url_with_path_prefix(sleep):
    with FakeGitHub(prefix="/api/v3") as server:
        server.add_repo(REPO)
        shas = server.add_commits(REPO, 150, start=T0)
        source = GitHubSource(api_url=server.url, sleep=sleep)

        assert server.url.endswith("/api/v3")
        assert source.resolve(REPO).head_sha == shas[-1]
        # Page 2 comes from the Link header, which already carries the prefix.
        assert source.day_commit_shas(REPO, "main", *day()) == shas
        assert source.requests == server.request_count() == 4


def test_new_commits_after_linear_push(fake, source, demo):
    watermark = demo[-1]
    pushed = fake.add_commits(REPO, 4)

    info = source.resolve(REPO)

    assert source.new_commit_shas(REPO, info.head_sha, watermark) == pushed


def test_no_request_when_head_is_the_watermark(fake, source, demo):
    assert source.new_commit_shas(REPO, demo[-1], demo[-1]) == []
    assert source.new_commit_shas(REPO, demo[-1], None) is None
    assert fake.request_count() == 0


def test_force_push_that_drops_the_watermark_yields_only_the_new_branch(fake, source, demo):
    watermark = demo[-1]
    # Rewrite the last three commits: the new branch forks from demo[6].
    rewritten = fake.add_commits(REPO, 5, parent=demo[6], start=T0 + timedelta(hours=2), message="fix: rewritten")

    assert fake.head(REPO) == rewritten[-1]
    assert source.new_commit_shas(REPO, rewritten[-1], watermark) == rewritten
    (compare,) = [r for r in fake.requests if "/compare/" in r.path]
    assert compare.path.endswith(f"/compare/{watermark}...{rewritten[-1]}")


def test_force_push_backwards_has_no_new_commits(fake, source, demo):
    fake.set_branch(REPO, "main", demo[4])

    assert source.new_commit_shas(REPO, source.resolve(REPO).head_sha, demo[-1]) == []


def test_watermark_gone_returns_none(fake, source, demo):
    dropped = demo[-1]
    fake.set_branch(REPO, "main", demo[-2])
    fake.delete_commit(REPO, dropped)

    assert source.new_commit_shas(REPO, demo[-2], dropped) is None


def test_merge_commits_are_listed_oldest_first(fake, source, demo):
    side = fake.add_commits(REPO, 2, branch="feature", parent=demo[-1], start=T0 + timedelta(hours=1))
    main = fake.add_commits(REPO, 1, start=T0 + timedelta(hours=1, minutes=30))
    merge = fake.add_commit(REPO, "Merge branch 'feature'", parents=(main[-1], side[-1]),
                            date=T0 + timedelta(hours=2))

    shas = source.new_commit_shas(REPO, merge, demo[-1])

    assert sorted(shas) == sorted(side + main + [merge])
    assert shas[-1] == merge and shas.index(side[0]) < shas.index(side[1])
    assert source.commit(REPO, merge).parents == (main[-1], side[-1])


def test_compare_is_paginated_per_100(fake, source):
    fake.add_repo(REPO)
    base = fake.add_commits(REPO, 1, start=T0)[-1]
    pushed = fake.add_commits(REPO, 250)

    assert source.new_commit_shas(REPO, pushed[-1], base) == pushed
    assert fake.request_count("/compare/") == 3
    assert [r.query.get("page", "1") for r in fake.requests] == ["1", "2", "3"]


def brought_by(fake, repo, first, second, before):
    """What the fake's graph says a merge of second into first brings: (commits, committed before `before`)."""
    commits = fake.repo(repo).commits

    def ancestors(sha):
        seen, stack = set(), [sha]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(commits[current].parents)
        return seen

    brought = ancestors(second) - ancestors(first)
    return len(brought), sum(commits[sha].committer_date < before for sha in brought)


def test_merged_commits_counts_the_branch_and_its_earlier_days_in_one_request(fake, source, demo):
    """A pull request branched two days ago: 3 of its 4 commits are of earlier days, 1 of the report's day."""
    side = fake.add_commits(REPO, 3, branch="feature", parent=demo[2], start=T0 - timedelta(days=2),
                            step=timedelta(hours=7))
    side += fake.add_commits(REPO, 1, branch="feature", start=T0 + timedelta(hours=1))
    merge = fake.add_commit(REPO, "Merge pull request #7 from octo/feature", parents=(demo[-1], side[-1]),
                            date=T0 + timedelta(hours=2))
    fake.clear_requests()

    merged = source.merged_commits(REPO, demo[-1], side[-1], T0)

    assert (merged.count, merged.earlier) == brought_by(fake, REPO, demo[-1], side[-1], T0) == (4, 3)
    # One comparison of the parents, unpaginated (up to 250 commits in one answer).
    assert [(r.path, r.query) for r in fake.requests] == [(f"/repos/{REPO}/compare/{demo[-1]}...{side[-1]}", {})]
    assert source.requests == 1
    # The day after, every one of them is of an earlier day; the day before, none is.
    assert source.merged_commits(REPO, demo[-1], side[-1], T0 + timedelta(days=1)).earlier == 4
    assert source.merged_commits(REPO, demo[-1], side[-1], T0 - timedelta(days=3)).earlier == 0
    assert source.commit(REPO, merge).parents == (demo[-1], side[-1])


def test_merged_commits_of_an_already_merged_branch_is_zero(fake, source, demo):
    assert source.merged_commits(REPO, demo[-1], demo[3], T0) == MergedCommits(0, 0)


def test_merged_commits_beyond_one_answer_counts_without_earlier_days(fake, source, demo):
    """GitHub lists 250 commits of a comparison without pagination: the count is exact, earlier unknown."""
    side = fake.add_commits(REPO, 260, branch="big", parent=demo[0], start=T0 - timedelta(days=3))
    fake.clear_requests()

    merged = source.merged_commits(REPO, demo[-1], side[-1], T0)

    assert merged == MergedCommits(brought_by(fake, REPO, demo[-1], side[-1], T0)[0], None)
    assert merged.count == 260 and fake.request_count("/compare/") == 1


def test_merged_commits_failures_are_source_errors(fake, source, sleep, demo):
    unrelated = fake.add_commit(REPO, "chore: an unrelated root", parents=(), move_branch=False)
    with pytest.raises(SourceError, match="cannot compare"):
        source.merged_commits(REPO, demo[-1], unrelated, T0)
    with pytest.raises(SourceError):
        source.merged_commits(REPO, demo[-1], "0" * 40, T0)
    fake.fail("/compare/", status=502, times=10)
    with pytest.raises(SourceUnavailable):
        source.merged_commits(REPO, demo[-1], demo[3], T0)
    fake.clear_faults()
    fake.garbage("/compare/", body=b'{"ahead_by": "seven", "commits": []}')
    with pytest.raises(SourceError, match="ahead_by"):
        source.merged_commits(REPO, demo[-1], demo[3], T0)
    with pytest.raises(ValueError):
        source.merged_commits(REPO, demo[-1], demo[3], datetime(2026, 1, 24))


# -- GitHubSource: the day window ----------------------------------------------------------


def test_empty_day(fake, source, demo):
    assert source.day_commit_shas(REPO, "main", *day(offset=1)) == []
    assert fake.request_count() == 1


def test_day_window_uses_committer_date_and_is_half_open(fake, source, demo):
    start, end = day()
    at_end = fake.add_commit(REPO, "exactly at midnight", date=end)
    # Pushed late today but committed (rebased onto main) with yesterday's date.
    late = fake.add_commit(REPO, "old date, pushed late", date=start - timedelta(hours=3))
    in_window = fake.add_commit(REPO, "authored earlier, committed today", date=start - timedelta(days=5),
                                committer_date=start + timedelta(hours=23))

    shas = source.day_commit_shas(REPO, "main", start, end)

    assert shas == demo + [in_window]
    assert at_end not in shas and late not in shas
    (listing,) = fake.requests
    assert listing.query == {
        "sha": "main", "since": "2026-01-24T00:00:00Z", "until": "2026-01-25T00:00:00Z", "per_page": "100",
    }


def test_day_window_on_another_branch_and_with_offsets(fake, source, demo):
    other = fake.add_commits(REPO, 2, branch="release", parent=demo[2], start=T0 + timedelta(hours=5))
    start = datetime(2026, 1, 24, 8, 0, tzinfo=timezone(timedelta(hours=8)))  # midnight UTC

    assert source.day_commit_shas(REPO, "release", start, start + timedelta(days=1)) == demo[:3] + other


def test_day_window_is_paginated_per_100(fake, source):
    fake.add_repo(REPO)
    shas = fake.add_commits(REPO, 250, start=T0, step=timedelta(minutes=5))

    assert source.day_commit_shas(REPO, "main", T0, T0 + timedelta(days=1)) == shas
    assert fake.request_count("/commits$") == 3


def test_day_window_with_exactly_100_commits_needs_one_page(fake, source):
    fake.add_repo(REPO)
    fake.add_commits(REPO, 100, start=T0)

    assert len(source.day_commit_shas(REPO, "main", *day())) == 100
    assert fake.request_count() == 1


def test_naive_or_empty_window_is_rejected(source):
    with pytest.raises(ValueError, match="timezone-aware"):
        source.day_commit_shas(REPO, "main", datetime(2026, 1, 24), datetime(2026, 1, 25))
    with pytest.raises(ValueError, match="empty window"):
        source.day_commit_shas(REPO, "main", T0, T0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minutes=st.lists(st.integers(min_value=-120, max_value=24 * 60 + 120), min_size=1, max_size=12),
       start_second=st.integers(min_value=0, max_value=59))
def test_day_window_matches_a_brute_force_filter(fake, minutes, start_second):
    full_name = f"octo/prop-{next(PROPERTY_REPOS)}"
    fake.add_repo(full_name)
    sha_at = {}
    for offset in minutes:
        moment = T0 + timedelta(minutes=offset)
        sha_at[fake.add_commit(full_name, f"at {offset}", date=moment)] = moment
    start = T0 + timedelta(seconds=start_second, microseconds=500)
    end = start + timedelta(days=1)
    expected = [sha for sha, moment in sha_at.items() if start <= moment < end]

    got = GitHubSource(api_url=fake.url, token="good-token").day_commit_shas(full_name, "main", start, end)

    assert sorted(got) == sorted(expected)
    assert [sha_at[s] for s in got] == sorted(sha_at[s] for s in got)


# -- GitHubSource: commit details and the seed day ----------------------------------------


def test_seed_day_round_trips_through_the_github_api(fake, source):
    load_into(fake)

    info = source.resolve(SEED_REPO)
    start = datetime.combine(SEED_DATE, datetime.min.time(), ZoneInfo(SEED_TIMEZONE))
    day_shas = source.day_commit_shas(SEED_REPO, info.default_branch, start, start + timedelta(days=1))
    new_shas = source.new_commit_shas(SEED_REPO, info.head_sha, SEED_BASE_SHA)
    records = [source.commit(SEED_REPO, sha) for sha in new_shas]

    assert len(records) == 15
    assert day_shas == new_shas == [c.sha for c in SEED_COMMITS]
    assert records == SEED_COMMITS
    first, last = records[0], records[-1]
    # The seed report's 00:26:01 is Shanghai time; the source gives the committer time in UTC.
    assert (first.sha, first.author_name, first.committed_at) == (
        "feb6d272ac7dc392bdbd4a759c69f310bb3a78ba", "Yan Ru Pei", datetime(2026, 1, 23, 16, 26, 1, tzinfo=UTC))
    assert (last.sha, last.author_name, last.title) == (
        "ebde0f662ca789686611a2a3c635cda2e24879eb", "Biswa Panda",
        "feat: event plane apis and nats implementation (#5624)")
    assert last.committed_at.utcoffset() == timedelta(0)
    assert last.html_url == "https://github.com/ai-dynamo/dynamo/commit/ebde0f662ca789686611a2a3c635cda2e24879eb"


def test_seed_day_request_budget(fake, source):
    load_into(fake)

    info = source.resolve(SEED_REPO)
    for sha in source.new_commit_shas(SEED_REPO, info.head_sha, SEED_BASE_SHA):
        source.commit(SEED_REPO, sha)

    # 2 fixed + 1 compare page + 15 details, counted by the client and seen by the server.
    assert source.requests == fake.request_count() == 18
    assert fake.request_count(r"/commits/[0-9a-f]{40}$") == 15


@pytest.mark.skipif(not SEED_REPORT.exists(), reason="seed report not available")
def test_seed_fixture_matches_the_seed_report():
    text = SEED_REPORT.read_text(encoding="utf-8")
    table = re.findall(r"^\| (2026-01-24 [\d:]+) \| (.+?) \| (.+?) \|$", text, re.MULTILINE)
    links = dict(re.findall(r"^### (.+)\n\*\*SHA\*\*.*?/commit/([0-9a-f]{40})\)", text, re.MULTILINE))

    # The report's table shows committer times in Asia/Shanghai and each message's title.
    expected = sorted((when, author, title, links[title]) for when, author, title in table)
    zone = ZoneInfo(SEED_TIMEZONE)
    actual = [(c.committed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), c.author_name, c.title, c.sha)
              for c in SEED_COMMITS]
    assert len(actual) == 15 and actual == expected
    assert [c.parents for c in SEED_COMMITS] == [(SEED_BASE_SHA,)] + [(c.sha,) for c in SEED_COMMITS[:-1]]


def test_commit_details_are_parsed(fake, source):
    fake.add_repo(REPO)
    binary = FakeFile("logo.png", "added", 0, 0, None)
    renamed = FakeFile("docs/new.md", "renamed", 1, 0, "@@ -1 +1,2 @@\n # Title\n+More",
                       previous_filename="docs/old.md")
    sha = fake.add_commit(REPO, "feat: logo\n\nWith a body.", login=None, author="Someone Offline",
                          date=datetime(2026, 1, 24, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
                          files=[binary, renamed])

    record = source.commit(REPO, sha)

    assert record.author_login is None
    assert record.author_name == "Someone Offline"
    assert record.committed_at == datetime(2026, 1, 24, 15, 0, tzinfo=UTC)
    assert record.message == "feat: logo\n\nWith a body." and record.title == "feat: logo"
    assert record.parents == ()
    assert (record.additions, record.deletions) == (1, 0)
    assert [(f.filename, f.status, f.patch) for f in record.files] == [
        ("logo.png", "added", None), ("docs/new.md", "renamed", "@@ -1 +1,2 @@\n # Title\n+More")]


def test_unknown_commit_raises_source_error(fake, source, demo):
    with pytest.raises(SourceError, match=f"Commit {'0' * 40} was not found in GitHub repository {REPO}"):
        source.commit(REPO, "0" * 40)


# -- GitHubSource: errors -----------------------------------------------------------------


def test_missing_repository_raises_repository_not_found(fake, source):
    with pytest.raises(RepositoryNotFound, match="'octo/nope' was not found"):
        source.resolve("octo/nope")


def test_private_repository_is_not_found_without_a_token(fake, sleep):
    fake.add_repo("octo/secret", private=True)
    fake.add_commits("octo/secret", 1)

    with pytest.raises(RepositoryNotFound, match="private"):
        GitHubSource(api_url=fake.url, sleep=sleep).resolve("octo/secret")
    assert GitHubSource(api_url=fake.url, token="good-token", sleep=sleep).resolve("octo/secret").head_sha


def test_resolve_reads_githubs_private_flag(fake, source):
    fake.add_repo("octo/secret", private=True)
    fake.add_commits("octo/secret", 1)
    fake.add_repo("octo/open")

    assert source.resolve("octo/secret").private is True
    assert source.resolve("octo/open") == RepoInfo("octo/open", "main", None, private=False)


def test_private_looks_up_one_repository_in_one_request(fake, source):
    fake.add_repo("octo/secret", private=True)
    fake.add_repo("octo/open")

    assert source.is_private("octo/secret") is True and source.is_private("Octo/Open") is False
    with pytest.raises(RepositoryNotFound):
        source.is_private("octo/nope")
    assert [r.path for r in fake.requests] == ["/repos/octo/secret", "/repos/Octo/Open", "/repos/octo/nope"]


def test_malformed_repository_name_is_rejected_without_a_request(fake, source):
    with pytest.raises(RepositoryNotFound, match="expected owner/name"):
        source.resolve("../../etc/passwd")
    assert fake.request_count() == 0


def test_bad_credentials_raise_source_error(fake, demo, sleep):
    source = GitHubSource(api_url=fake.url, token="stale-token", sleep=sleep)

    with pytest.raises(SourceError, match="rejected the credentials.*check the GitHub token") as caught:
        source.resolve(REPO)
    assert not isinstance(caught.value, SourceUnavailable)
    assert sleep.delays == [] and fake.request_count() == 1


def test_plain_403_is_not_retried(fake, source, demo):
    fake.fail("/repos/octo/demo$", status=403, message="Resource protected by organization SAML enforcement.")

    with pytest.raises(SourceError, match="SAML enforcement"):
        source.resolve(REPO)
    assert fake.request_count() == 1


def test_bad_api_url_is_a_config_error():
    with pytest.raises(ConfigError, match="http"):
        GitHubSource(api_url="ftp://example.com")
    with pytest.raises(ConfigError, match="per_page"):
        GitHubSource(per_page=500)


# -- GitHubSource: retries and rate limits -------------------------------------------------


def test_server_errors_are_retried_with_exponential_backoff(fake, source, sleep, demo):
    fake.fail("/branches/main$", status=502, times=2)

    assert source.resolve(REPO).head_sha == demo[-1]
    assert sleep.delays == [1.0, 2.0]
    assert fake.request_count("/branches/") == 3
    assert source.requests == fake.request_count() == 4


def test_network_errors_are_retried(fake, source, sleep, demo):
    fake.drop("/repos/octo/demo$", times=1)

    assert source.resolve(REPO).head_sha == demo[-1]
    assert sleep.delays == [1.0]
    assert fake.request_count() == 3


def test_failure_in_a_later_page_retries_only_that_page(fake, source, sleep):
    fake.add_repo(REPO)
    shas = fake.add_commits(REPO, 150, start=T0)
    fake.fail("/commits$", status=503, query={"page": "2"})

    assert source.day_commit_shas(REPO, "main", *day()) == shas
    assert [r.query.get("page", "1") for r in fake.requests] == ["1", "2", "2"]
    assert sleep.delays == [1.0]


def test_primary_rate_limit_waits_until_reset(fake, source, sleep, demo):
    fake.rate_limit("/repos/octo/demo$", reset_in=120)

    assert source.resolve(REPO).head_sha == demo[-1]
    (delay,) = sleep.delays
    assert 119 <= delay <= 122
    assert fake.request_count() == 3


def test_primary_rate_limit_beyond_max_wait_gives_up_at_once(fake, sleep, demo):
    source = GitHubSource(api_url=fake.url, token="good-token", sleep=sleep, max_wait=600)
    fake.rate_limit("/repos/octo/demo$", reset_in=3000)

    with pytest.raises(SourceUnavailable, match="more than the 600 s"):
        source.resolve(REPO)
    assert sleep.delays == [] and fake.request_count() == 1


@pytest.mark.parametrize("status", [429, 403])
def test_retry_after_is_honoured(fake, source, sleep, demo, status):
    fake.retry_after("/branches/", seconds=7, status=status, times=2)

    assert source.resolve(REPO).head_sha == demo[-1]
    assert sleep.delays == [7.0, 7.0]


def test_persistent_server_errors_raise_source_unavailable(fake, source, sleep, demo):
    fake.fail("/compare/", status=500, times=100)

    with pytest.raises(SourceUnavailable, match="still failing after 5 attempts"):
        source.new_commit_shas(REPO, demo[-1], demo[0])
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0]
    assert source.requests == fake.request_count() == 5


def test_persistent_rate_limit_raises_source_unavailable(fake, sleep, demo):
    source = GitHubSource(api_url=fake.url, token="good-token", sleep=sleep, max_retries=2)
    fake.retry_after("/repos/", seconds=1, times=100)

    with pytest.raises(SourceUnavailable, match="after 3 attempts"):
        source.resolve(REPO)
    assert sleep.delays == [1.0, 1.0]


def test_unreachable_server_raises_source_unavailable(sleep):
    with FakeGitHub() as server:
        url = server.url
    source = GitHubSource(api_url=url, sleep=sleep, max_retries=1, backoff=0.5)

    with pytest.raises(SourceUnavailable, match="network error"):
        source.resolve(REPO)
    assert sleep.delays == [0.5]


@pytest.mark.parametrize("body", [b'{"sha": "abc", "commit": {', b"<html>502 Bad Gateway</html>", b"[1, 2, 3]",
                                  b'{"sha": "not-a-sha", "commit": {}}'])
def test_garbage_from_github_raises_source_error(fake, source, demo, body):
    fake.garbage("/commits/", body=body)

    with pytest.raises(SourceError, match="malformed JSON|Unexpected GitHub response") as caught:
        source.commit(REPO, demo[0])
    assert not isinstance(caught.value, SourceUnavailable)


def test_unexpected_shapes_raise_source_error(fake, source, demo):
    fake.garbage("/repos/octo/demo$", body=b'{"full_name": "octo/demo", "default_branch": 7}')
    with pytest.raises(SourceError, match="'default_branch' is int, expected str"):
        source.resolve(REPO)

    fake.garbage("/commits$", body=b'{"message": "a dict, not a list"}')
    with pytest.raises(SourceError, match="expected a list"):
        source.day_commit_shas(REPO, "main", *day())

    fake.garbage("/compare/", body=b'{"total_commits": 1, "commits": [{"commit": {}}]}')
    with pytest.raises(SourceError, match="'sha' is missing"):
        source.new_commit_shas(REPO, demo[-1], demo[0])


# -- the fake server itself -----------------------------------------------------------------


def test_fake_speaks_github_shapes(fake, demo):
    response = requests.get(f"{fake.url}/repos/{REPO}/commits", params={"per_page": 4}, timeout=5)
    missing = requests.get(f"{fake.url}/repos/octo/missing", timeout=5)

    assert response.status_code == 200 and len(response.json()) == 4
    assert response.json()[0]["sha"] == demo[-1]
    assert response.links["next"]["url"].endswith("page=2")
    assert response.links["last"]["url"].endswith("page=3")
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used",
            "x-ratelimit-resource"} <= {h.lower() for h in response.headers}
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


# -- GitSource ------------------------------------------------------------------------------


def git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada Lovelace", "GIT_COMMITTER_EMAIL": "ada@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_file(repo: Path, name: str, text: str, message: str, when: datetime) -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def local(tmp_path):
    """A git repository: base, two commits on main, a feature branch merged back with --no-ff."""
    repo = tmp_path / "widget"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = {"base": commit_file(repo, "README.md", "# Widget\n", "chore: base", T0 - timedelta(days=1))}
    shas["a"] = commit_file(repo, "src/app.py", "print('hi')\n", "feat: app", T0 + timedelta(hours=1))
    git(repo, "checkout", "-q", "-b", "feature")
    shas["f"] = commit_file(repo, "docs/guide.md", "Guide\n", "docs: guide", T0 + timedelta(hours=2))
    git(repo, "checkout", "-q", "main")
    shas["b"] = commit_file(repo, "src/app.py", "print('hello')\nprint('bye')\n", "fix: greet",
                            T0 + timedelta(hours=3))
    git(repo, "merge", "-q", "--no-ff", "feature", "-m", "Merge branch 'feature'",
        when=T0 + timedelta(hours=4))
    shas["merge"] = git(repo, "rev-parse", "HEAD")
    return repo, shas


def test_git_resolve(local):
    repo, shas = local

    assert GitSource(repo).resolve("ignored") == RepoInfo("widget", "main", shas["merge"])


@pytest.mark.parametrize("public", [False, True])
def test_router_makes_local_repositories_private_unless_public(local, public):
    repo, shas = local
    router = SourceRouter({"LOCAL_REPOSITORIES": f"team/widget={repo}", "PUBLIC_LOCAL_REPOSITORIES": public,
                           "GITHUB_API_URL": "http://127.0.0.1:9"})
    for name in ("team/widget", str(repo)):
        info = router.source_for(name).resolve(name)
        assert info.head_sha == shas["merge"] and info.private is not public
    assert router.is_local("team/widget") and router.is_local(str(repo)) and not router.is_local("team/other")


def test_git_not_a_repository(tmp_path):
    with pytest.raises(RepositoryNotFound, match="not a git repository"):
        GitSource(tmp_path / "missing").resolve(None)


def test_git_new_commits_and_unknown_watermark(local):
    repo, shas = local
    source = GitSource(repo)

    assert source.new_commit_shas(None, shas["merge"], shas["a"]) == [shas["f"], shas["b"], shas["merge"]]
    assert source.new_commit_shas(None, shas["merge"], shas["merge"]) == []
    assert source.new_commit_shas(None, shas["merge"], "f" * 40) is None
    assert source.new_commit_shas(None, shas["merge"], None) is None
    assert source.new_commit_shas(None, shas["merge"], "--output=/tmp/x") is None
    with pytest.raises(SourceError, match="not found"):
        source.commit(None, "--output=/tmp/x")


def test_git_day_window(local):
    repo, shas = local
    source = GitSource(repo)
    commit_file(repo, "late.txt", "x\n", "chore: old date pushed late", T0 - timedelta(hours=1))
    at_end = commit_file(repo, "end.txt", "x\n", "chore: at midnight", T0 + timedelta(days=1))

    got = source.day_commit_shas(None, "main", *day())

    assert got == [shas["a"], shas["f"], shas["b"], shas["merge"]]
    assert at_end not in got
    assert source.day_commit_shas(None, "feature", *day()) == [shas["a"], shas["f"]]
    with pytest.raises(SourceError, match="Branch 'nope' not found"):
        source.day_commit_shas(None, "nope", *day())


def test_git_commit_details(local):
    repo, shas = local
    source = GitSource(repo, web_url="https://git.example.com/widget/commit/{sha}")

    record = source.commit(None, shas["b"][:10])

    assert record.sha == shas["b"]
    assert record.author_name == "Ada Lovelace" and record.author_login is None
    assert record.committed_at == T0 + timedelta(hours=3)
    assert record.committed_at.tzinfo is not None and record.committed_at.utcoffset() == timedelta(0)
    assert record.message == "fix: greet"
    assert record.html_url == f"https://git.example.com/widget/commit/{shas['b']}"
    assert record.parents == (shas["a"],)
    assert (record.additions, record.deletions) == (2, 1)
    (change,) = record.files
    assert (change.filename, change.status, change.additions, change.deletions) == ("src/app.py", "modified", 2, 1)
    assert change.patch == "@@ -1 +1,2 @@\n-print('hi')\n+print('hello')\n+print('bye')"


def test_git_merge_commit_is_diffed_against_its_first_parent(local):
    repo, shas = local

    record = GitSource(repo).commit(None, shas["merge"])

    assert record.is_merge and record.parents == (shas["b"], shas["f"])
    assert record.html_url == ""
    assert [(f.filename, f.status, f.additions) for f in record.files] == [("docs/guide.md", "added", 1)]


def test_git_root_rename_remove_and_binary(local):
    repo, shas = local
    source = GitSource(repo)
    git(repo, "mv", "docs/guide.md", "docs/manual with spaces.md")
    (repo / "README.md").unlink()
    (repo / "logo.bin").write_bytes(bytes(range(256)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "refactor: shuffle files", when=T0 + timedelta(hours=5))

    files = {f.filename: f for f in source.commit(None, "HEAD").files}
    root = source.commit(None, shas["base"])

    assert files["docs/manual with spaces.md"].status == "renamed"
    assert files["docs/manual with spaces.md"].patch is None
    assert files["README.md"].status == "removed" and files["README.md"].patch == "@@ -1 +0,0 @@\n-# Widget"
    assert files["logo.bin"].status == "added" and files["logo.bin"].patch is None
    assert root.parents == () and [f.filename for f in root.files] == ["README.md"]


def test_git_commit_times_are_normalised_to_utc(tmp_path):
    repo = tmp_path / "tz"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    local_time = datetime(2026, 1, 24, 18, 47, tzinfo=timezone(timedelta(hours=8)))
    sha = commit_file(repo, "a.txt", "a\n", "feat: from Shanghai", local_time)

    record = GitSource(repo).commit(None, sha)

    assert record.committed_at == datetime(2026, 1, 24, 10, 47, tzinfo=UTC)
    assert record.committed_at.tzinfo == UTC
    with pytest.raises(SourceError, match="not found"):
        GitSource(repo).commit(None, "0" * 40)


def test_git_merged_commits_counts_the_branch_and_its_earlier_days(tmp_path):
    """A branch begun two days before the report's day and merged on it: 3 commits, 2 of earlier days."""
    repo = tmp_path / "pr"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    base = commit_file(repo, "README.md", "# PR\n", "chore: base", T0 - timedelta(days=3))
    git(repo, "checkout", "-q", "-b", "feature")
    for index, when in enumerate((T0 - timedelta(days=2), T0 - timedelta(seconds=1), T0 + timedelta(hours=1))):
        commit_file(repo, f"src/f{index}.py", f"x = {index}\n", f"feat: part {index}", when)
    git(repo, "checkout", "-q", "main")
    first = commit_file(repo, "CHANGELOG.md", "- main\n", "docs: changelog", T0 + timedelta(minutes=30))
    git(repo, "merge", "-q", "--no-ff", "feature", "-m", "Merge pull request #7 from octo/feature",
        when=T0 + timedelta(hours=2))
    source = GitSource(repo)
    record = source.commit(None, "HEAD")
    assert record.parents[0] == first

    merged = source.merged_commits(None, record.parents[0], record.parents[1], T0)

    # What git itself says: rev-list first..second, and the committer times of those commits.
    listed = git(repo, "log", "--format=%ct", f"{record.parents[0]}..{record.parents[1]}").split()
    assert merged == MergedCommits(len(listed), sum(int(stamp) < T0.timestamp() for stamp in listed)) \
        == MergedCommits(3, 2)
    assert source.merged_commits(None, record.parents[0], record.parents[1], T0 + timedelta(days=1)).earlier == 3
    assert source.merged_commits(None, record.parents[1], base, T0) == MergedCommits(0, 0)
    assert source.requests == 0
    with pytest.raises(SourceError, match="not found"):
        source.merged_commits(None, record.parents[0], "0" * 40, T0)
    with pytest.raises(SourceError, match="not found"):
        source.merged_commits(None, "--all", record.parents[1], T0)


def test_merged_commits_are_stored_with_the_record_and_old_records_load():
    """CommitRecord keeps what a merge brings through to_dict/from_dict; records stored before it load."""
    record = CommitRecord(sha="a" * 40, author_name="A", author_login=None, committed_at=T0, message="Merge",
                          html_url="", parents=("b" * 40, "c" * 40), merged=MergedCommits(7, 5))
    data = record.to_dict()
    assert data["merged"] == {"count": 7, "earlier": 5}
    assert CommitRecord.from_dict(data).merged == MergedCommits(7, 5)
    old = {k: v for k, v in data.items() if k != "merged"}
    assert CommitRecord.from_dict(old).merged is None
    assert "merged" not in CommitRecord.from_dict(old).to_dict()  # a commit without it keeps its old shape
    for bad in ({"count": -1}, {"count": "7"}, {"count": 2, "earlier": 3}, {"count": True}, [7, 5]):
        assert CommitRecord.from_dict({**data, "merged": bad}).merged is None
    assert CommitRecord.from_dict({**data, "merged": {"count": 300, "earlier": None}}).merged == MergedCommits(300)
