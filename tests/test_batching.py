"""Micro-batching and thread sizing of the local models (issue 21): results equal one-by-one encoding.

The packaged MiniLM runs for real. To make concurrent calls meet in one batch without timing luck, a test
holds the inference thread with ``batcher.alone(gate.wait)``, queues its calls until ``pending()`` shows
them all, then opens the gate: the worker finds them queued and encodes them together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from batch_helpers import gathered
from tei_fake import FakeTei, run_fake_tei

from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError
from ragdeck.services.batching import MicroBatcher
from ragdeck.services.embedders import LocalEmbedder, TeiEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.threads import apply_torch_threads, torch_threads, usable_cores

QUERIES = [
    "where are alerts routed?",
    "How does Prometheus collect samples from the targets it monitors at a configured interval?",
    "compaction",
    "What does PromQL's rate function do with counters, and why use it over a range of a few minutes?",
    "federation between servers",
    "embedding models over HTTP",
    "two-hour blocks",
    "Which component deduplicates and groups alerts before sending them to receivers like PagerDuty?",
    "labels",
    "How is a text embedding server batched?",
    "scrape interval",
    "aggregate time series by label",
    "Alertmanager",
    "disk usage of the local time series database after compaction of old blocks",
    "a",
    "Is reranking served over an HTTP API too?",
]
TOPICS = {
    "alerting": "Alertmanager deduplicates, groups and routes alerts to receivers such as PagerDuty.",
    "storage": "The local time series database keeps two-hour blocks on disk and compacts them.",
    "scraping": "Prometheus scrapes targets over HTTP at a configured interval and stores samples.",
    "promql": "PromQL selects time series by metric name and labels and aggregates them with rate.",
    "federation": "Federation lets one Prometheus server scrape selected series from another server.",
    "tei": "Text Embeddings Inference serves embedding and reranking models over an HTTP API with batching.",
}


def test_concurrent_queries_equal_one_by_one(local_embedder: LocalEmbedder) -> None:
    batcher = local_embedder.batcher
    one_by_one = np.stack([local_embedder.embed_query(q) for q in QUERIES])
    assert [r.calls for r in list(batcher.recent)[-len(QUERIES) :]] == [1] * len(QUERIES)

    futures = gathered(batcher, [lambda q=q: local_embedder.embed_query(q) for q in QUERIES])
    assert batcher.recent[-1].calls == len(QUERIES)  # one encode for all of them
    together = np.stack([f.result() for f in futures])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    # small embed_documents calls join the same way, each caller getting its own rows in order
    futures = gathered(
        batcher, [lambda i=i: local_embedder.embed_documents(QUERIES[i : i + 4]) for i in (0, 4, 8, 12)]
    )
    assert batcher.recent[-1].calls == 4
    np.testing.assert_allclose(np.concatenate([f.result() for f in futures]), one_by_one, atol=1e-5)


@pytest.fixture
def topics_store(tmp_path: Path, local_embedder: LocalEmbedder) -> Iterator[EmbeddedQdrantStore]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, sentence in TOPICS.items():
        (corpus / f"{name}.md").write_text(f"# {name.title()}\n\n" + (sentence + " ") * 3)
    with EmbeddedQdrantStore(tmp_path / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="topics_v1", alias="topics")
        yield store


def test_retrieval_ids_and_scores_equal_one_by_one(
    topics_store: EmbeddedQdrantStore, local_embedder: LocalEmbedder
) -> None:
    retriever = Retriever(topics_store, local_embedder)

    def ranked(query: str) -> list[tuple[str, float]]:
        return [(hit.chunk_id, hit.score) for hit in retriever.search(query, "topics").hits]

    alone = [ranked(q) for q in QUERIES]
    futures = gathered(local_embedder.batcher, [lambda q=q: ranked(q) for q in QUERIES])
    assert local_embedder.batcher.recent[-1].calls == len(QUERIES)
    for expected, future in zip(alone, futures, strict=True):
        got = future.result()
        assert [i for i, _ in got] == [i for i, _ in expected]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def test_a_lone_call_does_not_wait(local_embedder: LocalEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    batcher = local_embedder.batcher
    monkeypatch.setattr(batcher, "wait_s", 3600.0)  # were the wait paid, this test would hang for an hour
    local_embedder.embed_query("a question alone")
    assert batcher.recent[-1].calls == 1 and not batcher.recent[-1].waited


def test_the_wait_gathers_only_under_load() -> None:
    seen: list[list[int]] = []
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda xs: seen.append(xs) or xs, wait_ms=20, max_items=4)
    assert batcher([1]) == [1] and not batcher.recent[-1].waited
    futures = gathered(batcher, [lambda i=i: batcher([i]) for i in range(6)])
    assert sorted(f.result()[0] for f in futures) == list(range(6))
    assert [r.items for r in list(batcher.recent)[-2:]] == [4, 2]  # at most max_items per batch
    assert batcher.recent[-1].waited  # calls were queued after the first batch: it gathered a while


def test_an_encode_error_reaches_every_caller_and_the_batcher_goes_on(local_embedder: LocalEmbedder) -> None:
    calls = [lambda: local_embedder.embed_query("fine"), lambda: local_embedder.embed_query(None)]  # type: ignore[arg-type]
    futures = gathered(local_embedder.batcher, calls * 2)
    assert local_embedder.batcher.recent[-1].calls == 4
    errors = [f.exception() for f in futures]
    assert all(e is not None and type(e) is type(errors[0]) for e in errors)  # the runtime's error, to all
    np.testing.assert_allclose(local_embedder.embed_query(QUERIES[0]), local_embedder.embed_query(QUERIES[0]))
    assert local_embedder.embed_query("fine").shape == (384,)


def test_a_large_call_runs_alone(local_embedder: LocalEmbedder) -> None:
    texts = [f"passage {i} about vector search" for i in range(local_embedder.batcher.max_items + 1)]
    vectors = local_embedder.embed_documents(texts)
    assert vectors.shape == (len(texts), 384) and local_embedder.batcher.recent[-1].job
    np.testing.assert_allclose(vectors[:3], local_embedder.embed_documents(texts[:3]), atol=1e-5)


def test_without_batching_every_call_is_its_own_batch() -> None:
    embedder = LocalEmbedder(batching=False)
    futures = gathered(embedder.batcher, [lambda q=q: embedder.embed_query(q) for q in QUERIES[:3]])
    assert [r.calls for r in list(embedder.batcher.recent)[-3:]] == [1, 1, 1]
    assert all(f.result().shape == (384,) for f in futures)


@pytest.fixture
def tei(local_embedder: LocalEmbedder) -> Iterator[FakeTei]:
    with run_fake_tei(local_embedder, max_client_batch_size=8) as fake:
        yield fake


def test_tei_gathers_concurrent_queries_into_one_request(tei: FakeTei, local_embedder: LocalEmbedder) -> None:
    with TeiEmbedder(tei.url, batch_size=32) as embedder:
        embedder.embed_query("warm up: /info and the dimension")
        tei.state.reset()
        futures = gathered(embedder.batcher, [lambda q=q: embedder.embed_query(q) for q in QUERIES[:10]])
        assert tei.state.batch_sizes["/embed"] == [8, 2]  # max_client_batch_size respected
        got = np.stack([f.result() for f in futures])
    np.testing.assert_allclose(
        got, np.stack([local_embedder.embed_query(q) for q in QUERIES[:10]]), atol=1e-5
    )


def test_thread_count_follows_cores_workers_and_the_setting() -> None:
    assert torch_threads(None, cores=2, workers=1) == 1  # one core left to requests and the store
    assert torch_threads(None, cores=16, workers=1) == 15
    assert torch_threads(None, cores=16, workers=4) == 3
    assert torch_threads(None, cores=1, workers=1) == 1
    assert torch_threads(None, cores=2, workers=4) == 1
    assert torch_threads(6, cores=2, workers=1) == 6
    assert 1 <= usable_cores() <= (len(__import__("os").sched_getaffinity(0)))


def test_loading_a_local_model_applies_the_thread_count(local_embedder: LocalEmbedder) -> None:
    model = local_embedder.model  # ONNX Runtime by default: the count is its session's intra-op threads
    assert local_embedder.runtime == "onnx"
    assert model.session.get_session_options().intra_op_num_threads == torch_threads(None)
    _ = LocalEmbedder(backend="torch").model
    assert torch.get_num_threads() == apply_torch_threads()  # set once per process, at the first torch load


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RAGDECK_TORCH_THREADS", "0"), ("RAGDECK_TORCH_THREADS", "many"), ("RAGDECK_EMBED_BATCH_WAIT_MS", "-1"),
     ("RAGDECK_EMBED_MAX_BATCH", "0"), ("RAGDECK_EMBED_BATCHING", "maybe")],
)  # fmt: skip
def test_a_bad_thread_or_batch_setting_names_its_variable(
    variable: str, value: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        Settings()


def test_thread_and_batch_settings_reach_the_embedder(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragdeck.console.wiring import build_embedder

    monkeypatch.setenv("RAGDECK_TORCH_THREADS", "3")
    monkeypatch.setenv("RAGDECK_EMBED_BATCH_WAIT_MS", "5")
    monkeypatch.setenv("RAGDECK_EMBED_MAX_BATCH", "12")
    embedder = build_embedder(Settings())
    assert isinstance(embedder, LocalEmbedder)
    assert embedder.threads == 3 and embedder.batcher.wait_s == 0.005 and embedder.batcher.max_items == 12
