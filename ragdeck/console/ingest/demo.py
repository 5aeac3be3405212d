"""The demo collection: the shipped Prometheus and TEI documentation, indexed behind the serving alias."""

from __future__ import annotations

from pathlib import Path

from ragdeck.console.ingest.pipeline import (
    IngestReport,
    Progress,
    chunking_from,
    hnsw_from,
    ingest,
    next_version_name,
)
from ragdeck.console.wiring import Stack
from ragdeck.errors import CollectionNotFound

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "demo_corpus"


def ensure_demo(stack: Stack, progress: Progress | None = None) -> IngestReport | None:
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
