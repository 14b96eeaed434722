"""Validation of addresses and repositories, and a property test of the subscribe form."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import ValidationError
from newsletter.models import Threshold
from newsletter.subscribers.validation import (
    display_email,
    email_key,
    normalize_email,
    parse_repo,
    parse_repo_spec,
)

from .github_repos import PUBLIC_REPOS, public_repos  # noqa: F401  (a fixture)
from .helpers import count_subscribers, csrf_token, subscribe_form


@pytest.mark.parametrize("raw, expected", [
    ("Ada@Example.COM", "Ada@example.com"),
    ("  ada@example.com ", "ada@example.com"),
    # One mailbox, one spelling: the domain's ASCII form, which is also what mail is sent to.
    ("a@Bücher.de", "a@xn--bcher-kva.de"),
    ("a@bu\u0308cher.de", "a@xn--bcher-kva.de"),
    ("a@XN--BCHER-KVA.DE", "a@xn--bcher-kva.de"),
])
def test_valid_addresses_are_normalized(raw, expected):
    assert normalize_email(raw) == expected
    assert email_key(raw.strip()) == email_key(expected)


def test_addresses_are_shown_with_their_unicode_domain():
    assert display_email("a@xn--bcher-kva.de") == "a@bücher.de"
    assert display_email("Ada@example.com") == "Ada@example.com"
    assert display_email("用户@xn--fsqu00a.xn--4rr70v") == "用户@例子.广告"
    assert display_email("odd@xn--zz.example") == "odd@xn--zz.example"  # not valid punycode: as stored


def test_non_ascii_local_part_needs_smtputf8():
    with pytest.raises(ValidationError) as refused:
        normalize_email("用户@例子.广告")
    assert refused.value.code == "email_utf8_local"
    assert "before the @" in refused.value.message("en") and "@ 之前" in refused.value.message("zh")
    with pytest.raises(ValidationError):
        normalize_email("用户@例子.广告", smtputf8=lambda: False)
    assert normalize_email("用户@例子.广告", smtputf8=lambda: True) == "用户@xn--fsqu00a.xn--4rr70v"
    asked = []
    normalize_email("a@example.com", smtputf8=lambda: asked.append(1) or True)
    assert asked == []  # only an address that needs it makes us look at the mail server


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
    st.sampled_from(PUBLIC_REPOS),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,10}/[A-Za-z0-9._-]{1,12}\Z"),
    st.text(max_size=30),
)


@pytest.fixture
def form_config(config):
    config["RATELIMIT_ENABLED"] = False
    return config


@pytest.mark.usefixtures("public_repos")
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
        assert parse_repo(repo) in PUBLIC_REPOS  # the only repositories on the fake GitHub
        assert threshold in ("high", "medium", "low")
