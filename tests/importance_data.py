"""The labelled importance set in tests/data/importance/, its validation, and bench/importance.py's figures.

The set
-------
One JSON file per group, each a list of entries::

    {"id", "repo", "kind", "label", "clear", "why", "commit": CommitRecord.to_dict()}

plus, where they apply, "reverts" (the id of the reverted entry), "duplicate_of" (the entry a
rebased or cherry-picked copy repeats), "merges" (the entry a merge brings in) and "patch_capped"
(files whose patch was cut to whole hunks, or dropped as GitHub drops large diffs).

- repo-daily.json: every commit of this repository's own history, read with the project's GitSource;
  a file's patch keeps whole hunks up to 6,000 characters (60,000 per commit), line counts stay real.
- python, javascript, go, rust, java, c-cpp: commits written for the set, in repositories with a
  history of their own (a library and an application per language where it matters), modelled on the
  kinds of change real projects make.
- dependencies.json: updates in every ecosystem (pip, npm, cargo, go, maven, gradle, actions, docker,
  vcpkg, vendored code), routine, security-related and major, in the same repositories.
- history.json: reverts ("This reverts commit <sha>." naming a commit of the set), a re-applied
  revert, rebased and cherry-picked duplicates (same patch, new sha, time and parent) and merges.

How labels were decided (the rules the analyzers are held to), reading the diff, not the message:

- high: a public breaking change (a public function, type, option, package path or ABI removed,
  renamed or changed incompatibly; a default flipped so existing callers break; a dropped column) or
  a security fix (named or not: ReDoS, overflow, traversal, XSS, access control, timing, predictable
  ids, a security release of a runtime dependency), or a change whose reach is the whole product.
- medium: a new public capability or a behaviour change in shipped code (fixes, performance,
  refactors that move shipped code, deprecations, non-breaking default changes, migrations); a major
  version of a runtime dependency or runtime/toolchain floor.
- low: tests-only, docs-only (doc comments included), CI-only, formatting, typo, spelling and lint
  fixes, empty commits, release markers, merges, repository metadata, tooling that does not ship, and
  routine or development-only dependency bumps.
- A conventional-commit prefix is a hint that never overrides the files; size is judged against the
  repository's own typical commit; a revert is judged as the change it makes now (removing a released
  capability is breaking), a duplicate like its original.
- clear is true for the unambiguous cases of the clear-case kinds (breaking, security, docs/tests/CI
  only, typo or spelling); every borderline entry is clear=false and its "why" says why.

Figures
-------
- agreement: the share of entries whose importance equals the label; also over clear entries only,
  per kind, and per label as recall (of the entries labelled L, the share rated L) and precision (of
  the entries rated L, the share labelled L).
- confusion matrix: rows are labels, columns the analyzer's importance, in the order high, medium, low.
- filler rate: for each text field of the English analysis (importance_reason, summary, impact_scope,
  insight.architecture, insight.performance, insight.security, risks, recommendations; lists joined
  with "; "), the text is normalised: backticked spans, quoted strings, file paths and identifiers
  (tokens with `_`, `.`, `/`, `\\`, `::`, digits inside letters, or camelCase), numbers, and the words
  of the commit's title, author and file names (short function words kept) are removed, then case and
  whitespace are folded. A normalised text is repeated when at least 5% of the entries (and at least
  two) have it in the same field. An entry is filler when any of its non-empty fields is repeated;
  the filler rate is filler entries / entries. Empty fields, and fields left with no letters once
  names and numbers are gone (a list of module names, say), are not filler.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from newsletter.analysis.result import Texts
from newsletter.sources.commit import CommitRecord

DATA_DIR = Path(__file__).resolve().parent / "data" / "importance"
LABELS = ("high", "medium", "low")
LANGUAGE_GROUPS = ("python", "javascript", "go", "rust", "java", "c-cpp")
GROUPS = ("repo-daily", *LANGUAGE_GROUPS, "dependencies", "history")
MIN_ENTRIES = 150
# Label balance the set keeps (share of entries, inclusive bounds).
BALANCE = {"high": (0.20, 0.25), "medium": (0.30, 0.35), "low": (0.40, 0.50)}
FILLER_SHARE = 0.05
FIELDS = ("importance_reason", "summary", "impact_scope", "insight.architecture", "insight.performance",
          "insight.security", "risks", "recommendations")

_ENTRY_KEYS = {"id", "repo", "kind", "label", "clear", "why", "commit"}
_OPTIONAL_KEYS = {"reverts", "duplicate_of", "merges", "patch_capped"}
_FILE_KEYS = {"filename", "status", "additions", "deletions", "patch"}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})\.")


@dataclass(frozen=True)
class Entry:
    """One labelled commit."""

    id: str
    group: str
    repo: str
    kind: str
    label: str
    clear: bool
    why: str
    commit: CommitRecord
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def reverts(self) -> str | None:
        return self.raw.get("reverts")

    @property
    def duplicate_of(self) -> str | None:
        return self.raw.get("duplicate_of")

    @property
    def patch_capped(self) -> frozenset[str]:
        return frozenset(self.raw.get("patch_capped") or ())


# Loading and validating ----------------------------------------------------------------------------

def load_raw(directory: Path = DATA_DIR) -> dict[str, list[dict[str, Any]]]:
    """Every group file as parsed JSON, by group name (the file's stem)."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.json"))}


def load(directory: Path = DATA_DIR, *, check: bool = True) -> list[Entry]:
    """The entries of every group; with check, raise ValueError listing every problem validate finds."""
    raw = load_raw(directory)
    if check:
        problems = validate(raw)
        if problems:
            raise ValueError(f"{len(problems)} problem(s) in {directory}:\n" + "\n".join(problems[:50]))
    return [Entry(id=item["id"], group=group, repo=item["repo"], kind=item["kind"], label=item["label"],
                  clear=item["clear"], why=item["why"], commit=CommitRecord.from_dict(item["commit"]),
                  raw=item)
            for group, items in raw.items() for item in items]


def patch_counts(patch: str | None) -> tuple[int, int]:
    """Added and removed lines of a GitHub-style patch (hunk headers and '\\' markers not counted)."""
    if not patch:
        return 0, 0
    added = removed = 0
    for line in patch.split("\n"):
        if line.startswith("@@"):
            continue
        if line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    return added, removed


def hunk_problems(patch: str) -> list[str]:
    """Hunks whose header line counts disagree with their lines, or lines outside any hunk."""
    problems: list[str] = []
    expected: tuple[int, int] | None = None
    seen = [0, 0]
    header = ""

    def close() -> None:
        if expected is not None and tuple(seen) != expected:
            problems.append(f"hunk {header!r} declares -{expected[0]} +{expected[1]} lines, has "
                            f"-{seen[0]} +{seen[1]}")

    for line in patch.split("\n"):
        match = _HUNK.match(line)
        if match:
            close()
            header = line[:60]
            expected = (int(match.group(2) or 1), int(match.group(4) or 1))
            seen = [0, 0]
        elif expected is None:
            problems.append(f"line before the first hunk: {line[:40]!r}")
            break
        elif line.startswith("\\"):
            continue
        elif line.startswith("+"):
            seen[1] += 1
        elif line.startswith("-"):
            seen[0] += 1
        else:  # context, a blank context line included
            seen[0] += 1
            seen[1] += 1
    close()
    return problems


def _check_commit(where: str, item: Mapping[str, Any], capped: frozenset[str]) -> list[str]:
    commit = item["commit"]
    problems = []
    if not isinstance(commit.get("sha"), str) or not _SHA.match(commit["sha"]):
        problems.append(f"{where}: sha is not 40 hex digits")
    if any(not isinstance(p, str) or not _SHA.match(p) for p in commit.get("parents") or []):
        problems.append(f"{where}: a parent is not 40 hex digits")
    try:
        moment = datetime.fromisoformat(commit["committed_at"])
        if moment.tzinfo is None:
            problems.append(f"{where}: committed_at has no timezone")
    except (KeyError, TypeError, ValueError):
        problems.append(f"{where}: committed_at is not an ISO time")
    for key in ("author_name", "message", "html_url"):
        if not isinstance(commit.get(key), str):
            problems.append(f"{where}: commit.{key} is not a string")
    files = commit.get("files") or []
    additions = deletions = 0
    for f in files:
        name = f.get("filename", "?")
        if set(f) != _FILE_KEYS:
            problems.append(f"{where}: file {name} has keys {sorted(f)}")
            continue
        additions += f["additions"]
        deletions += f["deletions"]
        if f["patch"] is None:
            continue
        counted = patch_counts(f["patch"])
        if name in capped:
            if counted[0] > f["additions"] or counted[1] > f["deletions"]:
                problems.append(f"{where}: capped patch of {name} has more lines than the file's counts")
        elif counted != (f["additions"], f["deletions"]):
            problems.append(f"{where}: {name} says +{f['additions']}/-{f['deletions']}, "
                            f"its patch has +{counted[0]}/-{counted[1]}")
        problems += [f"{where}: {name}: {p}" for p in hunk_problems(f["patch"])]
    if (commit.get("additions"), commit.get("deletions")) != (additions, deletions):
        problems.append(f"{where}: commit says +{commit.get('additions')}/-{commit.get('deletions')}, "
                        f"its files add up to +{additions}/-{deletions}")
    if capped - {f.get("filename") for f in files}:
        problems.append(f"{where}: patch_capped names files the commit does not have")
    try:
        CommitRecord.from_dict(commit)
    except (KeyError, TypeError, ValueError) as error:
        problems.append(f"{where}: CommitRecord.from_dict fails: {error}")
    return problems


def validate(raw: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Every problem of the set: schema, line counts against patches, unique ids and shas, links."""
    problems: list[str] = []
    by_id: dict[str, Mapping[str, Any]] = {}
    by_sha: dict[str, str] = {}
    for group, items in raw.items():
        for index, item in enumerate(items):
            where = f"{group}[{index}] {item.get('id', '?')}"
            missing, unknown = _ENTRY_KEYS - set(item), set(item) - _ENTRY_KEYS - _OPTIONAL_KEYS
            if missing or unknown:
                problems.append(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
                continue
            if item["id"] in by_id:
                problems.append(f"{where}: duplicate id")
            by_id[item["id"]] = item
            if item["label"] not in LABELS:
                problems.append(f"{where}: label {item['label']!r} is not one of {LABELS}")
            if not isinstance(item["clear"], bool):
                problems.append(f"{where}: clear is not a boolean")
            elif item["clear"] and item["label"] == "medium":
                problems.append(f"{where}: clear cases are breaking or security (high) or docs, tests, CI "
                                "or typo (low)")
            if not _REPO.match(str(item["repo"])):
                problems.append(f"{where}: repo {item['repo']!r} is not owner/name")
            if not str(item["kind"]).strip() or not str(item["why"]).strip():
                problems.append(f"{where}: empty kind or why")
            problems += _check_commit(where, item, frozenset(item.get("patch_capped") or ()))
            sha = item["commit"].get("sha")
            if sha in by_sha:
                problems.append(f"{where}: sha also used by {by_sha[sha]}")
            by_sha[sha] = item["id"]
    for item in by_id.values():
        problems += _check_links(item, by_id, by_sha)
    return problems


def _check_links(item: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]],
                 by_sha: Mapping[str, str]) -> list[str]:
    problems = []
    where = item["id"]
    commit = item["commit"]
    named = _REVERTS.findall(commit["message"])
    for sha in named:
        if sha not in by_sha:
            problems.append(f"{where}: reverts {sha}, which is not in the set")
    for key in ("reverts", "duplicate_of", "merges"):
        target_id = item.get(key)
        if target_id is None:
            continue
        target = by_id.get(target_id)
        if target is None:
            problems.append(f"{where}: {key} {target_id!r} is not in the set")
            continue
        if target["repo"] != item["repo"]:
            problems.append(f"{where}: {key} {target_id} of another repository")
        if datetime.fromisoformat(commit["committed_at"]) <= datetime.fromisoformat(
                target["commit"]["committed_at"]):
            problems.append(f"{where}: committed before the commit it {key.replace('_', ' ')}")
        if key == "reverts" and target["commit"]["sha"] not in named:
            problems.append(f"{where}: message does not say 'This reverts commit {target['commit']['sha']}.'")
        if key == "duplicate_of" and _file_patches(item) != _file_patches(target):
            problems.append(f"{where}: a duplicate must have the same files and patches as {target_id}")
        if key == "merges" and target["commit"]["sha"] not in commit["parents"]:
            problems.append(f"{where}: a merge must have the merged commit as a parent")
    return problems


def _file_patches(item: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(f["filename"], f["status"], f["patch"]) for f in item["commit"]["files"]]


def balance(entries: Sequence[Entry]) -> dict[str, float]:
    """Share of entries per label."""
    counts = Counter(e.label for e in entries)
    return {label: counts[label] / len(entries) if entries else 0.0 for label in LABELS}


# Agreement -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelScore:
    label: str
    expected: int  # entries labelled so
    predicted: int  # entries the analyzer rated so
    agreed: int

    @property
    def recall(self) -> float | None:
        return self.agreed / self.expected if self.expected else None

    @property
    def precision(self) -> float | None:
        return self.agreed / self.predicted if self.predicted else None


@dataclass(frozen=True)
class Scores:
    """Agreement of one analyzer's importances with the labels."""

    entries: int
    agreed: int
    clear_entries: int
    clear_agreed: int
    labels: dict[str, LabelScore]
    confusion: dict[str, dict[str, int]]  # label -> importance -> entries
    kinds: dict[str, tuple[int, int]]  # kind -> (entries, agreed)

    @property
    def overall(self) -> float:
        return self.agreed / self.entries if self.entries else 0.0

    @property
    def clear(self) -> float:
        return self.clear_agreed / self.clear_entries if self.clear_entries else 0.0


def confusion_matrix(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """(label, importance) pairs counted in a 3×3 matrix: rows are labels, columns importances."""
    matrix = {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    for expected, predicted in pairs:
        matrix[expected][predicted] += 1
    return matrix


def score(entries: Sequence[Entry], predicted: Mapping[str, str]) -> Scores:
    """Agreement of predicted (entry id -> importance) with the entries' labels."""
    pairs = [(e.label, predicted[e.id]) for e in entries]
    matrix = confusion_matrix(pairs)
    agreed = sum(1 for expected, got in pairs if expected == got)
    clear = [(e.label, predicted[e.id]) for e in entries if e.clear]
    labels = {label: LabelScore(label, expected=sum(matrix[label].values()),
                                predicted=sum(matrix[row][label] for row in LABELS),
                                agreed=matrix[label][label])
              for label in LABELS}
    kinds: dict[str, tuple[int, int]] = {}
    for e in entries:
        n, ok = kinds.get(e.kind, (0, 0))
        kinds[e.kind] = (n + 1, ok + (predicted[e.id] == e.label))
    return Scores(entries=len(entries), agreed=agreed, clear_entries=len(clear),
                  clear_agreed=sum(1 for expected, got in clear if expected == got), labels=labels,
                  confusion=matrix, kinds=kinds)


# Filler ---------------------------------------------------------------------------------------------

_BACKTICKED = re.compile(r"`[^`\n]*`")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|«[^»\n]*»|「[^」\n]*」|(?<![\w'])'[^'\n]*'(?![\w'])")
_NAME_TOKEN = re.compile(r"[/\\_]|::|\w\.\w|[a-z][A-Z]|[A-Za-z]\d|\d[A-Za-z]|#\d")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*%?")
_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")
# Function words kept even when the title has them, so texts stay comparable across commits.
_KEEP = frozenset("a an the and or of in on to for with by from at as is are be it its this that not no "
                  "but if than into".split())


def name_words(commit: CommitRecord) -> frozenset[str]:
    """Lower-cased words of the commit's title, its author's name and login and its files' paths,
    function words excepted."""
    who = f"{commit.author_name} {commit.author_login or ''}"
    words = {w.lower() for w in _WORD.findall(f"{commit.title} {who}")}
    for f in commit.files:
        words |= {w.lower() for w in _WORD.findall(f.filename)}
    return frozenset(words - _KEEP)


def normalise(text: str, names: Iterable[str] = ()) -> str:
    """text without code spans, quotes, paths, identifiers, numbers and the given words; case and spaces
    folded."""
    text = _QUOTED.sub(" ", _BACKTICKED.sub(" ", text))
    tokens = [token for token in text.split() if not _NAME_TOKEN.search(token)]
    text = _NUMBER.sub(" ", " ".join(tokens))
    drop = {n.lower() for n in names}
    text = _WORD.sub(lambda m: " " if m.group(0).lower() in drop else m.group(0), text)
    return _SPACE.sub(" ", text).strip().lower()


def analysis_fields(texts: Texts) -> dict[str, str]:
    """The text fields of one language's analysis, lists joined with '; '."""
    return {"importance_reason": texts.importance_reason, "summary": texts.summary,
            "impact_scope": "; ".join(texts.impact_scope), "insight.architecture": texts.insight.architecture,
            "insight.performance": texts.insight.performance, "insight.security": texts.insight.security,
            "risks": "; ".join(texts.risks), "recommendations": "; ".join(texts.recommendations)}


@dataclass(frozen=True)
class Filler:
    """Which entries repeat text that says nothing about their commit."""

    entries: int
    threshold: int  # entries sharing a normalised text before it counts as repeated
    filler_ids: tuple[str, ...]
    by_field: dict[str, int]  # field -> filler entries through that field
    top: dict[str, list[tuple[str, int]]]  # field -> most repeated normalised texts with their counts

    @property
    def rate(self) -> float:
        return len(self.filler_ids) / self.entries if self.entries else 0.0


def repeat_threshold(entries: int, share: float = FILLER_SHARE) -> int:
    """Entries that must share a text for it to count: share of them, and never fewer than two."""
    return max(2, math.ceil(share * entries - 1e-9))


def filler(fields_by_id: Mapping[str, Mapping[str, str]], names_by_id: Mapping[str, Iterable[str]],
           share: float = FILLER_SHARE, top: int = 3) -> Filler:
    """The filler figures of analyses given as entry id -> field -> text, names_by_id giving each
    entry's words to remove (name_words of its commit)."""
    normalised: dict[str, dict[str, str]] = {}
    for entry_id, fields in fields_by_id.items():
        names = frozenset(names_by_id.get(entry_id, ()))
        normalised[entry_id] = {}
        for name, text in fields.items():
            if not (text or "").strip():
                continue  # an empty field is missing information, not filler
            norm = normalise(text, names)
            if any(char.isalpha() for char in norm):
                normalised[entry_id][name] = norm
    counts = {name: Counter(fields[name] for fields in normalised.values() if name in fields)
              for name in FIELDS}
    threshold = repeat_threshold(len(fields_by_id), share)
    filler_ids, by_field = [], dict.fromkeys(FIELDS, 0)
    for entry_id, fields in normalised.items():
        hit = [name for name, norm in fields.items() if counts.get(name, Counter())[norm] >= threshold]
        for name in hit:
            by_field[name] += 1
        if hit:
            filler_ids.append(entry_id)
    repeated = {name: [(text, n) for text, n in counts[name].most_common(top) if n >= 2] for name in FIELDS}
    return Filler(entries=len(fields_by_id), threshold=threshold, filler_ids=tuple(filler_ids),
                  by_field=by_field, top=repeated)
