"""The embedded store's own files damaged by hand or by a crash: aliases.json and snapshot records are
refused with an error naming the file and what to do, never a traceback and never a silent guess."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragdeck.errors import InputError, RagdeckError
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig, VectorPoint

SMALL = HnswConfig(m=8, ef_construct=16, full_scan_threshold=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedQdrantStore]:
    with EmbeddedQdrantStore(tmp_path / "qdrant", busy_timeout_s=0.3) as s:
        s.create_collection("c", 4, SMALL)
        s.upsert("c", [VectorPoint(id="p", vector=[1, 0, 0, 0])])
        s.set_alias("live", "c")
        yield s


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda p: p.write_bytes(b"\xff\xfe{"), "is not UTF-8 text (byte 0)"),
        (lambda p: p.write_text('{"live": '), "is not valid JSON (Expecting value"),
        (lambda p: p.write_text("[" * 100_000), "nested more than 64 levels deep"),
        (lambda p: p.write_text('{"live": ' + "1" * 10_000 + "}"), "a number of 10000 digits"),
        (lambda p: p.write_text('["live", "c"]'), "is not an alias mapping (a JSON object)"),
        (lambda p: p.write_text('{"live": {"to": "c"}}'), "entry 'live' is not 'alias': 'collection'"),
        (lambda p: p.write_text('{"bad name": "c"}'), "entry 'bad name' is not"),
        (lambda p: (p.unlink(), p.mkdir()), "is a folder, not a file"),
    ],
)
def test_a_damaged_aliases_file_is_named_with_what_to_do(
    store: EmbeddedQdrantStore, damage, needle: str
) -> None:
    path = store.root / "aliases.json"
    assert json.loads(path.read_text()) == {"live": "c"}
    damage(path)
    for call in (store.list_aliases, lambda: store.resolve("live"), lambda: store.set_alias("x", "c")):
        with pytest.raises(RagdeckError) as info:
            call()
        message = str(info.value)
        assert str(path) in message and needle in message, message
        assert "move it aside and point the aliases again" in message
    assert store.search("c", [1, 0, 0, 0], 1)[0].id == "p"  # the collection itself is untouched


def _snapshot(store: EmbeddedQdrantStore) -> tuple[str, Path, Path]:
    snap = store.create_snapshot("c")
    tar = store.snapshot_path("c", snap.name)
    assert tar is not None
    return snap.name, tar, tar.with_suffix(".json")


def test_a_snapshot_without_its_metadata_file_is_named_when_listed_restored_or_downloaded(
    store: EmbeddedQdrantStore, tmp_path: Path
) -> None:
    name, tar, sidecar = _snapshot(store)
    sidecar.unlink()
    expected = (
        rf"snapshot '{name}' is incomplete: .*{name}\.tar is there but its metadata file {name}\.json is "
        rf"missing .*; restore {name}\.json from a backup, or delete .*{name}\.tar and take a new snapshot"
    )
    with pytest.raises(InputError, match=expected):
        store.list_snapshots("c")
    with pytest.raises(InputError, match=expected):
        store.restore_snapshot("c", name)
    with pytest.raises(InputError, match=expected):
        store.download_snapshot("c", name, tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()
    assert store.list_aliases() == {"live": "c"}

    tar.unlink()  # the advice followed: listing works again
    assert store.list_snapshots("c") == []


def test_a_snapshot_without_its_tar_is_named_too(store: EmbeddedQdrantStore) -> None:
    name, tar, _sidecar = _snapshot(store)
    tar.unlink()
    with pytest.raises(
        InputError, match=rf"'{name}' is incomplete: .*but its tar file {name}\.tar is missing"
    ):
        store.list_snapshots("c")
    with pytest.raises(InputError, match="is incomplete"):
        store.restore_snapshot("c", name)


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ("{}", "is not a snapshot record (no 'meta')"),
        ('{"meta": {}, "name": "x", "collection": "c", "created_at": "t", "size_bytes": "many"}', "invalid"),
        ("not json", "is not valid JSON"),
    ],
)
def test_a_damaged_snapshot_record_is_named_before_anything_changes(
    store: EmbeddedQdrantStore, record: str, needle: str
) -> None:
    name, _tar, sidecar = _snapshot(store)
    store.set_alias("live", "c")
    sidecar.write_text(record)
    for call in (lambda: store.list_snapshots("c"), lambda: store.restore_snapshot("c", name)):
        with pytest.raises(RagdeckError, match="restore it from a backup, or delete the snapshot's") as info:
            call()
        assert str(sidecar) in str(info.value) and needle in str(info.value)
    assert store.search("c", [1, 0, 0, 0], 1)[0].id == "p"


def test_download_into_a_folder_is_refused_by_the_store_and_a_missing_folder_named(
    store: EmbeddedQdrantStore, tmp_path: Path
) -> None:
    name, _tar, _sidecar = _snapshot(store)
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder: give a file name"):
        store.download_snapshot("c", name, folder)
    with pytest.raises(InputError, match=r"folder .*nowhere does not exist; create it first"):
        store.download_snapshot("c", name, tmp_path / "nowhere" / "s.tar")
    assert list(folder.iterdir()) == []
