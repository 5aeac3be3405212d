"""TeiReranker against the fake TEI (real model behind it); CrossEncoderReranker errors and a tiny real run.

``local_embedder`` is the session-scoped fixture of tests/conftest.py: the model loads once per session.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import gathered
from servers import free_port
from tei_fake import FakeTei, rerank_score, run_fake_tei

from ragdeck.console.retrieval.ports import Reranker
from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.embedders import PACKAGED_MODEL_NAME, LocalEmbedder, packaged_model_path
from ragdeck.services.http import HttpError, RetryPolicy
from ragdeck.services.rerankers import CrossEncoderReranker, TeiReranker

QUERY = "How does Prometheus store samples on disk?"
# Deliberately not in relevance order, so TEI's score-sorted answer differs from input order.
PASSAGES = [
    "Bananas are a good source of potassium.",
    "Prometheus stores samples in a local time series database on disk, in two-hour blocks.",
    "The football match ended in a draw.",
    "Samples are written to a write-ahead log before they are compacted into blocks.",
    "Qdrant builds an HNSW graph for approximate nearest neighbour search.",
]
MAX_BATCH = 4


def fast_policy(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, backoff_initial_s=0.001, backoff_max_s=0.005, sleep=lambda _: None)


def expected_scores(embedder: LocalEmbedder, query: str, texts: list[str]) -> list[float]:
    q = embedder.embed_query(query)
    return [rerank_score(float(q @ v)) for v in embedder.embed_documents(texts)]


@pytest.fixture(scope="module")
def tei(local_embedder: LocalEmbedder) -> Iterator[FakeTei]:
    with run_fake_tei(local_embedder, model_type="reranker", max_client_batch_size=MAX_BATCH) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean_fake(request: pytest.FixtureRequest) -> None:
    if "tei" in request.fixturenames:
        request.getfixturevalue("tei").state.reset()


# ---------------------------------------------------------------- TeiReranker


def test_tei_scores_come_back_in_input_order(tei: FakeTei, local_embedder: LocalEmbedder) -> None:
    with TeiReranker(tei.url, retry=fast_policy()) as reranker:
        scores = reranker.rerank(QUERY, PASSAGES[:MAX_BATCH])
        assert reranker.mode == "server" and reranker.model_name == PACKAGED_MODEL_NAME
        assert isinstance(reranker, Reranker)
    np.testing.assert_allclose(
        scores, expected_scores(local_embedder, QUERY, PASSAGES[:MAX_BATCH]), atol=1e-5
    )
    assert max(range(len(scores)), key=scores.__getitem__) == 1  # the storage passage wins
    assert scores != sorted(scores, reverse=True)  # so the index mapping was needed
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_tei_batches_by_max_client_batch_size(tei: FakeTei, local_embedder: LocalEmbedder) -> None:
    texts = PASSAGES * 2  # 10 texts, server takes 4 per request
    with TeiReranker(tei.url, batch_size=32, retry=fast_policy()) as reranker:
        scores = reranker.rerank(QUERY, texts)
    assert tei.state.batch_sizes["/rerank"] == [4, 4, 2]
    assert tei.state.requests["/info"] == 1
    np.testing.assert_allclose(scores, expected_scores(local_embedder, QUERY, texts), atol=1e-5)

    tei.state.reset()
    with TeiReranker(tei.url, batch_size=3, retry=fast_policy()) as reranker:
        assert len(reranker.rerank(QUERY, texts)) == 10
    assert tei.state.batch_sizes["/rerank"] == [3, 3, 3, 1]


def test_tei_retries_then_succeeds(tei: FakeTei) -> None:
    tei.state.fail_next(2, 429, retry_after="0")
    with TeiReranker(tei.url, retry=fast_policy(attempts=3)) as reranker:
        assert len(reranker.rerank(QUERY, PASSAGES[:2])) == 2
    assert tei.state.requests["/rerank"] == 3


def test_tei_gives_up_after_the_budget(tei: FakeTei) -> None:
    tei.state.fail_next(5, 502, message="bad gateway")
    with (
        TeiReranker(tei.url, retry=fast_policy(attempts=2)) as reranker,
        pytest.raises(ServiceUnavailable, match="bad gateway") as caught,
    ):
        reranker.rerank(QUERY, PASSAGES[:2])
    assert f"{tei.url}/rerank" in str(caught.value)
    assert tei.state.requests["/rerank"] == 2


def test_tei_empty_texts_send_nothing(tei: FakeTei) -> None:
    with TeiReranker(tei.url, retry=fast_policy()) as reranker:
        assert reranker.rerank(QUERY, []) == []
    assert tei.state.requests["/rerank"] == 0


def test_tei_fake_speaks_tei_shapes(tei: FakeTei) -> None:
    import httpx

    with httpx.Client(timeout=5) as client:
        ranks = client.post(
            f"{tei.url}/rerank", json={"query": QUERY, "texts": PASSAGES[:3], "return_text": True}
        ).json()
        assert [r["score"] for r in ranks] == sorted((r["score"] for r in ranks), reverse=True)
        assert {r["index"] for r in ranks} == {0, 1, 2}
        assert all(r["text"] == PASSAGES[r["index"]] for r in ranks)
        raw = client.post(
            f"{tei.url}/rerank", json={"query": QUERY, "texts": PASSAGES[:2], "raw_scores": True}
        )
        assert any(r["score"] < 0 or r["score"] > 1 for r in raw.json())
        too_many = client.post(f"{tei.url}/rerank", json={"query": QUERY, "texts": PASSAGES})
        assert too_many.status_code == 413 and too_many.json()["error_type"] == "validation"
        malformed = client.post(f"{tei.url}/rerank", json={"texts": PASSAGES[:1]})
        assert malformed.status_code == 422 and "missing field `query`" in malformed.text


def test_tei_malformed_request_422_is_not_retried(tei: FakeTei) -> None:
    tei.state.fail_next(1, 422, message="Failed to deserialize the JSON body")
    with (
        TeiReranker(tei.url, retry=fast_policy()) as reranker,
        pytest.raises(HttpError, match="Failed to deserialize") as caught,
    ):
        reranker.rerank(QUERY, PASSAGES[:1])
    assert caught.value.status == 422 and tei.state.requests["/rerank"] == 1


def test_tei_health(tei: FakeTei, local_embedder: LocalEmbedder) -> None:
    with TeiReranker(tei.url, retry=fast_policy()) as reranker:
        health = reranker.health()
    assert health.ok, health.detail
    assert health.component == "reranker" and health.version == "1.7.1" and health.endpoint == tei.url

    with run_fake_tei(local_embedder, model_type="embedding") as embed_server:
        health = TeiReranker(embed_server.url).health()
    assert health.ok is False and "embedding" in health.detail

    closed = TeiReranker(f"http://127.0.0.1:{free_port()}", timeout_s=1).health()
    assert closed.ok is False and "could not connect" in closed.detail


# ---------------------------------------------------------------- CrossEncoderReranker


def test_cross_encoder_missing_dir(tmp_path: Path) -> None:
    missing = tmp_path / "bge-reranker"
    with pytest.raises(ConfigError, match=r"bge-reranker.*does not exist"):
        CrossEncoderReranker(missing)


def test_cross_encoder_file_instead_of_dir(tmp_path: Path) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"\0")
    with pytest.raises(ConfigError, match=r"model\.bin.*not a directory"):
        CrossEncoderReranker(file)


def test_cross_encoder_dir_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path)) + r".*no config\.json"):
        CrossEncoderReranker(tmp_path)
    (tmp_path / "config.json").write_text('{"hello": "world"}')
    reranker = CrossEncoderReranker(tmp_path)
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        reranker.rerank("q", ["t"])
    health = reranker.health()
    assert health.ok is False and str(tmp_path) in health.detail


def build_tiny_cross_encoder(path: Path, num_labels: int = 1) -> Path:
    """A random 1-layer BERT sequence classifier with the packaged MiniLM tokenizer; no downloads."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=num_labels,
    )
    BertForSequenceClassification(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


def test_cross_encoder_tiny_real_run(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder, batch_size=2)
    before = reranker.health()  # a health check never loads a model
    assert before.ok and "not loaded yet" in before.detail and not reranker._model.loaded
    assert reranker.mode == "local" and reranker.model_name == tiny_cross_encoder.name
    assert isinstance(reranker, Reranker)
    scores = reranker.rerank(QUERY, PASSAGES)
    assert len(scores) == len(PASSAGES) and all(isinstance(s, float) for s in scores)
    assert all(0.0 <= s <= 1.0 for s in scores)  # sigmoid over one logit, like TEI's raw_scores=false
    assert reranker.rerank(QUERY, PASSAGES[::-1]) == pytest.approx(scores[::-1], abs=1e-5)
    assert reranker.rerank(QUERY, []) == []
    assert reranker.model is reranker.model  # loaded once
    health = reranker.health()
    assert health.ok and health.model == tiny_cross_encoder.name and "loaded" in health.detail


def test_cross_encoder_gathers_concurrent_calls_with_the_same_scores(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder, batch_size=2)
    queries = [QUERY, "Which component routes alerts?", "What is PromQL?"]
    alone = [reranker.rerank(q, PASSAGES) for q in queries]
    futures = gathered(reranker.batcher, [lambda q=q: reranker.rerank(q, PASSAGES) for q in queries])
    assert reranker.batcher.recent[-1].calls == len(queries)  # one predict for the three queries
    for expected, future in zip(alone, futures, strict=True):
        assert future.result() == pytest.approx(expected, abs=1e-5)


def test_cross_encoder_with_several_labels_is_refused(tmp_path: Path) -> None:
    classifier = build_tiny_cross_encoder(tmp_path / "classifier", num_labels=2)
    with pytest.raises(ConfigError, match="2 labels"):
        CrossEncoderReranker(classifier).rerank("q", ["t"])
