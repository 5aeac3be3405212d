"""The RAG API with real neighbours: the llama.cpp server, Debian's Prometheus and redis-server, and two
API processes behind one Redis. Slow; CI runs them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from openai_fake import run_fake_openai
from prometheus_api_client import PrometheusConnect
from servers import api_serve, prometheus_server, readyz_when_warm, serve_asgi

from ragdeck.api.app import create_app
from ragdeck.api.metrics import SLOW_BUCKETS
from ragdeck.api.runtime import build_runtime
from ragdeck.console.online.routing import stable_bucket
from ragdeck.console.settings import Settings
from ragdeck.services.feedback_redis import RedisFeedbackLog

pytestmark = pytest.mark.slow
TOKEN = "live-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def test_query_end_to_end_with_the_real_local_llm(demo_data_dir: Path, local_embedder, llama_server) -> None:
    settings = Settings(llm_base_url=llama_server.base_url, llm_max_tokens=64)
    runtime = build_runtime(settings, embedder=local_embedder)
    try:
        with TestClient(create_app(runtime)) as client:
            ready = readyz_when_warm(client.get)
            assert ready.status_code == 200, ready.text
            question = "Which HTTP route of text-embeddings-inference returns embeddings?"
            response = client.post("/query", json={"question": question, "user_id": "u-1"})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["mode"] == "llm" and body["model"] == llama_server.model_alias
            assert body["answer"].strip()
            assert body["tokens"]["prompt"] > 100 and body["tokens"]["completion"] > 0
            assert body["timings_ms"]["generation"] > 0
            assert body["no_answer"] or body["citations"], "a real answer cites its contexts"
            if body["citations"]:
                assert {c["chunk_id"] for c in body["citations"]} <= {c["chunk_id"] for c in body["contexts"]}
            metrics = client.get("/metrics").text
            assert 'rag_generation_seconds_count{policy="A"} 1.0' in metrics
    finally:
        runtime.close()


def bucket_of(seconds: float) -> tuple[float, float]:
    """The histogram bucket (lower, upper] that holds ``seconds``."""
    lower = 0.0
    for upper in SLOW_BUCKETS:
        if seconds <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


def test_prometheus_scrapes_the_api_and_its_p95_matches_what_was_sent(
    demo_data_dir: Path, local_embedder, tmp_path: Path
) -> None:
    """20 answers take ~0.12 s to generate and 20 take ~0.7 s: PromQL's P95 must fall in 0.7's bucket."""
    with run_fake_openai(models=["fake-chat-1"]) as llm:
        runtime = build_runtime(Settings(llm_base_url=llm.url, cache_ttl_s=1), embedder=local_embedder)
        try:
            with serve_asgi(create_app(runtime), "rag-api") as api:
                target = api.removeprefix("http://")
                with prometheus_server(tmp_path / "prom", [target], scrape_interval_s=1) as prom_url:
                    client = httpx.Client(base_url=api, timeout=60)
                    sent = []
                    for i, delay in enumerate([0.12] * 20 + [0.7] * 20):
                        llm.state.delay_s = delay
                        t0 = time.perf_counter()
                        answer = client.post("/query", json={"question": f"What is a scrape target? ({i})"})
                        sent.append(time.perf_counter() - t0)
                        assert answer.status_code == 200, answer.text
                        assert answer.json()["mode"] == "llm"
                    prom = PrometheusConnect(url=prom_url, disable_ssl=True)
                    query = (
                        "histogram_quantile(0.95, sum by (le) "
                        '(increase(rag_generation_seconds_bucket{policy="A"}[5m])))'
                    )
                    count_query = 'sum(increase(rag_generation_seconds_count{policy="A"}[5m]))'
                    deadline = time.monotonic() + 30
                    while True:  # wait for a scrape that has seen all 40 requests
                        result = prom.custom_query(count_query)
                        if (result and float(result[0]["value"][1]) >= 39.5) or time.monotonic() > deadline:
                            break
                        time.sleep(0.5)
                    p95 = float(prom.custom_query(query)[0]["value"][1])
                    request_p95 = float(
                        prom.custom_query(
                            "histogram_quantile(0.95, sum by (le) (increase(rag_request_seconds_bucket[5m])))"
                        )[0]["value"][1]
                    )
                    client.close()
        finally:
            runtime.close()
    lower, upper = bucket_of(0.7)
    assert lower < p95 <= upper, f"PromQL P95 {p95:.3f} s is not in the bucket of the 0.7 s answers"
    true_request_p95 = sorted(sent)[int(0.95 * len(sent)) - 1]
    lower, upper = bucket_of(true_request_p95)
    assert lower < request_p95 <= upper, (request_p95, true_request_p95)


@contextmanager
def api_process(data_dir: Path, redis_url: str, log: Path) -> Iterator[str]:
    """``ragdeck api serve`` as its own process over ``data_dir``, sharing ``redis_url``."""
    env = {
        **os.environ,
        "RAGDECK_DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "RAGDECK_ADMIN_TOKEN": TOKEN,
        "RAGDECK_CANARY_WEIGHT": "0",
    }
    env.pop("LLM_BASE_URL", None)
    log.unlink(missing_ok=True)  # one log per process
    with api_serve(env, log, timeout_s=120) as url:
        yield url


def test_two_api_processes_sharing_redis_route_alike(
    demo_snapshot: Path, redis_url: str, tmp_path: Path
) -> None:
    # Each process owns its embedded store (one process per data dir); routing state is shared in Redis.
    dirs = []
    for name in ("one", "two"):
        target = tmp_path / name
        subprocess.run(["cp", "-a", "--sparse=always", str(demo_snapshot), str(target)], check=True)
        dirs.append(target)
    users = [f"replica-user-{i}" for i in range(200)]
    with (
        api_process(dirs[0], redis_url, tmp_path / "one.log") as one,
        api_process(dirs[1], redis_url, tmp_path / "two.log") as two,
        httpx.Client(timeout=30, headers=ADMIN) as http,
    ):

        def assignments(api: str) -> list[str]:
            return [
                http.get(f"{api}/admin/routing/assign", params={"user_id": u}).json()["policy"] for u in users
            ]

        for changer, reader, weight in ((one, two, 0.3), (two, one, 0.8)):
            changed = http.put(f"{changer}/admin/routing/weight", json={"policy": "B", "weight": weight})
            assert changed.status_code == 200, changed.text
            expected = ["B" if stable_bucket(u) < weight else "A" for u in users]
            deadline = time.monotonic() + 30  # routers re-read the shared weight about once a second
            while assignments(reader) != expected and time.monotonic() < deadline:
                time.sleep(0.2)
            assert assignments(reader) == expected
            assert assignments(changer) == expected
            share = expected.count("B") / len(users)
            assert abs(share - weight) < 0.15
        events = http.get(f"{one}/admin/routing").json()["events"]
        assert [e["weight"] for e in events[:2]] == [0.8, 0.3]

        # A response id issued by one replica takes a vote on the other, and the vote there replaces it.
        answer = http.post(f"{one}/query", json={"question": "What is a recording rule?"})
        assert answer.status_code == 200, answer.text
        response_id = answer.json()["response_id"]
        up = http.post(f"{one}/feedback", json={"response_id": response_id, "vote": "up"})
        down = http.post(f"{two}/feedback", json={"response_id": response_id, "vote": "down"})
        assert up.status_code == down.status_code == 200, (up.text, down.text)
        assert up.json()["replaced"] is None and down.json()["replaced"] == "up"
    votes = RedisFeedbackLog(redis_url, retention_s=60)
    assert votes.vote(response_id) == "down" and sum(votes.counts().values()) >= 1


def test_api_serve_on_a_port_in_use_fails_and_says_so(data_dir: Path, tmp_path: Path) -> None:
    """The warm-up starts only once the port listens; a port that cannot be bound is a failed start (exit
    status 3, as ``uvicorn.run``), never a process that exits 0 or warms up a model nobody can reach."""
    import socket
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(Path(sys.executable).parent / "ragdeck"), "api", "serve", "--port", str(port), "--no-llm"],
            env=os.environ.copy(), cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert "address already in use" in (done.stdout + done.stderr).lower()
