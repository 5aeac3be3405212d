"""Plain data types exchanged between the domain and the adapters (no behaviour, no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

# Qdrant point ids must be integers or UUIDs; ragdeck's chunk ids are readable strings.
# Both vector-store adapters map a chunk id to the same UUID with this namespace.
CHUNK_ID_NAMESPACE = uuid.UUID("6f1c0d3e-7a52-4c1b-9e55-2b7f7f4f0a11")

# Scalar payload filter: every key must equal its value (logical AND).
PayloadFilter = dict[str, str | int | bool]


def point_uuid(chunk_id: str) -> str:
    """The Qdrant point id (UUID string) for a chunk id; stable across runs and adapters."""
    return str(uuid.uuid5(CHUNK_ID_NAMESPACE, chunk_id))


@dataclass(frozen=True)
class HnswConfig:
    """HNSW build parameters of a collection."""

    m: int = 16
    ef_construct: int = 100
    full_scan_threshold: int = 10_000  # in KB of vectors (Qdrant's unit); below it search is exact


@dataclass
class VectorPoint:
    """One point to upsert: ``id`` is the chunk id; adapters convert it with ``point_uuid``."""

    id: str
    vector: list[float]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredPoint:
    """A point read back: chunk id, payload and (when asked for) its vector."""

    id: str
    payload: dict[str, Any]
    vector: list[float] | None = None


@dataclass
class ScoredHit:
    """A search result from the vector store: chunk id, similarity score, payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(slots=True)
class FusedHit:
    """One chunk of a fused hybrid list: its fused score and where it stood in each list (ranks from 1);
    made by ``console.retrieval.fusion.fuse`` or by a store that fuses natively (``search_hybrid``)."""

    hit: ScoredHit
    score: float
    dense_rank: int | None
    lexical_rank: int | None
    dense_score: float | None
    lexical_score: float | None


@dataclass
class CollectionInfo:
    """What a collection holds and how it is indexed."""

    name: str
    dimension: int
    distance: str
    points: int
    indexed_vectors: int
    hnsw: HnswConfig
    aliases: list[str] = field(default_factory=list)
    status: str = "green"
    segments: int | None = None
    disk_bytes: int | None = None
    lexical: str | None = None  # the BM25 model of its sparse vector ``lexical``; None: built without one

    @property
    def indexed_share(self) -> float:
        """Share of points covered by the HNSW index (1.0 for an empty collection)."""
        return 1.0 if self.points == 0 else min(1.0, self.indexed_vectors / self.points)


@dataclass
class SnapshotInfo:
    """A snapshot of one collection, with the alias mapping recorded when it was taken."""

    name: str
    collection: str
    created_at: str  # ISO 8601, UTC
    size_bytes: int
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> collection at snapshot time


@dataclass(frozen=True)
class StoreCapabilities:
    """What a vector store declares it can do beyond the calls every store serves; callers read these
    instead of probing the store for attributes. A call a store declares it cannot serve raises ConfigError.
    """

    mode: str  # "embedded" | "server"
    local_files: bool  # snapshots are files on this machine (``snapshot_path`` returns one; a .tar)
    index_sizes: bool  # ``index_bytes`` reports the bytes on disk of a collection's HNSW graph
    cluster: bool  # ``cluster_info`` reports shards, replicas and peers
    snapshots: bool  # create, list, restore and download snapshots
    sharding: bool  # ``create_collection`` takes ``shards`` / ``replicas``
    hnsw: bool  # builds a real HNSW index (False: brute force, e.g. qdrant-client's local mode)
    native_fusion: bool = False  # ``search_hybrid``: the engine fuses dense and lexical candidates by RRF


@dataclass
class ComponentHealth:
    """Health of one component for the Stack page and the CLI."""

    component: str  # "vector store", "embedder", "reranker", ...
    mode: str  # "embedded" | "server" | "local" | "none"
    ok: bool
    detail: str = ""
    version: str | None = None
    model: str | None = None
    dimension: int | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    """One chat message: ``role`` is "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass
class ChatResult:
    """One chat completion: the text, token usage as the server reported it, and how long it took."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_ms: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class RunRow:
    """One eval run as stored: what was evaluated (eval set name and content hash, the physical collection,
    the configuration as JSON), its status ("running", "done", "cancelled", "failed") and its summary."""

    run_id: str
    created_at: float
    updated_at: float
    status: str
    set_name: str
    set_hash: str
    collection: str
    total: int
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim of an answer and whether the retrieved contexts support it (the judge's reason)."""

    statement: str
    verdict: bool  # supported by the contexts
    reason: str = ""


# The answer judge's metric names (``JudgeResult.scores`` keys): the judged ones, and the offline judge's,
# whose names end in OFFLINE_METRIC_SUFFIX so that they are never taken for judged scores.
FAITHFULNESS = "faithfulness"
ANSWER_RELEVANCY = "answer_relevancy"
CONTEXT_RECALL = "context_recall"
OFFLINE_METRIC_SUFFIX = "_offline"
ANSWER_SIMILARITY_OFFLINE = "answer_similarity" + OFFLINE_METRIC_SUFFIX
ROUGE_L_OFFLINE = "rouge_l" + OFFLINE_METRIC_SUFFIX
CONTEXT_RECALL_OFFLINE = CONTEXT_RECALL + OFFLINE_METRIC_SUFFIX


@dataclass
class JudgeResult:
    """Scores of one answer from the answer judge.

    ``mode`` is "llm" (a judge model) or "offline" (Ragas' string metrics, no judge); ``scores`` maps each
    metric name to a value in [0, 1], or None when that metric could not be computed (``errors`` then says
    why in one line); ``claims`` holds the faithfulness verdict of each claim (llm mode).
    """

    mode: str
    scores: dict[str, float | None]
    claims: list[ClaimVerdict] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSample:
    """One sample of a Prometheus exposition: ``name`` as exposed (``rag_requests_total``,
    ``rag_request_seconds_bucket``), its labels (a histogram bucket's ``le`` among them) and value."""

    name: str
    labels: dict[str, str]
    value: float


# ---------------------------------------------------------------- annotation records
# What the annotation store keeps and hands back (``services.annotation_store``); the rules that make and
# read them are the domain's (``console.annotation``, which re-exports these from its ``records``).


@dataclass(frozen=True)
class ChunkSpan:
    """Where a chunk's text lies in its source document: characters ``start:end`` of ``doc_id``."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Question:
    """A question to label; ``draft``: generated and not yet accepted by a person."""

    id: str
    question: str
    source: str
    draft: bool
    tags: tuple[str, ...]
    created_at: float
    created_by: str


@dataclass(frozen=True)
class NewQuestion:
    """A question to store: ``norm`` is its dedupe key (a question with the same key is not added again)."""

    id: str
    question: str
    norm: str
    source: str
    draft: bool
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Label:
    """One annotator's relevance (0 no, 1 partly, 2 yes) for one chunk on one question."""

    question_id: str
    annotator: str
    chunk_id: str
    relevance: int
    span: ChunkSpan | None
    updated_at: float


@dataclass(frozen=True)
class Answer:
    """One annotator's reference answer, status (open, done, skipped, flagged) and note on a question."""

    question_id: str
    annotator: str
    reference_answer: str
    status: str
    note: str
    updated_at: float


@dataclass(frozen=True)
class Adjudication:
    """The decided relevance of a chunk on a question (it overrides the annotators' labels)."""

    question_id: str
    chunk_id: str
    relevance: int
    adjudicator: str
    reason: str
    ts: float
    span: ChunkSpan | None


@dataclass(frozen=True)
class Change:
    """One logged change: ``undoes`` names the change an undo reverted; ``question_ids`` it touched."""

    id: int
    ts: float
    actor: str
    action: str
    undoes: int | None
    question_ids: tuple[str, ...]


@dataclass(frozen=True)
class AnnotationSnapshot:
    """The whole annotation workspace read at one instant: every question (drafts too) in the order added,
    and every label, answer, assignment (question id -> annotators) and adjudication on them."""

    questions: list[Question]
    labels: list[Label]
    answers: list[Answer]
    assignments: dict[str, tuple[str, ...]]
    adjudications: list[Adjudication]


@dataclass(frozen=True)
class AuditBreak:
    """Where the audit log stops being what ragdeck wrote: the first bad row (None: the log as a whole, e.g.
    its key or head record) and what is wrong."""

    row: int | None
    problem: str

    def __str__(self) -> str:
        return self.problem if self.row is None else f"audit log entry {self.row}: {self.problem}"
