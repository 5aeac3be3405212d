"""Ready means warm: ``/readyz`` is 503 "warming" until the background warm-up and first self-test have
run, then answers from the cached self-test without embedding anything itself; a failing background
refresh turns it 503 naming the component. Real embedder, real embedded store with the demo collection."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from servers import readyz_when_warm

from ragdeck.api.app import create_app
from ragdeck.api.runtime import build_runtime
from ragdeck.console.settings import Settings
from ragdeck.errors import ServiceUnavailable


class GatedEmbedder:
    """The real embedder behind a gate: calls wait until ``gate`` is set, are counted, and fail while
    ``failing`` is set (an embedding server gone away)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.failing = threading.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _enter(self) -> None:
        self.gate.wait()
        self.calls += 1
        if self.failing.is_set():
            raise ServiceUnavailable("embedding server gone away (test)")

    def embed_query(self, text: str) -> np.ndarray:
        self._enter()
        return self.inner.embed_query(text)

    def embed_documents(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        self._enter()
        return self.inner.embed_documents(texts, batch_size)


def _until(condition, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def test_readyz_is_warming_until_the_warm_up_ran_then_answers_from_the_cached_self_test(
    demo_data_dir, local_embedder
) -> None:
    embedder = GatedEmbedder(local_embedder)
    runtime = build_runtime(Settings(admin_token="t", ready_refresh_s=3600), embedder=embedder)
    try:
        client = TestClient(create_app(runtime))
        cold = client.get("/readyz")
        assert cold.status_code == 503, cold.text
        assert cold.json()["warming"] is True and "warming up" in cold.json()["error"]
        assert client.get("/healthz").status_code == 200  # alive while warming

        embedder.gate.set()
        warm = readyz_when_warm(client.get)
        assert warm.status_code == 200, warm.text
        body = warm.json()
        assert body["ready"] and body["warming"] is False and body["warm_up_ms"] > 0
        assert {c["component"] for c in body["checks"]} == {"embedder", "vector store", "llm"}
        # warm-up: one retrieval per policy, then the self-test's probe embedding
        assert embedder.calls == len(runtime.service.policies) + 1

        for _ in range(20):
            assert client.get("/readyz").status_code == 200
        assert embedder.calls == len(runtime.service.policies) + 1, "a /readyz request embedded something"
        assert client.get("/readyz").json()["checked_s_ago"] >= 0
    finally:
        runtime.close()


def test_a_failing_background_refresh_turns_readyz_503_naming_the_component(
    demo_data_dir, local_embedder
) -> None:
    embedder = GatedEmbedder(local_embedder)
    embedder.gate.set()
    runtime = build_runtime(Settings(admin_token="t", ready_refresh_s=0.05), embedder=embedder)
    try:
        client = TestClient(create_app(runtime))
        assert readyz_when_warm(client.get).status_code == 200
        embedder.failing.set()
        _until(lambda: client.get("/readyz").status_code == 503, "a refresh to see the embedder fail")
        body = client.get("/readyz").json()
        assert body["failed"] == ["embedder"] and "embedding server gone away" in body["error"]
        embedder.failing.clear()
        _until(lambda: client.get("/readyz").status_code == 200, "a refresh to see it back")
    finally:
        runtime.close()


def test_requests_that_see_the_llm_state_change_run_one_self_test_together(
    demo_data_dir, local_embedder
) -> None:
    runtime = build_runtime(Settings(admin_token="t", ready_refresh_s=3600), embedder=local_embedder)
    try:
        assert readyz_when_warm(TestClient(create_app(runtime)).get).status_code == 200
        service = runtime.service
        real_ready, runs = service.ready, []

        def counted(*args: Any, **kwargs: Any) -> Any:
            runs.append(threading.current_thread().name)
            return real_ready(*args, **kwargs)

        class Restarted:  # what a supervisor reports after bringing the LLM back
            ready = True

            def summary(self) -> str:
                return "up, restarted 1×"

        service.ready = counted  # type: ignore[method-assign]
        service.llm_status = Restarted  # the state the cached self-test saw (none) has changed
        seen: list[Any] = []
        threads = [threading.Thread(target=lambda: seen.append(runtime.readiness.latest())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(runs) == 1, runs
        assert len({id(s) for s in seen}) == 1 and seen[0].llm_state == (None, "up, restarted 1×")
    finally:
        runtime.close()
