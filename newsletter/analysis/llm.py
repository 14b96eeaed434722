"""The LLM analyzer: a chat-completions model behind an OpenAI-compatible API, the heuristic as fallback.

Retries are ours (`newsletter.retry`), not the SDK's (the client is built with max_retries=0), so
every HTTP request is counted and every wait goes through the injected ``sleep``. A commit whose
analysis still fails after ``max_retries`` retries gets the heuristic analysis with
``fallback=True`` and a short ``fallback_reason``; nothing the model returned on a failed
attempt ever reaches the Analysis.

Token accounting: ``prompt_tokens`` and ``completion_tokens`` are the totals the provider
reported for every attempt made for that commit, failed ones included, because all of them
are billed. A fallback therefore carries the tokens its failed attempts cost.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

import openai

from ..errors import AnalysisError
from ..retry import Backoff, GaveUp, TryAgain, retry_after
from ..sources.commit import CommitRecord
from ..text import plain
from .bots import DEFAULT_BOT_LOGINS, is_bot
from .heuristic import analyze_heuristic, apply_floor
from .prompt import RESPONSE_FORMAT, build_messages
from .result import CHANGE_TYPES, Analysis, Importance, Insight

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

logger = logging.getLogger(__name__)

RETRY_BASE_DELAY = 1.0
RETRY_MAX_DELAY = 30.0
RETRY_JITTER = 0.25
# A server asking for a longer pause than this is not coming back within one report run.
MAX_RETRY_AFTER = 120.0

# Output limits: a report line, not an essay, and a bound on what a misbehaving model can inject.
REASON_CHARS = 300
SUMMARY_CHARS = 1200
INSIGHT_CHARS = 600
ITEM_CHARS = 300
SCOPE_ITEM_CHARS = 120
MAX_SCOPE_ITEMS = 8
MAX_LIST_ITEMS = 5

_FIELDS = {
    "change_type", "importance", "importance_reason", "summary", "impact_scope", "insight", "risks",
    "recommendations",
}
_INSIGHT_FIELDS = {"architecture", "performance", "security"}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class _AttemptFailed(AnalysisError):
    """One LLM attempt failed; reason is the short code that ends up in fallback_reason."""

    def __init__(self, reason: str, *, retryable: bool = True, retry_after: float | None = None,
                 prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise _AttemptFailed("invalid_schema")
    text = plain(value, limit)
    if not text:
        raise _AttemptFailed("invalid_schema")
    return text


def _items(value: object, limit: int, max_items: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _AttemptFailed("invalid_schema")
    items = tuple(text for text in (plain(item, limit) for item in value) if text)
    if not items:
        raise _AttemptFailed("invalid_schema")
    return items[:max_items]


def parse_analysis(content: str, language: str, model: str) -> Analysis:
    """The Analysis in a model's JSON answer, cleaned and capped; raises AnalysisError if it is not valid."""
    try:
        data = json.loads(content)
    except (TypeError, ValueError):
        raise _AttemptFailed("invalid_json") from None
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise _AttemptFailed("invalid_schema")
    insight = data["insight"]
    if not isinstance(insight, dict) or set(insight) != _INSIGHT_FIELDS:
        raise _AttemptFailed("invalid_schema")
    if data["change_type"] not in CHANGE_TYPES or data["importance"] not in ("high", "medium", "low"):
        raise _AttemptFailed("invalid_schema")
    summary = _text(data["summary"], SUMMARY_CHARS)
    if language == "zh" and not _CJK.search(summary):
        # A Chinese report with an English summary is a failed answer, not a matter of taste.
        raise _AttemptFailed("wrong_language")
    return Analysis(
        change_type=data["change_type"],
        importance=Importance(data["importance"]),
        importance_reason=_text(data["importance_reason"], REASON_CHARS),
        summary=summary,
        impact_scope=_items(data["impact_scope"], SCOPE_ITEM_CHARS, MAX_SCOPE_ITEMS),
        insight=Insight(**{name: _text(insight[name], INSIGHT_CHARS) for name in sorted(_INSIGHT_FIELDS)}),
        risks=_items(data["risks"], ITEM_CHARS, MAX_LIST_ITEMS),
        recommendations=_items(data["recommendations"], ITEM_CHARS, MAX_LIST_ITEMS),
        language=language,
        model=model,
    )


def _count(value: object) -> int:
    """A token count the provider reported, if it is a plausible one (a non-negative integer)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _usage(completion: object) -> tuple[int, int]:
    usage = getattr(completion, "usage", None)
    return _count(getattr(usage, "prompt_tokens", 0)), _count(getattr(usage, "completion_tokens", 0))


class LLMAnalyzer:
    """Analyses commits with a chat-completions model, falling back to the heuristic per commit."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        model: str,
        *,
        timeout: float = 60,
        max_retries: int = 3,
        concurrency: int = 8,
        diff_token_budget: int = 6000,
        sleep: Callable[[float], None] = time.sleep,
        bot_logins: Iterable[str] = DEFAULT_BOT_LOGINS,
    ) -> None:
        self.model = model
        self._concurrency = max(int(concurrency), 1)
        self._diff_token_budget = diff_token_budget
        self._backoff = Backoff(retries=max(int(max_retries), 0), base=RETRY_BASE_DELAY, cap=RETRY_MAX_DELAY,
                                max_wait=MAX_RETRY_AFTER, jitter=RETRY_JITTER, sleep=sleep)
        self._bot_logins = frozenset(bot_logins)
        self._calls = 0
        self._lock = threading.Lock()
        # Local OpenAI-compatible servers need no key, but the SDK refuses to start without one.
        self._client = openai.OpenAI(api_key=api_key or "not-needed", base_url=base_url or None,
                                     timeout=timeout, max_retries=0)

    @property
    def calls(self) -> int:
        """LLM HTTP requests made so far, retries included."""
        with self._lock:
            return self._calls

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> LLMAnalyzer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _without_llm(self, commit: CommitRecord, language: str) -> Analysis | None:
        """The analysis for commits that never go to the LLM: merges and bot commits."""
        if commit.is_merge:
            return analyze_heuristic(commit, language)
        if is_bot(commit, self._bot_logins):
            return analyze_heuristic(commit, language, bot=True)
        return None

    def _attempt(self, messages: list[ChatCompletionMessageParam], language: str) -> Analysis:
        """One HTTP request and the validation of its answer; raises _AttemptFailed with a reason code."""
        with self._lock:
            self._calls += 1
        try:
            completion = self._client.chat.completions.create(
                model=self.model, messages=messages, response_format=RESPONSE_FORMAT,
            )
        except openai.APITimeoutError:
            raise _AttemptFailed("timeout") from None
        except openai.APIConnectionError:
            raise _AttemptFailed("connection_error") from None
        except openai.RateLimitError as error:
            raise _AttemptFailed("rate_limited", retry_after=retry_after(error.response.headers)) from None
        except openai.APIStatusError as error:
            if error.status_code >= 500:
                raise _AttemptFailed("server_error", retry_after=retry_after(error.response.headers)) from None
            if error.status_code == 408:
                raise _AttemptFailed("timeout") from None
            # Other 4xx (bad key, unknown model, unsupported response_format) fail the same way every time.
            logger.error("LLM request rejected with HTTP %d: %s", error.status_code, error.message)
            raise _AttemptFailed("client_error", retryable=False) from None
        except openai.OpenAIError:
            raise _AttemptFailed("api_error") from None
        except ValueError:
            # The SDK lets a JSON decoding error of the response envelope through unwrapped.
            raise _AttemptFailed("invalid_response") from None

        prompt_tokens, completion_tokens = _usage(completion)
        try:
            choice = completion.choices[0]
            message = choice.message
            refusal, finish_reason, content = message.refusal, choice.finish_reason, message.content
        except (AttributeError, IndexError, TypeError):
            raise _AttemptFailed("invalid_response", prompt_tokens=prompt_tokens,
                                 completion_tokens=completion_tokens) from None
        if refusal:
            reason = "refusal"
        elif finish_reason == "length":
            reason = "truncated"
        elif finish_reason == "content_filter":
            reason = "content_filter"
        elif content is None:
            reason = "invalid_json"  # as parse_analysis(None) would say: json.loads raises TypeError
        else:
            try:
                analysis = parse_analysis(content, language, self.model)
            except _AttemptFailed as failure:
                reason = failure.reason
            else:
                return replace(analysis, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        raise _AttemptFailed(reason, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def analyze(self, commit: CommitRecord, language: str) -> Analysis:
        """The LLM analysis of commit in language, or the heuristic one flagged as a fallback."""
        local = self._without_llm(commit, language)
        if local is not None:
            return local
        messages = build_messages(commit, language, diff_token_budget=self._diff_token_budget)
        spent = [0, 0]  # prompt and completion tokens of every attempt: all of them are billed
        tries = [0]

        def attempt(number: int) -> Analysis:
            tries[0] = number + 1
            try:
                return self._attempt(messages, language)
            except _AttemptFailed as failure:
                spent[0] += failure.prompt_tokens
                spent[1] += failure.completion_tokens
                if not failure.retryable:
                    raise
                raise TryAgain(failure.reason, wait=failure.retry_after) from None

        what = f"LLM analysis of {commit.sha[:12]} ({language})"
        try:
            analysis = self._backoff.call(attempt, what=what, logger=logger)
        except _AttemptFailed as failure:
            reason = failure.reason
        except GaveUp as gave_up:
            reason = gave_up.reason
            if gave_up.refused_wait is not None:
                logger.warning("LLM asked to wait %.0fs for commit %s; not waiting that long", gave_up.refused_wait,
                               commit.sha[:12])
        else:
            # The rules no analysis may break hold for the model too: a typo fix is never high.
            return replace(apply_floor(commit, analysis), prompt_tokens=spent[0] + analysis.prompt_tokens,
                           completion_tokens=spent[1] + analysis.completion_tokens, requests=tries[0])
        logger.warning("%s failed after %d attempts (%s); using the heuristic", what, tries[0], reason)
        return replace(analyze_heuristic(commit, language), fallback=True, fallback_reason=reason,
                       prompt_tokens=spent[0], completion_tokens=spent[1], requests=tries[0])

    def analyze_many(self, items: Sequence[tuple[CommitRecord, str]]) -> list[Analysis]:
        """Analyses of (commit, language) pairs in input order, LLM calls running concurrently."""
        items = list(items)
        results: list[Analysis | None] = [self._without_llm(commit, language) for commit, language in items]
        pending = [index for index, result in enumerate(results) if result is None]
        if pending:
            with ThreadPoolExecutor(max_workers=min(self._concurrency, len(pending)),
                                    thread_name_prefix="llm-analysis") as pool:
                analyses = pool.map(lambda i: self.analyze(*items[i]), pending)
                for index, analysis in zip(pending, analyses, strict=True):
                    results[index] = analysis
        return results  # type: ignore[return-value]
