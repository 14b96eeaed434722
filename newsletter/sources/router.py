"""Which source serves a repository name: a configured local git path, a path, or GitHub; and whether a
local repository is private (it is, unless PUBLIC_LOCAL_REPOSITORIES)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..config import local_repositories
from .git import GitSource
from .github import GitHubSource
from .protocol import CommitSource, RepoInfo


def is_local_repository(name: str) -> bool:
    """A path (a local git repository) rather than GitHub's owner/name."""
    return name.startswith(("/", "./", "../", "~"))


def served_locally(config: Mapping[str, Any], name: str) -> bool:
    """Whether name is read from local git: a LOCAL_REPOSITORIES name or a path."""
    return name in local_repositories(config) or is_local_repository(name)


def local_is_private(config: Mapping[str, Any]) -> bool:
    """Local repositories are private unless the operator made them public (PUBLIC_LOCAL_REPOSITORIES)."""
    return not config.get("PUBLIC_LOCAL_REPOSITORIES")


class LocalSource(GitSource):
    """A local git repository whose RepoInfo carries the privacy the settings give it."""

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None, private: bool = True):
        super().__init__(path, name=name)
        self.private = private

    def resolve(self, repo: str | None = None) -> RepoInfo:
        """The branch and head as GitSource reads them, marked private or not."""
        return replace(super().resolve(repo), private=self.private)


class SourceRouter:
    """Hands out the source for each repository name; one GitHub client is shared by all of them.

    github_options go to GitHubSource (the site passes a short timeout and few retries).
    """

    def __init__(self, config: Mapping[str, Any], **github_options: Any) -> None:
        self._config = config
        self._local = local_repositories(config)
        self._private_local = local_is_private(config)
        self._github_options = github_options
        self._github: GitHubSource | None = None

    def is_local(self, name: str) -> bool:
        """Whether name is read from local git rather than GitHub."""
        return name in self._local or is_local_repository(name)

    @property
    def github(self) -> GitHubSource:
        """The GitHub client, made on first use from GITHUB_API_URL and GITHUB_TOKEN."""
        if self._github is None:
            self._github = GitHubSource(self._config["GITHUB_API_URL"], self._config.get("GITHUB_TOKEN"),
                                        **self._github_options)
        return self._github

    def source_for(self, name: str) -> CommitSource:
        """LOCAL_REPOSITORIES first, then paths, else GitHub."""
        if name in self._local:
            return LocalSource(self._local[name], name=name, private=self._private_local)
        if is_local_repository(name):
            return LocalSource(name, private=self._private_local)
        return self.github

    def close(self) -> None:
        """Close the GitHub client's connections."""
        if self._github is not None:
            self._github.close()
