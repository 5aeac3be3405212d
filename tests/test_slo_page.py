"""The SLO page through AppTest: Debian's Prometheus scraping the real RAG API under replayed traffic, the
page's P95 against the raw latencies; Prometheus stopped gives a banner; no source at all shows the objectives
eval runs answer and says how to get request metrics.

Tolerance of the P95: a histogram knows each latency only to its bucket, so the page's P95 (PromQL's
``histogram_quantile`` over ``rate``) must lie inside the bucket that holds the observation of rank
ceil(0.95 n) among the raw latencies, which is where PromQL interpolates.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from pathlib import Path

import httpx
import pytest
from pages import open_page
from servers import prometheus_server, serve_asgi

from ragdeck.api.metrics import STAGE_BUCKETS
from ragdeck.console.online.replay import ReplayPlan, run_replay
from ragdeck.services.replay_client import QueryReply

pytestmark = pytest.mark.slow
QUESTIONS = [
    "How do I write a recording rule?",
    "What does the TEI /rerank route return?",
    "How long does Prometheus keep data by default?",
    "What is a histogram bucket?",
]


def bucket_of(seconds: float) -> tuple[float, float]:
    """The (lower, upper] bucket of ``STAGE_BUCKETS`` holding ``seconds``."""
    i = bisect.bisect_left(STAGE_BUCKETS, seconds)
    lower = 0.0 if i == 0 else STAGE_BUCKETS[i - 1]
    return lower, STAGE_BUCKETS[i] if i < len(STAGE_BUCKETS) else math.inf


def test_p95_on_the_page_matches_the_raw_latencies_of_replayed_traffic(
    demo_data_dir: Path, api_data: Path, local_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    runtime = build_runtime(Settings(data_dir=api_data, cache_ttl_s=0.001), embedder=local_embedder)
    raw_s: list[float] = []
    try:
        with (
            serve_asgi(create_app(runtime), "rag-api") as api,
            prometheus_server(tmp_path / "prom", [api.removeprefix("http://")], scrape_interval_s=1) as prom,
        ):
            deadline = time.monotonic() + 30
            while not httpx.get(f"{prom}/api/v1/query", params={"query": "rag_requests_total"}).json()[
                "data"
            ]["result"]:  # a scrape from before the traffic, so rate() sees all of it
                assert time.monotonic() < deadline, "Prometheus never scraped the API"
                time.sleep(0.2)

            client = httpx.AsyncClient(base_url=api, timeout=60)

            async def send(question: str, user: str, policy: str | None) -> QueryReply:
                response = await client.post("/query", json={"question": question, "user_id": user})
                body = response.json()
                timings = body["timings_ms"]
                raw_s.append((timings["retrieval"] + timings.get("rerank", 0.0)) / 1000)
                return QueryReply(response.status_code, body["policy"], body["no_answer"])

            async def replay() -> None:
                try:
                    await run_replay(ReplayPlan(QUESTIONS * 5, qps=4, duration_s=6, users=8), send)
                finally:
                    await client.aclose()

            asyncio.run(replay())
            n = len(raw_s)
            assert n >= 20
            deadline = time.monotonic() + 30
            count_query = "sum(rag_retrieval_rerank_seconds_count)"
            while True:  # until a scrape has every request
                result = httpx.get(f"{prom}/api/v1/query", params={"query": count_query}).json()
                seen = result["data"]["result"]
                if (seen and float(seen[0]["value"][1]) >= n) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            monkeypatch.setenv("PROMETHEUS_URL", prom)
            at = open_page("slo")
            assert not at.exception, at.exception
            card = next(m for m in at.metric if m.label == "retrieval + rerank P95")
            page_p95_s = float(card.value.removesuffix(" ms").replace(",", "")) / 1000
            availability = next(m for m in at.metric if m.label == "availability")
            table = next(d.value for d in at.dataframe if "objective" in d.value.columns)
            thin = [w.value for w in at.warning if "of request history" in w.value]
    finally:
        runtime.close()
    ranked = sorted(raw_s)
    lower, upper = bucket_of(ranked[math.ceil(0.95 * n) - 1])
    # the card rounds to whole milliseconds
    assert lower - 0.0005 <= page_p95_s <= upper + 0.0005, (page_p95_s, lower, upper, ranked[-5:])
    assert availability.value == "100.000%"
    rows = table.set_index("objective")
    assert rows.loc["availability", "state"] == "green" and rows.loc["availability", "burn 1h"] == 0.0
    assert rows.loc["faithfulness", "state"] == "unknown"  # no eval run on the live version yet
    # Seconds of history: every window but perhaps the shortest is longer than the data, and the page says so.
    assert thin and "of request history" in thin[0] and "5m, 30m, 1h, 2h, 6h, 1d, 3d" in thin[0]
    assert "30-day error budget" in thin[0]


def test_prometheus_stopped_gives_a_banner_not_a_traceback(
    demo_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with prometheus_server(tmp_path / "prom", ["127.0.0.1:9"], scrape_interval_s=1) as prom:
        pass  # started, then stopped: its URL now refuses connections
    monkeypatch.setenv("PROMETHEUS_URL", prom)
    at = open_page("slo")
    assert not at.exception, at.exception
    banner = " ".join(e.value for e in at.error)
    assert f"Prometheus at {prom}" in banner and "Falling back" in banner
    # no API either: the objectives eval runs answer, and how to get request metrics, instead of an error
    assert any("Source: eval runs" in c.value for c in at.caption)
    assert any("No request metrics" in i.value and "Canary page" in i.value for i in at.info)
    assert "Traceback" not in banner


def test_without_prometheus_the_page_reads_the_api_and_says_how_to_get_history(demo_data_dir: Path) -> None:
    import ragdeck.ui as ui

    at = open_page("slo")
    assert not at.warning and not at.error
    assert any("No request metrics" in i.value for i in at.info)
    assert next(m for m in at.metric if m.label == "availability").value == "no data"
    ui._hosted_api.clear()
    hosted = ui.start_hosted_api()
    try:
        with httpx.Client(base_url=hosted.url, timeout=60) as client:
            for question in QUESTIONS:
                assert client.post("/query", json={"question": question}).status_code == 200
        at.run()
        assert not at.exception, at.exception
        assert any("PROMETHEUS_URL" in i.value for i in at.info)
        assert next(m for m in at.metric if m.label == "availability").value == "100.000%"
        p95 = next(m for m in at.metric if m.label == "retrieval + rerank P95").value
        assert p95.endswith(" ms") and float(p95.removesuffix(" ms").replace(",", "")) > 0
    finally:
        hosted.stop()
        ui._hosted_api.clear()
