"""The vector store's roles and declared capabilities: both adapters serve every role, each declares what it
can do, a call it cannot serve fails clearly, and the domain reads the declarations instead of probing."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient
from servers import free_port

from ragdeck.console.hnsw.measure import index_bytes
from ragdeck.console.hnsw.ports import TuningStore
from ragdeck.console.index_ops.ports import IndexStore
from ragdeck.console.ingest.ports import IngestStore
from ragdeck.console.interfaces import (
    CollectionAdmin,
    DeclaresCapabilities,
    Embedder,
    SnapshotStore,
    VectorSearch,
    VectorStore,
)
from ragdeck.console.retrieval.ports import HybridSearch
from ragdeck.errors import ConfigError
from ragdeck.services.embedders import TeiEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.qdrant_server import QdrantServerStore
from ragdeck.services.types import HnswConfig, StoreCapabilities, VectorPoint

ROLES = (VectorSearch, CollectionAdmin, SnapshotStore, VectorStore, TuningStore, IndexStore, IngestStore)
ROOT = Path(__file__).resolve().parents[1] / "ragdeck"

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedQdrantStore]:
    with EmbeddedQdrantStore(tmp_path / "edge") as store:
        yield store


@pytest.fixture
def local_mode(tmp_path: Path) -> Iterator[QdrantServerStore]:
    with QdrantServerStore(QdrantClient(":memory:"), meta_dir=tmp_path / "meta") as store:
        yield store


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[QdrantServerStore, list[httpx.Request]]]:
    """The server adapter on a transport that records every request and answers none."""
    sent: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise httpx.ConnectError("no server here", request=request)

    url = f"http://127.0.0.1:{free_port()}"
    client = QdrantClient(url=url, transport=httpx.MockTransport(refuse), check_compatibility=False)
    with QdrantServerStore(client, meta_dir=tmp_path / "meta", url=url) as store:
        yield store, sent


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.__name__)
def test_both_adapters_serve_every_role(
    role: type, embedded: EmbeddedQdrantStore, local_mode: QdrantServerStore
) -> None:
    assert isinstance(embedded, role)
    assert isinstance(local_mode, role)
    for adapter in (EmbeddedQdrantStore, QdrantServerStore):  # every method of the role, on the class
        members = [n for n in dir(role) if not n.startswith("_") and callable(getattr(role, n, None))]
        missing = [n for n in members if not callable(getattr(adapter, n, None))]
        assert not missing, f"{adapter.__name__} lacks {missing} of {role.__name__}"


def test_vector_store_is_the_union_of_the_roles() -> None:
    assert {VectorSearch, CollectionAdmin, SnapshotStore} <= set(VectorStore.__mro__)


def test_embedded_declares_what_it_can(embedded: EmbeddedQdrantStore) -> None:
    caps = embedded.capabilities
    assert isinstance(caps, StoreCapabilities)
    assert caps == StoreCapabilities(
        mode="embedded",
        local_files=True,
        index_sizes=True,
        cluster=False,
        snapshots=True,
        sharding=False,
        hnsw=True,
        native_fusion=True,
    )
    assert isinstance(embedded, HybridSearch)  # the call native_fusion declares
    assert caps.mode == embedded.mode
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.mode = "server"  # type: ignore[misc]


def test_server_declares_server_mode_without_a_request(
    server: tuple[QdrantServerStore, list[httpx.Request]],
) -> None:
    store, sent = server
    caps = store.capabilities
    assert caps.mode == "server" == store.mode
    assert caps.cluster and caps.snapshots and caps.sharding and caps.hnsw
    assert not caps.local_files and not caps.index_sizes
    assert sent == []  # declared, not discovered


def test_local_mode_declares_no_cluster_snapshots_or_index(local_mode: QdrantServerStore) -> None:
    caps = local_mode.capabilities
    assert caps.mode == "server"
    assert not (caps.cluster or caps.snapshots or caps.hnsw or caps.local_files or caps.index_sizes)


def test_calls_a_store_cannot_serve_fail_clearly(
    embedded: EmbeddedQdrantStore, server: tuple[QdrantServerStore, list[httpx.Request]]
) -> None:
    store, sent = server
    embedded.create_collection("docs", 4, HnswConfig())
    with pytest.raises(ConfigError, match="needs a Qdrant server"):
        embedded.cluster_info("docs")
    with pytest.raises(ConfigError, match="need a Qdrant server"):
        embedded.create_collection("other", 4, HnswConfig(), shards=2)
    with pytest.raises(ConfigError, match="reports no index sizes"):
        store.index_bytes("docs")
    assert sent == []


def test_index_sizes_follow_the_declaration(
    embedded: EmbeddedQdrantStore, local_mode: QdrantServerStore
) -> None:
    points = [VectorPoint(id=f"d#c{i}", vector=[1.0, float(i), 0.5, 0.0]) for i in range(20)]
    for store in (embedded, local_mode):
        store.create_collection("docs", 4, HnswConfig(m=8, ef_construct=32, full_scan_threshold=1))
        store.upsert("docs", points)
        store.finish_indexing("docs")
    assert isinstance(index_bytes(embedded, "docs"), int)
    assert index_bytes(local_mode, "docs") is None


def test_embedded_downloads_a_snapshot(embedded: EmbeddedQdrantStore, tmp_path: Path) -> None:
    embedded.create_collection("docs", 4, HnswConfig())
    embedded.upsert("docs", [VectorPoint(id="d#c0", vector=[1.0, 0.0, 0.0, 0.0])])
    info = embedded.create_snapshot("docs")
    out = embedded.download_snapshot("docs", info.name, tmp_path / "snap.tar")
    local = embedded.snapshot_path("docs", info.name)
    assert local is not None and out.read_bytes() == local.read_bytes()


def test_embedders_declare_their_model_path(local_embedder: Embedder) -> None:
    assert local_embedder.path is not None and local_embedder.path.is_dir()
    assert TeiEmbedder.path is None


PROBE = re.compile(
    r"""getattr\(\s*[\w.]+\s*,\s*["'](mode|index_bytes|cluster_info|local|download_snapshot|path)["']"""
)


def test_no_capability_probes_remain() -> None:
    found = [
        f"{path.relative_to(ROOT.parent)}:{n}: {line.strip()}"
        for path in sorted(ROOT.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if PROBE.search(line)
    ]
    assert found == [], "read store.capabilities / the declared attribute instead:\n" + "\n".join(found)
    assert "download_snapshot(collection, snapshot, dest)  # type: ignore" not in (
        ROOT / "console" / "index_ops" / "snapshots.py"
    ).read_text(encoding="utf-8")


def test_only_the_composition_root_names_the_whole_vector_store() -> None:
    """Domain code is typed with the roles it uses (or a named intersection of them), never ``VectorStore``
    (which adds health and lifetime: the stack's, built and closed in ``wiring``)."""
    allowed = {"console/interfaces.py", "console/wiring.py"}
    found = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "console").rglob("*.py"))
        if re.search(r"\bVectorStore\b", path.read_text(encoding="utf-8"))
    ]
    assert sorted(set(found) - allowed) == []


def _role_params(func: typing.Any) -> dict[str, type]:
    """The parameters of ``func`` annotated with a vector store role."""
    try:
        hints = typing.get_type_hints(func)
    except NameError:  # an annotation imported only for type checkers
        return {}
    return {
        name: hint
        for name, hint in hints.items()
        if name != "return" and DeclaresCapabilities in getattr(hint, "__mro__", ())
    }


def _functions(module: typing.Any) -> typing.Iterator[typing.Any]:
    for _, obj in inspect.getmembers(module):
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            yield from (
                f for _, f in inspect.getmembers(obj, inspect.isfunction) if f.__module__ == module.__name__
            )


@pytest.mark.parametrize("package", ["hnsw", "index_ops", "ingest"])
def test_store_parameters_are_typed_with_every_role_their_body_uses(package: str) -> None:
    """Each ``store.<member>`` a function uses is declared by the role its ``store`` parameter is typed with
    (a narrower annotation than the body needs would hide a missing role)."""
    checked, wrong = 0, []
    for path in sorted((ROOT / "console" / package).glob("*.py")):
        module = importlib.import_module(f"ragdeck.console.{package}.{path.stem}")
        for func in _functions(module):
            params = _role_params(func)
            if not params:
                continue
            checked += 1
            tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    role = params.get(node.value.id)
                    if role is not None and not hasattr(role, node.attr):
                        wrong.append(f"{module.__name__}.{func.__qualname__}: {node.value.id}.{node.attr}")
    assert checked >= 1 and wrong == []
