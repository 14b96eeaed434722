"""Benchmark of commit facts (newsletter.analysis.facts): time per commit.

Two workloads, each timed after one warm-up call (grammars load once per process):

1. synthetic: one commit of 20 files (Python, Go, TypeScript, Rust, Java) and about 2,000 changed lines,
   mostly body edits with some signature changes, renames, additions and removals; target < 100 ms;
2. history: every commit of a local git repository (this one by default) read with GitSource, as the
   daily run would; prints the mean, the median, the slowest commits and the time per 1,000 lines.

    .venv/bin/python bench/facts.py [--repo PATH] [--limit 200] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.analysis.facts import commit_facts  # noqa: E402
from newsletter.sources.commit import CommitRecord, FileChange  # noqa: E402
from newsletter.sources.git import GitSource  # noqa: E402

_BODIES = {
    "py": ("def {name}(self, item, retries={n}):\n", "    value = compute(item, {n})\n", "    return value\n\n"),
    "go": ("func (s *Service) {Name}(ctx context.Context, item Item) error {{\n", "\tvalue := compute(item, {n})\n",
           "\treturn nil\n}}\n\n"),
    "ts": ("export function {name}(item: Item, retries = {n}): number {{\n", "  const value = compute(item, {n});\n",
           "  return value;\n}}\n\n"),
    "rs": ("pub fn {name}(item: &Item, retries: u32) -> u32 {{\n", "    let value = compute(item, {n});\n",
           "    value\n}}\n\n"),
    "java": ("    public int {name}(Item item, int retries) {{\n", "        int value = compute(item, {n});\n",
             "        return value;\n    }}\n\n"),
}


def _source(ext: str, count: int, *, edit: int = 0) -> list[str]:
    """count definitions; edit > 0 changes every edit-th body, re-signs some, renames one."""
    head, body, tail = _BODIES[ext]
    lines = ["class Service:\n"] if ext == "py" else ["public class Service {\n"] if ext == "java" else []
    for n in range(count):
        name = f"handle_{n}" if ext != "go" else f"handle{n}"
        signature_n = n + 1 if edit and n % (edit * 3) == 0 else n
        if edit and n == 1:
            name += "_renamed"
        text = (head if ext != "py" else "    " + head).format(name=name, Name=name.capitalize(), n=signature_n)
        lines.append(text)
        for k in range(6):
            step = body.format(n=n * 10 + k + (1000 if edit and n % edit == 0 and k < 2 else 0))
            lines.append(("    " + step) if ext == "py" else step)
        lines.append(("    " + tail) if ext == "py" else tail.format())
    if ext == "java":
        lines.append("}\n")
    return "".join(lines).splitlines()


def _patch(old: list[str], new: list[str]) -> str:
    import difflib
    return "\n".join(list(difflib.unified_diff(old, new, lineterm="", n=3))[2:]) + "\n"


def synthetic_commit() -> CommitRecord:
    """20 files, about 2,000 changed lines."""
    files = []
    for index in range(20):
        ext = list(_BODIES)[index % len(_BODIES)]
        old, new = _source(ext, 46), _source(ext, 46, edit=2)
        patch = _patch(old, new)
        lines = patch.splitlines()
        files.append(FileChange(f"src/module_{index}/service.{ext}", "modified",
                                sum(1 for line in lines if line.startswith("+")),
                                sum(1 for line in lines if line.startswith("-")), patch))
    return CommitRecord(sha="0" * 40, author_name="Bench", author_login=None, committed_at=datetime.now(UTC),
                        message="Refactor services", html_url="", parents=("1" * 40,),
                        additions=sum(f.additions for f in files), deletions=sum(f.deletions for f in files),
                        files=tuple(files))


def timed(record: CommitRecord, rounds: int) -> float:
    """The best of rounds timings of commit_facts(record), in seconds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        commit_facts(record)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=str(ROOT), help="a local git repository (default: this one)")
    parser.add_argument("--limit", type=int, default=200, help="at most this many commits of its history")
    parser.add_argument("--rounds", type=int, default=5, help="timings per commit; the best one counts")
    args = parser.parse_args()

    record = synthetic_commit()
    commit_facts(record)  # warm-up: grammars load once
    seconds = timed(record, args.rounds)
    lines = record.additions + record.deletions
    print(f"synthetic: {len(record.files)} files, {lines} changed lines: {seconds * 1000:.1f} ms (target < 100 ms)")

    source = GitSource(args.repo)
    shas = subprocess.run(["git", "-C", args.repo, "rev-list", f"--max-count={args.limit}", "HEAD"],
                          check=True, capture_output=True, text=True).stdout.split()
    results = []
    for sha in shas:
        commit = source.commit(None, sha)
        results.append((timed(commit, args.rounds), commit))
    if not results:
        return 0
    times = [t for t, _c in results]
    total_lines = sum(c.additions + c.deletions for _t, c in results)
    print(f"history of {args.repo}: {len(results)} commits, {total_lines} changed lines")
    print(f"  mean {statistics.mean(times) * 1000:.1f} ms, median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms, {sum(times) / max(total_lines, 1) * 1_000_000:.1f} ms per 1,000 lines")
    for seconds, commit in sorted(results, key=lambda item: -item[0])[:3]:
        print(f"  {commit.sha[:10]} {len(commit.files):4} files {commit.additions + commit.deletions:6} lines "
              f"{seconds * 1000:7.1f} ms  {commit.title[:60]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
