"""The demo collection: the shipped Prometheus and TEI documentation, indexed behind the serving alias."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ragdeck.console.ingest import journal as ingest_journal
from ragdeck.console.ingest.pipeline import (
    IngestReport,
    Progress,
    chunking_from,
    hnsw_from,
    ingest,
    next_version_name,
)
from ragdeck.console.ingest.ports import IngestJournal, IngestStore
from ragdeck.console.interfaces import Embedder
from ragdeck.console.settings import Settings
from ragdeck.errors import CollectionNotFound

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "demo_corpus"


class DemoStack(Protocol):
    """What the demo needs of ``wiring.Stack``: the settings, the vector store and the embedder."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> IngestStore: ...

    @property
    def embedder(self) -> Embedder: ...


def ensure_demo(
    stack: DemoStack, progress: Progress | None = None, *, journal: IngestJournal | None = None
) -> IngestReport | None:
    """Build the demo collection behind ``settings.alias`` unless that alias already resolves.

    With a ``journal``, the build is marked in progress, and a version a killed build left half made is
    deleted first, so the retry builds ``{alias}_v1`` again rather than a second version beside a partial
    one (CollectionExists while that build still runs). Returns the ingest report, or None when there was
    nothing to do.
    """
    alias = stack.settings.alias
    try:
        stack.store.resolve(alias)
        return None
    except CollectionNotFound:
        pass
    cleared = None
    if journal is not None:
        for info in stack.store.list_collections():
            number = info.name.removeprefix(f"{alias}_v")
            if number != info.name and number.isdigit() and journal.get(info.name) is not None:
                cleared = ingest_journal.clear_stale(stack.store, journal, info.name) or cleared
    report = ingest(
        DEMO_CORPUS,
        stack.store,
        stack.embedder,
        collection=next_version_name(stack.store, alias),
        alias=alias,
        chunking=chunking_from(stack.settings),
        hnsw=hnsw_from(stack.settings),
        batch_size=stack.settings.embed_batch_size,
        progress=progress,
        journal=journal,
    )
    if cleared is not None and report.cleared_stale is None:
        report.cleared_stale = cleared
    return report
