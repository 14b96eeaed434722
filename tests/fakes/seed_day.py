"""The 2026-01-24 day of ai-dynamo/dynamo, rebuilt from the seed report.

Source: /work/shared/seed/daily-report-ai-dynamo-dynamo-2026-01-24.zh.md. From the report
we keep the 15 commits' full shas (from the "查看提交" links), author names, commit
times (the table's times, taken as UTC) and messages (the table's titles).

Everything else is synthetic but deterministic: the parents form a linear chain in time
order on top of SEED_BASE_SHA, the logins are derived from the author names, and each
commit gets a small file list with patches that fit its message (docs touch .md files,
ci touches .github/workflows, the race-condition fix touches Rust, and so on).
"""
from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from newsletter.sources.commit import CommitRecord, FileChange
from tests.fakes.github import FakeGitHub, FakeRepo

SEED_REPO = "ai-dynamo/dynamo"
SEED_DATE = date(2026, 1, 24)
SEED_BRANCH = "main"
SEED_BASE_SHA = hashlib.sha1(b"ai-dynamo/dynamo synthetic base of 2026-01-24").hexdigest()
SEED_BASE_TIME = datetime(2026, 1, 23, 22, 0, 0, tzinfo=UTC)

# One file change: (filename, status, hunk lines). Hunk lines start with "+", "-" or " ".
_Spec = tuple[str, str, tuple[str, ...]]

# (sha, author, HH:MM:SS, message, files), oldest first.
_DAY: tuple[tuple[str, str, str, str, tuple[_Spec, ...]], ...] = (
    ("feb6d272ac7dc392bdbd4a759c69f310bb3a78ba", "Yan Ru Pei", "00:26:01",
     "chore: nuke ForwardPassMetrics (#5531)", (
         ("lib/llm/src/kv_router/protocols.rs", "modified", (
             " use serde::{Deserialize, Serialize};",
             "-#[derive(Debug, Clone, Serialize, Deserialize)]",
             "-pub struct ForwardPassMetrics {",
             "-    pub worker_stats: WorkerStats,",
             "-    pub kv_stats: KvStats,",
             "-}",
         )),
         ("lib/llm/src/kv_router/publisher.rs", "modified", (
             " impl WorkerMetricsPublisher {",
             "-    pub fn publish(&self, metrics: Arc<ForwardPassMetrics>) -> Result<()> {",
             "+    pub fn publish(&self, load: Arc<LoadMetrics>) -> Result<()> {",
         )),
         ("lib/runtime/src/metrics/prometheus_names.rs", "modified", (
             " pub mod kvrouter {",
             "-    pub const KVSTATS_ACTIVE_BLOCKS: &str = \"kvstats_active_blocks\";",
             "-    pub const KVSTATS_TOTAL_BLOCKS: &str = \"kvstats_total_blocks\";",
         )),
         ("docs/router/kv_cache_routing.md", "modified", (
             " ## Worker metrics",
             "-Workers publish `ForwardPassMetrics` on every forward pass.",
             "+Workers publish their KV load through the KV event publisher.",
         )),
     )),
    ("b273eda2f456643ef5e18dbe95ae55b53473c057", "Yan Ru Pei", "01:10:13",
     "chore: simplify RadixTree assuming consistent hashing across workers (#5605)", (
         ("lib/llm/src/kv_router/indexer.rs", "modified", (
             " impl RadixTree {",
             "-    fn find_matches(&self, hashes: &[LocalBlockHash], worker_hashes: &WorkerHashes) -> OverlapScores {",
             "+    // Every worker hashes blocks the same way, so one lookup per block is enough.",
             "+    fn find_matches(&self, hashes: &[LocalBlockHash]) -> OverlapScores {",
         )),
     )),
    ("7361de420863ae54b9587b4fe9fa1579f99804cc", "Keiven C", "02:06:06",
     "refactor: reduce Python API to only Prometheus Exposition Format callback (#5594)", (
         ("lib/bindings/python/rust/prometheus_metrics.rs", "modified", (
             " #[pymethods]",
             "-    fn create_counter(&self, name: &str, description: &str) -> PyResult<Counter> {",
             "+    fn register_callback(&self, callback: PyObject) -> PyResult<()> {",
             "+        // The callback returns text in the Prometheus exposition format.",
         )),
         ("lib/bindings/python/rust/lib.rs", "modified", (
             " fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {",
             "-    m.add_class::<prometheus_metrics::Counter>()?;",
             "+    m.add_class::<prometheus_metrics::MetricsCallback>()?;",
         )),
         ("lib/bindings/python/tests/test_metrics_registry.py", "removed", (
             "-def test_create_counter(runtime):",
             "-    counter = runtime.metrics.create_counter(\"requests\", \"Requests\")",
             "-    counter.inc()",
         )),
     )),
    ("7de80960dc5980165b3f63ef7c66d20c9bd8f760", "Abhishek Gupta", "04:44:03",
     "feat: add __all__ exports and __repr__ methods for better debugging (#5606)", (
         ("components/src/dynamo/planner/utils/exceptions.py", "modified", (
             " class PlannerError(Exception):",
             "+    def __repr__(self) -> str:",
             "+        return f\"{type(self).__name__}({self.args!r})\"",
         )),
         ("components/src/dynamo/planner/__init__.py", "modified", (
             " from .planner import Planner",
             "+",
             "+__all__ = [\"Planner\", \"PlannerError\"]",
         )),
     )),
    ("491a21093f0e05bc4522ded98bc5e04fa61031c7", "Abhishek Gupta", "05:12:22",
     "fix: correct typos in help text and add missing docstrings (#5607)", (
         ("components/src/dynamo/frontend/main.py", "modified", (
             " def parse_args():",
             "-    parser.add_argument(\"--http-port\", help=\"HTTP port to lisen on\")",
             "+    \"\"\"Parse the frontend's command line.\"\"\"",
             "+    parser.add_argument(\"--http-port\", help=\"HTTP port to listen on\")",
         )),
         ("components/src/dynamo/vllm/args.py", "modified", (
             " def parse_args():",
             "-    parser.add_argument(\"--is-prefill-worker\", help=\"Run as a prefil worker\")",
             "+    parser.add_argument(\"--is-prefill-worker\", help=\"Run as a prefill worker\")",
         )),
         ("launch/dynamo-run/src/flags.rs", "modified", (
             " pub struct Flags {",
             "-    /// Maximum numer of tokens",
             "+    /// Maximum number of tokens",
         )),
     )),
    ("3ee989252c229d24d878dbab2807a12e9c32beba", "Biswa Panda", "05:59:43",
     "feat: add event plane discovery (#5614)", (
         ("lib/runtime/src/discovery/mod.rs", "modified", (
             " pub enum DiscoveryInstance {",
             "     Endpoint(EndpointInstance),",
             "+    EventChannel(EventChannelInstance),",
         )),
         ("lib/runtime/src/discovery/metadata.rs", "modified", (
             " pub struct MetadataSnapshot {",
             "+    pub event_channels: Vec<EventChannelInstanceId>,",
         )),
         ("lib/runtime/src/config/environment_names.rs", "modified", (
             " pub mod discovery {",
             "+    /// Transport used by the event plane (default: nats).",
             "+    pub const DYN_EVENT_PLANE: &str = \"DYN_EVENT_PLANE\";",
         )),
     )),
    ("7fe89c74267d39585854ca39230f589d7cf3e9fb", "Kris Hung", "07:10:32",
     "fix: Fix race condition in TP>1 when ImmediateTransferResult arrives before CreateSlot (#5393)", (
         ("lib/llm/src/block_manager/connector/scheduler.rs", "modified", (
             " fn handle_immediate_result(&mut self, result: ImmediateTransferResult) {",
             "-    let slot = self.slots.get_mut(&result.request_id).expect(\"slot exists\");",
             "-    slot.complete(result);",
             "+    // With TP>1 the result can arrive before CreateSlot; keep it until the slot exists.",
             "+    match self.slots.get_mut(&result.request_id) {",
             "+        Some(slot) => slot.complete(result),",
             "+        None => self.unprocessed_immediate_results.push(result),",
             "+    }",
         )),
         ("lib/bindings/kvbm/src/block_manager/vllm/connector/leader.rs", "modified", (
             " fn create_slot(&mut self, request_id: String) {",
             "+    self.scheduler.drain_unprocessed_results(&request_id);",
         )),
     )),
    ("92ecd308fd7b92796ab9479ce6639195930b0cec", "Schwinn Saereesitthipitak", "08:28:41",
     "refactor: move GMS to standalone component (#5616)", (
         ("components/src/dynamo/gpu_memory_service/__init__.py", "removed", (
             "-from .server import GpuMemoryService",
             "-__all__ = [\"GpuMemoryService\"]",
         )),
         ("lib/gpu_memory_service/__init__.py", "added", (
             "+from .server import GpuMemoryService",
             "+__all__ = [\"GpuMemoryService\"]",
         )),
         ("lib/gpu_memory_service/cli/__main__.py", "added", (
             "+\"\"\"Run the GPU memory service: python -m gpu_memory_service.\"\"\"",
             "+from gpu_memory_service.cli.main import main",
             "+",
             "+main()",
         )),
     )),
    ("912a4d4b7ef39eda11b93c11f74b32e8eaf1906a", "Abhishek Gupta", "08:43:46",
     "docs: add NIXL backend configuration and fix multiple typos (#5564)", (
         ("docs/guides/nixl_backend.md", "added", (
             "+# NIXL backend configuration",
             "+",
             "+Set `DYN_KVBM_NIXL_BACKEND_UCX=true` to move KV blocks over UCX.",
         )),
         ("docs/router/kv_cache_routing.md", "modified", (
             " ## Overview",
             "-The router recieves KV events from every worker.",
             "+The router receives KV events from every worker.",
         )),
     )),
    ("d4fbf9d39f60b4bc769c02fdf61d791b60b0caf2", "Tushar Sharma", "08:46:51",
     "ci: add filters for frontend image workflow (#5585)", (
         (".github/workflows/build-frontend-image.yaml", "modified", (
             " on:",
             "   pull_request:",
             "+    paths:",
             "+      - 'components/src/dynamo/frontend/**'",
             "+      - 'container/Dockerfile.frontend'",
         )),
         (".github/filters.yaml", "modified", (
             " core:",
             "+frontend:",
             "+  - 'components/src/dynamo/frontend/**'",
         )),
     )),
    ("67c868e7b787c5ce4f7f9f118285ee38e92e2013", "Yan Ru Pei", "09:17:17",
     "chore: remove some clones in Indexer (#5612)", (
         ("lib/llm/src/kv_router/indexer.rs", "modified", (
             " fn apply_event(&mut self, event: RouterEvent) {",
             "-    let worker = event.worker_id.clone();",
             "-    self.tree.apply(event.clone(), worker);",
             "+    let worker = event.worker_id;",
             "+    self.tree.apply(event, worker);",
         )),
     )),
    ("50f1e0e17aebadbe5de9e337c6aaa5262f8559f2", "Alec", "09:19:06",
     "chore(deps): bump vLLM to 0.14.0 (#5593)", (
         ("container/deps/vllm/install_vllm.sh", "modified", (
             " set -euo pipefail",
             "-VLLM_REF=\"v0.13.0\"",
             "+VLLM_REF=\"v0.14.0\"",
         )),
         ("pyproject.toml", "modified", (
             " [project.optional-dependencies]",
             "-vllm = [\"vllm[flashinfer]==0.13.0\"]",
             "+vllm = [\"vllm[flashinfer]==0.14.0\"]",
         )),
     )),
    ("2da403e39858a0138e767569e554203bb2319802", "Alec", "09:23:30",
     "refactor: add explicit non-leader node handling in vLLM (#5597)", (
         ("components/src/dynamo/vllm/main.py", "modified", (
             " async def worker(runtime):",
             "+    if config.data_parallel_rank and not config.is_leader:",
             "+        # Non-leader nodes only run the engine; the leader registers the model.",
             "+        await run_non_leader(runtime, config)",
             "+        return",
         )),
         (".github/workflows/pr.yaml", "modified", (
             " jobs:",
             "-    timeout-minutes: 60",
             "+    timeout-minutes: 90",
         )),
     )),
    ("e6ad5bc5a3d950f97115d2af9d1c213ec8aa99a9", "milesial", "10:07:34",
     "fix: incremental build for dynamo-llm (#5601)", (
         ("lib/llm/build.rs", "modified", (
             " fn main() {",
             "-    println!(\"cargo:rerun-if-changed=.\");",
             "+    // Watching the whole crate made every build a full rebuild.",
             "+    println!(\"cargo:rerun-if-changed=src/protos\");",
         )),
     )),
    ("ebde0f662ca789686611a2a3c635cda2e24879eb", "Biswa Panda", "10:47:00",
     "feat: event plane apis and nats implementation (#5624)", (
         ("lib/runtime/src/transports.rs", "modified", (
             " pub mod etcd;",
             "+pub mod event_plane;",
             " pub mod nats;",
         )),
         ("lib/runtime/src/transports/event_plane/mod.rs", "added", (
             "+mod codec;",
             "+mod frame;",
             "+mod nats_transport;",
             "+",
             "+pub use nats_transport::NatsTransport;",
         )),
         ("lib/runtime/src/transports/event_plane/codec.rs", "added", (
             "+pub struct MsgpackCodec;",
             "+",
             "+impl MsgpackCodec {",
             "+    pub fn encode_envelope(envelope: &EventEnvelope) -> Result<Bytes> {",
             "+        Ok(Bytes::from(rmp_serde::to_vec_named(envelope)?))",
             "+    }",
             "+}",
         )),
         ("lib/runtime/src/transports/event_plane/nats_transport.rs", "added", (
             "+#[async_trait]",
             "+impl EventTransportTx for NatsTransport {",
             "+    async fn publish(&self, subject: &str, payload: Bytes) -> Result<()> {",
             "+        self.client.publish(subject.to_string(), payload).await?;",
             "+        Ok(())",
             "+    }",
             "+}",
         )),
     )),
)


def _login(name: str) -> str:
    # Synthetic: the report shows names only, not GitHub logins.
    return name.lower().replace(" ", "-")


def _file(filename: str, status: str, lines: tuple[str, ...]) -> FileChange:
    additions = sum(1 for line in lines if line.startswith("+"))
    deletions = sum(1 for line in lines if line.startswith("-"))
    old = sum(1 for line in lines if not line.startswith("+"))
    new = sum(1 for line in lines if not line.startswith("-"))
    old_start = 0 if status == "added" else 1
    new_start = 0 if status == "removed" else 1
    header = f"@@ -{old_start},{old} +{new_start},{new} @@"
    return FileChange(filename, status, additions, deletions, "\n".join((header, *lines)))


def _records() -> list[CommitRecord]:
    records = []
    parent = SEED_BASE_SHA
    for sha, author, clock, message, specs in _DAY:
        files = tuple(_file(*spec) for spec in specs)
        records.append(CommitRecord(
            sha=sha,
            author_name=author,
            author_login=_login(author),
            committed_at=datetime.fromisoformat(f"{SEED_DATE.isoformat()}T{clock}+00:00"),
            message=message,
            html_url=f"https://github.com/{SEED_REPO}/commit/{sha}",
            parents=(parent,),
            additions=sum(f.additions for f in files),
            deletions=sum(f.deletions for f in files),
            files=files,
        ))
        parent = sha
    return records


SEED_COMMITS: list[CommitRecord] = _records()


def load_into(fake_github: FakeGitHub, *, private: bool = False) -> FakeRepo:
    """Install ai-dynamo/dynamo with the base commit and the 15 seed commits on main; returns the FakeRepo."""
    repo = fake_github.add_repo(SEED_REPO, default_branch=SEED_BRANCH, private=private)
    fake_github.add_commit(
        SEED_REPO,
        "chore: state of main before 2026-01-24 (synthetic)",
        sha=SEED_BASE_SHA,
        parents=(),
        branch=SEED_BRANCH,
        date=SEED_BASE_TIME,
        author="Seed Base",
        login="seed-base",
        files=(),
    )
    for record in SEED_COMMITS:
        fake_github.add_record(SEED_REPO, record, branch=SEED_BRANCH)
    return repo
