"""The result of analysing one commit: every field an analyzer fills, LLM or heuristic alike."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

PROMPT_VERSION = "1"
HEURISTIC_MODEL = "heuristic"


class Importance(str, Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """3 for high, 2 for medium, 1 for low: compare with a threshold's rank."""
        return {"high": 3, "medium": 2, "low": 1}[self.value]


@dataclass(frozen=True)
class Insight:
    architecture: str
    performance: str
    security: str


@dataclass(frozen=True)
class Analysis:
    """The analysis of one commit in one language. Every field is complete or the analysis is not stored."""

    change_type: str  # one of CHANGE_TYPES
    importance: Importance
    importance_reason: str  # one sentence
    summary: str
    impact_scope: tuple[str, ...]
    insight: Insight
    risks: tuple[str, ...]
    recommendations: tuple[str, ...]
    language: str = "en"
    model: str = HEURISTIC_MODEL
    prompt_version: str = PROMPT_VERSION
    fallback: bool = False  # True when the heuristic stood in for a failed LLM call
    fallback_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # LLM HTTP requests this analysis cost, retries included (0 without an LLM)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["importance"] = self.importance.value
        data["impact_scope"] = list(self.impact_scope)
        data["risks"] = list(self.risks)
        data["recommendations"] = list(self.recommendations)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        return cls(
            change_type=data["change_type"],
            importance=Importance(data["importance"]),
            importance_reason=data["importance_reason"],
            summary=data["summary"],
            impact_scope=tuple(data.get("impact_scope") or ()),
            insight=Insight(**data["insight"]),
            risks=tuple(data.get("risks") or ()),
            recommendations=tuple(data.get("recommendations") or ()),
            language=data.get("language", "en"),
            model=data.get("model", HEURISTIC_MODEL),
            prompt_version=data.get("prompt_version", PROMPT_VERSION),
            fallback=bool(data.get("fallback", False)),
            fallback_reason=data.get("fallback_reason"),
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            completion_tokens=int(data.get("completion_tokens") or 0),
            requests=int(data.get("requests") or 0),
        )


# Change types: a closed set so reports look the same every day; labels per language live in i18n.
CHANGE_TYPES = (
    "feature", "fix", "performance", "refactor", "security", "docs", "test",
    "ci", "build", "dependencies", "style", "chore", "revert", "merge", "other",
)
