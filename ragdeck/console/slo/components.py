"""Which component to blame: panels of vLLM, TEI, Qdrant and the RAG API by their own metric names, and the
cost per 1,000 requests from the API's token counters and the price table.

Every panel is one PromQL query over the last 5 minutes, grouped by ``job`` (the TEI embedder and reranker
are two jobs exporting the same ``te_*`` names). Where a component renamed a metric across releases both
names are asked for (``or``): vLLM's KV-cache gauge is ``vllm:kv_cache_usage_perc`` in V1 and
``vllm:gpu_cache_usage_perc`` before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragdeck.console.answering.costs import PER_TOKENS, PriceTable, estimate_cost
from ragdeck.console.interfaces import MetricsQuery
from ragdeck.errors import RagdeckError
from ragdeck.services.types import MetricSample


def _p95(histogram: str) -> str:
    return f"histogram_quantile(0.95, sum by (job, le) (rate({histogram}_bucket[5m])))"


def _mean(histogram: str) -> str:
    return f"sum by (job) (rate({histogram}_sum[5m])) / sum by (job) (rate({histogram}_count[5m]))"


@dataclass(frozen=True)
class Panel:
    """One figure of a component: its PromQL (grouped by job), unit and display scale."""

    component: str
    name: str
    promql: str
    unit: str = ""
    scale: float = 1.0


PANELS: tuple[Panel, ...] = (
    Panel("vLLM", "running requests", "sum by (job) (vllm:num_requests_running)"),
    Panel("vLLM", "waiting requests", "sum by (job) (vllm:num_requests_waiting)"),
    Panel(
        "vLLM",
        "KV-cache usage",
        "avg by (job) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)",
        "%",
        100.0,
    ),
    Panel("vLLM", "time to first token P95", _p95("vllm:time_to_first_token_seconds"), "ms", 1000.0),
    Panel("vLLM", "time per output token P95", _p95("vllm:time_per_output_token_seconds"), "ms", 1000.0),
    Panel("vLLM", "generated tokens / s", "sum by (job) (rate(vllm:generation_tokens_total[5m]))", "tok/s"),
    Panel("vLLM", "prompt tokens / s", "sum by (job) (rate(vllm:prompt_tokens_total[5m]))", "tok/s"),
    Panel("TEI", "queue size", "sum by (job) (te_queue_size)"),
    Panel("TEI", "mean batch size", _mean("te_batch_next_size")),
    Panel("TEI", "request latency P95", _p95("te_request_duration"), "ms", 1000.0),
    Panel("TEI", "queue time P95", _p95("te_request_queue_duration"), "ms", 1000.0),
    Panel("Qdrant", "collections", "sum by (job) (collections_total)"),
    Panel("Qdrant", "REST requests / s", "sum by (job) (rate(rest_responses_total[5m]))", "req/s"),
    Panel("Qdrant", "REST mean latency", "avg by (job) (rest_responses_avg_duration_seconds)", "ms", 1000.0),
    Panel("RAG API", "retrieval P95", _p95("rag_retrieval_seconds"), "ms", 1000.0),
    Panel("RAG API", "rerank P95", _p95("rag_rerank_seconds"), "ms", 1000.0),
    Panel("RAG API", "generation P95", _p95("rag_generation_seconds"), "ms", 1000.0),
    Panel(
        "RAG API", "requests / s", 'sum by (job) (rate(rag_requests_total{status=~"ok|error"}[5m]))', "req/s"
    ),
    Panel(
        "RAG API",
        "cache hit ratio",
        "sum by (job) (rate(rag_cache_hits_total[5m])) / (sum by (job) (rate(rag_cache_hits_total[5m])) "
        "+ sum by (job) (rate(rag_cache_misses_total[5m])))",
        "%",
        100.0,
    ),
    Panel(
        "RAG API",
        "no-answer rate",
        "sum by (job) (rate(rag_no_answer_total[5m])) "
        '/ sum by (job) (rate(rag_requests_total{status="ok"}[5m]))',
        "%",
        100.0,
    ),
)
COMPONENTS = ("RAG API", "vLLM", "TEI", "Qdrant")


def component_rows(query: MetricsQuery, component: str) -> list[dict[str, Any]]:
    """One row per (panel, job) of ``component`` with its scaled value; a panel without data says so."""
    rows = []
    for panel in (p for p in PANELS if p.component == component):
        try:
            found = query.by_labels(panel.promql, ("job",))
        except RagdeckError as exc:
            rows.append(
                {"figure": panel.name, "job": "", "value": None, "unit": panel.unit, "note": str(exc)}
            )
            continue
        if not found:
            rows.append({"figure": panel.name, "job": "", "value": None, "unit": panel.unit,
                         "note": "no series: is the component scraped?"})  # fmt: skip
        for (job,), value in sorted(found.items()):
            rows.append(
                {"figure": panel.name, "job": job, "value": round(value * panel.scale, 3), "unit": panel.unit,
                 "note": ""}
            )  # fmt: skip
    return rows


@dataclass(frozen=True)
class CostRate:
    """Cost per 1,000 answered requests over a window, and whether every model had a price."""

    per_1000_requests_usd: float | None
    known: bool
    requests_per_s: float
    tokens_per_s: Mapping[tuple[str, str], float]


def cost_per_1000(
    tokens_per_s: Mapping[tuple[str, str], float], requests_per_s: float, prices: PriceTable
) -> CostRate:
    """USD per 1,000 requests from token rates by (model, kind) and the price table: the tokens a request
    uses on average times their prices. None when no request was answered."""
    by_model: dict[str, list[float]] = {}
    for (model, kind), rate in tokens_per_s.items():
        pair = by_model.setdefault(model, [0.0, 0.0])
        pair[0 if kind == "prompt" else 1] += rate
    usd_per_s, known = 0.0, True
    for model, (prompt, completion) in by_model.items():
        cost = estimate_cost((round(prompt * PER_TOKENS), round(completion * PER_TOKENS)), model, prices)
        usd_per_s += cost.usd / PER_TOKENS
        known = known and cost.known
    if requests_per_s <= 0:
        return CostRate(None, known, 0.0, dict(tokens_per_s))
    return CostRate(1000.0 * usd_per_s / requests_per_s, known, requests_per_s, dict(tokens_per_s))


def cost_from_prometheus(query: MetricsQuery, prices: PriceTable, window: str = "1h") -> CostRate:
    """Cost per 1,000 requests over ``window`` from ``rag_llm_tokens_total`` and ``rag_requests_total``."""
    tokens = query.by_labels(
        f"sum by (model, kind) (rate(rag_llm_tokens_total[{window}]))", ("model", "kind")
    )
    requests = query.by_labels(f'sum(rate(rag_requests_total{{status="ok"}}[{window}]))', ()).get((), 0.0)
    return cost_per_1000(tokens, requests, prices)


def cost_from_samples(samples: Sequence[MetricSample], prices: PriceTable) -> CostRate:
    """Cost per 1,000 requests since the API started, from one scrape of its ``/metrics`` (token and request
    totals stand in for rates: their ratio is the same)."""
    tokens: dict[tuple[str, str], float] = {}
    requests = 0.0
    for s in samples:
        if s.name == "rag_llm_tokens_total":
            key = (s.labels.get("model", ""), s.labels.get("kind", ""))
            tokens[key] = tokens.get(key, 0.0) + s.value
        elif s.name == "rag_requests_total" and s.labels.get("status") == "ok":
            requests += s.value
    return cost_per_1000(tokens, requests, prices)
