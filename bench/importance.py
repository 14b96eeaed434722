"""Benchmark of importance: the analyzers against the labelled set in tests/data/importance/ (over 200
commits with their patches: this repository's own history and commits written in Python,
JavaScript/TypeScript, Go, Rust, Java and C/C++, dependency updates in every ecosystem, reverts,
duplicates and merges; how each label was decided is in tests/importance_data.py and each entry's "why").

Runs the heuristic analyzer through its public analyze(commit, ["en"]) on every entry and prints the
label balance, agreement overall and on the clear cases against the targets (≥ 85 %, ≥ 95 %), recall
and precision per label, the confusion matrix, agreement per kind (worst first), the filler rate
against its target (< 5 %) with the most repeated texts per field, and the worst disagreements.
With --llm (or --llm-server, which starts the project's llama.cpp server from tests/llm_server.py) the
LLM analyzer runs too, through make_analyzer, and the figures are printed side by side.

    .venv/bin/python bench/importance.py [--only KIND] [--group GROUP] [--json] [--worst 10]
                                         [--llm BASE_URL --model M [--context-tokens 16384] [--concurrency 4]
                                          [--timeout 60]] [--llm-server]
"""
from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.analysis.analyzer import Analyzer, make_analyzer  # noqa: E402
from newsletter.analysis.heuristic import HeuristicAnalyzer  # noqa: E402
from newsletter.analysis.result import AnalysisSet  # noqa: E402
from tests.importance_data import (  # noqa: E402
    FIELDS,
    LABELS,
    Entry,
    Filler,
    Scores,
    analysis_fields,
    balance,
    filler,
    load,
    name_words,
    score,
)

TARGET_OVERALL = 0.85
TARGET_CLEAR = 0.95
TARGET_FILLER = 0.05
_RANK = {"high": 3, "medium": 2, "low": 1}


@dataclass
class Run:
    """One analyzer over the set: its verdicts, reasons, figures and cost."""

    name: str
    analyses: dict[str, AnalysisSet]
    scores: Scores
    filler: Filler
    seconds: float

    @property
    def fallbacks(self) -> int:
        return sum(1 for a in self.analyses.values() if a.fallback)


def run_analyzer(name: str, analyzer: Analyzer, entries: Sequence[Entry], chunk: int | None = None) -> Run:
    """Analyse every entry in English; with chunk, in slices of that many, reporting progress on stderr."""
    started = time.perf_counter()
    results: list[AnalysisSet] = []
    step = chunk or len(entries)
    for start in range(0, len(entries), step):
        part = entries[start:start + step]
        results += analyzer.analyze_many([(e.commit, ["en"], None) for e in part])
        if chunk:
            print(f"{name}: {len(results)}/{len(entries)} analysed, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
    seconds = time.perf_counter() - started
    analyses = {e.id: result for e, result in zip(entries, results, strict=True)}
    verdicts = {entry_id: a.importance.value for entry_id, a in analyses.items()}
    fields = {entry_id: analysis_fields(a.texts["en"]) for entry_id, a in analyses.items()}
    names = {e.id: name_words(e.commit) for e in entries}
    return Run(name, analyses, score(entries, verdicts), filler(fields, names), seconds)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def verdict(value: float, target: float, *, below: bool = False) -> str:
    return "ok" if (value < target if below else value >= target) else "MISSED"


def worst(run: Run, entries: Sequence[Entry], n: int) -> list[tuple[Entry, str, str]]:
    """The n disagreements furthest from the label, clear cases first."""
    missed = [(e, run.analyses[e.id].importance.value) for e in entries
              if run.analyses[e.id].importance.value != e.label]
    missed.sort(key=lambda pair: (-abs(_RANK[pair[0].label] - _RANK[pair[1]]), not pair[0].clear, pair[0].id))
    return [(e, got, run.analyses[e.id].texts["en"].importance_reason) for e, got in missed[:n]]


def print_report(entries: Sequence[Entry], runs: Sequence[Run], worst_n: int) -> None:
    shares = balance(entries)
    groups = sorted({e.group for e in entries})
    print(f"{len(entries)} entries in {len(groups)} groups ({', '.join(groups)}); "
          f"{sum(e.clear for e in entries)} clear cases")
    print("labels: " + ", ".join(f"{label} {sum(e.label == label for e in entries)} ({shares[label]:.1%})"
                                 for label in LABELS))
    width = 18
    head = f"{'':34}" + "".join(f"{run.name:>{width}}" for run in runs)
    print("\n" + head)

    def row(title: str, cells: Sequence[str]) -> None:
        print(f"{title:34}" + "".join(f"{cell:>{width}}" for cell in cells))

    row(f"agreement (target ≥ {TARGET_OVERALL:.0%})",
        [f"{pct(r.scores.overall)} {verdict(r.scores.overall, TARGET_OVERALL)}" for r in runs])
    row(f"clear cases (target ≥ {TARGET_CLEAR:.0%})",
        [f"{pct(r.scores.clear)} {verdict(r.scores.clear, TARGET_CLEAR)}" for r in runs])
    for label in LABELS:
        row(f"{label}: recall / precision",
            [f"{pct(r.scores.labels[label].recall)} / {pct(r.scores.labels[label].precision)}" for r in runs])
    row(f"filler rate (target < {TARGET_FILLER:.0%})",
        [f"{pct(r.filler.rate)} {verdict(r.filler.rate, TARGET_FILLER, below=True)}" for r in runs])
    row("fell back to the heuristic", [str(r.fallbacks) for r in runs])
    row("seconds", [f"{r.seconds:.2f}" for r in runs])

    for run in runs:
        print(f"\n== {run.name} ==")
        print("confusion matrix (rows: label, columns: analyzer)")
        print(f"{'':10}" + "".join(f"{label:>8}" for label in LABELS))
        for label in LABELS:
            print(f"{label:10}" + "".join(f"{run.scores.confusion[label][got]:8}" for got in LABELS))
        print("agreement per kind, worst first")
        kinds = sorted(run.scores.kinds.items(),
                       key=lambda item: (item[1][1] / item[1][0], -item[1][0], item[0]))
        for kind, (n, ok) in kinds:
            print(f"  {kind:26}{ok:4}/{n:<4}{ok / n:7.0%}")
        print(f"filler: {len(run.filler.filler_ids)} of {run.filler.entries} entries "
              f"(a normalised text is repeated from {run.filler.threshold} entries on)")
        for name in FIELDS:
            top = run.filler.top[name]
            if not top or top[0][1] < run.filler.threshold:
                continue
            print(f"  {name} ({run.filler.by_field[name]} filler entries)")
            for text, n in top:
                print(f"    {n:4}× {text[:110]}")
        print(f"worst disagreements (of {run.scores.entries - run.scores.agreed})")
        for e, got, reason in worst(run, entries, worst_n):
            print(f"  {e.id:32} {e.kind:24} expected {e.label:6} got {got:6} {'clear ' if e.clear else ''}"
                  f"| {reason[:120]}")


def figures(entries: Sequence[Entry], runs: Sequence[Run], worst_n: int) -> dict[str, Any]:
    """The same figures as one JSON document."""
    return {
        "entries": len(entries),
        "labels": {label: sum(e.label == label for e in entries) for label in LABELS},
        "clear": sum(e.clear for e in entries),
        "targets": {"overall": TARGET_OVERALL, "clear": TARGET_CLEAR, "filler_below": TARGET_FILLER},
        "analyzers": {run.name: {
            "model": next(iter(run.analyses.values())).model if run.analyses else None,
            "overall": run.scores.overall, "clear": run.scores.clear,
            "labels": {label: {"recall": s.recall, "precision": s.precision, "expected": s.expected,
                               "predicted": s.predicted} for label, s in run.scores.labels.items()},
            "confusion": run.scores.confusion,
            "kinds": {kind: {"entries": n, "agreed": ok}
                      for kind, (n, ok) in sorted(run.scores.kinds.items())},
            "filler": {"rate": run.filler.rate, "threshold": run.filler.threshold,
                       "by_field": run.filler.by_field, "top": run.filler.top},
            "fallbacks": run.fallbacks, "seconds": run.seconds,
            "worst": [{"id": e.id, "kind": e.kind, "expected": e.label, "got": got, "reason": reason}
                      for e, got, reason in worst(run, entries, worst_n)],
        } for run in runs},
    }


def start_llm_server(logs: Path) -> Any:
    """The project's llama.cpp server (tests/llm_server.py), started; imported here because it needs the
    optional `llm` extra and the module may not exist in every checkout."""
    try:
        module = importlib.import_module("tests.llm_server")
    except ImportError as error:
        raise RuntimeError(f"tests/llm_server.py cannot be imported ({error}); "
                           "install the `llm` extra with `make install-llm`") from error
    try:
        return module.LlamaServer(logs / "server.log").start()
    except module.LlamaServerError as error:
        raise RuntimeError(str(error)) from error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", metavar="KIND", help="only entries of this kind")
    parser.add_argument("--group", help="only entries of this group (file stem, e.g. go or repo-daily)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--worst", type=int, default=10, help="disagreements to list per analyzer")
    parser.add_argument("--llm", metavar="BASE_URL",
                        help="also run the LLM analyzer against this OpenAI-compatible URL")
    parser.add_argument("--model", help="OPENAI_MODEL for --llm")
    parser.add_argument("--context-tokens", type=int, default=16384, help="LLM_CONTEXT_TOKENS for --llm")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="LLM_CONCURRENCY (default 4; 1 with --llm-server, which serves one at a time)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="LLM_TIMEOUT in seconds (default 60; 300 with --llm-server, a small CPU model)")
    parser.add_argument("--llm-server", action="store_true",
                        help="start the project's llama.cpp server (tests/llm_server.py) and use it")
    args = parser.parse_args()
    if args.llm and not args.model:
        parser.error("--llm needs --model")

    entries = load()
    if args.only:
        entries = [e for e in entries if e.kind == args.only]
    if args.group:
        entries = [e for e in entries if e.group == args.group]
    if not entries:
        print("bench/importance.py: no entries match", file=sys.stderr)
        return 2

    runs = [run_analyzer("heuristic", HeuristicAnalyzer(), entries)]
    with tempfile.TemporaryDirectory() as logs:
        server = None
        if args.llm_server:
            # A kill must still stop the server below: SIGTERM unwinds like Ctrl-C.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
            try:
                server = start_llm_server(Path(logs))
            except RuntimeError as error:
                print(f"bench/importance.py: cannot start the LLM server: {error}", file=sys.stderr)
                return 2
            args.llm, args.model, args.context_tokens = server.base_url, server.model, server.n_ctx
            args.concurrency = args.concurrency or 1
            args.timeout = args.timeout or 300
            print(server.describe(), file=sys.stderr)
        try:
            if args.llm:
                analyzer = make_analyzer({"OPENAI_BASE_URL": args.llm, "OPENAI_MODEL": args.model,
                                          "LLM_CONTEXT_TOKENS": args.context_tokens,
                                          "LLM_CONCURRENCY": args.concurrency or 4,
                                          "LLM_TIMEOUT": args.timeout or 60})
                try:
                    runs.append(run_analyzer(f"llm {args.model}"[:17], analyzer, entries,
                                             chunk=4 * (args.concurrency or 4)))
                finally:
                    analyzer.close()
        finally:
            if server is not None:
                server.stop()

    if args.json:
        print(json.dumps(figures(entries, runs, args.worst), indent=1, ensure_ascii=False))
    else:
        print_report(entries, runs, args.worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
