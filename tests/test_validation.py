"""Validation of addresses and repositories, and a property test of the subscribe form."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import ValidationError
from newsletter.models import Threshold
from newsletter.subscribers.validation import normalize_email, parse_repo, parse_repo_spec

from .helpers import count_subscribers, csrf_token, subscribe_form


@pytest.mark.parametrize("raw, expected", [
    ("Ada@Example.COM", "Ada@example.com"),
    ("  ada@example.com ", "ada@example.com"),
    ("用户@例子.广告", "用户@例子.广告"),
])
def test_valid_addresses_are_normalized(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "ada", "ada@", "@example.com", "a b@example.com", "a@example.com\r\nBcc: x@y.z",
                                 "a@exam\x00ple.com", "x" * 300 + "@example.com"])
def test_invalid_addresses_are_refused(raw):
    with pytest.raises(ValidationError):
        normalize_email(raw)


@pytest.mark.parametrize("raw, expected", [
    ("pallets/flask", "pallets/flask"),
    ("Pallets/Flask", "pallets/flask"),
    ("https://github.com/ai-dynamo/dynamo", "ai-dynamo/dynamo"),
    ("github.com/rq/rq.git", "rq/rq"),
    ("a/.github", "a/.github"),
    ("x-1/repo_name.js", "x-1/repo_name.js"),
])
def test_repositories_are_parsed(raw, expected):
    assert parse_repo(raw) == expected


@pytest.mark.parametrize("raw", ["flask", "pallets/", "/flask", "-bad/x", "bad-/x", "a--b/x", "a/b/c", "a/..", "a/.",
                                 "a/b c", "a/b\nc", "o" * 40 + "/x", "a/" + "n" * 101, "a/b<script>"])
def test_bad_repositories_are_refused(raw):
    with pytest.raises(ValidationError):
        parse_repo(raw)


def test_repo_spec_for_the_cli():
    assert parse_repo_spec("rq/rq:high") == ("rq/rq", Threshold.HIGH)
    assert parse_repo_spec("rq/rq") == ("rq/rq", Threshold.MEDIUM)
    with pytest.raises(ValidationError):
        parse_repo_spec("rq/rq:urgent")


def test_validation_messages_are_translated():
    try:
        parse_repo("nope")
    except ValidationError as exc:
        assert "owner/name" in exc.message("en") and "例如" in exc.message("zh")


_repo_text = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,10}/[A-Za-z0-9._-]{1,12}\Z"),
    st.text(max_size=30),
)


@pytest.fixture
def form_config(config):
    config["RATELIMIT_ENABLED"] = False
    return config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.one_of(st.emails(), st.text(max_size=40)),
       repos=st.lists(st.tuples(_repo_text, st.sampled_from(["high", "medium", "low", "urgent", ""])), max_size=4),
       language=st.sampled_from(["en", "zh", "fr", ""]))
def test_subscribe_form_never_fails_and_stores_only_valid_input(form_config, app, client, session, email, repos, language):
    before = count_subscribers(session)
    token = csrf_token(client.get("/").get_data(as_text=True))
    response = client.post("/", data=subscribe_form(email, repos, language, token))
    assert response.status_code in (302, 400)
    session.expire_all()
    if response.status_code == 400:
        assert count_subscribers(session) == before
        return
    # Accepted: every part must have been valid.
    normalize_email(email)
    filled = [(r, t) for r, t in repos if r.strip()]
    assert filled and language in ("en", "zh")
    for repo, threshold in filled:
        parse_repo(repo)
        assert threshold in ("high", "medium", "low")
