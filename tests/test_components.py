"""Component panels and cost: vLLM / TEI / Qdrant figures by their real metric names through Debian's
Prometheus (an exporter speaking their exposition stands in for them), and the cost per 1,000 requests from
the RAG API's token counters against the costs the API itself reported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from openai_fake import run_fake_openai
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from servers import prometheus_server, serve_asgi

from ragdeck.console.answering.costs import PriceTable
from ragdeck.console.slo.components import component_rows, cost_from_samples, cost_per_1000
from ragdeck.services.prometheus import PrometheusReader
from ragdeck.services.rag_api_admin import RagApiAdmin

PRICES = PriceTable.from_mapping({"gpt-x": {"prompt": 0.15, "completion": 0.6}})


def test_cost_per_1000_requests_from_token_rates() -> None:
    rate = cost_per_1000({("gpt-x", "prompt"): 1000.0, ("gpt-x", "completion"): 100.0}, 2.0, PRICES)
    # (1000 * 0.15 + 100 * 0.6) USD per 1M tokens per second = 2.1e-4 USD/s; at 2 requests/s: 0.105 per 1,000
    assert rate.per_1000_requests_usd == pytest.approx(0.105) and rate.known
    unknown = cost_per_1000({("mystery", "prompt"): 10.0}, 1.0, PRICES)
    assert unknown.per_1000_requests_usd == 0.0 and not unknown.known
    assert cost_per_1000({}, 0.0, PRICES).per_1000_requests_usd is None


def component_exporter() -> tuple[FastAPI, dict[str, object]]:
    """An exporter with vLLM's, TEI's and Qdrant's metric names, as their /metrics pages show them."""
    r = CollectorRegistry()
    m: dict[str, object] = {
        "running": Gauge("vllm:num_requests_running", "running", registry=r),
        "waiting": Gauge("vllm:num_requests_waiting", "waiting", registry=r),
        "kv": Gauge("vllm:gpu_cache_usage_perc", "KV cache (pre-V1 name)", registry=r),
        "ttft": Histogram(
            "vllm:time_to_first_token_seconds", "TTFT", registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1)
        ),
        "gen": Counter("vllm:generation_tokens", "generated", registry=r),
        "queue": Gauge("te_queue_size", "TEI queue", registry=r),
        "batch": Histogram("te_batch_next_size", "TEI batch", registry=r, buckets=(1, 2, 4, 8, 16, 32)),
        "tei": Histogram(
            "te_request_duration", "TEI latency", registry=r, buckets=(0.005, 0.01, 0.025, 0.05)
        ),
        "collections": Gauge("collections_total", "Qdrant collections", registry=r),
        "rest": Counter("rest_responses", "Qdrant REST responses", registry=r),
        "rest_avg": Gauge("rest_responses_avg_duration_seconds", "Qdrant REST mean", registry=r),
    }
    app = FastAPI()

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(r).decode())

    return app, m


@pytest.fixture
def prometheus_on_components(tmp_path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    app, m = component_exporter()
    m["running"].set(5)  # type: ignore[attr-defined]
    m["waiting"].set(2)  # type: ignore[attr-defined]
    m["kv"].set(0.42)  # type: ignore[attr-defined]
    m["queue"].set(3)  # type: ignore[attr-defined]
    m["collections"].set(2)  # type: ignore[attr-defined]
    m["rest_avg"].set(0.004)  # type: ignore[attr-defined]
    with (
        serve_asgi(app, "exporter") as url,
        prometheus_server(tmp_path / "prom", [url.removeprefix("http://")], scrape_interval_s=1) as prom,
    ):
        reader = PrometheusReader(prom)
        deadline = time.monotonic() + 30
        while not reader.by_labels("vllm:num_requests_running", ("job",)):
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.2)
        for _ in range(40):  # traffic between scrapes, so rate() has something to see
            m["ttft"].observe(0.2)  # type: ignore[attr-defined]
            m["gen"].inc(25)  # type: ignore[attr-defined]
            m["batch"].observe(8)  # type: ignore[attr-defined]
            m["tei"].observe(0.02)  # type: ignore[attr-defined]
            m["rest"].inc()  # type: ignore[attr-defined]
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while not reader.by_labels("sum by (job) (rate(vllm:generation_tokens_total[5m])) > 0", ("job",)):
            assert time.monotonic() < deadline, "Prometheus never saw the traffic"
            time.sleep(0.3)
        yield prom, m
        reader.close()


@pytest.mark.slow
def test_component_panels_read_the_components_metric_names(prometheus_on_components) -> None:
    prom, _ = prometheus_on_components
    reader = PrometheusReader(prom)
    values = {}
    for component in ("vLLM", "TEI", "Qdrant"):
        for row in component_rows(reader, component):
            values[(component, row["figure"])] = row["value"]
    assert values[("vLLM", "running requests")] == 5 and values[("vLLM", "waiting requests")] == 2
    assert values[("vLLM", "KV-cache usage")] == 42.0  # the pre-V1 name, found through `or`
    assert 100 < values[("vLLM", "time to first token P95")] <= 250  # 0.2 s observations: bucket (0.1, 0.25]
    assert values[("vLLM", "generated tokens / s")] > 0
    assert values[("vLLM", "time per output token P95")] is None  # not exported here: "no series"
    assert values[("TEI", "queue size")] == 3 and values[("TEI", "mean batch size")] == pytest.approx(8)
    assert 10 < values[("TEI", "request latency P95")] <= 25
    assert values[("Qdrant", "collections")] == 2 and values[("Qdrant", "REST mean latency")] == 4.0
    assert values[("Qdrant", "REST requests / s")] > 0
    reader.close()


@pytest.mark.slow
def test_slo_page_shows_the_component_tabs(
    demo_data_dir: Path, prometheus_on_components, monkeypatch
) -> None:
    from pages import open_page

    prom, _ = prometheus_on_components
    monkeypatch.setenv("PROMETHEUS_URL", prom)
    at = open_page("slo")
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["RAG API", "vLLM", "TEI", "Qdrant", "Cost"]
    vllm = next(d.value for d in at.dataframe if "KV-cache usage" in set(d.value.get("figure", [])))
    assert vllm.set_index("figure").loc["KV-cache usage", "value"] == 42.0


@pytest.fixture
def api_with_priced_llm(api_data: Path, local_embedder) -> Iterator[str]:
    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    with run_fake_openai(models=["fake-chat-1"]) as llm:
        settings = Settings(
            data_dir=api_data,
            llm_base_url=llm.url,
            llm_prices={"fake-chat-1": {"prompt": 3.0, "completion": 15.0}},
        )
        runtime = build_runtime(settings, embedder=local_embedder)
        try:
            with serve_asgi(create_app(runtime), "rag-api") as url:
                yield url
        finally:
            runtime.close()


def test_cost_per_1000_requests_equals_what_the_api_reported(api_with_priced_llm: str) -> None:
    costs = []
    with httpx.Client(base_url=api_with_priced_llm, timeout=60) as client:
        for i in range(5):
            body = client.post("/query", json={"question": f"How is a histogram stored? ({i})"}).json()
            assert body["mode"] == "llm" and body["cost_usd"] > 0
            costs.append(body["cost_usd"])
    samples = RagApiAdmin(api_with_priced_llm, None).metrics()
    prices = PriceTable.from_mapping({"fake-chat-1": {"prompt": 3.0, "completion": 15.0}})
    rate = cost_from_samples(samples, prices)
    assert rate.known and rate.per_1000_requests_usd == pytest.approx(
        1000 * sum(costs) / len(costs), rel=1e-9
    )
