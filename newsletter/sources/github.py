"""Commits from GitHub's REST API, through PyGithub.

PyGithub carries authentication (tokens, GitHub Enterprise base URLs), the user agent and its
rate-limit bookkeeping. The four endpoints the daily run needs are asked through its documented
escape hatch for raw REST calls, `Github.requester.requestJson`, so every request is one call of
ours: counted exactly, retried by `newsletter.retry`, and its JSON checked field by field.
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import github
import requests

from ..errors import ConfigError, RepositoryNotFound, SourceError, SourceUnavailable
from ..retry import Backoff, GaveUp, TryAgain, reset_wait, retry_after
from .commit import CommitRecord, FileChange, MergedCommits
from .protocol import RepoInfo, check_window

log = logging.getLogger(__name__)

REPO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*)/[A-Za-z0-9._-]+")
SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
# GitHub asks clients hit by a secondary rate limit without Retry-After to wait a minute.
SECONDARY_RATE_LIMIT_WAIT = 60.0


class _HTTPStatusError(SourceError):
    """GitHub answered with a status that is not retried; callers map some of them."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class GitHubSource:
    """Commits from GitHub's REST API, with retries, rate-limit waits and a request counter."""

    def __init__(
        self,
        api_url: str = "https://api.github.com",
        token: str | None = None,
        *,
        per_page: int = 100,
        max_retries: int = 4,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 900,
        timeout: int = 15,
    ):
        if urlsplit(api_url).scheme not in ("http", "https") or not urlsplit(api_url).hostname:
            raise ConfigError(f"GitHub API URL must be an http(s) URL, got {api_url!r}")
        if not 1 <= per_page <= 100:
            raise ConfigError(f"per_page must be between 1 and 100 (GitHub's maximum), got {per_page}")
        self.api_url = api_url.rstrip("/")
        self.per_page = per_page
        self.max_wait = max_wait
        self._backoff = Backoff(retries=max_retries, base=backoff, max_wait=max_wait, sleep=sleep)
        self._requests = 0
        self._count_lock = threading.Lock()
        self._github = github.Github(
            base_url=self.api_url,
            auth=github.Auth.Token(token) if token else None,
            per_page=per_page,
            timeout=timeout,
            # Retries happen in _get, where waits go through the injected sleep and every
            # attempt is visible; urllib3's own retries would sleep behind our back.
            retry=0,
            # PyGithub spaces requests 0.25 s apart by default; GitHub only asks that for
            # writes, and it would add minutes to a run over many repositories.
            seconds_between_requests=None,
        )
        self._requester = self._github.requester

    @property
    def requests(self) -> int:
        """HTTP requests made so far, retries included."""
        with self._count_lock:
            return self._requests

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._github.close()

    # -- the source interface --------------------------------------------------------

    def resolve(self, repo: str) -> RepoInfo:
        """Look up a repository's default branch, head and visibility with two requests."""
        path = self._repo_path(repo)
        data = self._repository(repo)
        what = f"repository {repo}"
        full_name = _pick(data, "full_name", str, what)
        branch = _pick(data, "default_branch", str, what)
        private = _pick(data, "private", bool, what)
        try:
            _, data = self._get(f"{path}/branches/{quote(branch)}")
        except _HTTPStatusError as exc:
            # A repository without commits has a default branch name but no such branch.
            if exc.status == 404:
                return RepoInfo(full_name, branch, None, private)
            raise
        head = _sha(_pick(data, "commit.sha", str, f"branch {branch} of {repo}"))
        return RepoInfo(full_name, branch, head, private)

    def is_private(self, repo: str) -> bool:
        """Whether GitHub marks the repository private, in one request; RepositoryNotFound when it is not shown."""
        # GitHub Enterprise's "internal" repositories are private too: `private` is true for them.
        return bool(_pick(self._repository(repo), "private", bool, f"repository {repo}"))

    def _repository(self, repo: str) -> Any:
        """GET /repos/{repo}: the repository's JSON, or RepositoryNotFound."""
        try:
            _, data = self._get(self._repo_path(repo))
        except _HTTPStatusError as exc:
            if exc.status == 404:
                raise RepositoryNotFound(
                    f"GitHub repository {repo!r} was not found (it does not exist, or it is private "
                    f"and the configured token cannot read it)"
                ) from None
            raise
        return data

    def new_commit_shas(self, repo: str, head_sha: str | None, watermark_sha: str | None) -> list[str] | None:
        """Shas reachable from head but not from the watermark, oldest first; None if the watermark is unknown."""
        if not watermark_sha:
            return None
        if head_sha is None or head_sha == watermark_sha:
            return []
        path = f"{self._repo_path(repo)}/compare/{quote(watermark_sha)}...{quote(head_sha)}"
        shas: list[str] = []
        total = None
        try:
            # Compare lists what head has beyond the merge base, so after a force-push that
            # dropped the watermark ("diverged") we still get exactly the new branch's commits.
            for data in self._pages(path, {"per_page": self.per_page}):
                what = f"comparison {watermark_sha[:12]}...{head_sha[:12]} in {repo}"
                total = _pick(data, "total_commits", int, what)
                for item in _pick(data, "commits", list, what):
                    shas.append(_sha(_pick(item, "sha", str, what)))
        except _HTTPStatusError as exc:
            if exc.status in (404, 422):
                log.info("Watermark %s is gone from %s (HTTP %s); falling back to the day window",
                         watermark_sha, repo, exc.status)
                return None
            raise
        if total is not None and total > len(shas):
            log.warning("GitHub listed %d of %d new commits in %s", len(shas), total, repo)
        return shas

    def day_commit_shas(self, repo: str, branch: str, start: datetime, end: datetime) -> list[str]:
        """Shas on branch whose committer date is in [start, end), oldest first."""
        check_window(start, end)
        params = {
            "sha": branch,
            # GitHub's since/until are whole seconds and inclusive; widen, then filter exactly.
            "since": _github_time(start, math.floor),
            "until": _github_time(end, math.ceil),
            "per_page": self.per_page,
        }
        found: list[tuple[datetime, str]] = []
        try:
            for data in self._pages(f"{self._repo_path(repo)}/commits", params):
                what = f"commit list of {repo}@{branch}"
                if not isinstance(data, list):
                    raise SourceError(f"Unexpected GitHub response for {what}: expected a list")
                for item in data:
                    moment = _parse_time(_pick(item, "commit.committer.date", str, what), what)
                    if start <= moment < end:
                        found.append((moment, _sha(_pick(item, "sha", str, what))))
        except _HTTPStatusError as exc:
            if exc.status == 409:  # "Git Repository is empty."
                return []
            raise
        # GitHub lists newest first; reverse before the stable sort so equal times stay in graph order.
        found.reverse()
        found.sort(key=lambda pair: pair[0])
        return [sha for _, sha in found]

    def commit(self, repo: str, sha: str) -> CommitRecord:
        """Fetch one commit with its stats, files and patches in a single request."""
        try:
            _, data = self._get(f"{self._repo_path(repo)}/commits/{quote(sha)}")
        except _HTTPStatusError as exc:
            if exc.status in (404, 422):
                raise SourceError(f"Commit {sha} was not found in GitHub repository {repo}") from None
            raise
        return _commit_record(data, f"commit {sha[:12]} of {repo}")

    def merged_commits(self, repo: str, first_parent: str, second_parent: str, before: datetime) -> MergedCommits:
        """What a merge brings, in one request: the comparison first_parent...second_parent.

        `ahead_by` counts the commits reachable from the second parent and not from the first; the
        committer dates of the listed ones (without per_page GitHub lists up to 250, unpaginated) say
        how many are older than `before`. When GitHub lists fewer than it counts, earlier is None
        rather than a guess: more pages would cost a request each, for a number no reader needs exact.
        """
        if before.tzinfo is None:
            raise ValueError("before must be a timezone-aware datetime")
        what = f"comparison {first_parent[:12]}...{second_parent[:12]} in {repo}"
        path = f"{self._repo_path(repo)}/compare/{quote(first_parent)}...{quote(second_parent)}"
        try:
            _, data = self._get(path)
        except _HTTPStatusError as exc:
            if exc.status in (404, 422):
                raise SourceError(f"GitHub cannot compare the parents of a merge in {repo}: {exc}") from None
            raise
        count = _pick(data, "ahead_by", int, what)
        commits = _pick(data, "commits", list, what)
        if count < 0:
            raise SourceError(f"Unexpected GitHub response for {what}: ahead_by is {count}")
        dates = [_parse_time(_pick(item, "commit.committer.date", str, what), what) for item in commits]
        if len(dates) < count:
            log.info("GitHub listed %d of the %d commits of %s; earlier days not counted", len(dates), count, what)
            return MergedCommits(count=count, earlier=None)
        return MergedCommits(count=count, earlier=min(count, sum(moment < before for moment in dates)))

    # -- HTTP ----------------------------------------------------------------------------

    def _repo_path(self, repo: str) -> str:
        if not isinstance(repo, str) or not REPO_NAME.fullmatch(repo):
            raise RepositoryNotFound(f"{repo!r} is not a GitHub repository name (expected owner/name)")
        return f"/repos/{repo}"

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[Any]:
        """Yield each page's JSON, following Link rel="next" so no empty page is fetched."""
        url: str | None = path
        while url:
            headers, data = self._get(url, params)
            yield data
            url = _next_link(headers.get("link", ""))
            params = {}  # the next link already carries every parameter

    def _get(self, url: str, params: dict[str, Any] | None = None) -> tuple[dict[str, str], Any]:
        """GET with retries; returns (lower-case headers, JSON) or raises a SourceError."""

        def attempt(number: int) -> tuple[dict[str, str], Any]:
            with self._count_lock:
                self._requests += 1
            try:
                status, raw_headers, body = self._requester.requestJson("GET", url, parameters=params or {})
            except requests.exceptions.RequestException as exc:
                raise TryAgain(f"network error: {exc}") from None
            except (ValueError, RuntimeError) as exc:
                # PyGithub raises these for responses it cannot digest, such as a non-numeric
                # rate-limit header or a redirect to another host.
                raise SourceError(f"GitHub GET {url} gave an unusable response: {exc}") from exc
            headers = {k.lower(): v for k, v in raw_headers.items()}
            if status < 300:
                return headers, _parse_json(body, url)
            raise TryAgain(f"HTTP {status}: {_message(body)}", wait=self._retry_wait(status, headers, body, url))

        try:
            return self._backoff.call(attempt, what=f"GitHub GET {url}", logger=log)
        except GaveUp as exc:
            if exc.refused_wait is not None:
                raise SourceUnavailable(
                    f"GitHub rate limit on GET {url}: retry allowed in {exc.refused_wait:.0f} s, "
                    f"more than the {self.max_wait:.0f} s we are willing to wait"
                ) from None
            raise SourceUnavailable(
                f"GitHub GET {url} still failing after {exc.attempts} attempts ({exc.reason})"
            ) from None

    def _retry_wait(self, status: int, headers: dict[str, str], body: str, url: str) -> float | None:
        """The wait GitHub asks for before a retry (None: back off); raises when it must not be retried."""
        message = _message(body)
        if status == 401:
            raise SourceError(f"GitHub rejected the credentials (401 {message}); check the GitHub token")
        if status in (403, 429):
            wait = self._rate_limit_wait(status, headers, message)
            if wait is None:
                raise _HTTPStatusError(status, f"GitHub refused GET {url} (HTTP {status}: {message})")
            return wait
        if status >= 500:
            return None
        raise _HTTPStatusError(status, f"GitHub GET {url} failed (HTTP {status}: {message})")

    def _rate_limit_wait(self, status: int, headers: dict[str, str], message: str) -> float | None:
        if headers.get("retry-after"):
            wait = retry_after(headers)
            return SECONDARY_RATE_LIMIT_WAIT if wait is None else wait
        if headers.get("x-ratelimit-remaining") == "0":
            reset = reset_wait(headers)
            if reset is not None:
                # The reset time has one-second resolution, so wait one second past it.
                return reset + 1.0
        if status == 429 or "rate limit" in message.lower():
            return SECONDARY_RATE_LIMIT_WAIT
        return None  # a plain 403: permissions, SSO, blocked; retrying will not help


# -- parsing GitHub's JSON -------------------------------------------------------------


def _parse_json(body: str, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        snippet = body[:80].replace("\n", " ")
        raise SourceError(f"GitHub returned malformed JSON for GET {url}: {exc} (body starts {snippet!r})") from None


def _message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].strip() or "no message"
    return str(data.get("message", "no message")) if isinstance(data, dict) else "no message"


def _pick(data: Any, path: str, kind: type, what: str, *, optional: bool = False) -> Any:
    """The value at a dotted path, checked against kind; SourceError names what was wrong."""
    value = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            if optional:
                return None
            raise SourceError(f"Unexpected GitHub response for {what}: {path!r} is missing")
        value = value[key]
    if value is None and optional:
        return None
    # bool is an int subclass; a true/false where a count belongs is still malformed.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SourceError(
            f"Unexpected GitHub response for {what}: {path!r} is {type(value).__name__}, expected {kind.__name__}"
        )
    return value


def _sha(value: str) -> str:
    if not SHA.fullmatch(value):
        raise SourceError(f"Unexpected GitHub response: {value[:50]!r} is not a commit sha")
    return value


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(f"Unexpected GitHub response for {what}: bad timestamp {text!r}") from None
    if moment.tzinfo is None:
        raise SourceError(f"Unexpected GitHub response for {what}: timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


def _commit_record(data: Any, what: str) -> CommitRecord:
    files = []
    for item in _pick(data, "files", list, what, optional=True) or []:
        files.append(FileChange(
            filename=_pick(item, "filename", str, what),
            status=_pick(item, "status", str, what),
            additions=_pick(item, "additions", int, what),
            deletions=_pick(item, "deletions", int, what),
            patch=_pick(item, "patch", str, what, optional=True),
        ))
    additions = _pick(data, "stats.additions", int, what, optional=True)
    deletions = _pick(data, "stats.deletions", int, what, optional=True)
    return CommitRecord(
        sha=_sha(_pick(data, "sha", str, what)),
        author_name=_pick(data, "commit.author.name", str, what),
        # "author" is null when the commit email matches no GitHub account.
        author_login=_pick(data, "author.login", str, what, optional=True),
        committed_at=_parse_time(_pick(data, "commit.committer.date", str, what), what),
        message=_pick(data, "commit.message", str, what),
        html_url=_pick(data, "html_url", str, what),
        parents=tuple(_sha(_pick(p, "sha", str, what)) for p in _pick(data, "parents", list, what)),
        additions=additions if additions is not None else sum(f.additions for f in files),
        deletions=deletions if deletions is not None else sum(f.deletions for f in files),
        files=tuple(files),
    )


def _next_link(header: str) -> str | None:
    """The rel="next" URL of an RFC 8288 Link header, if any."""
    for part in header.split(","):
        match = re.fullmatch(r'\s*<([^>]*)>\s*;(.*)', part)
        if match and re.search(r'\brel="?next"?', match.group(2)):
            return match.group(1)
    return None


def _github_time(moment: datetime, rounding: Callable[[float], int]) -> str:
    stamp = rounding(moment.timestamp())
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
