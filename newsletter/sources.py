"""Commit sources: GitHub's REST API (through PyGithub) and local git repositories.

Both sources answer the same four questions about a repository, so the report job
does not care where commits come from:

    info = source.resolve(repo)                      # default branch and its head
    shas = source.new_commit_shas(repo, info.head_sha, watermark)   # since last run
    shas = source.day_commit_shas(repo, info.default_branch, start, end)
    record = source.commit(repo, sha)                # one CommitRecord

Shas come back oldest first. `requests` counts the HTTP requests a source made, so
callers and benchmarks can check the budget: two fixed requests per repository, one
list page per 100 commits and one detail request per new commit.
"""
from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import github
import requests

from .commits import CommitRecord, FileChange
from .errors import ConfigError, RepositoryNotFound, SourceError, SourceUnavailable

log = logging.getLogger(__name__)

REPO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*)/[A-Za-z0-9._-]+")
SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
# GitHub asks clients hit by a secondary rate limit without Retry-After to wait a minute.
SECONDARY_RATE_LIMIT_WAIT = 60.0
# Drop patches above this size, as GitHub does for large diffs; nobody reads them in a mail.
MAX_PATCH_BYTES = 1_000_000


@dataclass(frozen=True)
class RepoInfo:
    """A repository's canonical name, default branch and that branch's head (None when empty)."""

    full_name: str
    default_branch: str
    head_sha: str | None


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
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self.requests = 0
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
        self._install_request_counter()

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._github.close()

    # -- the source interface --------------------------------------------------------

    def resolve(self, repo: str) -> RepoInfo:
        """Look up a repository's default branch and head with two requests."""
        path = self._repo_path(repo)
        try:
            _, data = self._get(path)
        except _HTTPStatusError as exc:
            if exc.status == 404:
                raise RepositoryNotFound(
                    f"GitHub repository {repo!r} was not found (it does not exist, or it is private "
                    f"and the configured token cannot read it)"
                ) from None
            raise
        what = f"repository {repo}"
        full_name = _pick(data, "full_name", str, what)
        branch = _pick(data, "default_branch", str, what)
        try:
            _, data = self._get(f"{path}/branches/{quote(branch)}")
        except _HTTPStatusError as exc:
            # A repository without commits has a default branch name but no such branch.
            if exc.status == 404:
                return RepoInfo(full_name, branch, None)
            raise
        return RepoInfo(full_name, branch, _sha(_pick(data, "commit.sha", str, f"branch {branch} of {repo}")))

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
        _check_window(start, end)
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

    # -- HTTP ----------------------------------------------------------------------------

    def _install_request_counter(self) -> None:
        # PyGithub has no public per-client transport hook. Its Requester builds every
        # connection (each owning a requests.Session) through one factory attribute, so we
        # wrap that factory and count responses with a session hook: an exact count at the
        # network layer, including redirects PyGithub follows. Fail loudly if it moves.
        attribute = "_Requester__connectionClass"
        factory = getattr(self._requester, attribute, None)
        if factory is None:
            raise SourceError("Unsupported PyGithub version: cannot attach the request counter")

        def counting_factory(*args: Any, **kwargs: Any) -> Any:
            connection = factory(*args, **kwargs)
            connection.session.hooks["response"].append(self._count_response)
            return connection

        setattr(self._requester, attribute, counting_factory)

    def _count_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        with self._count_lock:
            self.requests += 1

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
        attempt = 0
        while True:
            try:
                status, headers, body = self._requester.requestJson("GET", url, parameters=params or {})
            except requests.exceptions.RequestException as exc:
                failure = f"network error: {exc}"
                wait = self.backoff * 2**attempt
            except (ValueError, RuntimeError) as exc:
                # PyGithub raises these for responses it cannot digest, such as a non-numeric
                # rate-limit header or a redirect to another host.
                raise SourceError(f"GitHub GET {url} gave an unusable response: {exc}") from exc
            else:
                headers = {k.lower(): v for k, v in headers.items()}
                if status < 300:
                    return headers, _parse_json(body, url)
                failure = f"HTTP {status}: {_message(body)}"
                wait = self._retry_wait(status, headers, body, attempt, url)
            if attempt >= self.max_retries:
                raise SourceUnavailable(
                    f"GitHub GET {url} still failing after {attempt + 1} attempts ({failure})"
                )
            log.warning("GitHub GET %s failed (%s); retrying in %.1f s", url, failure, wait)
            self._sleep(wait)
            attempt += 1

    def _retry_wait(self, status: int, headers: dict[str, str], body: str, attempt: int, url: str) -> float:
        """How long to wait before retrying this response; raises when it must not be retried."""
        message = _message(body)
        if status == 401:
            raise SourceError(f"GitHub rejected the credentials (401 {message}); check the GitHub token")
        if status in (403, 429):
            wait = self._rate_limit_wait(status, headers, message, attempt)
            if wait is None:
                raise _HTTPStatusError(status, f"GitHub refused GET {url} (HTTP {status}: {message})")
            if wait > self.max_wait:
                raise SourceUnavailable(
                    f"GitHub rate limit on GET {url}: retry allowed in {wait:.0f} s, "
                    f"more than the {self.max_wait:.0f} s we are willing to wait"
                )
            return wait
        if status >= 500:
            return self.backoff * 2**attempt
        raise _HTTPStatusError(status, f"GitHub GET {url} failed (HTTP {status}: {message})")

    def _rate_limit_wait(self, status: int, headers: dict[str, str], message: str, attempt: int) -> float | None:
        retry_after = headers.get("retry-after")
        if retry_after:
            return _retry_after_seconds(retry_after)
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
            # The reset time has one-second resolution, so wait one second past it.
            return max(int(headers["x-ratelimit-reset"]) - time.time(), 0.0) + 1.0
        if status == 429 or "rate limit" in message.lower():
            return max(SECONDARY_RATE_LIMIT_WAIT, self.backoff * 2**attempt)
        return None  # a plain 403: permissions, SSO, blocked; retrying will not help


class GitSource:
    """Commits from a local git repository through the git CLI (self-hosted git, offline demo)."""

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None, web_url: str | None = None,
                 git: str = "git"):
        # web_url: a template such as "https://git.example.com/team/app/commit/{sha}";
        # without it html_url is "" because a local path has no page to link to.
        self.path = str(path)
        self.name = name or Path(path).resolve().name.removesuffix(".git")
        self.web_url = web_url
        self.git = git
        self.requests = 0  # no HTTP at all; kept so both sources share one interface

    def resolve(self, repo: str | None = None) -> RepoInfo:
        """Read the checked-out (or bare HEAD) branch and its head; the repo argument is ignored."""
        if not Path(self.path).is_dir() or self._run("rev-parse", "--git-dir", check=False) is None:
            raise RepositoryNotFound(f"{self.path} is not a git repository")
        branch = (self._run("symbolic-ref", "--quiet", "--short", "HEAD", check=False) or b"HEAD").decode().strip()
        return RepoInfo(self.name, branch, self._commit_sha(branch))

    def new_commit_shas(self, repo: str | None, head_sha: str | None, watermark_sha: str | None) -> list[str] | None:
        """Shas reachable from head but not from the watermark, oldest first; None if the watermark is unknown."""
        watermark = self._commit_sha(watermark_sha) if watermark_sha else None
        if watermark is None:
            return None
        if head_sha is None:
            return []
        head = self._commit_sha(head_sha)
        if head is None:
            raise SourceError(f"Commit {head_sha} was not found in git repository {self.path}")
        out = self._run("rev-list", "--reverse", head, f"^{watermark}", "--")
        return out.decode().split()

    def day_commit_shas(self, repo: str | None, branch: str, start: datetime, end: datetime) -> list[str]:
        """Shas on branch whose committer date is in [start, end), oldest first."""
        _check_window(start, end)
        head = self._commit_sha(branch)
        if head is None:
            if not self._run("rev-list", "-n", "1", "--all"):
                return []  # no commits at all yet
            raise SourceError(f"Branch {branch!r} not found in git repository {self.path}")
        # No --since: git stops walking at the first commit older than it, so one late-pushed
        # commit with an old date would hide the day's commits below it. --until only filters.
        out = self._run("log", "--no-color", "--format=%H %ct", f"--until={_git_time(end)}", head, "--")
        lo, hi = start.timestamp(), end.timestamp()
        found = []
        for line in reversed(out.decode().splitlines()):
            sha, stamp = line.split()
            if lo <= int(stamp) < hi:
                found.append((int(stamp), sha))
        found.sort(key=lambda pair: pair[0])
        return [sha for _, sha in found]

    def commit(self, repo: str | None, sha: str) -> CommitRecord:
        """Read one commit, diffed against its first parent like GitHub does."""
        full = self._commit_sha(sha)
        if full is None:
            raise SourceError(f"Commit {sha} was not found in git repository {self.path}")
        meta = self._run("log", "-1", "--no-color", "--no-show-signature",
                         "--format=%H%x00%P%x00%an%x00%cI%x00%B", full, "--")
        sha_, parents, author, date, message = meta.decode("utf-8", "replace").split("\0", 4)
        parent_list = tuple(parents.split())
        files = self._files(full, parent_list[0] if parent_list else None)
        return CommitRecord(
            sha=sha_,
            author_name=author,
            author_login=None,
            committed_at=datetime.fromisoformat(date).astimezone(UTC),
            message=message.rstrip("\n"),
            html_url=self.web_url.format(sha=sha_) if self.web_url else "",
            parents=parent_list,
            additions=sum(f.additions for f in files),
            deletions=sum(f.deletions for f in files),
            files=files,
        )

    def _files(self, sha: str, parent: str | None) -> tuple[FileChange, ...]:
        # Plumbing (diff-tree) rather than git show: its output ignores user diff and
        # color settings. -z keeps odd file names intact; the three listings come in
        # the same order, one entry per file.
        revs = [parent, sha] if parent else ["--root", sha]
        base = ["diff-tree", "-r", "-M", "--no-commit-id"]
        statuses = self._run(*base, "-z", "--name-status", *revs).split(b"\0")
        numstat = self._run(*base, "-z", "--numstat", *revs).split(b"\0")
        patches = _split_patch(self._run(*base, "--patch", "--no-color", *revs))

        names: list[tuple[str, str]] = []
        fields = iter(statuses)
        for code in fields:
            if not code:
                continue
            letter = code[:1].decode()
            if letter in "RC":
                next(fields)  # the old name
            names.append((_STATUS.get(letter, "modified"), next(fields).decode("utf-8", "replace")))

        counts: list[tuple[int, int]] = []
        fields = iter(numstat)
        for entry in fields:
            if not entry:
                continue
            added, deleted, path = entry.split(b"\t", 2)
            if not path:  # a rename: old and new names follow as separate fields
                next(fields)
                next(fields)
            # Binary files show "-" instead of line counts.
            counts.append((int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0))

        if len(names) != len(counts):
            raise SourceError(f"Could not parse the file list of commit {sha} in {self.path}")
        if len(patches) != len(names):
            log.warning("Patch sections of %s do not match its %d files; dropping patches", sha, len(names))
            patches = [None] * len(names)
        return tuple(
            FileChange(filename=name, status=status, additions=added, deletions=deleted, patch=patch)
            for (status, name), (added, deleted), patch in zip(names, counts, patches, strict=True)
        )

    def _commit_sha(self, rev: str) -> str | None:
        """The full sha rev names, or None; callers pass only this sha on to other git commands."""
        if rev.startswith("-"):
            return None  # git would read it as an option
        out = self._run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return out.decode().strip() if out else None

    def _run(self, *args: str, check: bool = True) -> bytes | None:
        """Run git in the repository; on failure raise SourceError, or return None when check is False."""
        try:
            done = subprocess.run(
                [self.git, "-C", self.path, *args],
                capture_output=True,
                env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"},
                check=False,
            )
        except OSError as exc:
            raise SourceError(f"Cannot run {self.git!r}: {exc}") from exc
        if done.returncode != 0:
            if not check:
                return None
            error = done.stderr.decode("utf-8", "replace").strip()
            raise SourceError(f"git {args[0]} failed in {self.path}: {error}")
        return done.stdout


_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


def _split_patch(text: bytes) -> list[str | None]:
    """Split diff-tree --patch output into per-file hunks, shaped like GitHub's "patch" field."""
    sections: list[list[str]] = []
    for line in text.decode("utf-8", "replace").split("\n"):
        if line.startswith("diff --git "):
            sections.append([])
        elif sections:
            sections[-1].append(line)
    patches: list[str | None] = []
    for lines in sections:
        # GitHub's patch starts at the first hunk; binary files and pure renames have none.
        start = next((i for i, line in enumerate(lines) if line.startswith("@@")), None)
        patch = "\n".join(lines[start:]).rstrip("\n") if start is not None else None
        patches.append(patch if patch is None or len(patch) <= MAX_PATCH_BYTES else None)
    return patches


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


def _retry_after_seconds(value: str) -> float:
    """Retry-After is either delay-seconds or an HTTP date."""
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return SECONDARY_RATE_LIMIT_WAIT
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    if end <= start:
        raise ValueError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")


def _github_time(moment: datetime, rounding: Callable[[float], int]) -> str:
    stamp = rounding(moment.timestamp())
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
