"""LocalEmbedder with the packaged model; TeiEmbedder against the fake TEI backed by that same model.

``local_embedder`` is the session-scoped fixture of tests/conftest.py: the model loads once per session.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from servers import free_port
from tei_fake import FakeTei, run_fake_tei

from ragdeck.console.interfaces import Embedder
from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.embedders import PACKAGED_MODEL_NAME, LocalEmbedder, TeiEmbedder
from ragdeck.services.http import HttpError, RetryPolicy, make_timeout, parse_retry_after

TEXTS = [
    "Prometheus scrapes metrics from HTTP endpoints at a fixed interval.",
    "Qdrant stores vectors with payloads and searches them with HNSW.",
    "The cat slept on the warm windowsill all afternoon.",
    "Text embeddings inference serves embedding models over HTTP.",
    "Alertmanager groups, silences and routes alerts.",
]
MAX_BATCH = 8


class SleepLog:
    """A ``RetryPolicy.sleep`` that records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fast_policy(attempts: int = 3, sleep: SleepLog | None = None) -> RetryPolicy:
    return RetryPolicy(
        attempts=attempts, backoff_initial_s=0.01, backoff_max_s=0.04, sleep=sleep or SleepLog()
    )


@pytest.fixture(scope="module")
def tei(local_embedder: LocalEmbedder) -> Iterator[FakeTei]:
    with run_fake_tei(local_embedder, max_client_batch_size=MAX_BATCH) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean_fake(request: pytest.FixtureRequest) -> None:
    if "tei" in request.fixturenames:
        request.getfixturevalue("tei").state.reset()


# ---------------------------------------------------------------- LocalEmbedder


def test_local_shapes_dtype_and_unit_length(local_embedder: LocalEmbedder) -> None:
    vectors = local_embedder.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = local_embedder.embed_query("how does prometheus collect metrics")
    assert query.shape == (384,) and query.dtype == np.float32
    assert local_embedder.embed_documents([]).shape == (0, 384)
    assert local_embedder.embed_documents(TEXTS[:3], batch_size=1).shape == (3, 384)
    assert local_embedder.dimension == 384
    assert local_embedder.mode == "local"
    assert local_embedder.model_name == PACKAGED_MODEL_NAME
    assert isinstance(local_embedder, Embedder)
    assert local_embedder.model is local_embedder.model  # loaded once


def test_local_paraphrase_is_closer_than_unrelated(local_embedder: LocalEmbedder) -> None:
    anchor, paraphrase, unrelated = local_embedder.embed_documents(
        [
            "How do I restart the embedding server?",
            "What is the way to reboot the embeddings service?",
            "Bananas are rich in potassium.",
        ]
    )
    assert anchor @ paraphrase > anchor @ unrelated + 0.2


def test_local_missing_model_path_is_config_error(tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="no-such-model"):
        LocalEmbedder(str(missing))


def test_local_directory_that_is_not_a_model_fails_once_with_config_error(tmp_path) -> None:
    embedder = LocalEmbedder(str(tmp_path))
    assert embedder.model_name == tmp_path.name
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        embedder.embed_query("x")
    with pytest.raises(ConfigError):  # the failure is remembered, not loaded again
        _ = embedder.model
    health = embedder.health()
    assert health.ok is False and str(tmp_path) in health.detail


def test_local_health(local_embedder: LocalEmbedder) -> None:
    local_embedder.embed_query("loaded")
    health = local_embedder.health()
    assert health.ok and health.mode == "local" and health.dimension == 384 and "loaded" in health.detail
    assert health.model == PACKAGED_MODEL_NAME and health.version
    # the packaged model runs on ONNX Runtime by default, and the Stack page says so
    assert local_embedder.runtime == "onnx" and "(ONNX Runtime)" in health.detail
    assert health.version.startswith("onnxruntime ")


def test_local_health_does_not_load_the_model() -> None:
    embedder = LocalEmbedder()
    health = embedder.health()
    assert not embedder.loaded, "a health check loaded the model"
    assert health.ok and "not loaded yet" in health.detail and health.dimension is None
    assert "(ONNX Runtime where it can, else torch)" in health.detail
    torch_only = LocalEmbedder(backend="torch").health()
    assert torch_only.version and torch_only.version.startswith("sentence-transformers ")


# ---------------------------------------------------------------- TeiEmbedder


def test_tei_vectors_match_local_model(tei: FakeTei, local_embedder: LocalEmbedder) -> None:
    long_text = "retention " * 400  # beyond 256 tokens: TEI truncates because we ask it to
    texts = [*TEXTS, long_text]
    with TeiEmbedder(tei.url, retry=fast_policy()) as embedder:
        got = embedder.embed_documents(texts)
        assert got.dtype == np.float32 and got.shape == (len(texts), 384)
        np.testing.assert_allclose(got, local_embedder.embed_documents(texts), atol=1e-5)
        np.testing.assert_allclose(
            embedder.embed_query(TEXTS[0]), local_embedder.embed_query(TEXTS[0]), atol=1e-5
        )
        assert embedder.dimension == 384
        assert embedder.model_name == PACKAGED_MODEL_NAME
        assert embedder.mode == "server"
        assert isinstance(embedder, Embedder)


def test_tei_batches_respect_server_max_client_batch_size(tei: FakeTei) -> None:
    texts = [f"passage number {i} about vector search" for i in range(20)]
    with TeiEmbedder(tei.url, batch_size=64, retry=fast_policy()) as embedder:
        assert embedder.embed_documents(texts).shape == (20, 384)
    assert tei.state.batch_sizes["/embed"] == [8, 8, 4]
    assert tei.state.requests["/embed"] == 3
    assert tei.state.requests["/info"] == 1  # fetched once, lazily

    tei.state.reset()
    with TeiEmbedder(tei.url, batch_size=5, retry=fast_policy()) as embedder:
        embedder.embed_documents(texts)
        embedder.embed_documents(texts[:7], batch_size=3)
    assert tei.state.batch_sizes["/embed"] == [5, 5, 5, 5, 3, 3, 1]
    assert tei.state.requests["/info"] == 1


def test_tei_info_failure_falls_back_to_batch_size(tei: FakeTei) -> None:
    tei.state.fail_next(1, 500, paths=("/info",))
    with TeiEmbedder(tei.url, batch_size=4, retry=fast_policy()) as embedder:
        embedder.embed_documents(TEXTS)
        assert embedder.model_name == f"TEI at {tei.url}"  # /info is not retried behind the user's back
    assert tei.state.batch_sizes["/embed"] == [4, 1]


def test_tei_retries_429_with_backoff_then_succeeds(tei: FakeTei) -> None:
    sleeps = SleepLog()
    tei.state.fail_next(2, 429)
    with TeiEmbedder(tei.url, retry=fast_policy(attempts=3, sleep=sleeps)) as embedder:
        assert embedder.embed_documents(TEXTS[:2]).shape == (2, 384)
    assert tei.state.requests["/embed"] == 3
    assert sleeps.waits == [0.01, 0.02]


def test_tei_honours_retry_after(tei: FakeTei) -> None:
    sleeps = SleepLog()
    tei.state.fail_next(1, 429, retry_after="2")
    tei.state.fail_next(1, 503, retry_after="120")  # capped by retry_after_max_s
    policy = RetryPolicy(attempts=3, backoff_initial_s=0.01, retry_after_max_s=5.0, sleep=sleeps)
    with TeiEmbedder(tei.url, retry=policy) as embedder:
        embedder.embed_query("hello")
    assert sleeps.waits == [2.0, 5.0]


def test_tei_real_sleep_between_attempts(tei: FakeTei) -> None:
    tei.state.fail_next(1, 429, retry_after="0.3")
    start = time.monotonic()
    with TeiEmbedder(tei.url, retry=RetryPolicy(attempts=2, backoff_initial_s=0.01)) as embedder:
        embedder.embed_query("hello")
    assert time.monotonic() - start >= 0.3


def test_tei_503_past_retry_budget_raises_service_unavailable(tei: FakeTei) -> None:
    tei.state.fail_next(10, 503, message="backend is restarting")
    with (
        TeiEmbedder(tei.url, retry=fast_policy(attempts=3)) as embedder,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        embedder.embed_documents(TEXTS)
    message = str(caught.value)
    assert f"{tei.url}/embed" in message
    assert "503" in message and "backend is restarting" in message and "3 attempts" in message
    assert isinstance(caught.value, HttpError) and caught.value.status == 503
    assert tei.state.requests["/embed"] == 3


def test_tei_read_timeout_is_retried_then_raises(tei: FakeTei) -> None:
    tei.state.delay_s = 1.0
    start = time.monotonic()
    with (
        TeiEmbedder(tei.url, timeout_s=0.2, retry=fast_policy(attempts=2)) as embedder,
        pytest.raises(ServiceUnavailable, match="timed out") as caught,
    ):
        embedder.embed_query("slow")
    assert time.monotonic() - start < 2.0
    assert tei.url in str(caught.value) and "2 times" in str(caught.value)
    assert tei.state.requests["/embed"] == 2


def test_tei_413_is_not_retried_and_says_lower_the_batch(tei: FakeTei) -> None:
    # /info hidden (e.g. by a proxy): the client falls back to its own batch size, which is too large.
    tei.state.fail_next(1, 404, message="not found", paths=("/info",))
    with (
        TeiEmbedder(tei.url, batch_size=16, retry=fast_policy()) as embedder,
        pytest.raises(HttpError) as caught,
    ):
        embedder.embed_documents([f"text {i}" for i in range(16)])
    assert caught.value.status == 413
    assert "batch size 16 > maximum allowed batch size 8" in str(caught.value)
    assert "lower the batch size" in str(caught.value)
    assert tei.state.requests["/embed"] == 1


def test_tei_422_is_not_retried_and_shows_tei_message(tei: FakeTei) -> None:
    tei.state.fail_next(1, 422, message="Tokenization error: invalid unicode")
    with (
        TeiEmbedder(tei.url, retry=fast_policy()) as embedder,
        pytest.raises(HttpError, match="Tokenization error: invalid unicode") as caught,
    ):
        embedder.embed_query("x")
    assert caught.value.status == 422 and caught.value.error_type == "tokenizer"
    assert tei.state.requests["/embed"] == 1


def test_tei_424_on_a_reranker_server(local_embedder: LocalEmbedder) -> None:
    with run_fake_tei(local_embedder, model_type="reranker") as fake:
        embedder = TeiEmbedder(fake.url, retry=fast_policy())
        with pytest.raises(HttpError, match="not an embedding model") as caught:
            embedder.embed_query("x")
        assert caught.value.status == 424
        health = embedder.health()
        assert health.ok is False and "reranker" in health.detail
        embedder.close()


def test_tei_truncate_is_honoured_by_the_fake(tei: FakeTei) -> None:
    long_text = "retention " * 400
    with httpx.Client(timeout=make_timeout(5)) as client:
        refused = client.post(f"{tei.url}/embed", json={"inputs": [long_text], "truncate": False})
        assert refused.status_code == 413 and "must have less than 256 tokens" in refused.json()["error"]
        raw = client.post(f"{tei.url}/embed", json={"inputs": "hello", "normalize": False}).json()
        assert np.linalg.norm(raw[0]) > 1.5  # un-normalised on request


def test_tei_empty_text_is_an_input_error(tei: FakeTei) -> None:
    with TeiEmbedder(tei.url, retry=fast_policy()) as embedder, pytest.raises(InputError, match=r"\[1\]"):
        embedder.embed_documents(["a", ""])
    assert tei.state.requests["/embed"] == 0


def test_tei_health_ok(tei: FakeTei) -> None:
    with TeiEmbedder(tei.url, retry=fast_policy()) as embedder:
        health = embedder.health()
    assert health.ok, health.detail
    assert health.mode == "server" and health.endpoint == tei.url
    assert health.version == "1.7.1" and health.model == PACKAGED_MODEL_NAME and health.dimension == 384


def test_tei_health_unhealthy_server(tei: FakeTei) -> None:
    tei.state.unhealthy = True
    with TeiEmbedder(tei.url, retry=fast_policy()) as embedder:
        health = embedder.health()
    assert health.ok is False and "503" in health.detail


def test_tei_health_on_closed_port_does_not_raise() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    embedder = TeiEmbedder(url, timeout_s=2, retry=fast_policy(attempts=5))
    health = embedder.health()
    assert health.ok is False and "could not connect" in health.detail and url in health.detail
    assert time.monotonic() - start < 2.0  # a probe is one attempt, no retries
    with pytest.raises(ServiceUnavailable, match="could not connect"):
        embedder.embed_query("x")
    embedder.close()


def test_tei_rejects_a_non_http_url() -> None:
    with pytest.raises(ConfigError, match="TEI_URL"):
        TeiEmbedder("127.0.0.1:8080")


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:07 GMT", now=now) == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None
    assert RetryPolicy.from_retries(4).attempts == 5
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)
