"""Builds the adapters from settings: the one place that decides embedded vs server per component."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ragdeck.console.interfaces import Embedder, Reranker, VectorStore
from ragdeck.console.settings import Settings
from ragdeck.services.types import ComponentHealth


def build_store(settings: Settings) -> VectorStore:
    """Qdrant server when ``QDRANT_URL`` is set, else the embedded engine under the data directory."""
    if settings.qdrant_url:
        from ragdeck.services.qdrant_server import QdrantServerStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantServerStore.connect(
            settings.qdrant_url, key, settings.http_timeout_s, meta_dir=settings.data_dir / "qdrant-server"
        )
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    return EmbeddedQdrantStore(settings.qdrant_dir)


def build_embedder(settings: Settings) -> Embedder:
    """TEI when ``TEI_URL`` is set, else sentence-transformers in process (packaged MiniLM by default)."""
    if settings.tei_url:
        from ragdeck.services.embedders import TeiEmbedder
        from ragdeck.services.http import RetryPolicy

        return TeiEmbedder(
            settings.tei_url,
            timeout_s=settings.http_timeout_s,
            retry=RetryPolicy.from_retries(settings.http_retries),
            batch_size=settings.embed_batch_size,
        )
    from ragdeck.services.embedders import LocalEmbedder

    return LocalEmbedder(
        settings.embedding_model, device=settings.embed_device, batch_size=settings.embed_batch_size
    )


def build_reranker(settings: Settings) -> Reranker | None:
    """TEI /rerank when ``TEI_RERANK_URL`` is set, a local CrossEncoder directory when named, else none."""
    if settings.tei_rerank_url:
        from ragdeck.services.http import RetryPolicy
        from ragdeck.services.rerankers import TeiReranker

        return TeiReranker(
            settings.tei_rerank_url,
            timeout_s=settings.http_timeout_s,
            retry=RetryPolicy.from_retries(settings.http_retries),
        )
    if settings.reranker_model_dir:
        from ragdeck.services.rerankers import CrossEncoderReranker

        return CrossEncoderReranker(settings.reranker_model_dir, device=settings.embed_device)
    return None


@dataclass
class Stack:
    """The adapters one process works with. The embedder loads on first use (it takes seconds)."""

    settings: Settings
    store: VectorStore
    reranker: Reranker | None
    _embedder: Embedder | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def embedder(self) -> Embedder:
        """The embedder, built on first use."""
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.settings)
            return self._embedder

    def health(self) -> list[ComponentHealth]:
        """Health of every component, for the Stack page and ``ragdeck stack``."""
        rows = [self.store.health(), self.embedder.health()]
        if self.reranker is not None:
            rows.append(self.reranker.health())
        else:
            rows.append(
                ComponentHealth(
                    component="reranker",
                    mode="none",
                    ok=True,
                    detail="no reranker configured: results keep vector order "
                    "(set TEI_RERANK_URL or RAGDECK_RERANKER_MODEL_DIR)",
                )
            )
        return rows

    def close(self) -> None:
        """Release the vector store's files and connections."""
        self.store.close()


def build_stack(settings: Settings | None = None) -> Stack:
    """All adapters for one process, from settings (``Settings()`` when not given)."""
    settings = settings or Settings()
    return Stack(settings=settings, store=build_store(settings), reranker=build_reranker(settings))
