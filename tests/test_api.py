"""The RAG API in process (FastAPI TestClient) on the real embedded stack with the demo collection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from servers import free_port, readyz_when_warm

from ragdeck.api.app import create_app
from ragdeck.api.runtime import ApiRuntime, build_runtime
from ragdeck.console.online.routing import stable_bucket
from ragdeck.console.settings import Settings

ADMIN = {"Authorization": "Bearer s3cret-test-token"}


@pytest.fixture
def make_client(demo_data_dir: Path, local_embedder, monkeypatch: pytest.MonkeyPatch):
    """Build an API client over the demo data; keyword arguments become settings."""
    runtimes: list[ApiRuntime] = []
    clients: list[TestClient] = []

    def make(**overrides) -> TestClient:
        overrides.setdefault("admin_token", "s3cret-test-token")
        runtime = build_runtime(Settings(**overrides), embedder=local_embedder)
        runtimes.append(runtime)
        client = TestClient(create_app(runtime))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def client(make_client) -> Iterator[TestClient]:
    return make_client()


def metric_value(client: TestClient, name: str, **labels: str) -> float:
    """One sample's value from /metrics (0.0 when the series does not exist yet)."""
    text = client.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        metric, _, label_part = series.partition("{")
        got = ",".join(sorted(label_part.rstrip("}").split(","))) if label_part else ""
        if metric == name and got == want:
            return float(value)
    return 0.0


def test_query_answers_with_cited_contexts_and_timings(client: TestClient) -> None:
    question = "How do I expose TEI metrics to Prometheus?"
    response = client.post("/query", json={"question": question, "user_id": "alice"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["policy"] == "A" and body["routing_reason"] == "control"
    assert body["mode"] == "extractive"  # no LLM configured in this test
    assert body["index_version"] == "rag_chunks_v1"
    assert body["answer"].strip()
    context_ids = {c["chunk_id"] for c in body["contexts"]}
    assert len(context_ids) >= 1
    assert body["citations"], "an answer must cite the contexts it used"
    assert {c["chunk_id"] for c in body["citations"]} <= context_ids
    assert all(isinstance(c["score"], float) for c in body["contexts"])
    assert set(body["timings_ms"]) >= {"retrieval", "rerank", "generation", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["retrieval"] > 0
    assert body["cached"] is False
    assert metric_value(client, "rag_requests_total", policy="A", status="ok") == 1
    assert metric_value(client, "rag_request_seconds_count", policy="A") == 1
    assert metric_value(client, "rag_retrieval_rerank_seconds_count", policy="A") == 1
    assert metric_value(client, "rag_prompt_ctx_tokens_count", policy="A") == 1


def test_same_question_is_served_from_cache_until_the_index_changes(client: TestClient) -> None:
    first = client.post("/query", json={"question": "What is a recording rule?"}).json()
    again = client.post("/query", json={"question": "  what is a RECORDING rule "}).json()
    assert first["cached"] is False and again["cached"] is True
    assert again["answer"] == first["answer"]
    assert again["response_id"] != first["response_id"]
    assert metric_value(client, "rag_cache_hits_total", policy="A") == 1
    assert metric_value(client, "rag_cache_misses_total", policy="A") == 1


def test_a_changed_policy_knob_ends_its_cached_answers(client: TestClient) -> None:
    """The cache key holds every knob of the policy: an ef applied live (Tune page) or another retrieval
    mode is a new answer, not the old one until its TTL."""
    import time

    from ragdeck.services.policy_overrides import PolicyOverrides

    question = {"question": "What is a recording rule?"}
    assert client.post("/query", json=question).json()["cached"] is False
    assert client.post("/query", json=question).json()["cached"] is True
    overrides = PolicyOverrides(Settings().state_db)
    overrides.set("A", "hnsw_ef", 48, actor="test")
    time.sleep(1.1)  # running services re-read overrides every second
    assert client.post("/query", json=question).json()["cached"] is False
    assert client.post("/query", json=question).json()["cached"] is True
    overrides.set("A", "retrieval", "hybrid", actor="test")
    time.sleep(1.1)
    answer = client.post("/query", json=question).json()
    assert answer["cached"] is False and answer["contexts"]


def test_feedback_is_counted_and_kept(client: TestClient, demo_data_dir: Path) -> None:
    answer = client.post("/query", json={"question": "What does the rerank route return?"}).json()
    ok = client.post("/feedback", json={"response_id": answer["response_id"], "vote": "down"})
    assert ok.status_code == 200 and ok.json()["policy"] == "A"
    assert metric_value(client, "rag_feedback_total", policy="A", vote="down") == 1
    with sqlite3.connect(Settings().state_db) as db:
        rows = db.execute("SELECT response_id, policy, vote FROM feedback").fetchall()
    assert rows == [(answer["response_id"], "A", "down")]
    unknown = client.post("/feedback", json={"response_id": "nope", "vote": "up"})
    assert unknown.status_code == 404 and "unknown response_id" in unknown.json()["error"]


BAD_REQUESTS = [
    ("empty question", {"question": ""}, 422, "question"),
    ("blank question", {"question": "   "}, 422, "empty"),
    ("question not a string", {"question": 42}, 422, "question"),
    ("unknown field", {"question": "hi", "colour": "red"}, 422, "colour: unknown field"),
    ("missing question", {"user_id": "u"}, 422, "question"),
    ("unknown policy", {"question": "What is PromQL?", "policy": "Z"}, 400, "unknown policy"),
]


@pytest.mark.parametrize(("case", "body", "status", "words"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_query_gets_a_clear_4xx(client: TestClient, case: str, body, status: int, words: str) -> None:
    response = client.post("/query", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_malformed_json_oversized_and_non_object_bodies(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    broken = client.post("/query", content=b'{"question": "unterminated', headers=headers)
    assert broken.status_code == 400 and "malformed JSON" in broken.json()["error"]
    array = client.post("/query", content=b'["a question"]', headers=headers)
    assert array.status_code == 422 and "JSON object" in array.json()["error"]
    huge = json.dumps({"question": "x" * 100_000}).encode()
    too_big = client.post("/query", content=huge, headers=headers)
    assert too_big.status_code == 413 and "KiB" in too_big.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still applies while reading
        yield b'{"question": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    streamed = client.post("/query", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert metric_value(client, "rag_requests_total", policy="invalid", status="rejected") >= 2


def test_readyz_names_the_failing_component(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    ready = readyz_when_warm(make_client().get)
    assert ready.status_code == 200, ready.text
    assert {c["component"] for c in ready.json()["checks"]} == {"embedder", "vector store", "llm"}

    llm_down = make_client(llm_base_url=f"http://127.0.0.1:{free_port()}/v1", http_retries=0)
    body = readyz_when_warm(llm_down.get)
    assert body.status_code == 503 and body.json()["failed"] == ["llm"]
    assert "llm:" in body.json()["error"]

    store_down = make_client(alias="no_such_alias")
    body = readyz_when_warm(store_down.get)
    assert body.status_code == 503 and body.json()["failed"] == ["vector store"]
    assert "no_such_alias" in body.json()["error"]
    assert make_client().get("/healthz").json() == {"status": "ok"}


def test_admin_routing_needs_the_token_and_routes_users(make_client) -> None:
    disabled = make_client(admin_token="")
    assert disabled.get("/admin/routing").status_code == 403
    client = make_client()
    assert client.get("/admin/routing").status_code == 401
    assert client.get("/admin/routing", headers={"Authorization": "Bearer wrong"}).status_code == 401

    summary = client.put("/admin/routing/weight", json={"policy": "B", "weight": 0.5}, headers=ADMIN)
    assert summary.status_code == 200, summary.text
    assert summary.json()["weights"] == {"A": 0.5, "B": 0.5}
    assert summary.json()["events"][0]["policy"] == "B"
    too_much = client.put("/admin/routing/weight", json={"policy": "B", "weight": 2}, headers=ADMIN)
    assert too_much.status_code == 422 and "weight" in too_much.json()["error"]
    unknown = client.put("/admin/routing/weight", json={"policy": "Q", "weight": 0.1}, headers=ADMIN)
    assert unknown.status_code == 404 and "unknown policy" in unknown.json()["error"]

    users = [f"user-{i}" for i in range(40)]
    for user in users[:10]:
        got = client.get("/admin/routing/assign", params={"user_id": user}, headers=ADMIN).json()["policy"]
        assert got == ("B" if stable_bucket(user) < 0.5 else "A")
    canary_user = next(u for u in users if stable_bucket(u) < 0.5)
    answer = client.post("/query", json={"question": "What is PromQL?", "user_id": canary_user}).json()
    assert answer["policy"] == "B" and answer["routing_reason"] == "canary"
    assert metric_value(client, "rag_policy_weight", policy="B") == 0.5


def test_guard_trips_the_canary_through_the_api(make_client) -> None:
    client = make_client(guard_min_samples=5, guard_p95_ms=0.001, canary_weight=1.0)
    users = [f"guard-user-{i}" for i in range(8)]
    for i, user in enumerate(users):
        question = f"What is scrape interval {i}?"
        body = client.post("/query", json={"question": question, "user_id": user}).json()
        if body["policy"] == "A":  # the guard has set B's weight to 0: everyone is back on control
            break
    else:
        pytest.fail("the guard never tripped")
    assert i == 5  # five canary samples, then the trip, then control
    assert metric_value(client, "rag_guard_trips_total", policy="B") == 1
    summary = client.get("/admin/routing", headers=ADMIN).json()
    assert summary["weights"]["B"] == 0.0
    assert summary["events"][0]["kind"] == "guard_trip"
