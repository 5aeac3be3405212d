"""Chunks in a tiny collection behind the serving alias, for the Review and Publish tests (and what the
pages render as escaped HTML)."""

from __future__ import annotations

from ragdeck.console.settings import Settings
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig, VectorPoint

# c2's text carries raw HTML and Streamlit directives: they must show as the characters they are.
CHUNKS = {
    "c1": ("Rules", "Recording", "A recording rule precomputes an expression.\nIts result is a new series."),
    "c2": (
        "Rules",
        "Alerting",
        "<b>bold?</b> :red[not red]\n**not bold**\nline three\nline four, only in full",
    ),
    "c9": ("TEI", "", "TEI serves embeddings over HTTP."),
}


def seed_chunks() -> None:
    """A tiny collection behind the serving alias, holding the chunks the tests label (vectors unused)."""
    with EmbeddedQdrantStore(Settings().qdrant_dir) as store:
        store.create_collection("rag_chunks_v1", 4, HnswConfig(m=8), lexical=False)
        store.upsert(
            "rag_chunks_v1",
            [
                VectorPoint(cid, [1.0, float(n), 0.0, 0.5], {"title": t, "section": s, "body": body})
                for n, (cid, (t, s, body)) in enumerate(CHUNKS.items())
            ],
        )
        store.set_alias(Settings().alias, "rag_chunks_v1")


def html_bodies(at) -> list[str]:
    """The bodies of the ``st.html`` blocks on the page (where text is shown escaped)."""
    return [h.proto.body for h in at.get("html")]
