"""Which source serves a repository name: a configured local git path, a path, or GitHub."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import local_repositories
from .git import GitSource
from .github import GitHubSource
from .protocol import CommitSource


def is_local_repository(name: str) -> bool:
    """A path (a local git repository) rather than GitHub's owner/name."""
    return name.startswith(("/", "./", "../", "~"))


class SourceRouter:
    """Hands out the source for each repository name; one GitHub client is shared by all of them."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config
        self._local = local_repositories(config)
        self._github: GitHubSource | None = None

    def source_for(self, name: str) -> CommitSource:
        """LOCAL_REPOSITORIES first, then paths, else GitHub."""
        if name in self._local:
            return GitSource(self._local[name], name=name)
        if is_local_repository(name):
            return GitSource(name)
        if self._github is None:
            self._github = GitHubSource(self._config["GITHUB_API_URL"], self._config.get("GITHUB_TOKEN"))
        return self._github

    def close(self) -> None:
        """Close the GitHub client's connections."""
        if self._github is not None:
            self._github.close()
