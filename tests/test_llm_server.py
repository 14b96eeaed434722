"""The daily run against a real LLM server: llama.cpp (llama-cpp-python's OpenAI-compatible server) with
SmolLM2-135M-Instruct on loopback, no network.

Ten real commits of this repository's own history (2026-11-27, with their diffs) go through the real
pipeline: the git source, the watermark, the LLM analyzer with its format negotiation, the stored
analyses and reports, in English. A recording proxy between the analyzer and the server keeps every
request, so the figures come from the wire. What must hold:

- at least 90% of the commits sent to the model get the model's analysis, not the heuristic fallback;
- one HTTP request per commit, plus retries, as counted on the wire and by the analyses: the server's
  refusal of `json_schema` costs requests once for the run, not once per commit;
- our prompt token estimate (`estimate_message_tokens`, what the context budget uses) is never below
  the prompt tokens the server reports, so a prompt we think fits the window does fit.

The figures are printed whatever happens (`make llm`; `bench/llm_server.py` prints the same ones for
any window and languages).
"""
from __future__ import annotations

import pytest

from .llm_server import REPOSITORY, ROOT, LlamaServerError, RecordingProxy, prepare_day, run_day

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1500)]

MODEL_SHARE = 0.9


def test_real_server_analyses_a_day_of_commits(config, llm_server, request, tmp_path, capsys):
    try:
        window = prepare_day(ROOT, tmp_path / "repo.git")
    except LlamaServerError as error:
        pytest.fail(str(error), pytrace=False)
    with RecordingProxy(llm_server.port) as proxy:
        config.update(
            LOCAL_REPOSITORIES=f"{REPOSITORY}={window.repository}",
            # No key: the server wants none. The model is the id /v1/models reports.
            OPENAI_BASE_URL=proxy.base_url, OPENAI_MODEL=llm_server.model,
            LLM_CONTEXT_TOKENS=llm_server.n_ctx,
            # The server answers one request at a time: more in flight would only queue up against the timeout.
            LLM_CONCURRENCY=1, LLM_TIMEOUT=300,
            DIGEST_TIMEZONE="UTC",
        )
        summary, result = run_day(request.getfixturevalue("app"), window, proxy)
    lines = [llm_server.describe(),
             f"window: {len(window.shas)} of the {window.day_total} commits of {window.day} "
             f"({window.shas[0][:7]}..{window.shas[-1][:7]}), English", *result.lines()]
    with capsys.disabled():
        print("\n" + "\n".join(f"[llm] {line}" for line in lines))

    assert summary is not None and summary["status"] == "done", summary
    assert summary["date"] == window.day.isoformat() and summary["new_commits"] == len(window.shas), summary
    assert result.sent == len(window.shas), "every commit of the window goes to the model"
    problems = []
    if result.share < MODEL_SHARE:
        problems.append(f"only {result.model} of {result.sent} commits got a model analysis "
                        f"({result.share:.0%} < {MODEL_SHARE:.0%}); fallbacks: {dict(result.fallbacks)}")
    if result.counted != result.requests:
        problems.append(f"the analyses counted {result.counted} requests, the wire saw {result.requests}")
    # One request per commit, plus retries of failed answers; the format refusals of negotiation happen once
    # for the run (json_schema, then json_schema without length keywords), not once per commit.
    refused = sum(count for status, count in result.statuses.items() if status != "200")
    if refused > 2 + 3 * (result.sent - result.model):
        problems.append(f"{refused} refused requests for {result.sent} commits: negotiation is not remembered")
    low = result.low_estimates
    if low:
        problems.append(f"the prompt token estimate was below the server's count for {len(low)} of "
                        f"{len(result.tokens)} requests, by up to {max(r.reported - r.estimate for r in low)} tokens")
    if not result.tokens:
        problems.append("the server reported no prompt token count at all")
    assert not problems, "\n".join(problems + ["", *lines, f"server log: {llm_server.log_path}"])
