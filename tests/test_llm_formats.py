"""Structured output negotiated with each kind of OpenAI-compatible server, on fake servers that answer
as those servers do: OpenAI (json_schema), vLLM and Azure (400 for json_schema), llama-cpp-python
(500 "Input should be 'text' or 'json_object'"), strict schemas without length keywords, and a
server that only answers in prose around a fenced JSON block."""
from __future__ import annotations

import json
import logging
import re

import pytest

from newsletter.analysis.llm import LLMAnalyzer
from newsletter.analysis.prompt import ANSWER_TOKENS_PER_LANGUAGE, build_request, estimate_message_tokens
from newsletter.analysis.schema import AnswerError, parse_answer
from newsletter.errors import ConfigError

from .fakes.openai import LLAMA_CPP, VLLM, Behaviour, FakeOpenAI
from .test_analysis import CJK, CODE_FILES, make_commit

COMMITS = [make_commit(f"feat: change number {i}", sha=f"{i + 1:040x}") for i in range(5)]


def analyze_all(fake: FakeOpenAI, languages=("en",), **options):
    sleeps: list[float] = []
    with LLMAnalyzer("k", fake.base_url, "m", max_retries=2, sleep=sleeps.append, **options) as llm:
        results = [llm.analyze(commit, languages) for commit in COMMITS]
        return results, llm, sleeps


def formats(fake: FakeOpenAI) -> list:
    return [(r.get("response_format") or {}).get("type") for r in fake.requests]


@pytest.mark.parametrize("refusal", [LLAMA_CPP, VLLM], ids=["llama-cpp-500", "vllm-400"])
def test_a_server_without_json_schema_gets_json_object_with_the_schema(refusal, caplog):
    with FakeOpenAI(accepts={"json_object", None}, refusal=refusal) as fake, caplog.at_level(logging.WARNING):
        results, llm, sleeps = analyze_all(fake)
        assert formats(fake) == ["json_schema", "json_object", *["json_object"] * 4]
        grammar_schema = json.dumps(fake.requests[1]["response_format"]["schema"])
        assert fake.requests[1]["response_format"]["schema"]["properties"]["en"]["required"]
    # llama.cpp turns upper bounds into nested grammar rules; its server dies of maxLength and slows to a crawl
    # on maxItems (seen with llama-cpp-python 0.3.36): grammar modes get the lower bounds only.
    assert "maxLength" not in grammar_schema and "maxItems" not in grammar_schema
    # ...and penalties that keep a small model from repeating one list item until max_tokens.
    assert fake.requests[1]["frequency_penalty"] == 1.0 and "frequency_penalty" not in fake.requests[0]
    assert '"minLength": 1' in grammar_schema  # the reason and the summary; the optional fields may be empty
    assert not any(r.fallback for r in results) and llm.mode == "json_object"
    assert sleeps == []  # a refused format is not an outage: no backoff
    assert [r.requests for r in results] == [2, 1, 1, 1, 1] and llm.calls == 6
    switches = [r for r in caplog.records if "refused the structured-output format" in r.getMessage()]
    assert len(switches) == 1 and refusal[1][:40] in switches[0].getMessage()
    failed = [r for r in caplog.records if "failed: HTTP" in r.getMessage()]
    assert failed and f"HTTP {refusal[0]}" in failed[0].getMessage()


def test_strict_schemas_without_length_keywords_keep_json_schema():
    with FakeOpenAI(reject_keywords=True) as fake:
        results, llm, _ = analyze_all(fake)
        sent = [json.dumps(r["response_format"]) for r in fake.requests]
    assert not any(r.fallback for r in results) and llm.mode == "json_schema"
    assert "minLength" in sent[0] and all("minLength" not in s and "minItems" not in s for s in sent[1:])
    assert len(sent) == 6


def test_a_prose_only_server_gets_the_schema_in_the_prompt_and_fenced_answers_are_read():
    with FakeOpenAI(accepts={None}, fenced=True) as fake:
        results, llm, _ = analyze_all(fake)
        assert formats(fake) == ["json_schema", "json_object", None, None, None, None, None]
        system = fake.requests[-1]["messages"][0]["content"]
    assert not any(r.fallback for r in results) and llm.mode == "prompt"
    assert "It must match this JSON schema:" in system and '"minLength": 1' in system
    assert results[0].texts["en"].summary == "Fake analysis of “feat: change number 0”."


def test_the_chosen_mode_is_remembered_for_the_server_and_model():
    with FakeOpenAI(accepts={"json_object", None}, refusal=LLAMA_CPP) as fake:
        analyze_all(fake)
        _, llm, _ = analyze_all(fake)  # a new analyzer, the same server and model
        assert formats(fake)[6:] == ["json_object"] * 5 and llm.calls == 5


def test_a_server_refusing_every_format_falls_back_without_retrying():
    with FakeOpenAI(accepts=set(), refusal=VLLM) as fake:
        results, llm, sleeps = analyze_all(fake)
    assert all(r.fallback and r.fallback_reason == "format_unsupported" for r in results)
    assert sleeps == [] and llm.calls == 3 + 4  # the whole ladder once, then one request per commit


@pytest.mark.parametrize("mode, sent", [("json_object", "json_object"), ("prompt", None), ("json_schema", "json_schema")])
def test_a_configured_mode_is_used_from_the_start(mode, sent):
    with FakeOpenAI() as fake:
        results, _, _ = analyze_all(fake, structured_output=mode)
        assert set(formats(fake)) == {sent}
    assert not any(r.fallback for r in results)


def test_an_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="LLM_STRUCTURED_OUTPUT"):
        LLMAnalyzer("k", "http://127.0.0.1:9/v1", "m", structured_output="xml")


def test_raw_control_characters_inside_strings_are_read():
    with FakeOpenAI() as fake:
        fake.script(*["control_chars"] * 5)
        results, _, _ = analyze_all(fake, ("en", "zh"))
    assert not any(r.fallback for r in results)
    assert results[0].texts["en"].summary == "Fake analysis of “feat: change number 0”."
    assert CJK.search(results[0].texts["zh"].summary)


def test_one_request_answers_both_languages_with_one_verdict():
    with FakeOpenAI() as fake:
        results, llm, _ = analyze_all(fake, ("en", "zh"))
    assert llm.calls == 5
    for result in results:
        assert result.languages == ("en", "zh")
        en, zh = result.language("en"), result.language("zh")
        assert (en.importance, en.change_type) == (zh.importance, zh.change_type)
        assert CJK.search(zh.summary) and not CJK.search(en.summary)


@pytest.mark.parametrize("content, reason", [
    ('{"change_type": "feature", "importance": "medium", "en": {}}', "invalid_schema"),
    ("not json at all", "invalid_json"),
    (None, "invalid_json"),
])
def test_the_validator_is_strict_about_fields(content, reason):
    with pytest.raises(AnswerError) as failure:
        parse_answer(content, ("en",))
    assert failure.value.reason == reason


def test_reason_and_summary_are_required_and_the_rest_may_say_nothing():
    valid = {"change_type": "fix", "importance": "low", "en": {
        "importance_reason": "r", "summary": "s", "impact_scope": ["a"],
        "insight": {"architecture": "a", "performance": "p", "security": "s"}, "risks": ["r"],
        "recommendations": ["q"]}}
    assert parse_answer(json.dumps(valid), ("en",)).texts["en"].summary == "s"
    for field, empty in (("summary", ""), ("importance_reason", "   ")):
        broken = json.loads(json.dumps(valid))
        broken["en"][field] = empty
        with pytest.raises(AnswerError, match="invalid_schema"):
            parse_answer(json.dumps(broken), ("en",))
    # Nothing to say is nothing shown: empty lists and strings, and stock "nothing" sentences, are empty.
    quiet = json.loads(json.dumps(valid))
    quiet["en"].update(impact_scope=["  "], risks=[], recommendations=["No action needed beyond the usual review."],
                       insight={"architecture": "", "performance": "No performance-relevant change detected.",
                                "security": "Escapes the title before it reaches the header."})
    texts = parse_answer(json.dumps(quiet), ("en",)).texts["en"]
    assert (texts.impact_scope, texts.risks, texts.recommendations) == ((), (), ())
    assert (texts.insight.architecture, texts.insight.performance) == ("", "")
    assert texts.insight.security == "Escapes the title before it reaches the header."
    chinese = {"change_type": "fix", "importance": "low", "zh": {
        "importance_reason": "修复了标题转义。", "summary": "在写入邮件头之前转义提交标题。", "impact_scope": [],
        "insight": {"architecture": "无", "performance": "无明显影响。", "security": "无需迁移数据库。"},
        "risks": ["无明显风险。"], "recommendations": []}}
    zh = parse_answer(json.dumps(chinese), ("zh",)).texts["zh"]
    assert (zh.insight.architecture, zh.insight.performance, zh.risks) == ("", "", ())
    assert zh.insight.security == "无需迁移数据库。"  # says something: kept
    too_many = json.loads(json.dumps(valid))
    too_many["en"]["risks"] = [f"risk {i}" for i in range(9)]
    assert len(parse_answer(json.dumps(too_many), ("en",)).texts["en"].risks) == 5


@pytest.mark.parametrize("context", [4096, 8192, 16384])
def test_the_prompt_and_the_answer_fit_the_context_window(context):
    huge = "\n".join(f"+line {i}: " + "x" * 45 for i in range(20_000))
    files = (*CODE_FILES, CODE_FILES[0].__class__("src/huge.py", "modified", 20_000, 0, huge),
             *(CODE_FILES[0].__class__(f"pkg/module_{i}.py", "added", 3, 0, None) for i in range(3000)))
    message = "feat: big\n\n" + "这是一段很长的说明。" * 3000 + "word " * 20_000
    for languages in (("en",), ("en", "zh")):
        request = build_request(make_commit(message, files=files), languages, context_tokens=context)
        assert request.max_tokens == 100 + ANSWER_TOKENS_PER_LANGUAGE * len(languages)
        assert estimate_message_tokens(request.messages) + request.max_tokens <= context
        user = request.messages[1]["content"]
        assert "commit message truncated" in user and "files not listed" in user


def test_a_window_too_small_for_the_instructions_is_a_config_error():
    with pytest.raises(ConfigError, match="LLM_CONTEXT_TOKENS=2048"):
        build_request(make_commit("feat: x"), ("en", "zh"), context_tokens=2048)


def test_the_request_carries_max_tokens_for_the_answer():
    with FakeOpenAI() as fake:
        analyze_all(fake, ("en", "zh"))
        assert {r["max_tokens"] for r in fake.requests} == {2100}


def test_a_fallback_reason_is_a_sentence_in_the_reports_language():
    from newsletter.reports.wording import fallback_note

    with FakeOpenAI() as fake:
        fake.script(*[Behaviour("server_error")] * 3)
        with LLMAnalyzer("k", fake.base_url, "m", max_retries=2, sleep=lambda _s: None) as llm:
            result = llm.analyze(COMMITS[0], ("en", "zh"))
    assert result.fallback_reason == "server_error"
    assert fallback_note(result.language("en"), "en") == (
        "⚠️ The LLM analysis failed: the model's server kept failing with internal errors. "
        "The heuristic analysis is shown instead.")
    assert "模型服务器持续返回内部错误" in fallback_note(result.language("zh"), "zh")


def test_an_analyzer_whose_window_is_too_small_fails_at_start():
    with pytest.raises(ConfigError, match="LLM_CONTEXT_TOKENS=1024"):
        LLMAnalyzer("k", "http://127.0.0.1:9/v1", "m", context_tokens=1024)


def test_a_prompt_over_the_servers_window_falls_back_at_once_with_a_sentence():
    from newsletter.reports.wording import fallback_note

    with FakeOpenAI() as fake:
        fake.script(Behaviour("server_error", status=400, message="Requested tokens (9000) exceed context window of 8192"))
        with LLMAnalyzer("k", fake.base_url, "m", max_retries=2, sleep=lambda _s: None) as llm:
            result = llm.analyze(COMMITS[0], ("en",))
        assert llm.calls == 1
    assert result.fallback_reason == "context_exceeded"
    assert "did not fit the model's context window" in fallback_note(result.language("en"), "en")


def test_the_prompt_carries_the_computed_facts_and_their_bounds():
    """The model sees what the diff does (a public function removed, a dependency's major bump) and the
    importance the evidence allows, inside the data block, even when the patch itself is cut to fit."""
    from .diffs import change, commit

    removed = change("src/client/api.py", """
        def connect(url, timeout=30):
            return Session(url, timeout)


        def fetch(url):
            return connect(url).get()
        """, """
        def fetch(url):
            return Session(url, 30).get()
        """)
    bump = change("requirements.txt", "requests==2.31.0\nurllib3==1.26.18\n", "requests==2.31.0\nurllib3==2.2.1\n")
    record = commit(removed, bump, message="chore: tidy the client")
    request = build_request(record, ("en",), mode="json_object", context_tokens=8192)
    user = request.messages[1]["content"]
    data = json.loads(re.search(r'<commit_data boundary="\w+">\n(.*)\n</commit_data', user, re.S).group(1))
    facts = data["facts"]
    assert any("removed public function connect" in item for item in facts["symbols"]), facts
    assert any("urllib3" in item and "major" in item for item in facts["dependencies"]), facts
    assert facts["bounds"]["at_least"] == "high" and facts["roles"]["source"].startswith("1 files")
    assert "facts.bounds" in request.messages[0]["content"]
