"""Builds the adapters from settings: the one place that decides embedded vs server per component."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragdeck.console.answering.cache import AnswerCache
from ragdeck.console.answering.ports import KeyValueStore, LlmServerState, LlmStatusSource
from ragdeck.console.answering.service import RagService
from ragdeck.console.audit import AuditLog
from ragdeck.console.evaluation.ports import AnswerJudge, EvalRunStore
from ragdeck.console.hnsw.ports import SweepLog
from ragdeck.console.index_ops.ports import IndexRegistry
from ragdeck.console.ingest.ports import IngestJournal
from ragdeck.console.interfaces import ChatModel, Embedder, FeedbackLog, MetricsQuery, VectorStore
from ragdeck.console.online.guard import CanaryGuard, GuardThresholds
from ragdeck.console.online.ports import RoutingAdmin, RoutingState
from ragdeck.console.online.routing import Router
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import LivePolicies, Policy, load_policies
from ragdeck.console.retrieval.ports import PolicyOverrideStore, Reranker
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.services.redact import redact_health, remember_secrets
from ragdeck.services.types import ComponentHealth

if TYPE_CHECKING:
    from ragdeck.console.annotation.ports import AnnotationRepository
    from ragdeck.console.evaluation.runner import EvalRunner
    from ragdeck.console.index_ops.operations import IndexOps
    from ragdeck.console.index_ops.records import IndexVersion
    from ragdeck.console.online.drafts import PolicyDrafts
    from ragdeck.services.study_files import StudyFiles


def build_store(settings: Settings) -> VectorStore:
    """Qdrant server when ``QDRANT_URL`` is set, else the embedded engine under the data directory."""
    if settings.qdrant_url:
        from ragdeck.services.qdrant_server import QdrantServerStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantServerStore.connect(
            settings.qdrant_url, key, settings.http_timeout_s, meta_dir=settings.data_dir / "qdrant-server"
        )
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    return EmbeddedQdrantStore(settings.qdrant_dir)


def build_embedder(settings: Settings) -> Embedder:
    """TEI when ``TEI_URL`` is set, else sentence-transformers in process (packaged MiniLM by default)."""
    if settings.tei_url:
        from ragdeck.services.embedders import TeiEmbedder
        from ragdeck.services.http import RetryPolicy

        return TeiEmbedder(
            settings.tei_url,
            timeout_s=settings.http_timeout_s,
            retry=RetryPolicy.from_retries(settings.http_retries),
            batch_size=settings.embed_batch_size,
            batching=settings.embed_batching,
            batch_wait_ms=settings.embed_batch_wait_ms,
        )
    from ragdeck.services.embedders import LocalEmbedder

    return LocalEmbedder(
        settings.embedding_model,
        device=settings.embed_device,
        batch_size=settings.embed_batch_size,
        threads=settings.torch_threads,
        batching=settings.embed_batching,
        batch_wait_ms=settings.embed_batch_wait_ms,
        max_batch=settings.embed_max_batch,
        backend=settings.embed_backend,
        onnx_dir=settings.embed_onnx_dir,
    )


def build_reranker(settings: Settings) -> Reranker | None:
    """TEI /rerank when ``TEI_RERANK_URL`` is set, a local CrossEncoder directory when named, else none."""
    if settings.tei_rerank_url:
        from ragdeck.services.http import RetryPolicy
        from ragdeck.services.rerankers import TeiReranker

        return TeiReranker(
            settings.tei_rerank_url,
            timeout_s=settings.http_timeout_s,
            retry=RetryPolicy.from_retries(settings.http_retries),
        )
    if settings.reranker_model_dir:
        from ragdeck.services.rerankers import CrossEncoderReranker

        return CrossEncoderReranker(
            settings.reranker_model_dir,
            device=settings.embed_device,
            threads=settings.torch_threads,
            batching=settings.embed_batching,
            batch_wait_ms=settings.embed_batch_wait_ms,
        )
    return None


@dataclass
class Stack:
    """The adapters one process works with. The embedder loads on first use (it takes seconds)."""

    settings: Settings
    store: VectorStore
    reranker: Reranker | None
    chat_model: ChatModel | None = None  # the default LLM client; None = extractive answers
    llm_status: LlmStatusSource | None = None  # the supervised local LLM's status (see llm_supervision)
    _embedder: Embedder | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def embedder(self) -> Embedder:
        """The embedder, built on first use."""
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.settings)
            return self._embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Use an embedder built elsewhere (an already loaded model) instead of building one."""
        with self._lock:
            self._embedder = embedder

    def health(self) -> list[ComponentHealth]:
        """Health of every component, for the Stack page and ``ragdeck stack`` (details and endpoints
        redacted: no password, token or key)."""
        return [redact_health(row) for row in self._health()]

    def _health(self) -> list[ComponentHealth]:
        rows = [self.store.health(), self.embedder.health()]
        if self.chat_model is not None:
            rows.append(self._llm_health())
        else:
            rows.append(
                ComponentHealth(
                    component="llm",
                    mode="none",
                    ok=True,
                    detail="no LLM configured: answers are extractive (the best supporting sentences); "
                    "set LLM_BASE_URL or run `ragdeck llm serve`",
                )
            )
        if self.reranker is not None:
            rows.append(self.reranker.health())
        else:
            rows.append(
                ComponentHealth(
                    component="reranker",
                    mode="none",
                    ok=True,
                    detail="no reranker configured: results keep vector order "
                    "(set TEI_RERANK_URL or RAGDECK_RERANKER_MODEL_DIR)",
                )
            )
        return rows

    def _llm_health(self) -> ComponentHealth:
        """The LLM's health; for the supervised local server, what its supervisor saw (crashed with signal
        N, restarting, gave up after N tries, restarted N times) and the log's last lines."""
        assert self.chat_model is not None
        status = self.llm_status() if self.llm_status is not None else None
        if status is None:
            return self.chat_model.health()
        if not status.ready:
            tail = status.last_failure.log_tail if status.last_failure else ""
            return ComponentHealth(
                component="llm",
                mode="local",
                ok=False,
                detail=status.summary() + (f". Log tail: {tail}" if tail else ""),
                model=status.model,
                endpoint=status.url,
            )
        health = self.chat_model.health()
        health.mode = "local"
        health.detail = f"{health.detail}; {status.summary()}" if health.detail else status.summary()
        return health

    def close(self) -> None:
        """Release the vector store's files and connections."""
        close_llm = getattr(self.chat_model, "close", None)
        if close_llm is not None:
            close_llm()
        self.store.close()


def build_stack(settings: Settings | None = None) -> Stack:
    """All adapters for one process, from settings (``Settings()`` when not given). The settings' secrets
    are remembered for redaction (``services.redact``) before any adapter can report an error."""
    settings = settings or Settings()
    remember_secrets(settings.secret_values())
    return Stack(
        settings=settings,
        store=build_store(settings),
        reranker=build_reranker(settings),
        chat_model=build_chat_model(settings),
        llm_status=llm_supervision(settings),
    )


def build_chat_model(settings: Settings, model: str | None = None) -> ChatModel | None:
    """An OpenAI-compatible chat client when ``LLM_BASE_URL`` is set (vLLM, llama.cpp), else None
    (the extractive answerer). ``model`` overrides ``settings.llm_model`` (a policy's own model)."""
    if not settings.llm_base_url:
        return None
    from ragdeck.services.http import RetryPolicy
    from ragdeck.services.llm import OpenAIChatModel

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAIChatModel(
        settings.llm_base_url,
        model=model or settings.llm_model,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
        retry=RetryPolicy.from_retries(settings.http_retries),
    )


def build_chat_models(
    settings: Settings, policies: Mapping[str, Policy], default: ChatModel | None
) -> dict[str, ChatModel | None]:
    """One chat client per policy; policies without a model of their own share ``default``."""
    models: dict[str, ChatModel | None] = {}
    for name, policy in policies.items():
        models[name] = build_chat_model(settings, policy.model) if policy.model and default else default
    return models


def cost_estimator(settings: Settings) -> Callable[[str, int, int], float | None]:
    """``(model, prompt_tokens, completion_tokens) -> USD`` from the price table (None if unknown)."""
    from ragdeck.console.answering.costs import PriceTable, estimate_cost

    table = PriceTable.from_settings(settings)

    def cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        estimate = estimate_cost((prompt_tokens, completion_tokens), model, table)
        return estimate.usd if estimate.known else None

    return cost


def build_routing_state(settings: Settings) -> RoutingState:
    """Redis when ``REDIS_URL`` is set (every replica shares it), else SQLite in the data directory."""
    from ragdeck.services.routing_state import open_routing_state

    return open_routing_state(settings.redis_url, settings.state_db)


def build_kv(settings: Settings, prefix: str) -> KeyValueStore:
    """Redis when ``REDIS_URL`` is set, else an in-process store."""
    if settings.redis_url:
        from ragdeck.services.kv import RedisKV

        return RedisKV(settings.redis_url, prefix=prefix)
    from ragdeck.services.kv import MemoryKV

    return MemoryKV(max_entries=settings.cache_max_entries)


def build_response_store(settings: Settings) -> KeyValueStore:
    """Where issued response ids wait for feedback (``RESPONSE_TTL_S``): Redis when ``REDIS_URL`` is set
    (every replica shares it), else the SQLite state database; both outlive a restart of the API."""
    if settings.redis_url:
        return build_kv(settings, "ragdeck:responses:")
    from ragdeck.services.kv import SqliteKV

    return SqliteKV(settings.state_db, prefix="ragdeck:responses:")


def build_guard(settings: Settings, state: RoutingState) -> CanaryGuard:
    """The canary guard; it judges from Prometheus (every replica) when ``PROMETHEUS_URL`` is set."""
    source = None
    if settings.prometheus_url:
        from ragdeck.services.prometheus import PrometheusReader

        # One short try: the guard runs on the request path and must not stall it when Prometheus is down.
        source = PrometheusReader(settings.prometheus_url, timeout_s=1.0, retries=0)
    thresholds = GuardThresholds(
        p95_ms=settings.guard_p95_ms,
        error_rate=settings.guard_error_rate,
        min_samples=settings.guard_min_samples,
        window_s=settings.guard_window_s,
    )
    return CanaryGuard(state, thresholds, policy=settings.canary_policy, source=source)


def build_rag_service(settings: Settings, stack: Stack) -> tuple[RagService, RoutingState]:
    """The answering service over ``stack``: policies (run-time overrides picked up live), routing, guard,
    cache; and the shared routing state."""
    policies = LivePolicies(settings, lambda: read_policy_overrides(settings))
    state = build_routing_state(settings)
    router = Router(
        settings.control_policy, settings.canary_policy, state, settings.canary_weight, known=policies
    )
    service = RagService(
        retriever=Retriever(stack.store, stack.embedder, stack.reranker),
        chat_models=build_chat_models(settings, policies, stack.chat_model),
        policies=policies,  # type: ignore[arg-type]  # a read-only mapping that follows the overrides
        router=router,
        guard=build_guard(settings, state),
        cache=AnswerCache(build_kv(settings, "ragdeck:cache:"), ttl_s=settings.cache_ttl_s),
        responses=build_response_store(settings),
        cost_of=cost_estimator(settings),
        max_context_chars=settings.llm_context_chars,
        fallback_default=fallback_default(settings, stack.llm_status),
        llm_status=stack.llm_status,
    )
    return service, state


def llm_supervision(settings: Settings) -> LlmStatusSource | None:
    """The status of the supervised local llama.cpp server that ``LLM_BASE_URL`` points at, read from its
    supervisor's status file (possibly another process's: the console's) at most every 0.25 s; the
    callable returns None when no live supervisor serves that URL. None when LLM_BASE_URL is unset."""
    if not settings.llm_base_url:
        return None
    from ragdeck.services.llama_supervisor import read_status, status_file
    from ragdeck.services.llm import openai_base_url

    path, url = status_file(settings.data_dir), openai_base_url(settings.llm_base_url)
    lock = threading.Lock()
    cache: dict[str, Any] = {"at": float("-inf"), "status": None}

    def status() -> LlmServerState | None:
        with lock:
            now = time.monotonic()
            if now - cache["at"] > 0.25:
                cache["status"], cache["at"] = read_status(path, url), now
            return cache["status"]

    return status


def fallback_default(settings: Settings, llm_status: LlmStatusSource | None) -> bool:
    """``llm_fallback`` when set; else on when the LLM is the local one ragdeck supervises, off for an
    external server (whose outage should be seen as 503s, not hidden)."""
    if settings.llm_fallback is not None:
        return settings.llm_fallback
    return llm_status is not None and llm_status() is not None


def build_feedback_log(settings: Settings) -> FeedbackLog:
    """Thumbs up/down on answers (the Ask page, the API's ``/feedback``): in Redis when ``REDIS_URL`` is set
    (every replica sees every vote; each expires after ``RESPONSE_TTL_S``), else the SQLite state database."""
    if settings.redis_url:
        from ragdeck.console.answering.service import RESPONSE_TTL_S
        from ragdeck.services.feedback_redis import RedisFeedbackLog

        return RedisFeedbackLog(settings.redis_url, retention_s=RESPONSE_TTL_S)
    from ragdeck.services.feedback_log import SqliteFeedbackLog

    return SqliteFeedbackLog(settings.state_db)


def build_annotation_store(settings: Settings) -> AnnotationRepository:
    """Questions, labels, answers and adjudications in the SQLite state database of the data directory."""
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    return SqliteAnnotationStore(settings.state_db)


def read_policy_overrides(settings: Settings) -> dict[str, dict[str, Any]]:
    """The run-time policy overrides in the state database (read only: a missing database has none)."""
    from ragdeck.services.policy_overrides import read_overrides

    return read_overrides(settings.state_db)


def build_policies(settings: Settings) -> dict[str, Policy]:
    """The policies of the settings with the run-time overrides of the state database applied."""
    return load_policies(settings, read_policy_overrides(settings))


def build_policy_overrides(settings: Settings) -> PolicyOverrideStore:
    """Run-time policy overrides (e.g. a policy's default ef applied from the Tune page) in the SQLite state
    database of the data directory, where every process's policy loader reads them."""
    from ragdeck.services.policy_overrides import PolicyOverrides

    return PolicyOverrides(settings.state_db)


def build_sweep_log(settings: Settings) -> SweepLog:
    """HNSW sweeps and each measured configuration in the SQLite state database of the data directory, so
    a partial sweep can be resumed after a restart."""
    from ragdeck.services.hnsw_sweeps import SqliteSweepLog

    return SqliteSweepLog(settings.state_db)


def build_eval_store(settings: Settings) -> EvalRunStore:
    """Eval runs and results in the SQLite state database of the data directory."""
    from ragdeck.services.eval_store import EvalStore

    return EvalStore(settings.state_db)


def build_eval_runner(
    settings: Settings, stack: Stack, *, with_answers: bool = False, policy: Policy | None = None
) -> EvalRunner:
    """An eval runner over ``stack``; with answers it also gets the LLM (the policy's own model when it
    names one; None = the extractive answerer) and a judge (the LLM judge when one is configured, else
    Ragas' offline metrics)."""
    from ragdeck.console.evaluation.runner import EvalDeps, EvalRunner

    judge = build_judge(settings, stack.embedder) if with_answers else None
    chat_model = stack.chat_model
    if with_answers and policy is not None and policy.model and stack.chat_model is not None:
        chat_model = build_chat_model(settings, policy.model)
    deps = EvalDeps(
        retriever=Retriever(stack.store, stack.embedder, stack.reranker),
        runs=build_eval_store(settings),
        chat_model=chat_model,
        judge=judge,
        max_context_chars=settings.llm_context_chars,
    )
    return EvalRunner(deps)


def build_eval_runner_for(stack: Stack, embedder: Embedder) -> EvalRunner:
    """An eval runner over ``stack`` that embeds queries with ``embedder`` (retrieval only): a gate's runner
    for a version embedded with another model than the serving one."""
    if embedder is stack.embedder:
        return build_eval_runner(stack.settings, stack)
    other = Stack(settings=stack.settings, store=stack.store, reranker=stack.reranker)
    other.use_embedder(embedder)
    return build_eval_runner(stack.settings, other)


@functools.lru_cache(maxsize=8)
def _index_registry_at(path: Path) -> IndexRegistry:
    from ragdeck.services.index_registry import SqliteIndexRegistry

    return SqliteIndexRegistry(path)


def build_index_registry(settings: Settings) -> IndexRegistry:
    """Index versions and alias moves in the SQLite state database (one per database per process)."""
    return _index_registry_at(settings.state_db)


@functools.lru_cache(maxsize=8)
def _audit_log_at(path: Path, key_file: Path) -> AuditLog:
    from ragdeck.services.audit_log import SqliteAuditLog

    return SqliteAuditLog(path, key_file=key_file)


def build_audit_log(settings: Settings) -> AuditLog:
    """The audit log in the state database, sealed with the key at ``settings.audit_key_path`` (one per
    database per process)."""
    return _audit_log_at(settings.state_db, settings.audit_key_path)


def build_policy_drafts(settings: Settings) -> PolicyDrafts:
    """Draft policies from studies in the SQLite state database, audited in the audit log (a retrieval
    study saves one with ``save_draft``; the Canary page tries one as the canary)."""
    from ragdeck.console.online.drafts import PolicyDrafts
    from ragdeck.services.policy_drafts import SqlitePolicyDrafts

    return PolicyDrafts(SqlitePolicyDrafts(settings.state_db), build_audit_log(settings))


def build_ingest_journal(settings: Settings) -> IngestJournal:
    """The markers of ingests in progress, under the data directory (``<data_dir>/ingests``)."""
    from ragdeck.services.ingest_markers import IngestMarkers

    return IngestMarkers(settings.data_dir / "ingests")


def build_index_ops(settings: Settings, stack: Stack) -> IndexOps:
    """Index operations on the serving alias of ``stack``'s store, with the registry and the audit log in
    the state database; a swap checks the serving model (loaded only when a swap asks)."""
    from ragdeck.console.index_ops.operations import IndexOps

    return IndexOps(
        stack.store,
        build_index_registry(settings),
        alias=settings.alias,
        log=build_audit_log(settings),
        serving_model=lambda: stack.embedder.model_name,
    )


def build_version_embedder(stack: Stack, version: IndexVersion) -> Embedder:
    """The embedder ``version`` was built with: the serving one when the model names match, else the local
    model from the directory recorded at rebuild."""
    model = version.spec.get("embedding_model")
    if not model or model == stack.embedder.model_name:
        return stack.embedder
    path = version.spec.get("embedding_path")
    if not path or not Path(path).is_dir():
        raise InputError(
            f"'{version.collection}' was embedded with {model!r}, whose model directory "
            f"({path or 'unknown'}) is not here: evaluate it where that model is, or rebuild it with the "
            "serving model"
        )
    return build_embedder(stack.settings.model_copy(update={"embedding_model": path, "tei_url": None}))


def build_judge(settings: Settings, embedder: Embedder | None = None) -> AnswerJudge:
    """The answer judge of eval runs: Ragas with a judge model at ``JUDGE_BASE_URL`` (else the RAG LLM at
    ``LLM_BASE_URL``) unless ``judge_enabled`` is off, else Ragas' offline string metrics. The model is
    ``judge_model``, else ``llm_model`` when judging on the RAG LLM's server, else the server's first model
    (asked on first use, as the chat client does). ``embedder`` enables answer relevancy."""
    from ragdeck.services.judge import OfflineJudge, RagasJudge

    base_url = settings.judge_base_url or settings.llm_base_url
    if not settings.judge_enabled or not base_url:
        return OfflineJudge()
    from ragdeck.services.http import RetryPolicy
    from ragdeck.services.llm import OpenAIChatModel, openai_base_url

    own_server = settings.judge_base_url is not None and settings.judge_base_url != settings.llm_base_url
    setting = "JUDGE_BASE_URL" if own_server else "LLM_BASE_URL"
    secret = settings.judge_api_key if own_server else settings.llm_api_key
    key = secret.get_secret_value() if secret else None
    base_url = openai_base_url(base_url, setting)
    name = settings.judge_model or (None if own_server else settings.llm_model)

    def first_served_model() -> str:
        chat = OpenAIChatModel(
            base_url,
            api_key=key,
            timeout_s=settings.http_timeout_s,
            retry=RetryPolicy.from_retries(settings.http_retries),
            setting=setting,
        )
        with chat:
            return chat.resolve_model()

    def embed(texts: list[str]) -> list[list[float]]:
        assert embedder is not None
        return embedder.embed_documents(texts).tolist()

    embed_fn = embed if embedder is not None else None
    return RagasJudge(
        base_url,
        name or first_served_model,
        key,
        settings.judge_timeout_s,
        embed_fn,
        per_claim=settings.judge_per_claim,
    )


def build_routing_admin(url: str, token: str | None, timeout_s: float = 5.0) -> RoutingAdmin:
    """The RAG API's admin routes and ``/metrics`` at ``url`` (the Canary page's one way to the API)."""
    from ragdeck.services.rag_api_admin import RagApiAdmin

    return RagApiAdmin(url, token, timeout_s=timeout_s)


def build_metrics_query(settings: Settings) -> MetricsQuery | None:
    """PromQL reads from ``PROMETHEUS_URL``; None when it is not set."""
    if not settings.prometheus_url:
        return None
    from ragdeck.services.prometheus import PrometheusReader

    return PrometheusReader(settings.prometheus_url, timeout_s=5.0)


def build_replay_sender(target: str, max_in_flight: int, timeout_s: float = 30.0) -> Any:
    """``POST {target}/query`` as a replay sender (an async client: build it inside the replay's loop)."""
    from ragdeck.services.replay_client import RagApiClient

    return RagApiClient(target, timeout_s=timeout_s, max_connections=max_in_flight)


def build_study_files(settings: Settings) -> StudyFiles:
    """Retrieval studies saved as JSON under ``<data_dir>/studies`` (resume, the Tune page, reports)."""
    from ragdeck.services.study_files import StudyFiles

    return StudyFiles(settings.data_dir / "studies")
