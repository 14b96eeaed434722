"""The LLM analyzer: a chat-completions model behind an OpenAI-compatible API, the heuristic as fallback.

One request per commit covers every language asked for (schema.py), so the languages share one
change type and one importance and the diff is sent once. A language added later asks only for
its texts, given the verdict already made.

Structured output is negotiated (LLM_STRUCTURED_OUTPUT, default auto): json_schema first; a
server that refuses the format (a 400/422, or a 5xx whose message is about response_format,
json_schema, text or json_object) gets the next rung of the ladder — json_schema without length and
count keywords, then json_object with the schema, then a JSON-only prompt. The rung that works is
remembered per (base URL, model) for the process and logged once. A format refusal is not an outage:
it is not retried with backoff, only answered with the next rung.

Retries are ours (`newsletter.retry`), not the SDK's (the client is built with max_retries=0), so
every HTTP request is counted and every wait goes through the injected ``sleep``. A commit whose
analysis still fails gets the heuristic analysis with ``fallback=True`` and a short
``fallback_reason``; nothing the model returned on a failed attempt ever reaches the result. Every
failed attempt is logged with the HTTP status and the server's message.

Token accounting: ``prompt_tokens`` and ``completion_tokens`` are the totals the provider reported
for every attempt made for that commit, failed ones included, because all of them are billed.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import openai

from ..errors import AnalysisError, ConfigError
from ..i18n import LANGUAGES
from ..retry import Backoff, GaveUp, TryAgain, retry_after
from ..sources.commit import CommitRecord
from ..text import plain
from .bots import DEFAULT_BOT_LOGINS, is_bot
from .heuristic import apply_floor, heuristic_analyses
from .prompt import Request, Verdict, build_request
from .result import AnalysisSet, Texts
from .schema import MODES, AnswerError, parse_answer, response_format

logger = logging.getLogger(__name__)

RETRY_BASE_DELAY = 1.0
RETRY_MAX_DELAY = 30.0
RETRY_JITTER = 0.25
# A server asking for a longer pause than this is not coming back within one report run.
MAX_RETRY_AFTER = 120.0
STRUCTURED_OUTPUT = ("auto", *MODES)
MESSAGE_CHARS = 300  # of a server's error message, in the log

# The rungs of the ladder: (mode, whether the schema keeps its length and count keywords).
Rung = tuple[str, bool]
LADDERS: dict[str, tuple[Rung, ...]] = {
    "auto": (("json_schema", True), ("json_schema", False), ("json_object", True), ("prompt", True)),
    "json_schema": (("json_schema", True), ("json_schema", False)),
    "json_object": (("json_object", True),),
    "prompt": (("prompt", True),),
}
# What a refusal of the format says, as servers word it (OpenAI, Azure, vLLM, llama.cpp, Ollama).
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|structured|schema|grammar|'text'|strict"
                           r"|not supported|unsupported|not permitted", re.IGNORECASE)
# A prompt longer than the server's window (llama.cpp, vLLM, OpenAI word it alike).
_CONTEXT_WORDS = re.compile(r"context (?:window|length)|maximum context|too many tokens|exceed", re.IGNORECASE)
# A refusal of some schema keywords only: the same mode without them may pass.
_KEYWORD_WORDS = re.compile(r"minLength|maxLength|minItems|maxItems|not permitted|keyword", re.IGNORECASE)

_PROBE = CommitRecord(sha="0" * 40, author_name="", author_login=None,
                      committed_at=datetime(2026, 1, 1, tzinfo=UTC), message="", html_url="")

# The rung that works, per (base URL, model), for the whole process.
_negotiated: dict[tuple[str, str, str], int] = {}
_negotiated_lock = threading.Lock()


# In json_object mode (a grammar built from the schema, without upper bounds: see schema.py) a small
# model tends to repeat one list item or phrase until max_tokens, and a cut answer is no answer. These
# OpenAI-standard penalties make it close the list: on SmolLM2-135M under llama.cpp, 2 of 4 real
# commits gave a valid answer with them, 0 of 2 without.
GRAMMAR_PENALTIES = {"frequency_penalty": 1.0, "presence_penalty": 0.5}


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


class _FormatRefused(Exception):
    """The server refused the structured-output format (not an outage)."""

    def __init__(self, status: int, message: str, keywords_only: bool) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.keywords_only = keywords_only


def _count(value: object) -> int:
    """A token count the provider reported, if it is a plausible one (a non-negative integer)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _usage(completion: object) -> tuple[int, int]:
    usage = getattr(completion, "usage", None)
    return _count(getattr(usage, "prompt_tokens", 0)), _count(getattr(usage, "completion_tokens", 0))


def _message(error: openai.APIStatusError) -> str:
    """The server's own words about an error, shortened for the log."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else inner
        if text:
            return plain(text, MESSAGE_CHARS)
    return plain(getattr(error, "message", "") or str(error), MESSAGE_CHARS)


def _refuses_format(status: int, message: str) -> bool:
    return (status in (400, 422) and (not message or bool(_FORMAT_WORDS.search(message)))) or \
        (status >= 500 and bool(_FORMAT_WORDS.search(message)))


@dataclass
class _Cost:
    """What the attempts for one commit cost."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMAnalyzer:
    """Analyzes commits with a chat-completions model, falling back to the heuristic per commit."""

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
        context_tokens: int = 16384,
        structured_output: str = "auto",
        sleep: Callable[[float], None] = time.sleep,
        bot_logins: Iterable[str] = DEFAULT_BOT_LOGINS,
    ) -> None:
        if structured_output not in STRUCTURED_OUTPUT:
            raise ConfigError(f"LLM_STRUCTURED_OUTPUT must be one of {', '.join(STRUCTURED_OUTPUT)}, "
                              f"got {structured_output!r}")
        self.model = model
        self._concurrency = max(int(concurrency), 1)
        self._diff_token_budget = diff_token_budget
        self._context_tokens = context_tokens
        self._ladder = LADDERS[structured_output]
        self._base_url = str(base_url or "https://api.openai.com/v1")
        # The ladder depends on the setting, so the remembered rung is kept per setting too.
        self._negotiation_key = (self._base_url, model, structured_output)
        self._backoff = Backoff(retries=max(int(max_retries), 0), base=RETRY_BASE_DELAY, cap=RETRY_MAX_DELAY,
                                max_wait=MAX_RETRY_AFTER, jitter=RETRY_JITTER, sleep=sleep)
        self._bot_logins = frozenset(bot_logins)
        # Fail at start, not on every commit, when the window cannot hold the instructions and an answer.
        build_request(_PROBE, LANGUAGES, context_tokens=context_tokens)
        self._calls = 0
        self._lock = threading.Lock()
        # Local OpenAI-compatible servers need no key, but the SDK refuses to start without one.
        self._client = openai.OpenAI(api_key=api_key or "not-needed", base_url=base_url or None,
                                     timeout=timeout, max_retries=0)

    @property
    def calls(self) -> int:
        """LLM HTTP requests made so far, retries and format negotiation included."""
        with self._lock:
            return self._calls

    @property
    def mode(self) -> str:
        """The structured-output mode in use for this server and model."""
        return self._ladder[self._rung_index()][0]

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> LLMAnalyzer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The negotiated rung ---------------------------------------------------------------------------

    def _rung_index(self) -> int:
        with _negotiated_lock:
            return _negotiated.get(self._negotiation_key, 0)

    def _step_down(self, tried: int, refusal: _FormatRefused) -> bool:
        """Move to the next rung after `tried` was refused; False when there is none left."""
        mode = self._ladder[tried][0]
        following = tried + 1
        if not refusal.keywords_only:
            while following < len(self._ladder) and self._ladder[following][0] == mode:
                following += 1  # the whole mode was refused, not just some keywords
        if following >= len(self._ladder):
            return False
        with _negotiated_lock:
            if _negotiated.get(self._negotiation_key, 0) < following:
                _negotiated[self._negotiation_key] = following
                mode, constraints = self._ladder[following]
                logger.warning("%s at %s refused the structured-output format (%s); using %s%s from now on",
                               self.model, self._base_url, refusal, mode,
                               "" if constraints else " without length and count keywords")
        return True

    # One commit ---------------------------------------------------------------------------------

    def _without_llm(self, commit: CommitRecord, languages: Sequence[str]) -> AnalysisSet | None:
        """The analysis for commits that never go to the LLM: merges and bot commits."""
        if commit.is_merge:
            return AnalysisSet.of(heuristic_analyses(commit, languages))
        if is_bot(commit, self._bot_logins):
            return AnalysisSet.of(heuristic_analyses(commit, languages, bot=True))
        return None

    def _attempt(self, commit: CommitRecord, request: Request, mode: str, cost: _Cost) -> Any:
        """One HTTP request and the validation of its answer; raises _AttemptFailed or _FormatRefused."""
        with self._lock:
            self._calls += 1
        cost.requests += 1
        what = f"LLM request for {commit.sha[:12]} ({'+'.join(request.languages)}, {mode})"
        kwargs: dict[str, Any] = {"model": self.model, "messages": request.messages, "max_tokens": request.max_tokens}
        fmt = response_format(mode, request.schema)
        if fmt is not None:
            kwargs["response_format"] = fmt
        if mode == "json_object":
            kwargs.update(GRAMMAR_PENALTIES)
        try:
            completion = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            logger.warning("%s timed out", what)
            raise _AttemptFailed("timeout") from None
        except openai.APIConnectionError as error:
            logger.warning("%s could not connect: %s", what, plain(error, MESSAGE_CHARS))
            raise _AttemptFailed("connection_error") from None
        except openai.APIStatusError as error:
            status, message = error.status_code, _message(error)
            logger.warning("%s failed: HTTP %d: %s", what, status, message)
            if _refuses_format(status, message):
                raise _FormatRefused(status, message, bool(_KEYWORD_WORDS.search(message))) from None
            if status == 429:
                raise _AttemptFailed("rate_limited", retry_after=retry_after(error.response.headers)) from None
            if status >= 500:
                raise _AttemptFailed("server_error", retry_after=retry_after(error.response.headers)) from None
            if status == 408:
                raise _AttemptFailed("timeout") from None
            if _CONTEXT_WORDS.search(message):
                # The prompt did not fit: LLM_CONTEXT_TOKENS is larger than the server's window.
                raise _AttemptFailed("context_exceeded", retryable=False) from None
            # Other 4xx (bad key, unknown model) fail the same way every time.
            raise _AttemptFailed("client_error", retryable=False) from None
        except openai.OpenAIError as error:
            logger.warning("%s failed: %s", what, plain(error, MESSAGE_CHARS))
            raise _AttemptFailed("api_error") from None
        except ValueError:
            # The SDK lets a JSON decoding error of the response envelope through unwrapped.
            logger.warning("%s got an answer that is not JSON", what)
            raise _AttemptFailed("invalid_response") from None

        prompt_tokens, completion_tokens = _usage(completion)
        cost.prompt_tokens += prompt_tokens
        cost.completion_tokens += completion_tokens
        try:
            choice = completion.choices[0]
            refusal, finish_reason, content = choice.message.refusal, choice.finish_reason, choice.message.content
        except (AttributeError, IndexError, TypeError):
            raise _AttemptFailed("invalid_response") from None
        if refusal:
            reason = "refusal"
        elif finish_reason == "length":
            reason = "truncated"
        elif finish_reason == "content_filter":
            reason = "content_filter"
        else:
            try:
                return parse_answer(content, request.languages, verdict=request.verdict, wrapped=mode == "prompt")
            except AnswerError as failure:
                reason = failure.reason
        logger.warning("%s gave an unusable answer (%s)", what, reason)
        raise _AttemptFailed(reason)

    def analyze(self, commit: CommitRecord, languages: Sequence[str], known: AnalysisSet | None = None) -> AnalysisSet:
        """The analysis of commit in languages (only their texts when known holds the verdict), or the
        heuristic one flagged as a fallback."""
        languages = tuple(languages)
        local = self._without_llm(commit, languages)
        if local is not None:
            return known.with_texts(local.texts) if known is not None else local
        verdict = None
        if known is not None:
            reason = next(iter(known.texts.values())).importance_reason
            verdict = Verdict(known.change_type, known.importance.value, reason)
        cost = _Cost()

        def attempt(_number: int) -> Any:
            while True:
                rung = self._rung_index()
                mode, constraints = self._ladder[rung]
                request = build_request(commit, languages, mode=mode, verdict=verdict, constraints=constraints,
                                        diff_token_budget=self._diff_token_budget,
                                        context_tokens=self._context_tokens)
                try:
                    return self._attempt(commit, request, mode, cost)
                except _FormatRefused as refusal:
                    if not self._step_down(rung, refusal):
                        raise _AttemptFailed("format_unsupported", retryable=False) from None
                except _AttemptFailed as failure:
                    if not failure.retryable:
                        raise
                    raise TryAgain(failure.reason, wait=failure.retry_after) from None

        what = f"LLM analysis of {commit.sha[:12]} ({'+'.join(languages)})"
        try:
            answer = self._backoff.call(attempt, what=what, logger=logger)
        except _AttemptFailed as failure:
            reason = failure.reason
        except GaveUp as gave_up:
            reason = gave_up.reason
            if gave_up.refused_wait is not None:
                logger.warning("LLM asked to wait %.0fs for commit %s; not waiting that long", gave_up.refused_wait,
                               commit.sha[:12])
        else:
            if known is not None:
                return known.with_texts(answer.texts, prompt_tokens=cost.prompt_tokens,
                                        completion_tokens=cost.completion_tokens, requests=cost.requests)
            analysis = AnalysisSet(change_type=answer.change_type, importance=answer.importance, texts=answer.texts,
                                   model=self.model, prompt_tokens=cost.prompt_tokens,
                                   completion_tokens=cost.completion_tokens, requests=cost.requests)
            # The rules no analysis may break hold for the model too: a typo fix is never high.
            return apply_floor(commit, analysis)
        logger.warning("%s failed after %d requests (%s); using the heuristic", what, cost.requests, reason)
        analyses = heuristic_analyses(commit, languages)
        if known is not None:
            return known.with_texts({lang: Texts.of(a) for lang, a in analyses.items()}, prompt_tokens=cost.prompt_tokens,
                                    completion_tokens=cost.completion_tokens, requests=cost.requests)
        heuristic = AnalysisSet.of(analyses)
        return replace(heuristic, fallback=True, fallback_reason=reason, prompt_tokens=cost.prompt_tokens,
                       completion_tokens=cost.completion_tokens, requests=cost.requests)

    def analyze_many(self, items: Sequence[tuple[CommitRecord, Sequence[str], AnalysisSet | None]]
                     ) -> list[AnalysisSet]:
        """Analyses of (commit, languages, known) items in input order, LLM requests running concurrently."""
        items = list(items)
        results: list[AnalysisSet | None] = []
        for commit, languages, known in items:
            local = self._without_llm(commit, languages)
            results.append(None if local is None else (known.with_texts(local.texts) if known else local))
        pending = [index for index, result in enumerate(results) if result is None]
        if pending:
            with ThreadPoolExecutor(max_workers=min(self._concurrency, len(pending)),
                                    thread_name_prefix="llm-analysis") as pool:
                for index, analysis in zip(pending, pool.map(lambda i: self.analyze(*items[i]), pending), strict=True):
                    results[index] = analysis
        return [r for r in results if r is not None]
