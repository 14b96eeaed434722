"""The answer a model must give, defined once: the JSON schema sent to the server and the validator
that reads the answer come from the same field list, so a constrained decoder cannot produce an
answer the validator refuses (no empty reason or summary, no empty list item, no list longer than its
bound). The insight fields, risks, recommendations and impact scope may be empty: a commit with
nothing specific to say there says nothing, and a stock "nothing" sentence counts as empty.

One answer covers every language asked for: `change_type` and `importance` once, then one object of
texts per language (`{"change_type": ..., "importance": ..., "en": {...}, "zh": {...}}`). When the
verdict is known already (a language added later), the answer holds the texts only.

How the schema reaches the server depends on the structured-output mode:
- json_schema: `response_format={"type": "json_schema", "json_schema": {"strict": true, ...}}`
  (OpenAI, vLLM, Ollama, Azure). Some servers refuse length and count keywords in strict schemas;
  for them the same schema goes without those keywords (the validator still applies them).
- json_object: `response_format={"type": "json_object", "schema": ...}` (llama.cpp, vLLM, Ollama).
  This schema has no upper bounds (`maxLength`, `maxItems`), only `minLength` and `minItems`:
  llama.cpp turns an upper bound into nested optional rules; with maxLength it refuses the grammar
  ("number of rules ... exceeds sane defaults") and its Python server dies, and with maxItems its
  sampling slows from about 20 to 300-800 ms a token or crashes (llama-cpp-python 0.3.36). The
  validator cuts a string over its bound at a word boundary and keeps a list's first items instead.
- prompt: no response_format; the schema is in the instructions and the answer is found in the
  text, inside a code fence or prose if need be.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..text import plain
from .result import CHANGE_TYPES, Importance, Insight, Texts

MODES = ("json_schema", "json_object", "prompt")
IMPORTANCES = ("high", "medium", "low")


@dataclass(frozen=True)
class Field:
    """One text field of an answer: a string, or a list of strings, each at most `chars` long."""

    name: str
    chars: int
    description: str
    max_items: int = 0  # 0: a string; otherwise a list of up to max_items strings
    # Optional: "" (or []) when the commit gives nothing specific to say, which the reports then
    # leave out; a stock sentence saying there is nothing (FILLER) is read as empty too.
    optional: bool = False


TEXT_FIELDS = (
    Field("importance_reason", 300, "Exactly one sentence justifying the importance."),
    Field("summary", 1200, "What the commit changes and why, in one to three sentences."),
    Field("impact_scope", 120, "Affected modules or paths, most affected first.", max_items=8, optional=True),
)
INSIGHT_FIELDS = (
    Field("architecture", 600, "Effect on structure, boundaries and design.", optional=True),
    Field("performance", 600, "Effect on speed, memory or resource use.", optional=True),
    Field("security", 600, "Effect on security: a fix or a new exposure.", optional=True),
)
LIST_FIELDS = (
    Field("risks", 300, "Concrete risks the change introduces.", max_items=5, optional=True),
    Field("recommendations", 300, "Concrete follow-up actions.", max_items=5, optional=True),
)
TEXT_KEYS = [f.name for f in TEXT_FIELDS] + ["insight"] + [f.name for f in LIST_FIELDS]
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _field_schema(field: Field, constraints: bool, upper_bounds: bool) -> dict[str, Any]:
    string: dict[str, Any] = {"type": "string"}
    # An optional string may be empty; a list item never is (an empty list says there is nothing).
    if constraints and (field.max_items or not field.optional):
        string["minLength"] = 1
    if constraints and upper_bounds:
        string["maxLength"] = field.chars
    if not field.max_items:
        return {**string, "description": field.description}
    array: dict[str, Any] = {"type": "array", "items": string, "description": field.description}
    if constraints and not field.optional:
        array["minItems"] = 1
    if constraints and upper_bounds:
        array["maxItems"] = field.max_items
    return array


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def texts_schema(constraints: bool = True, upper_bounds: bool = True) -> dict[str, Any]:
    """The texts of one language."""
    properties = {f.name: _field_schema(f, constraints, upper_bounds) for f in TEXT_FIELDS}
    properties["insight"] = _object({f.name: _field_schema(f, constraints, upper_bounds) for f in INSIGHT_FIELDS})
    properties.update({f.name: _field_schema(f, constraints, upper_bounds) for f in LIST_FIELDS})
    return _object(properties)


def answer_schema(languages: tuple[str, ...], *, verdict: bool = True, constraints: bool = True,
                  upper_bounds: bool = True) -> dict[str, Any]:
    """The whole answer: the verdict (unless known already), then one object of texts per language.

    Without constraints, no length or count keyword at all; without upper_bounds (grammar modes), no
    maxLength or maxItems, while minLength and minItems stay.
    """
    properties: dict[str, Any] = {}
    if verdict:
        properties["change_type"] = {"type": "string", "enum": list(CHANGE_TYPES),
                                     "description": "The one category that best describes the commit."}
        properties["importance"] = {"type": "string", "enum": list(IMPORTANCES),
                                    "description": "How much a maintainer reading a daily report should care."}
    for language in languages:
        properties[language] = texts_schema(constraints, upper_bounds)
    return _object(properties)


def response_format(mode: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """What to send as response_format in a mode (None: send none)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "commit_analysis", "strict": True, "schema": schema}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    if mode == "prompt":
        return None
    raise ValueError(f"unknown structured-output mode {mode!r}")


# Reading an answer ------------------------------------------------------------------------------

class AnswerError(Exception):
    """The answer is not a valid analysis; reason is the short code a fallback records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    """A validated answer: the verdict (None when it was known already) and the texts per language."""

    change_type: str | None
    importance: Importance | None
    texts: dict[str, Texts]


def _json_object(content: str, wrapped: bool) -> object:
    """The JSON value of an answer; raw control characters inside strings are tolerated, and with
    wrapped (prompt mode) so are code fences and prose around the object."""
    decoder = json.JSONDecoder(strict=False)
    text = content.strip()
    try:
        return decoder.decode(text)
    except ValueError:
        if not wrapped:
            raise AnswerError("invalid_json") from None
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        return value
    raise AnswerError("invalid_json")


# A sentence that only says there is nothing ("No security impact.", "None", "无明显风险。"): an optional
# field holding one is empty, so no stock sentence reaches a reader.
FILLER = re.compile(
    r"^(?:none|n/?a|nothing(?: [a-z]+){0,3}|not applicable|no (?:[\w-]+ ){0,3}"
    r"(?:risks?|impacts?|implications?|changes?|concerns?|issues?|effects?|recommendations?|actions?|"
    r"follow-ups?|relevance)(?: (?:is |are )?(?:detected|expected|identified|needed|required|noted|found|"
    r"introduced|evident|apparent))?(?: beyond (?:the )?usual review| at this time| for now)?"
    r"|(?:无|没有|暂无|不涉及)(?:明显|显著|特别|具体|已知|直接|任何)?的?(?:安全|性能|架构)?(?:方面)?的?"
    r"(?:风险|影响|变化|问题|建议|改动|变更|隐患|后续操作)?)[.。!！]?$", re.IGNORECASE)


def is_filler(text: str) -> bool:
    return bool(FILLER.match(text.strip()))


def _text(value: object, field: Field) -> str:
    if not isinstance(value, str):
        raise AnswerError("invalid_schema")
    text = plain(value, field.chars)
    if field.optional and is_filler(text):
        return ""
    if not text and not field.optional:
        raise AnswerError("invalid_schema")
    return text


def _items(value: object, field: Field) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AnswerError("invalid_schema")
    items = tuple(text for text in (plain(item, field.chars) for item in value) if text and not is_filler(text))
    if not items and not field.optional:
        raise AnswerError("invalid_schema")
    return items[: field.max_items]  # a server that ignored maxItems: keep the first ones


def _texts(data: object, language: str) -> Texts:
    if not isinstance(data, dict) or set(data) != set(TEXT_KEYS):
        raise AnswerError("invalid_schema")
    insight = data["insight"]
    if not isinstance(insight, dict) or set(insight) != {f.name for f in INSIGHT_FIELDS}:
        raise AnswerError("invalid_schema")
    reason, summary, scope = TEXT_FIELDS
    risks, recommendations = LIST_FIELDS
    texts = Texts(importance_reason=_text(data[reason.name], reason), summary=_text(data[summary.name], summary),
                  impact_scope=_items(data[scope.name], scope),
                  insight=Insight(**{f.name: _text(insight[f.name], f) for f in INSIGHT_FIELDS}),
                  risks=_items(data[risks.name], risks), recommendations=_items(data[recommendations.name], recommendations))
    if language == "zh" and not _CJK.search(texts.summary):
        # A Chinese report with an English summary is a failed answer, not a matter of taste.
        raise AnswerError("wrong_language")
    return texts


def parse_answer(content: str | None, languages: tuple[str, ...], *, verdict: bool = True,
                 wrapped: bool = False) -> Answer:
    """The validated answer for languages; raises AnswerError with the reason it is not one.

    Strict about the fields: exactly the keys of the schema, no empty string or list.
    """
    if content is None:
        raise AnswerError("invalid_json")
    data = _json_object(content, wrapped)
    expected = set(languages) | ({"change_type", "importance"} if verdict else set())
    if not isinstance(data, dict) or set(data) != expected:
        raise AnswerError("invalid_schema")
    change_type = importance = None
    if verdict:
        if data["change_type"] not in CHANGE_TYPES or data["importance"] not in IMPORTANCES:
            raise AnswerError("invalid_schema")
        change_type, importance = data["change_type"], Importance(data["importance"])
    return Answer(change_type, importance, {language: _texts(data[language], language) for language in languages})
