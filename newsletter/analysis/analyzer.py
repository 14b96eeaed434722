"""The Analyzer protocol, and the analyzer a configuration asks for."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..errors import ConfigError
from ..sources.commit import CommitRecord
from .bots import DEFAULT_BOT_LOGINS
from .heuristic import HeuristicAnalyzer
from .llm import LLMAnalyzer
from .result import AnalysisSet


class Analyzer(Protocol):
    """Turns commits into analyses; `model` is part of the analysis cache key."""

    @property
    def model(self) -> str:
        """The model name (HEURISTIC_MODEL for the heuristic analyzer)."""
        ...

    @property
    def calls(self) -> int:
        """LLM HTTP requests made so far, retries included (0 for the heuristic)."""
        ...

    def analyze(self, commit: CommitRecord, languages: Sequence[str], known: AnalysisSet | None = None) -> AnalysisSet:
        """One commit in every language asked for, with one request; with known, only the missing texts."""
        ...

    def analyze_many(self, items: Sequence[tuple[CommitRecord, Sequence[str], AnalysisSet | None]]
                     ) -> list[AnalysisSet]:
        """(commit, languages, known) items, in input order."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def bot_logins(config: Mapping[str, Any]) -> frozenset[str]:
    """BOT_LOGINS plus the well-known bots, lower-cased."""
    configured = {s.strip().lower() for s in (config.get("BOT_LOGINS") or "").split(",") if s.strip()}
    return frozenset(configured) | DEFAULT_BOT_LOGINS


def make_analyzer(config: Mapping[str, Any], **overrides: Any) -> Analyzer:
    """The heuristic analyzer when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set, else the LLM one.

    overrides replace LLMAnalyzer options taken from the config (tests and benchmarks pass sleep).
    """
    api_key, base_url = config.get("OPENAI_API_KEY"), config.get("OPENAI_BASE_URL")
    bots = bot_logins(config)
    if not api_key and not base_url:
        return HeuristicAnalyzer(bot_logins=bots)
    model = config.get("OPENAI_MODEL")
    if not model:
        raise ConfigError("OPENAI_MODEL is required when OPENAI_API_KEY or OPENAI_BASE_URL is set")
    options: dict[str, Any] = dict(timeout=config.get("LLM_TIMEOUT", 60), max_retries=config.get("LLM_MAX_RETRIES", 3),
                                   concurrency=config.get("LLM_CONCURRENCY", 8),
                                   diff_token_budget=config.get("DIFF_TOKEN_BUDGET", 6000),
                                   context_tokens=config.get("LLM_CONTEXT_TOKENS", 16384),
                                   structured_output=config.get("LLM_STRUCTURED_OUTPUT", "auto"), bot_logins=bots)
    options.update(overrides)
    return LLMAnalyzer(api_key, base_url, model, **options)
