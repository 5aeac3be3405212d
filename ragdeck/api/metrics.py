"""The RAG API's Prometheus metrics (one registry per app, so tests can build several apps in one process).

Names and labels are a contract with ``monitoring/`` (recording rules, alerts, the Grafana dashboard).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)
TOKEN_BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


class ApiMetrics:
    """Every metric the API exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.retrieval = Histogram(
            "rag_retrieval_seconds", "Query embedding plus vector search.", ["policy"],
            buckets=STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.rerank = Histogram(
            "rag_rerank_seconds", "Reranking the candidates.", ["policy"], buckets=STAGE_BUCKETS, registry=r
        )
        self.retrieval_rerank = Histogram(
            "rag_retrieval_rerank_seconds", "Retrieval and reranking together (the latency SLO's subject).",
            ["policy"], buckets=STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.generation = Histogram(
            "rag_generation_seconds", "Answer generation.", ["policy"], buckets=SLOW_BUCKETS, registry=r
        )
        self.request = Histogram(
            "rag_request_seconds", "A whole /query request.", ["policy"], buckets=SLOW_BUCKETS, registry=r
        )
        self.requests = Counter(
            "rag_requests", "Finished /query requests by outcome: ok, error (5xx) or rejected (4xx).",
            ["policy", "status"], registry=r,
        )  # fmt: skip
        self.prompt_ctx_tokens = Histogram(
            "rag_prompt_ctx_tokens", "Estimated tokens of context put into the prompt.", ["policy"],
            buckets=TOKEN_BUCKETS, registry=r,
        )  # fmt: skip
        self.no_answer = Counter(
            "rag_no_answer", "Answers saying the context is insufficient.", ["policy"], registry=r
        )
        self.feedback = Counter("rag_feedback", "Thumbs up/down by policy.", ["policy", "vote"], registry=r)
        self.cache_hits = Counter("rag_cache_hits", "Answers served from the cache.", ["policy"], registry=r)
        self.cache_misses = Counter("rag_cache_misses", "Cache lookups that missed.", ["policy"], registry=r)
        self.guard_trips = Counter(
            "rag_guard_trips", "Times the canary guard set a policy's weight to 0.", ["policy"], registry=r
        )
        self.llm_tokens = Counter(
            "rag_llm_tokens", "LLM tokens by policy, model and kind (prompt / completion): the cost's base.",
            ["policy", "model", "kind"], registry=r,
        )  # fmt: skip
        self.policy_weight = Gauge(
            "rag_policy_weight", "Share of users routed to the policy (0..1).", ["policy"], registry=r
        )
        self.answers = Counter(
            "rag_answers", "Answers by how they were made: mode llm or extractive; fallback true when an "
            "extractive answer stood in for an LLM that was down.", ["policy", "mode", "fallback"],
            registry=r,
        )  # fmt: skip

    def watch_llm(self, status: Callable[[], Any] | None) -> None:
        """Export the supervised local LLM's restarts and state (``rag_llm_restarts_total``, ``rag_llm_up``)
        from ``status()`` (an ``LlmServerStatus`` or None) at every scrape."""
        if status is not None and not getattr(self, "_llm_watched", False):
            self.registry.register(_LlmServerCollector(status))
            self._llm_watched = True

    def prime(self, policies: list[str]) -> None:
        """Create every counter and histogram series at 0 for the known policies, so ``rate()`` sees the
        first event."""
        for policy in policies:
            for status in ("ok", "error", "rejected"):
                self.requests.labels(policy, status)
            for vote in ("up", "down"):
                self.feedback.labels(policy, vote)
            for counter in (self.no_answer, self.cache_hits, self.cache_misses, self.guard_trips):
                counter.labels(policy)
            for mode, fallback in (("llm", "false"), ("extractive", "false"), ("extractive", "true")):
                self.answers.labels(policy, mode, fallback)
            stages = (self.retrieval, self.rerank, self.retrieval_rerank, self.generation, self.request)
            for histogram in stages:
                histogram.labels(policy)  # zero buckets: rate() then sees the first observations too

    def observe_answer(
        self,
        policy: str,
        timings_ms: dict[str, float],
        ctx_tokens: int,
        cached: bool,
        *,
        model: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        fallback: bool = False,
    ) -> None:
        """Stage histograms and LLM tokens for one answered question (a cached answer only counts the hit)."""
        mode = "llm" if model else "extractive"
        self.answers.labels(policy, mode, "true" if fallback and not model else "false").inc()
        if cached:
            self.cache_hits.labels(policy).inc()
            return
        self.cache_misses.labels(policy).inc()
        if model:
            self.llm_tokens.labels(policy, model, "prompt").inc(max(0, prompt_tokens))
            self.llm_tokens.labels(policy, model, "completion").inc(max(0, completion_tokens))
        retrieval = timings_ms.get("retrieval", 0.0) / 1000
        rerank = timings_ms.get("rerank", 0.0) / 1000
        self.retrieval.labels(policy).observe(retrieval)
        self.rerank.labels(policy).observe(rerank)
        self.retrieval_rerank.labels(policy).observe(retrieval + rerank)
        self.generation.labels(policy).observe(timings_ms.get("generation", 0.0) / 1000)
        self.prompt_ctx_tokens.labels(policy).observe(ctx_tokens)


class _LlmServerCollector:
    """Reads the supervisor's status at scrape time (it may live in another process: the console's)."""

    def __init__(self, status: Callable[[], Any]) -> None:
        self._status = status

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            status = self._status()
        except Exception:  # a scrape never fails for want of the status
            status = None
        if status is None:
            return
        restarts = CounterMetricFamily(
            "rag_llm_restarts", "Restarts of the supervised local llama.cpp server (after a crash or hang)."
        )
        restarts.add_metric([], float(status.restarts))
        yield restarts
        up = GaugeMetricFamily("rag_llm_up", "1 while the supervised local llama.cpp server answers, else 0.")
        up.add_metric([], 1.0 if status.ready else 0.0)
        yield up
