"""A fake GitHub REST API server that speaks GitHub's real response shapes.

It is a real HTTP server on 127.0.0.1, so the real client library (PyGithub over
requests) is exercised end to end. Tests and benchmarks script it: add repositories
and commit graphs, move branch heads (pushes, force-pushes), inject failures, and
count the requests it received.

    with FakeGitHub() as fake:
        fake.add_repo("octo/demo")
        fake.add_commits("octo/demo", 20)
        source = GitHubSource(api_url=fake.url)

Only the read endpoints the service uses are implemented:

    GET /repos/{owner}/{repo}
    GET /repos/{owner}/{repo}/branches/{branch}
    GET /repos/{owner}/{repo}/commits?sha=&since=&until=&per_page=&page=
    GET /repos/{owner}/{repo}/commits/{ref}
    GET /repos/{owner}/{repo}/compare/{base}...{head}?per_page=&page=
    GET /rate_limit

Rate-limit headers are sent on every response but the limit is never enforced;
use `rate_limit()` to make specific requests fail the way GitHub does.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .http import LoopbackServer, bind

DOCS_URL = "https://docs.github.com/rest"
PRIMARY_RATE_LIMIT_MESSAGE = (
    "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests "
    "get a higher rate limit. Check out the documentation for more details.)"
)
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
COMPARE_UNPAGINATED = 250  # commits a comparison lists when asked without per_page or page


@dataclass(frozen=True)
class FakeFile:
    """One file of a fake commit, as GitHub's commit API reports it."""

    filename: str
    status: str = "modified"
    additions: int = 0
    deletions: int = 0
    patch: str | None = None
    previous_filename: str | None = None


@dataclass(frozen=True)
class FakeCommit:
    """A commit in a fake repository's graph."""

    sha: str
    parents: tuple[str, ...]
    message: str
    author_name: str
    author_email: str
    author_login: str | None
    author_date: datetime
    committer_name: str
    committer_email: str
    committer_login: str | None
    committer_date: datetime
    files: tuple[FakeFile, ...] = ()

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


@dataclass
class FakeRepo:
    """A fake repository: metadata, branch heads and every commit ever pushed."""

    id: int
    full_name: str
    default_branch: str = "main"
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, FakeCommit] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; path excludes the query string and any prefix."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None = None


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    remaining: int
    kind: str  # status, rate_limit, retry_after, garbage, drop, delay
    status: int = 500
    body: bytes = b""
    seconds: float = 0
    query: dict[str, str] | None = None

    def matches(self, path: str, query: dict[str, str]) -> bool:
        if self.remaining <= 0 or not self.pattern.search(path):
            return False
        return all(query.get(k, "1" if k == "page" else None) == v for k, v in (self.query or {}).items())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _user(login: str | None, api: str, web: str) -> dict[str, Any] | None:
    if login is None:
        return None
    # Stable per-login ids keep responses deterministic across runs.
    user_id = int(hashlib.sha1(login.encode()).hexdigest()[:8], 16)
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "url": f"{api}/users/{login}",
        "html_url": f"{web}/{login}",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
    }


class _HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class FakeGitHub(LoopbackServer):
    """A scriptable fake GitHub API on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        token: str | None = None,
        prefix: str = "",
        web_url: str = "https://github.com",
        rate_limit: int = 5000,
    ):
        # token: when set, any other token gets 401 and private repos need it;
        # when None, any token is accepted. prefix: e.g. "/api/v3" like GitHub Enterprise.
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.web_url = web_url.rstrip("/")
        self.rate_limit_total = rate_limit
        self._lock = threading.RLock()
        self._repos: dict[str, FakeRepo] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._rate_used = 0
        self._rate_reset = int(time.time()) + 3600
        self._counter = 0
        LoopbackServer.__init__(self)

    # -- lifecycle -------------------------------------------------------------------

    thread_name = "fake-github"

    def make_server(self) -> ThreadingHTTPServer:
        return ThreadingHTTPServer(("127.0.0.1", 0), bind(_Handler, fake=self))

    @property
    def url(self) -> str:
        """Base URL to pass as api_url / Github(base_url=...)."""
        return f"{self.origin}{self.prefix}"

    # -- repositories and commits ----------------------------------------------------

    def add_repo(self, full_name: str, *, default_branch: str = "main", private: bool = False) -> FakeRepo:
        """Create an empty repository."""
        with self._lock:
            repo = FakeRepo(
                id=len(self._repos) + 1,
                full_name=full_name,
                default_branch=default_branch,
                private=private,
            )
            self._repos[full_name.lower()] = repo
            return repo

    def repo(self, full_name: str) -> FakeRepo:
        """The repository named full_name (case-insensitive, like GitHub)."""
        with self._lock:
            return self._repos[full_name.lower()]

    def add_commit(
        self,
        full_name: str,
        message: str = "",
        *,
        sha: str | None = None,
        parents: Iterable[str] | None = None,
        branch: str | None = None,
        date: datetime | None = None,
        author: str = "Test Author",
        email: str | None = None,
        login: str | None = "test-author",
        committer: str | None = None,
        committer_date: datetime | None = None,
        files: Iterable[FakeFile] | None = None,
        move_branch: bool = True,
    ) -> str:
        """Add one commit; parents default to the branch head, which then moves to it."""
        with self._lock:
            repo = self.repo(full_name)
            branch = branch or repo.default_branch
            if parents is None:
                head = repo.branches.get(branch)
                parents = (head,) if head else ()
            parents = tuple(parents)
            for parent in parents:
                if parent not in repo.commits:
                    raise KeyError(f"unknown parent {parent} in {full_name}")
            self._counter += 1
            date = date or self._next_date(repo, parents)
            committer_date = committer_date or date
            message = message or f"Commit {self._counter}"
            sha = sha or hashlib.sha1(
                f"{full_name}\0{parents}\0{message}\0{committer_date.isoformat()}\0{self._counter}".encode()
            ).hexdigest()
            if files is None:
                files = (_default_file(self._counter),)
            commit = FakeCommit(
                sha=sha,
                parents=parents,
                message=message,
                author_name=author,
                author_email=email or f"{login or 'author'}@users.noreply.github.com",
                author_login=login,
                author_date=date,
                committer_name=committer or author,
                committer_email=email or f"{login or 'author'}@users.noreply.github.com",
                committer_login=login,
                committer_date=committer_date,
                files=tuple(files),
            )
            repo.commits[sha] = commit
            if move_branch:
                repo.branches[branch] = sha
            return sha

    def add_commits(
        self,
        full_name: str,
        count: int,
        *,
        branch: str | None = None,
        parent: str | None = None,
        start: datetime | None = None,
        step: timedelta = timedelta(minutes=1),
        author: str = "Test Author",
        login: str | None = "test-author",
        message: str = "chore: synthetic change",
    ) -> list[str]:
        """Add count commits in a line on top of parent (default: branch head); returns shas oldest first."""
        with self._lock:
            repo = self.repo(full_name)
            branch = branch or repo.default_branch
            head = parent or repo.branches.get(branch)
            if start is None:
                start = self._next_date(repo, (head,) if head else ())
            shas = []
            for index in range(count):
                head = self.add_commit(
                    full_name,
                    f"{message} {index + 1}",
                    parents=(head,) if head else (),
                    branch=branch,
                    date=start + step * index,
                    author=author,
                    login=login,
                )
                shas.append(head)
            return shas

    def add_record(self, full_name: str, record: Any, *, branch: str | None = None, move_branch: bool = True) -> str:
        """Add a newsletter.commits.CommitRecord as a commit, keeping its sha, parents and files."""
        files = tuple(
            FakeFile(f.filename, f.status, f.additions, f.deletions, f.patch) for f in record.files
        )
        return self.add_commit(
            full_name,
            record.message,
            sha=record.sha,
            parents=record.parents,
            branch=branch,
            date=record.committed_at,
            author=record.author_name,
            login=record.author_login,
            files=files,
            move_branch=move_branch,
        )

    def set_branch(self, full_name: str, branch: str, sha: str) -> None:
        """Point a branch at sha: a push, or a force-push when sha does not descend from the old head."""
        with self._lock:
            repo = self.repo(full_name)
            if sha not in repo.commits:
                raise KeyError(f"unknown commit {sha} in {full_name}")
            repo.branches[branch] = sha

    def delete_commit(self, full_name: str, sha: str) -> None:
        """Forget a commit, as GitHub eventually does for commits dropped by a force-push."""
        with self._lock:
            del self.repo(full_name).commits[sha]

    def head(self, full_name: str, branch: str | None = None) -> str:
        """The sha a branch (default: the default branch) points at."""
        with self._lock:
            repo = self.repo(full_name)
            return repo.branches[branch or repo.default_branch]

    def _next_date(self, repo: FakeRepo, parents: tuple[str, ...]) -> datetime:
        dates = [repo.commits[p].committer_date for p in parents if p in repo.commits]
        return max(dates) + timedelta(minutes=1) if dates else DEFAULT_START

    # -- failure injection -----------------------------------------------------------

    # Each fault applies to the next `times` requests whose path matches `pattern` (a regex
    # search on the path without query or prefix) and, if given, whose query contains
    # every item of `query` (a missing "page" counts as page 1).

    def fail(self, pattern: str, *, status: int = 500, times: int = 1, message: str = "Server Error",
             query: dict[str, str] | None = None) -> None:
        """Answer matching requests with `status` and a GitHub error body."""
        body = json.dumps({"message": message, "documentation_url": DOCS_URL}).encode()
        self._add_fault(_Fault(re.compile(pattern), times, "status", status=status, body=body, query=query))

    def rate_limit(self, pattern: str, *, reset_in: int = 60, times: int = 1, status: int = 403,
                   query: dict[str, str] | None = None) -> None:
        """Primary rate limit: x-ratelimit-remaining 0 and x-ratelimit-reset now + reset_in."""
        body = json.dumps({"message": PRIMARY_RATE_LIMIT_MESSAGE, "documentation_url": DOCS_URL}).encode()
        self._add_fault(_Fault(re.compile(pattern), times, "rate_limit", status=status, body=body,
                               seconds=reset_in, query=query))

    def retry_after(self, pattern: str, *, seconds: int = 5, times: int = 1, status: int = 429,
                    query: dict[str, str] | None = None) -> None:
        """Secondary rate limit: `status` with a Retry-After header."""
        body = json.dumps({"message": SECONDARY_RATE_LIMIT_MESSAGE, "documentation_url": DOCS_URL}).encode()
        self._add_fault(_Fault(re.compile(pattern), times, "retry_after", status=status, body=body,
                               seconds=seconds, query=query))

    def garbage(self, pattern: str, *, body: bytes = b'{"sha": "abc", "commit": {', times: int = 1,
                query: dict[str, str] | None = None) -> None:
        """Answer 200 with a body that is not the JSON GitHub would send."""
        self._add_fault(_Fault(re.compile(pattern), times, "garbage", status=200, body=body, query=query))

    def drop(self, pattern: str, *, times: int = 1, query: dict[str, str] | None = None) -> None:
        """Close the connection without answering (a network error for the client)."""
        self._add_fault(_Fault(re.compile(pattern), times, "drop", query=query))

    def delay(self, pattern: str, *, seconds: float, times: int = 1, query: dict[str, str] | None = None) -> None:
        """Answer matching requests normally, but only after `seconds` (a slow GitHub)."""
        self._add_fault(_Fault(re.compile(pattern), times, "delay", seconds=seconds, query=query))

    def clear_faults(self) -> None:
        """Remove every pending injected failure."""
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, path: str, query: dict[str, str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, query):
                    fault.remaining -= 1
                    return fault
            return None

    # -- request log -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def request_count(self, pattern: str | None = None) -> int:
        """How many requests were received, optionally only those whose path matches a regex."""
        with self._lock:
            if pattern is None:
                return len(self._requests)
            regex = re.compile(pattern)
            return sum(1 for r in self._requests if regex.search(r.path))

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> dict[str, str]:
        with self._lock:
            self._requests.append(request)
            now = int(time.time())
            if now >= self._rate_reset:
                self._rate_used, self._rate_reset = 0, now + 3600
            self._rate_used += 1
            return self._rate_headers(max(self.rate_limit_total - self._rate_used, 0), self._rate_reset)

    def _rate_headers(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit_total),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(self.rate_limit_total - remaining),
            "x-ratelimit-resource": "core",
        }

    # -- API ---------------------------------------------------------------------------

    def _route(self, path: str, query: dict[str, str], token: str | None) -> tuple[Any, dict[str, str]]:
        if path == "/rate_limit":
            return self._rate_limit_body(), {}
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not match:
            raise _HttpError(404, "Not Found")
        owner, name, rest = match.group(1), match.group(2), match.group(3) or ""
        with self._lock:
            repo = self._repos.get(f"{owner}/{name}".lower())
            # GitHub answers 404, not 403, for private repositories you cannot see.
            if repo is None or (repo.private and (token is None or (self.token and token != self.token))):
                raise _HttpError(404, "Not Found")
            if rest == "":
                return self._repo_body(repo), {}
            if rest.startswith("/branches/"):
                return self._branch_body(repo, unquote(rest[len("/branches/"):])), {}
            if rest == "/commits":
                return self._commit_list(repo, path, query)
            if rest.startswith("/commits/"):
                return self._commit_body(repo, unquote(rest[len("/commits/"):])), {}
            if rest.startswith("/compare/"):
                return self._compare(repo, path, unquote(rest[len("/compare/"):]), query)
        raise _HttpError(404, "Not Found")

    def _api(self) -> str:
        return self.url

    def _repo_body(self, repo: FakeRepo) -> dict[str, Any]:
        api, web = self._api(), self.web_url
        owner, name = repo.full_name.split("/", 1)
        base = f"{api}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": _user(owner, api, web),
            "html_url": f"{web}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": base,
            "commits_url": f"{base}/commits{{/sha}}",
            "compare_url": f"{base}/compare/{{base}}...{{head}}",
            "branches_url": f"{base}/branches{{/branch}}",
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": _iso(DEFAULT_START),
            "pushed_at": _iso(DEFAULT_START),
            "visibility": "private" if repo.private else "public",
            "default_branch": repo.default_branch,
            "archived": False,
            "disabled": False,
        }

    def _resolve_ref(self, repo: FakeRepo, ref: str) -> str | None:
        if ref in repo.branches:
            return repo.branches[ref]
        if ref in repo.commits:
            return ref
        if re.fullmatch(r"[0-9a-f]{7,39}", ref):
            matches = [sha for sha in repo.commits if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _branch_body(self, repo: FakeRepo, branch: str) -> dict[str, Any]:
        if branch not in repo.branches:
            raise _HttpError(404, "Branch not found")
        base = f"{self._api()}/repos/{repo.full_name}"
        return {
            "name": branch,
            "commit": self._commit_item(repo, repo.commits[repo.branches[branch]]),
            "_links": {"self": f"{base}/branches/{branch}", "html": f"{self.web_url}/{repo.full_name}/tree/{branch}"},
            "protected": False,
            "protection_url": f"{base}/branches/{branch}/protection",
        }

    def _commit_item(self, repo: FakeRepo, commit: FakeCommit) -> dict[str, Any]:
        api, web = self._api(), self.web_url
        base = f"{api}/repos/{repo.full_name}"
        tree = hashlib.sha1(f"tree {commit.sha}".encode()).hexdigest()
        return {
            "sha": commit.sha,
            "node_id": f"C_{commit.sha[:20]}",
            "commit": {
                "author": {"name": commit.author_name, "email": commit.author_email, "date": _iso(commit.author_date)},
                "committer": {
                    "name": commit.committer_name,
                    "email": commit.committer_email,
                    "date": _iso(commit.committer_date),
                },
                "message": commit.message,
                "tree": {"sha": tree, "url": f"{base}/git/trees/{tree}"},
                "url": f"{base}/git/commits/{commit.sha}",
                "comment_count": 0,
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
            },
            "url": f"{base}/commits/{commit.sha}",
            "html_url": f"{web}/{repo.full_name}/commit/{commit.sha}",
            "comments_url": f"{base}/commits/{commit.sha}/comments",
            "author": _user(commit.author_login, api, web),
            "committer": _user(commit.committer_login, api, web),
            "parents": [
                {"sha": p, "url": f"{base}/commits/{p}", "html_url": f"{web}/{repo.full_name}/commit/{p}"}
                for p in commit.parents
            ],
        }

    def _file_body(self, repo: FakeRepo, commit: FakeCommit, change: FakeFile) -> dict[str, Any]:
        web, api = self.web_url, self._api()
        blob = hashlib.sha1(f"{commit.sha}:{change.filename}".encode()).hexdigest()
        body: dict[str, Any] = {
            "sha": blob,
            "filename": change.filename,
            "status": change.status,
            "additions": change.additions,
            "deletions": change.deletions,
            "changes": change.additions + change.deletions,
            "blob_url": f"{web}/{repo.full_name}/blob/{commit.sha}/{change.filename}",
            "raw_url": f"{web}/{repo.full_name}/raw/{commit.sha}/{change.filename}",
            "contents_url": f"{api}/repos/{repo.full_name}/contents/{change.filename}?ref={commit.sha}",
        }
        # GitHub omits "patch" for binary files and very large diffs.
        if change.patch is not None:
            body["patch"] = change.patch
        if change.previous_filename:
            body["previous_filename"] = change.previous_filename
        return body

    def _commit_body(self, repo: FakeRepo, ref: str) -> dict[str, Any]:
        sha = self._resolve_ref(repo, ref)
        if sha is None:
            raise _HttpError(422, f"No commit found for SHA: {ref}")
        commit = repo.commits[sha]
        body = self._commit_item(repo, commit)
        body["stats"] = {
            "total": commit.additions + commit.deletions,
            "additions": commit.additions,
            "deletions": commit.deletions,
        }
        body["files"] = [self._file_body(repo, commit, f) for f in commit.files]
        return body

    def _ancestors(self, repo: FakeRepo, sha: str) -> set[str]:
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current in seen or current not in repo.commits:
                continue
            seen.add(current)
            stack.extend(repo.commits[current].parents)
        return seen

    def _chronological(self, repo: FakeRepo, shas: set[str]) -> list[str]:
        # Parents before children, ties broken by committer date: git log --reverse order.
        children: dict[str, list[str]] = {sha: [] for sha in shas}
        pending = {}
        for sha in shas:
            inside = [p for p in repo.commits[sha].parents if p in shas]
            pending[sha] = len(inside)
            for parent in inside:
                children[parent].append(sha)
        ready = [(repo.commits[s].committer_date, s) for s, n in pending.items() if n == 0]
        heapq.heapify(ready)
        ordered = []
        while ready:
            _, sha = heapq.heappop(ready)
            ordered.append(sha)
            for child in children[sha]:
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, (repo.commits[child].committer_date, child))
        return ordered

    def _page(
        self, items: list[Any], path: str, query: dict[str, str], default: int, maximum: int
    ) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = min(max(int(query.get("per_page", default)), 1), maximum)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            raise _HttpError(422, "Invalid pagination parameters") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []

        def link(number: int, rel: str) -> str:
            params = urlencode({**query, "per_page": per_page, "page": number})
            return f'<{self.url}{path}?{params}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    def _commit_list(self, repo: FakeRepo, path: str, query: dict[str, str]) -> tuple[Any, dict[str, str]]:
        if not repo.commits:
            raise _HttpError(409, "Git Repository is empty.")
        ref = query.get("sha") or repo.default_branch
        head = self._resolve_ref(repo, ref)
        if head is None:
            raise _HttpError(404, f"No commit found for SHA: {ref}")
        try:
            since = _parse_time(query["since"]) if query.get("since") else None
            until = _parse_time(query["until"]) if query.get("until") else None
        except ValueError:
            raise _HttpError(422, "Invalid request.\n\nInvalid since or until.") from None
        shas = self._chronological(repo, self._ancestors(repo, head))[::-1]
        # Like GitHub, since and until are both inclusive and compare committer dates.
        selected = [
            repo.commits[s]
            for s in shas
            if (since is None or repo.commits[s].committer_date >= since)
            and (until is None or repo.commits[s].committer_date <= until)
        ]
        page, headers = self._page(selected, path, query, default=30, maximum=100)
        return [self._commit_item(repo, c) for c in page], headers

    def _merge_base(self, repo: FakeRepo, common: set[str]) -> str | None:
        if not common:
            return None
        # The best common ancestor is one that no other common ancestor descends from.
        shadowed = set()
        for sha in common:
            shadowed |= self._ancestors(repo, sha) - {sha}
        candidates = common - shadowed
        return max(candidates, key=lambda s: (repo.commits[s].committer_date, s))

    def _compare(self, repo: FakeRepo, path: str, basehead: str, query: dict[str, str]) -> tuple[Any, dict[str, str]]:
        if "..." not in basehead:
            raise _HttpError(404, "Not Found")
        base_ref, head_ref = basehead.split("...", 1)
        base, head = self._resolve_ref(repo, base_ref), self._resolve_ref(repo, head_ref)
        if base is None or head is None:
            raise _HttpError(404, "Not Found")
        base_set, head_set = self._ancestors(repo, base), self._ancestors(repo, head)
        merge_base = self._merge_base(repo, base_set & head_set)
        if merge_base is None:
            raise _HttpError(404, f"No common ancestor between {base_ref} and {head_ref}.")
        ahead = self._chronological(repo, head_set - base_set)
        behind = len(base_set - head_set)
        if not ahead and not behind:
            status = "identical"
        elif not behind:
            status = "ahead"
        elif not ahead:
            status = "behind"
        else:
            status = "diverged"
        if "per_page" in query or "page" in query:
            page, headers = self._page(ahead, path, query, default=250, maximum=250)
        else:
            # Without pagination parameters GitHub lists up to 250 commits and sends no Link header;
            # ahead_by and total_commits still count them all.
            page, headers = ahead[:COMPARE_UNPAGINATED], {}
        files: list[dict[str, Any]] = []
        if query.get("page", "1") == "1":
            for sha in ahead:
                files += [self._file_body(repo, repo.commits[sha], f) for f in repo.commits[sha].files]
        web = f"{self.web_url}/{repo.full_name}"
        body = {
            "url": f"{self._api()}{path}",
            "html_url": f"{web}/compare/{basehead}",
            "permalink_url": f"{web}/compare/{repo.full_name.split('/')[0]}:{base[:7]}...{head[:7]}",
            "diff_url": f"{web}/compare/{basehead}.diff",
            "patch_url": f"{web}/compare/{basehead}.patch",
            "base_commit": self._commit_item(repo, repo.commits[base]),
            "merge_base_commit": self._commit_item(repo, repo.commits[merge_base]),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": behind,
            "total_commits": len(ahead),
            "commits": [self._commit_item(repo, repo.commits[s]) for s in page],
            "files": files[:300],
        }
        return body, headers

    def _rate_limit_body(self) -> dict[str, Any]:
        with self._lock:
            core = {
                "limit": self.rate_limit_total,
                "remaining": max(self.rate_limit_total - self._rate_used, 0),
                "reset": self._rate_reset,
                "used": self._rate_used,
                "resource": "core",
            }
        return {"resources": {"core": core}, "rate": core}


def _default_file(counter: int) -> FakeFile:
    return FakeFile(
        filename=f"src/module_{counter % 10}.py",
        status="modified",
        additions=1,
        deletions=1,
        patch=f"@@ -1,2 +1,2 @@\n import os\n-VALUE = {counter - 1}\n+VALUE = {counter}",
    )


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub  # bound per server in FakeGitHub.start
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server_version = "GitHub.com"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Serve one API request, after recording it and applying any injected fault."""
        fake = self.fake
        parts = urlsplit(self.path)
        path = parts.path
        if fake.prefix and path.startswith(fake.prefix):
            path = path[len(fake.prefix):] or "/"
        query = dict(parse_qsl(parts.query))
        authorization = self.headers.get("Authorization")
        rate_headers = fake._record(RecordedRequest("GET", path, query, authorization))

        fault = fake._take_fault(path, query)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        elif fault is not None:
            self._send_fault(fault, rate_headers)
            return

        token = authorization.split(None, 1)[1] if authorization and " " in authorization else None
        if token is not None and fake.token is not None and token != fake.token:
            error = {"message": "Bad credentials", "documentation_url": DOCS_URL, "status": "401"}
            self._send(401, error, rate_headers)
            return
        try:
            body, extra = fake._route(path, query, token)
        except _HttpError as error:
            self._send(error.status, {"message": error.message, "documentation_url": DOCS_URL}, rate_headers)
            return
        self._send(200, body, {**rate_headers, **extra})

    def _send_fault(self, fault: _Fault, rate_headers: dict[str, str]) -> None:
        if fault.kind == "drop":
            # Closing without a status line is what a reset connection looks like to the client.
            self.close_connection = True
            return
        headers = dict(rate_headers)
        if fault.kind == "rate_limit":
            headers.update(self.fake._rate_headers(0, int(time.time() + fault.seconds)))
        elif fault.kind == "retry_after":
            headers["Retry-After"] = str(fault.seconds)
        self._send_raw(fault.status, fault.body, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._send_raw(status, json.dumps(body).encode(), headers)

    def _send_raw(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        self.send_header("X-GitHub-Request-Id", f"FAKE:{id(self):x}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
