"""The 2026-01-24 day of ai-dynamo/dynamo: the 15 commits of the seed report, as GitHub reports them.

Sources, both in the shared folder next to the repository (../shared):
- seed/dynamo-2026-01-24/commits.json, read at import. A byte-identical copy is kept in
  tests/data/seed/ for a clone that has no ../shared beside it (a clone in a temporary folder);
  tests/test_seed_day.py checks the copy against ../shared whenever it is there;
- seed/daily-report-ai-dynamo-dynamo-2026-01-24.zh.md, the report the product was designed from.

Real, from commits.json: every commit's sha, parents (one linear chain), author name and email,
author and committer times, full message, and every changed file with its status, additions and
deletions (and previous name for renames); commit totals are the sums over the files. The seed
report's day is 2026-01-24 in Asia/Shanghai (SEED_TIMEZONE): the commits' committer times run from
2026-01-23T16:26:01Z to 2026-01-24T02:47:00Z, so a run for SEED_DATE must use DIGEST_TIMEZONE=SEED_TIMEZONE.

Not real:
- Patch text. commits.json has none, so most files get patch None, as GitHub gives for large
  diffs. A few files carry a short hand-written *excerpt* (_EXCERPTS) that fits the commit's
  message: never more added or removed lines than the file really has, so it is part of the
  change at most, and its hunk header's line numbers are made up.
- Logins: the report and commits.json name authors, not GitHub accounts; logins are derived
  from the names (a login in commits.json would win).
- The base commit SEED_BASE_SHA is the real parent of the day's oldest commit, but its message,
  author and time are made up (its time is before the report day starts).
- In the fake repository the committer is "GitHub" (real) but with the author's email and login,
  which is all FakeGitHub can express.
"""
from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from newsletter.sources.commit import CommitRecord, FileChange
from tests.fakes.github import FakeFile, FakeGitHub, FakeRepo

SEED_REPO = "ai-dynamo/dynamo"
SEED_DATE = date(2026, 1, 24)
SEED_TIMEZONE = "Asia/Shanghai"
SEED_BRANCH = "main"
_ROOT = Path(__file__).resolve().parents[2]
SHARED_COMMITS_JSON = _ROOT.parent / "shared" / "seed" / "dynamo-2026-01-24" / "commits.json"
COPIED_COMMITS_JSON = _ROOT / "tests" / "data" / "seed" / "dynamo-2026-01-24" / "commits.json"
SEED_COMMITS_JSON = SHARED_COMMITS_JSON if SHARED_COMMITS_JSON.is_file() else COPIED_COMMITS_JSON
# Made up: the real base commit's time is not in commits.json. 20:00 in Shanghai the day before.
SEED_BASE_TIME = datetime(2026, 1, 23, 12, 0, 0, tzinfo=UTC)

# Hand-written patch excerpts, by (sha, filename). Lines start with "+", "-" or " " (context).
_EXCERPTS: dict[tuple[str, str], tuple[str, ...]] = {
    # chore: nuke ForwardPassMetrics (#5531)
    ("feb6d272ac7dc392bdbd4a759c69f310bb3a78ba", "lib/llm/src/kv_router/protocols.rs"): (
        " use serde::{Deserialize, Serialize};",
        "-#[derive(Debug, Clone, Serialize, Deserialize)]",
        "-pub struct ForwardPassMetrics {",
        "-    pub worker_stats: WorkerStats,",
        "-    pub kv_stats: KvStats,",
        "-}",
    ),
    ("feb6d272ac7dc392bdbd4a759c69f310bb3a78ba", "lib/llm/src/kv_router/publisher.rs"): (
        " impl WorkerMetricsPublisher {",
        "-    pub fn publish(&self, metrics: Arc<ForwardPassMetrics>) -> Result<()> {",
        "+    pub fn publish(&self, load: Arc<LoadMetrics>) -> Result<()> {",
    ),
    ("feb6d272ac7dc392bdbd4a759c69f310bb3a78ba", "lib/runtime/src/metrics/prometheus_names.rs"): (
        " pub mod kvrouter {",
        "-    pub const KVSTATS_ACTIVE_BLOCKS: &str = \"kvstats_active_blocks\";",
        "-    pub const KVSTATS_TOTAL_BLOCKS: &str = \"kvstats_total_blocks\";",
    ),
    ("feb6d272ac7dc392bdbd4a759c69f310bb3a78ba", "docs/router/kv_cache_routing.md"): (
        " ## Worker metrics",
        "-Workers publish `ForwardPassMetrics` on every forward pass.",
        "+Workers publish their KV load through the KV event publisher.",
    ),
    # chore: simplify RadixTree assuming consistent hashing across workers (#5605)
    ("b273eda2f456643ef5e18dbe95ae55b53473c057", "lib/llm/src/kv_router/indexer.rs"): (
        " impl RadixTree {",
        "-    fn find_matches(&self, hashes: &[LocalBlockHash], worker_hashes: &WorkerHashes) -> OverlapScores {",
        "+    // Every worker hashes blocks the same way, so one lookup per block is enough.",
        "+    fn find_matches(&self, hashes: &[LocalBlockHash]) -> OverlapScores {",
    ),
    # refactor: reduce Python API to only Prometheus Exposition Format callback (#5594)
    ("7361de420863ae54b9587b4fe9fa1579f99804cc", "lib/bindings/python/rust/prometheus_metrics.rs"): (
        " #[pymethods]",
        "-    fn create_counter(&self, name: &str, description: &str) -> PyResult<Counter> {",
        "+    fn register_callback(&self, callback: PyObject) -> PyResult<()> {",
        "+        // The callback returns text in the Prometheus exposition format.",
    ),
    ("7361de420863ae54b9587b4fe9fa1579f99804cc", "lib/bindings/python/rust/lib.rs"): (
        " fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {",
        "-    m.add_class::<prometheus_metrics::Counter>()?;",
    ),
    ("7361de420863ae54b9587b4fe9fa1579f99804cc", "lib/bindings/python/tests/test_metrics_registry.py"): (
        "-def test_create_counter(runtime):",
        "-    counter = runtime.metrics.create_counter(\"requests\", \"Requests\")",
        "-    counter.inc()",
    ),
    # feat: add __all__ exports and __repr__ methods for better debugging (#5606)
    ("7de80960dc5980165b3f63ef7c66d20c9bd8f760", "components/src/dynamo/planner/utils/exceptions.py"): (
        " class PlannerError(Exception):",
        "+    def __repr__(self) -> str:",
        "+        return f\"{type(self).__name__}({self.args!r})\"",
    ),
    # fix: correct typos in help text and add missing docstrings (#5607)
    ("491a21093f0e05bc4522ded98bc5e04fa61031c7", "components/src/dynamo/frontend/main.py"): (
        " def parse_args():",
        "-    parser.add_argument(\"--http-port\", help=\"HTTP port to lisen on\")",
        "+    \"\"\"Parse the frontend's command line.\"\"\"",
        "+    parser.add_argument(\"--http-port\", help=\"HTTP port to listen on\")",
    ),
    ("491a21093f0e05bc4522ded98bc5e04fa61031c7", "components/src/dynamo/vllm/args.py"): (
        " def parse_args():",
        "-    parser.add_argument(\"--is-prefill-worker\", help=\"Run as a prefil worker\")",
        "+    parser.add_argument(\"--is-prefill-worker\", help=\"Run as a prefill worker\")",
    ),
    ("491a21093f0e05bc4522ded98bc5e04fa61031c7", "launch/dynamo-run/src/flags.rs"): (
        " pub struct Flags {",
        "-    /// Maximum numer of tokens",
        "+    /// Maximum number of tokens",
    ),
    # feat: add event plane discovery (#5614)
    ("3ee989252c229d24d878dbab2807a12e9c32beba", "lib/runtime/src/discovery/mod.rs"): (
        " pub enum DiscoveryInstance {",
        "     Endpoint(EndpointInstance),",
        "+    EventChannel(EventChannelInstance),",
    ),
    ("3ee989252c229d24d878dbab2807a12e9c32beba", "lib/runtime/src/discovery/metadata.rs"): (
        " pub struct MetadataSnapshot {",
        "+    pub event_channels: Vec<EventChannelInstanceId>,",
    ),
    ("3ee989252c229d24d878dbab2807a12e9c32beba", "lib/runtime/src/config/environment_names.rs"): (
        " pub mod discovery {",
        "+    /// Transport used by the event plane (default: nats).",
        "+    pub const DYN_EVENT_PLANE: &str = \"DYN_EVENT_PLANE\";",
    ),
    # fix: Fix race condition in TP>1 when ImmediateTransferResult arrives before CreateSlot (#5393)
    ("7fe89c74267d39585854ca39230f589d7cf3e9fb", "lib/llm/src/block_manager/connector/scheduler.rs"): (
        " fn handle_immediate_result(&mut self, result: ImmediateTransferResult) {",
        "-    let slot = self.slots.get_mut(&result.request_id).expect(\"slot exists\");",
        "-    slot.complete(result);",
        "+    // With TP>1 the result can arrive before CreateSlot; keep it until the slot exists.",
        "+    match self.slots.get_mut(&result.request_id) {",
        "+        Some(slot) => slot.complete(result),",
        "+        None => self.unprocessed_immediate_results.push(result),",
        "+    }",
    ),
    ("7fe89c74267d39585854ca39230f589d7cf3e9fb", "lib/bindings/kvbm/src/block_manager/vllm/connector/leader.rs"): (
        " fn create_slot(&mut self, request_id: String) {",
        "+    self.scheduler.drain_unprocessed_results(&request_id);",
    ),
    # refactor: move GMS to standalone component (#5616)
    ("92ecd308fd7b92796ab9479ce6639195930b0cec", "components/src/dynamo/gpu_memory_service/__init__.py"): (
        "-from .server import GpuMemoryService",
        "-__all__ = [\"GpuMemoryService\"]",
    ),
    # docs: add NIXL backend configuration and fix multiple typos (#5564)
    ("912a4d4b7ef39eda11b93c11f74b32e8eaf1906a", "docs/backends/trtllm/kv-cache-transfer.md"): (
        "+## NIXL backend configuration",
        "+",
        "+Set `DYN_KVBM_NIXL_BACKEND_UCX=true` to move KV blocks over UCX.",
    ),
    # ci: add filters for frontend image workflow (#5585)
    ("d4fbf9d39f60b4bc769c02fdf61d791b60b0caf2", ".github/workflows/build-frontend-image.yaml"): (
        " on:",
        "   pull_request:",
        "+    paths:",
        "+      - 'components/src/dynamo/frontend/**'",
        "+      - 'container/Dockerfile.frontend'",
    ),
    ("d4fbf9d39f60b4bc769c02fdf61d791b60b0caf2", ".github/filters.yaml"): (
        " core:",
        "+frontend:",
        "+  - 'components/src/dynamo/frontend/**'",
    ),
    # chore: remove some clones in Indexer (#5612)
    ("67c868e7b787c5ce4f7f9f118285ee38e92e2013", "lib/llm/src/kv_router/indexer.rs"): (
        " fn apply_event(&mut self, event: RouterEvent) {",
        "-    let worker = event.worker_id.clone();",
        "-    self.tree.apply(event.clone(), worker);",
        "+    let worker = event.worker_id;",
        "+    self.tree.apply(event, worker);",
    ),
    # chore(deps): bump vLLM to 0.14.0 (#5593)
    ("50f1e0e17aebadbe5de9e337c6aaa5262f8559f2", "container/deps/vllm/install_vllm.sh"): (
        " set -euo pipefail",
        "-VLLM_REF=\"v0.13.0\"",
        "+VLLM_REF=\"v0.14.0\"",
    ),
    ("50f1e0e17aebadbe5de9e337c6aaa5262f8559f2", "pyproject.toml"): (
        " [project.optional-dependencies]",
        "-vllm = [\"vllm[flashinfer]==0.13.0\"]",
        "+vllm = [\"vllm[flashinfer]==0.14.0\"]",
    ),
    # refactor: add explicit non-leader node handling in vLLM (#5597)
    ("2da403e39858a0138e767569e554203bb2319802", "components/src/dynamo/vllm/main.py"): (
        " async def worker(runtime):",
        "+    if config.data_parallel_rank and not config.is_leader:",
        "+        # Non-leader nodes only run the engine; the leader registers the model.",
        "+        await run_non_leader(runtime, config)",
        "+        return",
    ),
    ("2da403e39858a0138e767569e554203bb2319802", ".github/workflows/pr.yaml"): (
        " jobs:",
        "-    timeout-minutes: 60",
        "+    timeout-minutes: 90",
    ),
    # fix: incremental build for dynamo-llm (#5601)
    ("e6ad5bc5a3d950f97115d2af9d1c213ec8aa99a9", "lib/llm/build.rs"): (
        " fn main() {",
        "-    println!(\"cargo:rerun-if-changed=.\");",
        "+    println!(\"cargo:rerun-if-changed=src/protos\");",
    ),
    # feat: event plane apis and nats implementation (#5624)
    ("ebde0f662ca789686611a2a3c635cda2e24879eb", "lib/runtime/src/transports.rs"): (
        " pub mod etcd;",
        "+pub mod event_plane;",
        " pub mod nats;",
    ),
    ("ebde0f662ca789686611a2a3c635cda2e24879eb", "lib/runtime/src/transports/event_plane/mod.rs"): (
        "+mod codec;",
        "+mod frame;",
        "+mod nats_transport;",
        "+",
        "+pub use nats_transport::NatsTransport;",
    ),
    ("ebde0f662ca789686611a2a3c635cda2e24879eb", "lib/runtime/src/transports/event_plane/codec.rs"): (
        "+pub struct MsgpackCodec;",
        "+",
        "+impl MsgpackCodec {",
        "+    pub fn encode_envelope(envelope: &EventEnvelope) -> Result<Bytes> {",
        "+        Ok(Bytes::from(rmp_serde::to_vec_named(envelope)?))",
        "+    }",
        "+}",
    ),
    ("ebde0f662ca789686611a2a3c635cda2e24879eb", "lib/runtime/src/transports/event_plane/nats_transport.rs"): (
        "+#[async_trait]",
        "+impl EventTransportTx for NatsTransport {",
        "+    async fn publish(&self, subject: &str, payload: Bytes) -> Result<()> {",
        "+        self.client.publish(subject.to_string(), payload).await?;",
        "+        Ok(())",
        "+    }",
        "+}",
    ),
}


class SeedDataError(RuntimeError):
    """commits.json is missing, or disagrees with the excerpts or with itself."""


def _read_commits_json() -> list[dict[str, Any]]:
    if not SEED_COMMITS_JSON.is_file():
        raise SeedDataError(
            f"The seed-day fixture (tests/fakes/seed_day.py) needs {SEED_COMMITS_JSON}: the real metadata of "
            f"the seed's 15 commits, kept in the shared folder next to the repository (shared/seed/...). "
            f"It is missing; restore the shared folder before running these tests."
        )
    data = json.loads(SEED_COMMITS_JSON.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not data:
        raise SeedDataError(f"{SEED_COMMITS_JSON} should hold a list of commits")
    return data


def _chain(raw: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(the base sha, the commits oldest first), following the parents; the chain must be linear."""
    by_parent: dict[str, dict[str, Any]] = {}
    shas = {c["sha"] for c in raw}
    for commit in raw:
        if len(commit["parents"]) != 1:
            raise SeedDataError(f"seed commit {commit['sha']} has {len(commit['parents'])} parents; expected one")
        by_parent[commit["parents"][0]] = commit
    bases = [parent for parent in by_parent if parent not in shas]
    if len(bases) != 1:
        raise SeedDataError(f"the seed commits should form one chain on one base commit, found bases {bases}")
    ordered, parent = [], bases[0]
    while parent in by_parent:
        ordered.append(by_parent[parent])
        parent = ordered[-1]["sha"]
    if len(ordered) != len(raw):
        raise SeedDataError("the seed commits do not form one linear chain")
    return bases[0], ordered


def _login(name: str) -> str:
    # Synthetic: commits.json and the report name authors, not GitHub accounts.
    return name.lower().replace(" ", "-")


def _excerpt(sha: str, change: dict[str, Any]) -> str | None:
    """The hand-written excerpt of this file's patch, with a hunk header; None when there is none."""
    lines = _EXCERPTS.get((sha, change["filename"]))
    if lines is None:
        return None
    status = change["status"]
    additions = sum(1 for line in lines if line.startswith("+"))
    deletions = sum(1 for line in lines if line.startswith("-"))
    if additions > change["additions"] or deletions > change["deletions"]:
        raise SeedDataError(
            f"the excerpt of {change['filename']} in {sha[:12]} has +{additions}/-{deletions} lines, more than "
            f"the real +{change['additions']}/-{change['deletions']}")
    old = sum(1 for line in lines if not line.startswith("+"))
    new = sum(1 for line in lines if not line.startswith("-"))
    if (status == "added" and old) or (status == "removed" and new):
        raise SeedDataError(f"the excerpt of {change['filename']} in {sha[:12]} does not fit its status {status}")
    old_start = 0 if status == "added" else 1
    new_start = 0 if status == "removed" else 1
    return "\n".join((f"@@ -{old_start},{old} +{new_start},{new} @@", *lines))


def _file(sha: str, change: dict[str, Any]) -> FileChange:
    return FileChange(change["filename"], change["status"], change["additions"], change["deletions"],
                      _excerpt(sha, change))


def _record(commit: dict[str, Any]) -> CommitRecord:
    sha = commit["sha"]
    files = tuple(_file(sha, change) for change in commit["files"])
    return CommitRecord(
        sha=sha,
        author_name=commit["author_name"],
        author_login=commit.get("author_login") or _login(commit["author_name"]),
        # GitHub's API gives committer dates in UTC, and so does every source.
        committed_at=datetime.fromisoformat(commit["committed_at"]).astimezone(UTC),
        message=commit["message"],
        html_url=f"https://github.com/{SEED_REPO}/commit/{sha}",
        parents=tuple(commit["parents"]),
        additions=sum(f.additions for f in files),
        deletions=sum(f.deletions for f in files),
        files=files,
    )


def _check_excerpts(raw: list[dict[str, Any]]) -> None:
    real = {(c["sha"], f["filename"]) for c in raw for f in c["files"]}
    stray = sorted(key for key in _EXCERPTS if key not in real)
    if stray:
        raise SeedDataError(f"patch excerpts for files the real commits do not touch: {stray}")


_RAW_BASE, _RAW = _chain(_read_commits_json())
_check_excerpts(_RAW)

SEED_BASE_SHA: str = _RAW_BASE  # 30c6228b..., the real parent of the day's oldest commit
SEED_COMMITS: list[CommitRecord] = [_record(commit) for commit in _RAW]  # oldest first


def load_into(fake_github: FakeGitHub, *, private: bool = False) -> FakeRepo:
    """Install ai-dynamo/dynamo with the base commit and the 15 seed commits on main; returns the FakeRepo."""
    repo = fake_github.add_repo(SEED_REPO, default_branch=SEED_BRANCH, private=private)
    fake_github.add_commit(
        SEED_REPO,
        "chore: state of main before the seed day (synthetic metadata)",
        sha=SEED_BASE_SHA,
        parents=(),
        branch=SEED_BRANCH,
        date=SEED_BASE_TIME,
        author="Seed Base",
        login="seed-base",
        files=(),
    )
    for raw, record in zip(_RAW, SEED_COMMITS, strict=True):
        files = tuple(
            FakeFile(f.filename, f.status, f.additions, f.deletions, f.patch, change.get("previous_filename"))
            for f, change in zip(record.files, raw["files"], strict=True)
        )
        fake_github.add_commit(
            SEED_REPO,
            record.message,
            sha=record.sha,
            parents=record.parents,
            branch=SEED_BRANCH,
            date=datetime.fromisoformat(raw["authored_at"]),
            author=record.author_name,
            email=raw.get("author_email"),
            login=record.author_login,
            committer=raw.get("committer_name"),
            committer_date=record.committed_at,
            files=files,
        )
    return repo
