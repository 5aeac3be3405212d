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
    "REDIS_URL", "RAGDECK_CONFIG", "RAGDECK_DATA_DIR",
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
    from ragdeck.console.ingest.demo import DEMO_CORPUS
    from ragdeck.console.ingest.pipeline import ingest
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


@pytest.fixture
def api_data(demo_snapshot: Path, tmp_path: Path) -> Path:
    """A second copy of the demo data for a RAG API in this process (the console's copy stays free to open:
    the embedded engine admits one handle per directory)."""
    target = tmp_path / "api-data"
    subprocess.run(["cp", "-a", "--sparse=always", str(demo_snapshot), str(target)], check=True)
    return target


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's) for the session; each test should use its own key prefix or flush."""
    from servers import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def llama_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The real llama.cpp server with the packaged Qwen2.5-Coder-1.5B (or RAGDECK_LLM_GGUF_PATH) on a free
    loopback port, for the session; yields the ``LlamaServer`` (``base_url``, ``model_alias``).

    The joined GGUF is kept in pytest's cache directory, so later sessions skip the 1.1 GB join. Skips when
    llama-cpp-python or the model parts are absent; fails instead when ``RAGDECK_REQUIRE_LLM=1`` (CI).
    """
    from servers import free_port

    from ragdeck.errors import ConfigError
    from ragdeck.services.llama_local import LlamaServer, llama_cpp_available, packaged_gguf

    def unavailable(why: str) -> None:
        if os.environ.get("RAGDECK_REQUIRE_LLM") == "1":
            pytest.fail(f"{why} (RAGDECK_REQUIRE_LLM=1)")
        pytest.skip(why)

    if not llama_cpp_available():
        unavailable("llama-cpp-python[server] is not installed: pip install 'ragdeck[llm]'")
    gguf_env = os.environ.get("RAGDECK_LLM_GGUF_PATH")
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    models = Path(cache.mkdir("ragdeck-llm")) if cache is not None else tmp_path_factory.mktemp("models")
    try:
        gguf = Path(gguf_env) if gguf_env else packaged_gguf(models)
    except ConfigError as exc:
        unavailable(str(exc))
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    threads = max(1, os.cpu_count() or 1)
    with LlamaServer(gguf, port=free_port(), ctx=2048, threads=threads, log_path=log) as server:
        yield server


API_TOKEN = "s3cret-test-token"  # the admin token of the API clients below


@pytest.fixture
def api_clients(demo_data_dir: Path, local_embedder):
    """A factory of RAG API clients in process (FastAPI TestClient) over the demo data and the packaged
    embedder; keyword arguments become settings (``admin_token`` defaults to ``API_TOKEN``). Each client's
    runtime is reachable as ``client.app.state.runtime``; all are closed at the end of the test."""
    from fastapi.testclient import TestClient

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    made: list[tuple[TestClient, object]] = []

    def make(**overrides) -> TestClient:
        overrides.setdefault("admin_token", API_TOKEN)
        runtime = build_runtime(Settings(**overrides), embedder=local_embedder)
        client = TestClient(create_app(runtime))
        made.append((client, runtime))
        return client

    yield make
    for client, runtime in made:
        client.close()
        runtime.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def shared_api_client(demo_snapshot: Path, local_embedder, tmp_path_factory: pytest.TempPathFactory):
    """One RAG API client in process for a whole test module, over its own copy of the demo data (an
    isolated embedded-default environment, admin token ``API_TOKEN``): for tests that read or are refused,
    not for tests that need a fresh state."""
    from fastapi.testclient import TestClient

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        for name in COMPONENT_ENV:
            patch.delenv(name, raising=False)
        home = tmp_path_factory.mktemp("shared-api")
        patch.chdir(home)
        data = home / "data"
        subprocess.run(["cp", "-a", "--sparse=always", str(demo_snapshot), str(data)], check=True)
        patch.setenv("RAGDECK_DATA_DIR", str(data))
        runtime = build_runtime(Settings(admin_token=API_TOKEN), embedder=local_embedder)
        client = TestClient(create_app(runtime))
        try:
            yield client
        finally:
            client.close()
            runtime.close()
