"""The labelled importance set validates, and the figures bench/importance.py prints are computed right."""
from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime

import pytest

from newsletter.analysis.result import Insight, Texts
from newsletter.sources.commit import CommitRecord

from .importance_data import (
    BALANCE,
    FIELDS,
    GROUPS,
    LANGUAGE_GROUPS,
    MIN_ENTRIES,
    Entry,
    analysis_fields,
    balance,
    confusion_matrix,
    filler,
    hunk_problems,
    load,
    load_raw,
    name_words,
    normalise,
    patch_counts,
    repeat_threshold,
    score,
    validate,
)

# Kinds the set must hold: the kinds of change the requirement names.
REQUIRED_KINDS = {
    "public-api-removed", "default-changed", "silent-security-fix", "lint-only", "tests-only", "docs-only",
    "ci-only", "typo", "spelling", "formatting", "major-runtime-bump", "security-bump", "large-refactor",
    "revert", "rebased-duplicate", "feature", "fix", "perf", "empty", "release", "merge",
}
ECOSYSTEMS = {"pip", "npm", "cargo", "go", "maven", "gradle", "actions", "docker"}


@pytest.fixture(scope="module")
def raw():
    return load_raw()


@pytest.fixture(scope="module")
def entries():
    return load()


# The data --------------------------------------------------------------------------------------------

def test_the_set_validates(raw):
    assert validate(raw) == []


def test_size_groups_and_kinds(entries):
    assert len(entries) >= MIN_ENTRIES
    assert {e.group for e in entries} == set(GROUPS)
    kinds = {e.kind for e in entries}
    assert REQUIRED_KINDS <= kinds
    assert {f"dependency-bump-{name}" for name in ECOSYSTEMS} <= kinds
    history = [e for e in entries if e.group == "repo-daily"]
    assert len(history) >= 40


def test_every_language_group_covers_the_main_kinds(entries):
    for group in LANGUAGE_GROUPS:
        kinds = {e.kind for e in entries if e.group == group}
        assert {"feature", "fix"} & kinds, group
        assert {"tests-only", "docs-only", "ci-only"} & kinds, group
        assert {"silent-security-fix", "public-api-removed", "signature-changed"} & kinds, group


def test_label_balance_is_within_bounds(entries):
    shares = balance(entries)
    for label, (low, high) in BALANCE.items():
        assert low <= shares[label] <= high, (label, shares[label])


def test_repositories_have_a_history_of_their_own(entries):
    """Typical commit size is judged per repository, so every written repository has several commits."""
    per_repo = Counter(e.repo for e in entries)
    assert min(per_repo.values()) >= 5, per_repo


def test_line_counts_match_patches(raw):
    for items in raw.values():
        for item in items:
            capped = set(item.get("patch_capped") or ())
            for f in item["commit"]["files"]:
                if f["patch"] is not None and f["filename"] not in capped:
                    counts = (f["additions"], f["deletions"])
                    assert patch_counts(f["patch"]) == counts, (item["id"], f["filename"])


def test_reverts_name_a_commit_of_the_set_in_the_same_repository(entries):
    by_id = {e.id: e for e in entries}
    reverts = [e for e in entries if e.reverts]
    assert len(reverts) >= 8
    for e in reverts:
        target = by_id[e.reverts]
        assert target.repo == e.repo
        assert f"This reverts commit {target.commit.sha}." in e.commit.message
        # A revert's patch undoes its target's: additions and deletions swap.
        assert (e.commit.additions, e.commit.deletions) == (target.commit.deletions, target.commit.additions)


def test_duplicates_share_patches_but_not_shas(entries):
    by_id = {e.id: e for e in entries}
    duplicates = [e for e in entries if e.duplicate_of]
    assert len(duplicates) >= 5
    for e in duplicates:
        original = by_id[e.duplicate_of]
        assert e.commit.sha != original.commit.sha
        assert e.commit.committed_at > original.commit.committed_at
        patches = [(f.filename, f.patch) for f in e.commit.files]
        assert patches == [(f.filename, f.patch) for f in original.commit.files]
        assert e.label == original.label


def test_clear_cases_are_high_or_low(entries):
    assert all(e.label in ("high", "low") for e in entries if e.clear)
    assert sum(e.clear for e in entries) >= 50


# Validation catches what it should ---------------------------------------------------------------------

def test_validate_reports_wrong_counts_unknown_targets_and_duplicate_ids(raw):
    broken = copy.deepcopy({"python": raw["python"][:3], "history": raw["history"][:1]})
    broken["python"][0]["commit"]["files"][0]["additions"] += 1
    broken["python"][1]["id"] = broken["python"][2]["id"]
    problems = validate(broken)
    assert any("its patch has" in p for p in problems)
    assert any("duplicate id" in p for p in problems)
    assert any("not in the set" in p for p in problems)  # the revert's target was left out


def test_hunk_headers_are_checked():
    assert hunk_problems("@@ -1,2 +1,2 @@\n a\n-b\n+c") == []
    assert hunk_problems("@@ -1,3 +1,2 @@\n a\n-b\n+c") != []
    assert hunk_problems("a\n@@ -1 +1 @@\n-a\n+b") != []
    assert patch_counts("@@ -1,2 +1,2 @@\n a\n-b\n+c\n\\ No newline at end of file") == (1, 1)


# Agreement --------------------------------------------------------------------------------------------

def _entry(entry_id: str, label: str, kind: str = "fix", clear: bool = False) -> Entry:
    commit = CommitRecord(sha="0" * 40, author_name="A", author_login=None,
                          committed_at=datetime(2025, 1, 1, tzinfo=UTC), message=entry_id, html_url="")
    return Entry(id=entry_id, group="t", repo="o/r", kind=kind, label=label, clear=clear, why="",
                 commit=commit, raw={})


def test_confusion_matrix_rows_are_labels_columns_importances():
    matrix = confusion_matrix([("high", "low"), ("high", "high"), ("low", "low"), ("medium", "low")])
    assert matrix["high"] == {"high": 1, "medium": 0, "low": 1}
    assert matrix["medium"] == {"high": 0, "medium": 0, "low": 1}
    assert matrix["low"] == {"high": 0, "medium": 0, "low": 1}


def test_score_agreement_recall_precision_and_kinds():
    entries = [_entry("a", "high", "breaking", clear=True), _entry("b", "high", "breaking", clear=True),
               _entry("c", "medium"), _entry("d", "low", "docs", clear=True),
               _entry("e", "low", "docs", clear=True)]
    scores = score(entries, {"a": "high", "b": "medium", "c": "medium", "d": "low", "e": "medium"})
    assert scores.agreed == 3 and scores.overall == pytest.approx(0.6)
    assert (scores.clear_entries, scores.clear_agreed) == (4, 2)
    assert scores.clear == pytest.approx(0.5)
    assert scores.labels["high"].recall == pytest.approx(0.5)
    assert scores.labels["high"].precision == pytest.approx(1.0)
    assert scores.labels["medium"].recall == pytest.approx(1.0)
    assert scores.labels["medium"].precision == pytest.approx(1 / 3)
    assert scores.labels["low"].recall == pytest.approx(0.5)
    assert scores.kinds == {"breaking": (2, 1), "fix": (1, 1), "docs": (2, 1)}
    assert score(entries[:1], {"a": "low"}).labels["medium"].precision is None


# Filler -----------------------------------------------------------------------------------------------

def test_normalise_removes_numbers_names_quotes_and_title_words():
    text = ('Fix change in `parser.py` touching src/quillmark/inline.py and _LINK_TITLE, '
            '“Handle long titles”, getUserName and 12 files (+30/-4), 3.5× faster.')
    assert normalise(text, {"handle", "parser"}) == "fix change in touching and , and files faster."
    assert normalise("The Parser  changed", {"parser"}) == "the changed"
    # Function words are kept even when the title has them.
    assert normalise("It is in the core", set()) == "it is in the core"


def test_name_words_take_title_author_and_paths(entries):
    e = next(x for x in entries if x.id == "py-link-title-redos")
    words = name_words(e.commit)
    assert {"handle", "long", "link", "titles", "inline", "quillmark", "tlindqvist"} <= words
    assert "the" not in words


def _fields(reason: str, **others: str) -> dict[str, str]:
    fields = dict.fromkeys(FIELDS, "")
    fields["importance_reason"] = reason
    fields.update(others)
    return fields


def test_filler_counts_texts_repeated_once_names_and_numbers_are_gone():
    # 20 entries: the threshold is max(2, 5% of 20) = 2 entries.
    fields = {f"e{i}": _fields(f"Touches {i} lines in `mod{i}.py`, the usual change.") for i in range(3)}
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()
    fields |= {f"u{i}": _fields(f"A specific sentence number {word}.") for i, word in enumerate(words)}
    result = filler(fields, {})
    assert result.entries == 20 and result.threshold == 2
    assert set(result.filler_ids) == {"e0", "e1", "e2"}
    assert result.rate == pytest.approx(3 / 20)
    assert result.by_field["importance_reason"] == 3
    assert result.top["importance_reason"][0] == ("touches lines in , the usual change.", 3)


def test_filler_removes_each_entrys_own_title_words():
    fields = {"a": _fields("Renames the parser module."), "b": _fields("Renames the lexer module.")}
    assert filler(fields, {}).filler_ids == ()
    assert set(filler(fields, {"a": {"parser"}, "b": {"lexer"}}).filler_ids) == {"a", "b"}


def test_empty_and_name_only_fields_are_not_filler():
    fields = {f"e{i}": _fields("", impact_scope="newsletter/analysis; tests", risks="   ") for i in range(10)}
    # "tests" is a word of the files' paths (name_words), so only separators are left.
    result = filler(fields, {f"e{i}": {"tests"} for i in range(10)})
    assert result.filler_ids == () and result.rate == 0.0
    assert len(filler(fields, {}).filler_ids) == 10  # the same word kept is a repeated text


def test_repeat_threshold_is_five_percent_and_at_least_two():
    assert repeat_threshold(10) == 2
    assert repeat_threshold(200) == 10
    assert repeat_threshold(207) == 11


def test_analysis_fields_joins_lists():
    texts = Texts("r", "s", ("a", "b"), Insight("x", "y", "z"), ("r1", "r2"), ("c",))
    assert analysis_fields(texts) == {"importance_reason": "r", "summary": "s", "impact_scope": "a; b",
                                      "insight.architecture": "x", "insight.performance": "y",
                                      "insight.security": "z", "risks": "r1; r2", "recommendations": "c"}
