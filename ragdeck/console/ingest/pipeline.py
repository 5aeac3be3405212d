"""Ingestion: load documents, redact PII and secrets, chunk, embed in batches, upsert, index, alias.

A collection that ingestion creates is deleted again if any later step fails, and the alias moves only
after the new collection is complete and indexed: a failed ingest leaves nothing half-written. With a
journal (``journal``), a collection being built is marked in progress first and unmarked once complete, so
the partial collection of an ingest killed mid-way (SIGKILL, power loss) is cleared by the next ingest of
that collection instead of blocking it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragdeck.console.ingest import journal as ingest_journal
from ragdeck.console.ingest.chunking import ChunkingConfig, chunk_document
from ragdeck.console.ingest.documents import Chunk, Document
from ragdeck.console.ingest.loaders import load_documents
from ragdeck.console.ingest.ports import IngestJournal, IngestStore
from ragdeck.console.ingest.redaction import redact
from ragdeck.console.interfaces import CollectionAdmin, Embedder, VectorSearch
from ragdeck.console.settings import Settings
from ragdeck.errors import AliasConflict, CollectionExists, DimensionMismatch, InputError
from ragdeck.services.common import check_hnsw, check_name
from ragdeck.services.types import HnswConfig, VectorPoint

# progress(stage, done, total): stage is "load", "chunk", "embed" or "index".
Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    """What an ingest did, with timings in seconds."""

    collection: str
    alias: str | None
    documents: int
    chunks: int
    redactions: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    appended: bool = False
    alias_before: str | None = None  # where the alias pointed when it moved (None: it did not exist)
    cleared_stale: dict[str, Any] | None = None  # the marker of a killed ingest whose partial was cleared
    empty_documents: list[str] = field(default_factory=list)  # ids of documents with no text (not indexed)

    @property
    def chunks_per_second(self) -> float:
        """End-to-end throughput."""
        total = self.seconds.get("total", 0.0)
        return self.chunks / total if total else 0.0


def prepare_chunks(
    source: Path | Sequence[Document], chunking: ChunkingConfig, progress: Progress | None = None
) -> tuple[int, list[Chunk], dict[str, int], list[str]]:
    """Load (when ``source`` is a path), redact and chunk every document: (documents, chunks, redaction
    counts, ids of the documents with no text, which give no chunk and are not indexed)."""
    documents = load_documents(source) if isinstance(source, Path | str) else list(source)
    redactions: Counter[str] = Counter()
    chunks: list[Chunk] = []
    empty: list[str] = []
    for done, doc in enumerate(documents, start=1):
        cleaned = redact(doc.text)
        redactions.update(cleaned.counts)
        doc.text = cleaned.text
        found = chunk_document(doc, chunking)
        if not found:
            empty.append(doc.doc_id)
        chunks.extend(found)
        if progress:
            progress("chunk", done, len(documents))
    if not chunks:
        where = source if isinstance(source, Path | str) else "the corpus"
        raise InputError(f"no text to index in {where}: every document is empty")
    return len(documents), chunks, dict(redactions), empty


def embed_and_upsert(
    chunks: Sequence[Chunk],
    store: CollectionAdmin,
    embedder: Embedder,
    collection: str,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> None:
    """Embed chunk texts in batches and upsert each batch as it is ready.

    Batches are formed longest text first (as sentence-transformers does inside one ``encode`` call), so
    texts of similar length share a batch and little compute goes to padding; the order of points in the
    collection does not matter.
    """
    chunks = sorted(chunks, key=lambda c: len(c.text), reverse=True)
    for begin in range(0, len(chunks), batch_size):
        batch = chunks[begin : begin + batch_size]
        vectors = embedder.embed_documents([c.text for c in batch])
        store.upsert(
            collection,
            [
                VectorPoint(id=c.chunk_id, vector=v.tolist(), payload=c.payload())
                for c, v in zip(batch, vectors, strict=True)
            ],
        )
        if progress:
            progress("embed", begin + len(batch), len(chunks))


def ingest(
    path: Path | Sequence[Document],
    store: IngestStore,
    embedder: Embedder,
    *,
    collection: str,
    alias: str | None = None,
    chunking: ChunkingConfig | None = None,
    hnsw: HnswConfig | None = None,
    append: bool = False,
    batch_size: int = 64,
    progress: Progress | None = None,
    journal: IngestJournal | None = None,
) -> IngestReport:
    """Index the corpus at ``path`` (or the documents given) into ``collection`` and, when given, point
    ``alias`` at it. Documents with no text give no chunk; the report lists them (``empty_documents``).

    The collection must not exist unless ``append`` is set (then its dimension must match the embedder).
    Names, the alias target and the HNSW settings are checked before any document is read or embedded.
    With a ``journal``, a partial collection an earlier, killed ingest left is deleted first (see
    ``ingest.journal.clear_stale``). The alias moves only from where it pointed just before (compare-and-set).
    """
    chunking = chunking or ChunkingConfig()
    hnsw = hnsw or HnswConfig()
    check_targets(store, collection, alias, hnsw)
    stale = ingest_journal.clear_stale(store, journal, collection) if journal is not None else None
    exists = store.collection_exists(collection)
    if exists and not append:
        raise CollectionExists(
            f"collection '{collection}' already exists: pick a new name, or add to it with --append"
        )
    if append and exists:
        dimension = store.collection_info(collection).dimension
        if dimension != embedder.dimension:
            raise DimensionMismatch(
                f"collection '{collection}' holds {dimension}-d vectors but the embedder "
                f"'{embedder.model_name}' makes {embedder.dimension}-d ones"
            )

    started = time.perf_counter()
    documents, chunks, redactions, empty = prepare_chunks(path, chunking, progress)
    prepared = time.perf_counter()

    created = False
    before: str | None = None
    conflict: AliasConflict | None = None
    if journal is not None:
        ingest_journal.begin(journal, collection, created=not exists)
    try:
        if not exists:
            store.create_collection(collection, embedder.dimension, hnsw)
            created = True
        embed_and_upsert(chunks, store, embedder, collection, batch_size=batch_size, progress=progress)
        embedded = time.perf_counter()
        if progress:
            progress("index", 0, 1)
        store.finish_indexing(collection)
        if progress:
            progress("index", 1, 1)
        if alias:
            before = store.list_aliases().get(alias)
            if before is not None and not store.collection_exists(before):
                before = None  # an alias left pointing at a deleted collection counts as none
            try:
                store.compare_and_set_alias(alias, collection, expected=before)
            except AliasConflict as exc:  # moved by someone else meanwhile: keep the complete collection
                conflict = exc
    except BaseException:
        if created:
            store.delete_collection(collection)
        if journal is not None:
            journal.remove(collection)
        raise
    if journal is not None:
        journal.remove(collection)
    if conflict is not None:
        raise AliasConflict(
            conflict.alias,
            conflict.expected,
            conflict.actual,
            hint=f"'{collection}' is complete and kept: see who moved it (`ragdeck index history`), then "
            f"point the alias at '{collection}' yourself (`ragdeck index swap {collection}`)",
        )
    finished = time.perf_counter()
    return IngestReport(
        collection=collection,
        alias=alias,
        documents=documents,
        chunks=len(chunks),
        redactions=redactions,
        appended=exists,
        alias_before=before,
        cleared_stale=stale,
        empty_documents=empty,
        seconds={
            "prepare": prepared - started,
            "embed_upsert": embedded - prepared,
            "index": finished - embedded,
            "total": finished - started,
        },
    )


def check_targets(store: VectorSearch, collection: str, alias: str | None, hnsw: HnswConfig) -> None:
    """The cheap checks of an ingest, before its expensive work: valid collection and alias names, an alias
    that is neither the collection's own name nor another collection, HNSW settings Qdrant accepts."""
    check_name(collection)
    check_hnsw(hnsw)
    if alias is None:
        return
    check_name(alias, "alias")
    if alias == collection or store.collection_exists(alias):
        raise InputError(f"'{alias}' is a collection, so it cannot also be an alias; pick another alias name")


def chunking_from(
    settings: Settings,
    *,
    min_chars: int | None = None,
    max_chars: int | None = None,
    overlap: float | None = None,
    prefix_title: bool = True,
) -> ChunkingConfig:
    """The chunking configured in settings, with the sizes and overlap given here instead (None, or 0 for a
    size, keeps the setting); ``prefix_title`` prefixes both the title and the section heading."""
    return ChunkingConfig(
        min_chars=min_chars or settings.chunk_min_chars,
        max_chars=max_chars or settings.chunk_max_chars,
        overlap=settings.chunk_overlap if overlap is None else overlap,
        prefix_title=prefix_title,
        prefix_section=prefix_title,
    )


def hnsw_from(settings: Settings, *, m: int | None = None, ef_construct: int | None = None) -> HnswConfig:
    """The HNSW build parameters configured in settings, with ``m`` / ``ef_construct`` given here instead
    (None or 0 keeps the setting)."""
    return HnswConfig(m=m or settings.hnsw_m, ef_construct=ef_construct or settings.hnsw_ef_construct)


def next_version_name(store: VectorSearch, alias: str) -> str:
    """The next free physical name ``{alias}_v{N}`` (DESIGN.md's index versions)."""
    taken = {info.name for info in store.list_collections()}
    n = 1
    while f"{alias}_v{n}" in taken:
        n += 1
    return f"{alias}_v{n}"
