"""Benchmark of the analysis against a real LLM server: llama-cpp-python's OpenAI-compatible server with
SmolLM2-135M-Instruct (the `llm` extra, `make install-llm`), on loopback.

A window of this repository's own history goes through the real daily run (git source, LLM analyzer,
stored analyses and reports) once per structured-output mode asked for, each on a fresh SQLite
database against the same server; a recording proxy keeps every request. For each mode it prints the
share of commits the model analysed (the rest fell back to the heuristic), HTTP requests per commit,
seconds per commit and our prompt token estimate against the server's count.

The default compares `auto` (negotiation) with `json_schema` forced, which is what the service sent
to every server before negotiation: llama.cpp refuses it, so that row is the baseline of a run with no
model analyses at all.

    .venv/bin/python bench/llm_server.py [--modes auto,json_schema] [--languages en,zh]
                                         [--day 2026-11-27] [--skip 8] [--commits 10] [--n-ctx 4096]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter import create_app  # noqa: E402
from newsletter.db import upgrade  # noqa: E402
from tests.llm_server import (  # noqa: E402
    COMMITS,
    DAY,
    REPOSITORY,
    SKIP,
    Figures,
    LlamaServer,
    LlamaServerError,
    RecordingProxy,
    prepare_day,
    run_day,
)


def run_mode(server: LlamaServer, args: argparse.Namespace, mode: str) -> tuple[dict, Figures, str]:
    with tempfile.TemporaryDirectory() as tmp, RecordingProxy(server.port) as proxy:
        window = prepare_day(ROOT, Path(tmp) / "repo.git", args.day, args.skip, args.commits)
        url = f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        app = create_app({"SECRET_KEY": "bench" * 8, "DATABASE_URL": url, "INSTANCE_PATH": tmp,
                          "REDIS_URL": "redis://127.0.0.1:6379/15", "DIGEST_TIMEZONE": "UTC",
                          "LOCAL_REPOSITORIES": f"{REPOSITORY}={window.repository}",
                          "OPENAI_BASE_URL": proxy.base_url, "OPENAI_MODEL": server.model,
                          "LLM_CONTEXT_TOKENS": server.n_ctx, "LLM_STRUCTURED_OUTPUT": mode,
                          "LLM_CONCURRENCY": 1, "LLM_TIMEOUT": 300})
        try:
            summary, result = run_day(app, window, proxy, tuple(args.languages.split(",")))
        finally:
            app.extensions["db"].dispose()
    described = (f"{len(window.shas)} of the {window.day_total} commits of {window.day} "
                 f"({window.shas[0][:7]}..{window.shas[-1][:7]})")
    return summary, result, described


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="auto,json_schema", help="LLM_STRUCTURED_OUTPUT values, one run each")
    parser.add_argument("--languages", default="en", help="languages of the readers: en, zh or en,zh")
    parser.add_argument("--day", type=date.fromisoformat, default=DAY)
    parser.add_argument("--skip", type=int, default=SKIP, help="commits of the day before the window")
    parser.add_argument("--commits", type=int, default=COMMITS, help="commits in the window")
    parser.add_argument("--n-ctx", type=int, default=4096,
                        help="server context, as the llm test runs it (the model was trained with 8,192)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as logs:
        try:
            server = LlamaServer(Path(logs) / "server.log", n_ctx=args.n_ctx).start()
        except LlamaServerError as error:
            print(f"bench/llm_server.py: {error}", file=sys.stderr)
            return 2
        try:
            print(server.describe())
            print(f"readers' languages: {args.languages}")
            rows = []
            for mode in args.modes.split(","):
                summary, result, window = run_mode(server, args, mode)
                print(f"\nLLM_STRUCTURED_OUTPUT={mode}: {window}; run {summary['status']}")
                for line in result.lines():
                    print(f"  {line}")
                rows.append((mode, result))
        finally:
            server.stop()
    print(f"\n{'mode':14}{'model share':>12}{'requests/commit':>17}{'s/commit':>10}{'estimate ≥ count':>18}")
    for mode, result in rows:
        sent = max(result.sent, 1)
        estimates = f"{len(result.tokens) - len(result.low_estimates)}/{len(result.tokens)}"
        print(f"{mode:14}{result.share:12.0%}{result.requests / sent:17.2f}{result.wall / sent:10.1f}{estimates:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
