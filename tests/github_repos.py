"""The repositories the web tests subscribe to, on the fake GitHub: the site checks each new one there.

A test module that posts repositories through the site imports the fixture and uses it for every test:

    from .github_repos import public_repos  # noqa: F401  (a fixture)
    pytestmark = pytest.mark.usefixtures("public_repos")

Through the `github` fixture, conftest points GITHUB_API_URL at the fake for those tests.
"""
from __future__ import annotations

import pytest

PUBLIC_REPOS = ("pallets/flask", "rq/rq", "ai-dynamo/dynamo")


@pytest.fixture
def public_repos(github):
    """The fake GitHub with PUBLIC_REPOS on it, public; a test may add more (private ones too)."""
    for name in PUBLIC_REPOS:
        github.add_repo(name)
    return github
