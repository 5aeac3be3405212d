"""Where the SLO page's numbers come from (``console.slo.sources``): Prometheus, else the RAG API's /metrics,
else the eval runs alone; never an error for a missing source. Real Prometheus (Debian's) and the real admin
client against a closed port; the eval runs are stored rows."""

from __future__ import annotations

from pathlib import Path

from servers import free_port, prometheus_server

from ragdeck.console.settings import Settings
from ragdeck.console.slo.objectives import SloTargets
from ragdeck.console.slo.sources import read_slos
from ragdeck.console.wiring import build_metrics_query, build_routing_admin
from ragdeck.services.types import RunRow

TARGETS = SloTargets()


def run(run_id: str, collection: str, recall: float) -> RunRow:
    summary = {"metrics": {"recall@10": {"mean": recall, "low": recall, "high": recall, "n": 43}}}
    return RunRow(run_id, 2.0, 2.0, "done", "demo_gold", "ab" * 32, collection, 43, {}, summary)


RUNS = [run("r2", "rag_chunks_v1", 0.9), run("r1", "rag_chunks_v1", 0.5)]  # newest first


def by_name(reading) -> dict:
    return {s.name: s for s in reading.statuses}


def test_without_any_source_the_quality_objectives_still_have_numbers() -> None:
    reading = read_slos(None, lambda: None, TARGETS, RUNS, "rag_chunks_v1")
    statuses = by_name(reading)
    assert reading.kind == "eval runs" and reading.problem is None
    assert statuses["recall@10"].value == 0.9 and statuses["recall@10"].state == "green"
    assert "r2" in statuses["recall@10"].note
    for name in ("availability", "retrieval + rerank P95", "generation P95", "error rate"):
        assert statuses[name].value is None and statuses[name].state == "unknown"
        assert "no metrics source configured" in statuses[name].note
    assert (
        "Canary page" in reading.hint
        and "RAGDECK_API_URL" in reading.hint
        and "PROMETHEUS_URL" in reading.hint
    )


def test_an_api_that_does_not_answer_is_named_and_the_eval_runs_still_shown() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    admin = build_routing_admin(closed, None, timeout_s=2.0)
    reading = read_slos(None, lambda: admin, TARGETS, RUNS, "rag_chunks_v1")
    assert reading.kind == "eval runs" and closed in reading.problem
    assert by_name(reading)["recall@10"].value == 0.9
    assert "the sources above failed" in by_name(reading)["availability"].note


def test_prometheus_without_requests_says_how_to_send_some(tmp_path: Path) -> None:
    with prometheus_server(tmp_path / "prom", [f"127.0.0.1:{free_port()}"]) as url:
        query = build_metrics_query(Settings(prometheus_url=url))
        reading = read_slos(query, lambda: None, TARGETS, RUNS, "rag_chunks_v1", prometheus_shown=url)
    assert reading.kind == "prometheus" and reading.source == f"Prometheus at {url}"
    assert reading.problem is None and "no requests of the RAG API yet" in reading.hint
    assert by_name(reading)["availability"].value is None and by_name(reading)["recall@10"].value == 0.9
    assert "no request has been recorded" in by_name(reading)["retrieval + rerank P95"].note


def test_a_stopped_prometheus_falls_back_and_says_so(tmp_path: Path) -> None:
    with prometheus_server(tmp_path / "prom", ["127.0.0.1:9"]) as url:
        pass  # started, then stopped: its URL now refuses connections
    query = build_metrics_query(Settings(prometheus_url=url))
    reading = read_slos(query, lambda: None, TARGETS, RUNS, "rag_chunks_v1", prometheus_shown=url)
    assert reading.kind == "eval runs" and "Falling back" in reading.problem
    assert by_name(reading)["recall@10"].value == 0.9
