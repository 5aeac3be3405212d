"""A connection error names the component and the setting it came from, never the credentials in the URL.

Every adapter is pointed at a closed local port (bound, then closed); nothing is started.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from ragdeck.errors import ServiceUnavailable
from ragdeck.services.http import RetryPolicy

SECRET = "s3cr3t-pass"
TOKEN = "t0ken-value"


@pytest.fixture(scope="module")
def closed_url() -> str:
    """``http://user:SECRET@127.0.0.1:PORT`` where nothing listens on PORT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://ragdeck:{SECRET}@127.0.0.1:{port}"


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(ServiceUnavailable) as info:
        call()
    return str(info.value)


def _check(message: str, component: str, setting: str) -> None:
    assert f"{component} ({setting})" in message, message
    assert SECRET not in message and TOKEN not in message, message


def test_tei_embedder(closed_url: str) -> None:
    from ragdeck.services.embedders import TeiEmbedder

    with TeiEmbedder(closed_url, retry=RetryPolicy.no_retry()) as embedder:
        _check(_message(lambda: embedder.embed_query("x")), "embedder", "TEI_URL")
        health = embedder.health()
        assert not health.ok
        _check(health.detail, "embedder", "TEI_URL")
        assert SECRET not in str(health.endpoint)


def test_tei_reranker(closed_url: str) -> None:
    from ragdeck.services.rerankers import TeiReranker

    with TeiReranker(closed_url, retry=RetryPolicy.no_retry()) as reranker:
        _check(_message(lambda: reranker.rerank("q", ["a", "b"])), "reranker", "TEI_RERANK_URL")
        health = reranker.health()
        assert not health.ok
        _check(health.detail, "reranker", "TEI_RERANK_URL")


def test_qdrant_server(closed_url: str, tmp_path: Path) -> None:
    from ragdeck.services.qdrant_server import QdrantServerStore

    store = QdrantServerStore.connect(closed_url, None, 2.0, tmp_path / "meta")
    try:
        _check(_message(store.list_collections), "vector store", "QDRANT_URL")
        health = store.health()
        assert not health.ok
        _check(health.detail, "vector store", "QDRANT_URL")
    finally:
        store.close()


def test_prometheus(closed_url: str) -> None:
    from ragdeck.services.prometheus import PrometheusReader

    reader = PrometheusReader(f"{closed_url}", retries=0)
    _check(_message(lambda: reader.query("up")), "metrics", "PROMETHEUS_URL")
    health = reader.health()
    assert not health.ok
    _check(health.detail, "metrics", "PROMETHEUS_URL")


def test_llm_names_its_setting(closed_url: str) -> None:
    """The LLM adapter says LLM_BASE_URL (its own wording, see ragdeck.services.llm)."""
    from ragdeck.services.llm import OpenAIChatModel
    from ragdeck.services.types import ChatMessage

    model = OpenAIChatModel(closed_url, model="m", retry=RetryPolicy.no_retry())
    try:
        message = _message(lambda: model.chat([ChatMessage("user", "hi")], max_tokens=1))
    finally:
        model.close()
    assert "LLM_BASE_URL" in message, message
