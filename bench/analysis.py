"""Benchmark of the daily analysis: 50 repositories × 20 new commits against the fake GitHub and a fake
OpenAI-compatible server that answers each call after 300 ms.

Runs `newsletter run-daily --sync`'s code path twice in one process, with LLM concurrency 8 and with
concurrency 1 (the baseline), each on a fresh SQLite database and fresh fakes, and prints wall time,
GitHub requests, LLM calls and tokens. Targets: LLM calls == new commits (one request covers every
language read), GitHub requests
within the budget (2 per repository + 1 list page per 100 commits + 1 per new commit + 1 comparison per
merge), and at least 6× faster than the baseline.

--merges N gives N of the repositories a merged pull request too: a branch of three commits, two of
them of the day before (not in the day's window), merged on the day. Merges are shown, not analysed:
LLM calls are then the new commits less the merges.

    .venv/bin/python bench/analysis.py [--repos 50] [--commits 20] [--latency 0.3] [--languages 1] [--merges 0]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from newsletter import create_app  # noqa: E402
from newsletter.db import upgrade  # noqa: E402
from newsletter.models import Report, Threshold  # noqa: E402
from newsletter.reports import run  # noqa: E402
from newsletter.subscribers import subscriptions  # noqa: E402
from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402

DAY = datetime(2026, 1, 24, tzinfo=UTC)
NOW = DAY + timedelta(days=1, hours=7)


def run_once(args, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as github, FakeOpenAI(latency=args.latency) as llm:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        app = create_app({"SECRET_KEY": "bench" * 8, "DATABASE_URL": url, "INSTANCE_PATH": tmp,
                          "GITHUB_API_URL": github.url, "OPENAI_BASE_URL": llm.base_url,
                          "OPENAI_API_KEY": "sk-bench", "OPENAI_MODEL": "bench-model",
                          "LLM_CONCURRENCY": concurrency, "REDIS_URL": "redis://127.0.0.1:6379/15"})
        languages = ["en", "zh"][: args.languages]
        with app.app_context():
            session = app.extensions["db"].session
            for r in range(args.repos):
                name = f"bench/repo{r:03d}"
                github.add_repo(name)
                shas = github.add_commits(name, args.commits, start=DAY + timedelta(hours=1), step=timedelta(minutes=7),
                                          message=f"feat(module{r % 7}): synthetic change")
                if r < args.merges:
                    side = github.add_commits(name, 2, branch="feature", parent=shas[0], start=DAY - timedelta(hours=10),
                                              message="feat: pull request part")
                    side += github.add_commits(name, 1, branch="feature", start=DAY + timedelta(hours=20),
                                               message="feat: pull request part")
                    github.add_commit(name, f"Merge pull request #{r + 1} from bench/feature",
                                      parents=(github.head(name), side[-1]), date=DAY + timedelta(hours=21))
                for language in languages:
                    subscriptions.subscribe_confirmed(session, f"{language}{r}@example.com",
                                                      [(name, Threshold.LOW)], language)
            session.commit()
            services = run.make_services(app.config)
            github.clear_requests()
            started = time.perf_counter()
            summary = run.run_sync(session, services, DAY.date(), now=NOW)
            wall = time.perf_counter() - started
            tokens = sum(r.prompt_tokens + r.completion_tokens for r in session.scalars(select(Report)))
            services.close()
            app.extensions["db"].dispose()
        return {"wall": wall, "github": len(github.requests), "counted": summary["github_requests"],
                "compares": github.request_count("/compare/"),
                "llm": llm.calls, "new": summary["new_commits"], "tokens": tokens,
                "languages": len(languages), "max_in_flight": llm.max_in_flight}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--languages", type=int, choices=(1, 2), default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--merges", type=int, default=0, help="repositories that also merge a pull request")
    args = parser.parse_args()
    args.merges = min(max(args.merges, 0), args.repos)

    fast = run_once(args, args.concurrency)
    base = run_once(args, 1)
    # A merging repository's day holds two more commits (the branch's commit of the day and the merge)
    # and costs one comparison more (what the merge brings).
    plain, merging = args.repos - args.merges, args.merges
    budget = (plain * (2 + math.ceil(args.commits / 100) + args.commits)
              + merging * (2 + math.ceil((args.commits + 2) / 100) + args.commits + 2 + 1))
    print(f"{args.repos} repositories × {args.commits} new commits, {fast['languages']} language(s), "
          f"{args.latency * 1000:.0f} ms per LLM call")
    print(f"{'':14}{'wall s':>9}{'GitHub req':>12}{'LLM calls':>11}{'tokens':>10}{'in flight':>11}")
    for label, result in ((f"concurrency {args.concurrency}", fast), ("concurrency 1", base)):
        print(f"{label:14}{result['wall']:9.1f}{result['github']:12}{result['llm']:11}{result['tokens']:10}"
              f"{result['max_in_flight']:11}")
    expected_calls = fast["new"] - args.merges  # merges are shown, not analysed
    speedup = base["wall"] / fast["wall"]
    merges = f" less {args.merges} merges" if args.merges else ""
    print(f"LLM calls {fast['llm']} (new commits{merges} = {expected_calls}, whatever the {fast['languages']} language(s)): "
          f"{'ok' if fast['llm'] == expected_calls else 'MISSED'}")
    print(f"GitHub requests {fast['github']} (server) / {fast['counted']} (client), budget {budget}: "
          f"{'ok' if fast['github'] <= budget else 'OVER'}")
    if args.merges:
        print(f"comparisons {fast['compares']} for {args.merges} merges (one per merge, none for the watermark "
              f"on a first run): {'ok' if fast['compares'] == args.merges else 'MISSED'}")
    print(f"speed-up over concurrency 1: {speedup:.1f}× (target ≥ 6×): {'ok' if speedup >= 6 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
