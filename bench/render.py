"""Benchmark: 10,000 personalized daily emails, assembled (DigestRenderer) versus naive (bench/naive.py).

A realistic day: 50 repositories with synthetic analyzed reports of 5-30 commits in en and zh,
subscribers following 1-5 repositories picked with Zipf popularity, mixed thresholds and
languages. The fast way renders every subscriber, cold (its section compiles are in the time);
the naive way (Jinja and a full MJML compile per email) is timed on the first NAIVE_SAMPLE
subscribers and reported per email. A content check compares both ways on CHECK_SAMPLE
subscribers: the plain-text part and the visible text of the HTML must be identical.

Run from the repository root: .venv/bin/python bench/render.py
"""
from __future__ import annotations

import argparse
import datetime
import random
import resource
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.naive import render_naive  # noqa: E402
from newsletter.analysis.result import CHANGE_TYPES, Analysis, Importance, Insight  # noqa: E402
from newsletter.email.digest import DigestRenderer  # noqa: E402
from newsletter.email.headers import SubscriberView  # noqa: E402
from newsletter.reports.model import DailyReport, Entry  # noqa: E402
from newsletter.sources.commit import CommitRecord  # noqa: E402

DATE = datetime.date(2026, 1, 24)
CONFIG = {"BASE_URL": "https://daily.example.com", "LIST_UNSUBSCRIBE_MAILTO": "unsubscribe@daily.example.com"}
REPOSITORIES = 50
SUBSCRIBERS = 10_000
NAIVE_SAMPLE = 500
CHECK_SAMPLE = 200

WORDS = {
    "en": ("scheduler request worker cache router metrics token buffer handler config runtime index "
           "queue stream batch kernel session client server plugin schema parser encoder allocator").split(),
    "zh": "调度器 请求 工作节点 缓存 路由 指标 令牌 缓冲区 处理器 配置 运行时 索引 队列 数据流 批处理 内核 会话 客户端 服务端 插件".split(),
}


def sentence(rng: random.Random, lang: str, words: int) -> str:
    """A plausible LLM sentence of about `words` words, sometimes with a `code span`."""
    picked = [rng.choice(WORDS[lang]) for _ in range(words)]
    if rng.random() < 0.4:
        picked[rng.randrange(words)] = f"`{rng.choice(WORDS['en'])}_{rng.randrange(100)}`"
    if lang == "zh":
        return "".join(picked) + "。"
    return " ".join(picked).capitalize() + "."


def synthetic_report(rng: random.Random, repo: str, lang: str, commits: int, failed: bool) -> dict:
    """One repository's day as stored (DailyReport.to_json): commits analyzed in lang, a few merges."""
    entries = []
    start = datetime.datetime.combine(DATE, datetime.time(0, 0), datetime.UTC)
    # The commits are the same in both languages; only the analysis text differs.
    shape = random.Random(f"{repo}-shape")
    for _ in range(commits):
        sha = f"{shape.getrandbits(160):040x}"
        merge = shape.random() < 0.05
        importance = shape.choices(("high", "medium", "low"), weights=(25, 35, 40))[0]
        title = f"{shape.choice(('feat', 'fix', 'refactor', 'perf', 'docs', 'ci'))}: " \
                f"{' '.join(shape.choice(WORDS['en']) for _ in range(shape.randint(3, 9)))} (#{shape.randint(1000, 9999)})"
        commit = CommitRecord(
            sha=sha, author_name=f"Dev {shape.randint(1, 40)}", author_login=None,
            committed_at=start + datetime.timedelta(minutes=shape.randint(0, 1439)), message=title,
            html_url=f"https://github.com/{repo}/commit/{sha}", parents=("a", "b") if merge else ("a",),
        )
        analysis = None if merge else Analysis(
            change_type=shape.choice(CHANGE_TYPES[:13]), importance=Importance(importance),
            importance_reason=sentence(rng, lang, 12), summary=sentence(rng, lang, rng.randint(15, 35)),
            impact_scope=tuple(sentence(rng, lang, 4) for _ in range(rng.randint(1, 3))),
            insight=Insight(sentence(rng, lang, 14), sentence(rng, lang, 10), sentence(rng, lang, 10)),
            risks=tuple(sentence(rng, lang, 12) for _ in range(rng.randint(0, 2))),
            recommendations=tuple(sentence(rng, lang, 12) for _ in range(rng.randint(1, 3))),
            language=lang, model="bench-model",
        )
        entries.append(Entry(commit, analysis))
    report = DailyReport(repo=repo, date=DATE, language=lang, entries=entries, analyzer="bench-model",
                           status="failed" if failed else "ok", error="GitHub answered 502" if failed else None)
    return report.to_json()


def make_reports(rng: random.Random) -> tuple[list[str], dict]:
    repos = [f"org{i // 5}/project-{i}" for i in range(REPOSITORIES)]
    sizes = {repo: rng.randint(5, 30) for repo in repos}
    failed = set(rng.sample(repos, 2))
    reports = {(repo, lang): synthetic_report(rng, repo, lang, sizes[repo], repo in failed and sizes[repo] < 12)
               for repo in repos for lang in ("en", "zh")}
    return repos, reports


def make_subscribers(rng: random.Random, repos: list[str]) -> list[SubscriberView]:
    popularity = [1 / (rank + 1) ** 1.1 for rank in range(len(repos))]  # Zipf
    subscribers = []
    for i in range(SUBSCRIBERS):
        count = rng.choices((1, 2, 3, 4, 5), weights=(35, 25, 18, 12, 10))[0]
        chosen: list[str] = []
        while len(chosen) < count:
            repo = rng.choices(repos, weights=popularity)[0]
            if repo not in chosen:
                chosen.append(repo)
        subscriptions = tuple((repo, rng.choices(("high", "medium", "low"), weights=(30, 50, 20))[0])
                              for repo in sorted(chosen))
        token = f"{rng.getrandbits(96):024x}"
        subscribers.append(SubscriberView(
            email=f"reader{i}@example.org", language=rng.choices(("en", "zh"), weights=(60, 40))[0],
            subscriptions=subscriptions, preferences_url=f"{CONFIG['BASE_URL']}/preferences/{token}",
            unsubscribe_url=f"{CONFIG['BASE_URL']}/unsubscribe/{token}", send_empty=rng.random() < 0.1,
        ))
    return subscribers


class VisibleText(HTMLParser):
    """The text a reader sees: tag contents outside <head>, <style> and comments."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("head", "style", "title")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("head", "style", "title")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20260124)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    started = time.perf_counter()
    repos, reports = make_reports(rng)
    subscribers = make_subscribers(rng, repos)
    commits = sum(len(reports[(repo, "en")]["entries"]) for repo in repos)
    print(f"setup: {len(repos)} repositories ({commits} commits, en+zh reports), {len(subscribers)} subscribers "
          f"in {time.perf_counter() - started:.1f} s")

    # Fast: every subscriber, cold renderer, section compiles included.
    # What the delivery job does: the day's stored reports read back as the model, once.
    models = {key: DailyReport.from_json(data) for key, data in reports.items()}
    renderer = DigestRenderer(CONFIG, DATE, models)
    sizes, collapsed, dropped, skipped, largest = [], 0, 0, 0, 0
    fast_sample = {}
    started = time.perf_counter()
    for i, subscriber in enumerate(subscribers):
        digest = renderer.render(subscriber)
        if digest is None:
            skipped += 1
            continue
        sizes.append(digest.counts["html_bytes"])
        collapsed += digest.counts["collapsed"] > 0
        dropped += digest.counts["dropped"] > 0
        largest = max(largest, digest.counts["html_bytes"])
        if i < CHECK_SAMPLE:
            fast_sample[i] = digest
    fast_seconds = time.perf_counter() - started
    fast_rss = peak_rss_mb()
    fast_rate = len(subscribers) / fast_seconds

    # Naive: the first NAIVE_SAMPLE subscribers, Jinja and a full MJML compile each.
    started = time.perf_counter()
    naive_sample = {}
    whole = [0, 0.0]  # emails that fit without shrinking (one compile each) and their time
    for i, subscriber in enumerate(subscribers[:NAIVE_SAMPLE]):
        begun = time.perf_counter()
        digest = render_naive(CONFIG, DATE, models, subscriber)
        if digest is not None and not (digest.counts["collapsed"] or digest.counts["dropped"]):
            whole[0] += 1
            whole[1] += time.perf_counter() - begun
        if i < CHECK_SAMPLE:
            naive_sample[i] = digest
    naive_seconds = time.perf_counter() - started
    naive_rate = NAIVE_SAMPLE / naive_seconds

    # Content check.
    same_text = same_visible = same_bytes = 0
    for i in range(CHECK_SAMPLE):
        fast, naive = fast_sample.get(i), naive_sample[i]
        if fast is None or naive is None:
            same_text += fast is naive
            same_visible += fast is naive
            same_bytes += fast is naive
            continue
        same_text += fast.text == naive.text and fast.subject == naive.subject
        same_visible += visible_text(fast.html) == visible_text(naive.html)
        same_bytes += fast.html == naive.html

    sent = len(sizes)
    print(f"fast  (DigestRenderer): {len(subscribers)} subscribers in {fast_seconds:.2f} s = {fast_rate:,.0f} emails/s "
          f"(of which {renderer.prepare_seconds:.2f} s compiling the pieces of 50 repositories x 2 languages; "
          f"{renderer.compiles} MRML compiles in all)")
    print(f"naive (render_naive):   timed on the first {NAIVE_SAMPLE} subscribers: {naive_seconds:.2f} s = "
          f"{naive_rate:,.0f} emails/s (per-email rate; 10,000 would take ~{SUBSCRIBERS / naive_rate:.0f} s)")
    print(f"       of which the {whole[0]} emails that fit unshrunk (a single compile each): "
          f"{whole[0] / whole[1]:,.0f} emails/s; over-budget ones bisect with several compiles")
    print(f"speedup: {fast_rate / naive_rate:.1f}x (against single-compile emails only: "
          f"{fast_rate / (whole[0] / whole[1]):.1f}x)")
    print(f"emails: {sent} sent, {skipped} skipped (nothing at their thresholds, send_empty off); "
          f"{collapsed} with commits collapsed to one line to fit the budget, "
          f"{dropped} of them also cut short")
    print(f"HTML size: average {sum(sizes) / max(sent, 1) / 1000:.1f} KB, largest {largest / 1000:.1f} KB "
          f"(budget {renderer.budget / 1000:.0f} KB)")
    print(f"peak RSS: {fast_rss:.0f} MB after the fast run, {peak_rss_mb():.0f} MB at the end")
    print(f"content check on {CHECK_SAMPLE} subscribers: plain text + subject identical {same_text}/{CHECK_SAMPLE}, "
          f"visible HTML text identical {same_visible}/{CHECK_SAMPLE}, HTML byte-identical {same_bytes}/{CHECK_SAMPLE}")
    if min(same_text, same_visible) < CHECK_SAMPLE:
        sys.exit("content check FAILED: the fast and naive renderers disagree")


if __name__ == "__main__":
    main()
