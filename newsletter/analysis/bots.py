"""Bot detection: automated commits get a cheap heuristic analysis instead of an LLM call."""
from __future__ import annotations

from collections.abc import Iterable

from ..sources.commit import CommitRecord

# Lower-case logins (and git author names, which bots often share with their login) of
# well-known automation accounts. Any login or name ending in "[bot]" is a bot as well,
# so this list only needs the accounts that do not follow GitHub's app naming.
DEFAULT_BOT_LOGINS: frozenset[str] = frozenset({
    "dependabot[bot]",
    "dependabot-preview[bot]",
    "dependabot",
    "renovate[bot]",
    "renovate-bot",
    "renovate bot",
    "github-actions[bot]",
    "github-actions",
    "pre-commit-ci[bot]",
    "pre-commit-ci",
    "greenkeeper[bot]",
    "snyk-bot",
    "imgbot[bot]",
    "allcontributors[bot]",
    "codecov[bot]",
    "mergify[bot]",
    "pyup-bot",
    "pyup.io bot",
    "deepsource-autofix[bot]",
    "release-please[bot]",
    "semantic-release-bot",
    "weblate",
    "transifex-integration[bot]",
    "mend-bolt-for-github[bot]",
    "whitesource-bolt-for-github[bot]",
})


def _normalise(value: str | None) -> str:
    return (value or "").strip().lower()


def is_bot(commit: CommitRecord, bot_logins: Iterable[str] = DEFAULT_BOT_LOGINS) -> bool:
    """True when the commit's login or author name is a known bot or ends in "[bot]"."""
    known = {_normalise(login) for login in bot_logins}
    for candidate in (_normalise(commit.author_login), _normalise(commit.author_name)):
        if candidate and (candidate in known or candidate.endswith("[bot]")):
            return True
    return False
