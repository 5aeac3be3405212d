"""The demo collection: the shipped Prometheus and TEI documentation, indexed behind the serving alias."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ragdeck.console.ingest.pipeline import (
    IngestReport,
    Progress,
    chunking_from,
    hnsw_from,
    ingest,
    next_version_name,
)
from ragdeck.console.ingest.ports import IngestStore
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


def ensure_demo(stack: DemoStack, progress: Progress | None = None) -> IngestReport | None:
    """Build the demo collection behind ``settings.alias`` unless that alias already resolves.

    Returns the ingest report, or None when there was nothing to do.
    """
    alias = stack.settings.alias
    try:
        stack.store.resolve(alias)
        return None
    except CollectionNotFound:
        pass
    return ingest(
        DEMO_CORPUS,
        stack.store,
        stack.embedder,
        collection=next_version_name(stack.store, alias),
        alias=alias,
        chunking=chunking_from(stack.settings),
        hnsw=hnsw_from(stack.settings),
        batch_size=stack.settings.embed_batch_size,
        progress=progress,
    )
