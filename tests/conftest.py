"""Fixtures that build real stacks: the embedded Qdrant engine and the packaged embedding model."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing may call out: the model is packaged, Streamlit must not phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")

COMPONENT_ENV = (
    "QDRANT_URL", "QDRANT_API_KEY", "TEI_URL", "TEI_RERANK_URL", "LLM_BASE_URL", "PROMETHEUS_URL",
    "RAGDECK_CONFIG", "RAGDECK_DATA_DIR",
)  # fmt: skip


@pytest.fixture(scope="session")
def local_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per test session."""
    from ragdeck.services.embedders import LocalEmbedder

    return LocalEmbedder()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated embedded-default environment: fresh data dir, no component URLs, no config files."""
    for name in COMPONENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    monkeypatch.setenv("RAGDECK_DATA_DIR", str(data))
    return data


@pytest.fixture(scope="session")
def demo_snapshot(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> Path:
    """A data directory with the demo corpus ingested once (alias rag_chunks -> rag_chunks_v1)."""
    from ragdeck.console.demo import DEMO_CORPUS
    from ragdeck.console.ingest import ingest
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    data = tmp_path_factory.mktemp("demo") / "data"
    with EmbeddedQdrantStore(data / "qdrant") as store:
        ingest(DEMO_CORPUS, store, local_embedder, collection="rag_chunks_v1", alias="rag_chunks")
    return data


@pytest.fixture
def demo_data_dir(demo_snapshot: Path, data_dir: Path) -> Iterator[Path]:
    """A private copy of the demo data directory, set as RAGDECK_DATA_DIR for this test."""
    # cp keeps the engine's sparse files sparse (a Python copy would write them out in full).
    subprocess.run(["cp", "-a", "--sparse=always", str(demo_snapshot), str(data_dir)], check=True)
    yield data_dir


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's) for the session; each test should use its own key prefix or flush."""
    from servers import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
