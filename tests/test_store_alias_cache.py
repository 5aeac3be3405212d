"""The embedded store's alias cache: aliases.json is read again only when it changed, whoever changed it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig, VectorPoint


def _store_with_two_versions(root: Path) -> EmbeddedQdrantStore:
    store = EmbeddedQdrantStore(root)
    for name, vector in (("v1", [1.0, 0.0]), ("v2", [0.0, 1.0])):
        store.create_collection(name, 2, HnswConfig(), lexical=False)
        store.upsert(name, [VectorPoint(f"{name}#c:0", vector, {"text": name})])
    store.set_alias("live", "v1")
    return store


def _age(path: Path) -> None:
    """Date the file 10 s back (its last change is then long settled, as in a running console)."""
    old = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(old, old))


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads = [0]
    original = EmbeddedQdrantStore._read_aliases

    def read(self: EmbeddedQdrantStore) -> dict[str, str]:
        reads[0] += 1
        return original(self)

    monkeypatch.setattr(EmbeddedQdrantStore, "_read_aliases", read)
    return reads


def _answer(store: EmbeddedQdrantStore) -> str:
    return store.search("live", [1.0, 1.0], 1)[0].payload["text"]


def test_searches_read_aliases_json_once_until_it_changes(tmp_path: Path, counted_reads: list[int]) -> None:
    store = _store_with_two_versions(tmp_path)
    _age(tmp_path / "aliases.json")
    counted_reads[0] = 0
    assert [_answer(store) for _ in range(5)] == ["v1"] * 5
    assert store.resolve("live") == "v1" and store.list_aliases() == {"live": "v1"}
    assert counted_reads[0] == 1  # read once, then served from memory

    store.set_alias("live", "v2")  # changed in this process: the next search sees it
    assert _answer(store) == "v2"
    store.close()


def test_a_change_by_another_store_object_or_process_is_seen_by_the_next_search(
    tmp_path: Path, counted_reads: list[int]
) -> None:
    store = _store_with_two_versions(tmp_path)
    _age(tmp_path / "aliases.json")
    assert _answer(store) == "v1"

    other = EmbeddedQdrantStore(tmp_path)  # another store object on the same root
    other.compare_and_set_alias("live", "v2", expected="v1")
    assert _answer(store) == "v2"
    _age(tmp_path / "aliases.json")

    # Another process (`ragdeck index swap` from a CLI while the console runs) moves it back.
    code = (
        "import sys; from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore as S; "
        "S(sys.argv[1]).compare_and_set_alias('live', 'v1', expected='v2')"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env={**os.environ})
    assert _answer(store) == "v1"
    _age(tmp_path / "aliases.json")
    counted_reads[0] = 0
    assert [_answer(store) for _ in range(3)] == ["v1"] * 3
    assert counted_reads[0] == 1  # settled again: one read, then none

    other.delete_alias("live")  # removed elsewhere: the alias is gone for the next search too
    with pytest.raises(Exception, match="no collection or alias named 'live'"):
        store.search("live", [1.0, 1.0], 1)
    store.close()


def test_a_fresh_aliases_json_is_not_trusted_from_memory(tmp_path: Path, counted_reads: list[int]) -> None:
    """A file changed within the last second is read again on every call (a third write inside one tick
    of the file system's clock could otherwise look unchanged); once settled it is cached."""
    store = _store_with_two_versions(tmp_path)
    os.utime(tmp_path / "aliases.json")  # just now
    counted_reads[0] = 0
    for _ in range(3):
        assert store.resolve("live") == "v1"
    assert counted_reads[0] == 3
    _age(tmp_path / "aliases.json")
    for _ in range(3):
        assert store.resolve("live") == "v1"
    assert counted_reads[0] == 4
    store.close()
