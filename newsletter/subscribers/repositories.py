"""Which repositories the site lets anyone subscribe to: public GitHub repositories, and local ones only
when PUBLIC_LOCAL_REPOSITORIES is set.

A repository that does not exist, a private one and a private local one are refused with the same
message, so the form is no oracle for what the service can read. GitHub is asked through the same
source router and client as the daily run (GITHUB_API_URL, GITHUB_TOKEN), with a short timeout and
few retries since a person is waiting; when it cannot answer (down, rate-limited, too slow), the
repository is accepted unchecked and the form says so: the daily run's own look-up checks it, and a
signup never fails because GitHub had a bad minute. Answers are kept a few minutes per process, so a
form sent again does not ask GitHub again; failures are not kept. The operator's `newsletter
subscribe` checks nothing.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RepositoryNotFound, SourceError, ValidationError
from ..sources.router import SourceRouter, local_is_private

log = logging.getLogger(__name__)

CHECK_TTL = 300.0  # seconds an answer from GitHub is reused
# Seconds one form may spend asking GitHub before the rest of its repositories are "try again": with
# one repository's worst case on top (below) a request stays well inside gunicorn's 30 s worker timeout.
CHECK_BUDGET = 10.0
MAX_REMEMBERED = 4096
# One request per repository: a 4 s timeout, one retry after half a second, and a rate limit asking
# for more than 5 s of waiting gives up at once (the person is told to try again).
GITHUB_OPTIONS: dict[str, Any] = {"timeout": 4, "max_retries": 1, "backoff": 0.5, "max_wait": 5.0}


@dataclass
class CheckOutcome:
    """What a check found: the repositories to refuse (with the error to show next to each), and the
    ones GitHub could not be asked about, which are accepted and checked by the first daily run."""

    refused: dict[str, ValidationError] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)


class RepositoryCheck:
    """Decides which repositories a form may subscribe someone to; one per app (process), caching answers."""

    def __init__(self, config: Mapping[str, Any], *, ttl: float = CHECK_TTL, budget: float = CHECK_BUDGET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._ttl = ttl
        self._budget = budget
        self._clock = clock
        self._public: dict[str, tuple[float, bool]] = {}  # repo -> (expires at, public)
        self._lock = threading.Lock()

    def refusals(self, repos: Iterable[str]) -> dict[str, ValidationError]:
        """The repositories among repos the site must refuse, each with the error to show next to it."""
        return self.check(repos).refused

    def check(self, repos: Iterable[str]) -> CheckOutcome:
        """Which of repos to refuse (missing, private, local) and which could not be checked now."""
        outcome = CheckOutcome()
        router = SourceRouter(self._config, **GITHUB_OPTIONS)
        started = self._clock()
        try:
            for repo in dict.fromkeys(repos):
                if router.is_local(repo):
                    public: bool | None = not local_is_private(self._config)
                else:
                    public = self._remembered(repo)
                    if public is None:
                        public = None if self._clock() - started > self._budget else self._ask(router, repo)
                if public is None:
                    outcome.unchecked.append(repo)
                elif not public:
                    outcome.refused[repo] = ValidationError("repo_not_found", repo=repo)
        finally:
            router.close()
        return outcome

    def _ask(self, router: SourceRouter, repo: str) -> bool | None:
        """GitHub's answer (public or not), remembered; None when GitHub could not be asked."""
        try:
            public = not router.github.is_private(repo)
        except RepositoryNotFound:
            public = False  # missing, or private and beyond our token: the same to the reader
        except SourceError as exc:
            log.warning("could not check repository %s on GitHub: %s", repo, exc)
            return None
        with self._lock:
            if len(self._public) >= MAX_REMEMBERED:
                now = self._clock()
                for key in [k for k, (expires, _) in self._public.items() if expires <= now]:
                    del self._public[key]
                while len(self._public) >= MAX_REMEMBERED:
                    del self._public[next(iter(self._public))]  # the oldest answer
            self._public[repo] = (self._clock() + self._ttl, public)
        return public

    def _remembered(self, repo: str) -> bool | None:
        with self._lock:
            found = self._public.get(repo)
        if found is None or found[0] <= self._clock():
            return None
        return found[1]
