"""The result of analysing one commit: every field an analyzer fills, LLM or heuristic alike.

`AnalysisSet` is what an analyzer returns and the cache stores: one commit's analysis in every
language asked for, with one change type and one importance, so two languages can never rate a
commit differently. `Analysis` is one language's view of it, which the reports render.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any

PROMPT_VERSION = "3"  # one request for every language; insight, risks, recommendations and scope may be empty
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


@dataclass(frozen=True)
class Texts:
    """The language-dependent fields of an analysis."""

    importance_reason: str
    summary: str
    impact_scope: tuple[str, ...]
    insight: Insight
    risks: tuple[str, ...]
    recommendations: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"importance_reason": self.importance_reason, "summary": self.summary,
                "impact_scope": list(self.impact_scope), "insight": asdict(self.insight),
                "risks": list(self.risks), "recommendations": list(self.recommendations)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Texts:
        return cls(importance_reason=data["importance_reason"], summary=data["summary"],
                   impact_scope=tuple(data.get("impact_scope") or ()), insight=Insight(**data["insight"]),
                   risks=tuple(data.get("risks") or ()), recommendations=tuple(data.get("recommendations") or ()))

    @classmethod
    def of(cls, analysis: Analysis) -> Texts:
        """The texts of a one-language analysis."""
        return cls(analysis.importance_reason, analysis.summary, analysis.impact_scope, analysis.insight,
                   analysis.risks, analysis.recommendations)


@dataclass(frozen=True)
class AnalysisSet:
    """One commit analysed once: one change type and importance, the texts in each language asked for.

    fallback is set when the heuristic stood in for a failed LLM call; tokens and requests count
    every attempt, failed ones included, because all of them are billed.
    """

    change_type: str
    importance: Importance
    texts: dict[str, Texts]
    model: str = HEURISTIC_MODEL
    prompt_version: str = PROMPT_VERSION
    fallback: bool = False
    fallback_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.texts))

    def language(self, lang: str) -> Analysis:
        """The analysis as one language's report shows it."""
        texts = self.texts[lang]
        return Analysis(change_type=self.change_type, importance=self.importance,
                        importance_reason=texts.importance_reason, summary=texts.summary,
                        impact_scope=texts.impact_scope, insight=texts.insight, risks=texts.risks,
                        recommendations=texts.recommendations, language=lang, model=self.model,
                        prompt_version=self.prompt_version, fallback=self.fallback,
                        fallback_reason=self.fallback_reason, prompt_tokens=self.prompt_tokens,
                        completion_tokens=self.completion_tokens, requests=self.requests)

    def to_dict(self) -> dict[str, Any]:
        return {"change_type": self.change_type, "importance": self.importance.value,
                "texts": {lang: texts.to_dict() for lang, texts in sorted(self.texts.items())},
                "model": self.model, "prompt_version": self.prompt_version, "fallback": self.fallback,
                "fallback_reason": self.fallback_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "requests": self.requests}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisSet:
        return cls(change_type=data["change_type"], importance=Importance(data["importance"]),
                   texts={lang: Texts.from_dict(t) for lang, t in (data.get("texts") or {}).items()},
                   model=data.get("model", HEURISTIC_MODEL), prompt_version=data.get("prompt_version", PROMPT_VERSION),
                   fallback=bool(data.get("fallback", False)), fallback_reason=data.get("fallback_reason"),
                   prompt_tokens=int(data.get("prompt_tokens") or 0),
                   completion_tokens=int(data.get("completion_tokens") or 0),
                   requests=int(data.get("requests") or 0))

    @classmethod
    def of(cls, analyses: dict[str, Analysis]) -> AnalysisSet:
        """One set from one-language analyses of the same commit (the first one's verdict wins)."""
        first = next(iter(analyses.values()))
        return cls(change_type=first.change_type, importance=first.importance,
                   texts={lang: Texts.of(a) for lang, a in analyses.items()}, model=first.model,
                   prompt_version=first.prompt_version, fallback=first.fallback,
                   fallback_reason=first.fallback_reason, prompt_tokens=first.prompt_tokens,
                   completion_tokens=first.completion_tokens, requests=first.requests)

    def with_texts(self, more: dict[str, Texts], *, prompt_tokens: int = 0, completion_tokens: int = 0,
                   requests: int = 0) -> AnalysisSet:
        """This set with texts in more languages (asked for later), their cost added."""
        return replace(self, texts={**self.texts, **more}, prompt_tokens=self.prompt_tokens + prompt_tokens,
                       completion_tokens=self.completion_tokens + completion_tokens,
                       requests=self.requests + requests)


def analyzer_model(config: Mapping[str, Any]) -> str:
    """The model name the configured analyzer (analyzer.make_analyzer) stores its analyses under:
    their cache key. Here, not beside make_analyzer, so the fan-out reads analyses without importing
    the LLM client."""
    if not config.get("OPENAI_API_KEY") and not config.get("OPENAI_BASE_URL"):
        return HEURISTIC_MODEL
    return str(config.get("OPENAI_MODEL") or "")
