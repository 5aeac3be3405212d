"""Rerankers: TEI's ``/rerank`` (``TeiReranker``) or a local cross-encoder (``CrossEncoderReranker``).

Both return one score per text in input order, higher = more relevant, and satisfy
``ragdeck.console.retrieval.ports.Reranker``. TEI (``raw_scores=false``) and the cross-encoder both apply the
model's sigmoid, so scores lie in [0, 1] for single-logit rerankers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.batching import MicroBatcher
from ragdeck.services.common import LazyModel, TeiClient, installed_version, quiet_model_loading
from ragdeck.services.http import RetryPolicy, TeiEndpoint
from ragdeck.services.redact import redact_url
from ragdeck.services.threads import apply_torch_threads
from ragdeck.services.types import ComponentHealth

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

# Local models load from disk only: never let huggingface_hub call out. Must precede its first import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class TeiReranker(TeiClient[TeiEndpoint]):
    """Scores from a text-embeddings-inference reranker (``POST /rerank``, raw_scores off, truncate on).

    Texts go in requests of at most ``min(batch_size, max_client_batch_size from /info)``; TEI answers each
    sorted by score with the text's ``index``, which maps the scores back to input order. Concurrent calls
    are not combined: ``/rerank`` takes one query per request (TEI batches concurrent requests itself).
    """

    mode: str = "server"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        batch_size: int = 32,
        client: httpx.Client | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"Rerank batch size must be >= 1, got {batch_size}.")
        self.endpoint = TeiEndpoint(
            base_url,
            timeout_s=timeout_s,
            retry=retry,
            client=client,
            setting="TEI_RERANK_URL",
            component="reranker",
        )
        self.batch_size = batch_size
        self._model_name: str | None = None

    def _rerank_batch(self, query: str, texts: list[str]) -> list[float]:
        body = {"query": query, "texts": texts, "raw_scores": False, "truncate": True, "return_text": False}
        data: Any = self.endpoint.post("/rerank", body)
        url = self.endpoint.url("/rerank")
        scores: list[float | None] = [None] * len(texts)
        try:
            for rank in data:
                index = int(rank["index"])
                if not 0 <= index < len(texts) or scores[index] is not None:
                    raise ValueError(f"index {index} out of range or repeated")
                scores[index] = float(rank["score"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ServiceUnavailable(
                f"{self.endpoint.source}: POST {redact_url(url)} "
                f"answered an unexpected body ({exc}); expected [{{index, score}}, ...] for "
                f"{len(texts)} texts. Check that TEI_RERANK_URL points at a TEI reranker."
            ) from None
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            raise ServiceUnavailable(
                f"{self.endpoint.source}: POST {redact_url(url)} "
                f"scored {len(texts) - len(missing)} of {len(texts)} texts (missing indices "
                f"{missing[:10]}). Check the server's version and logs."
            )
        return [float(s) for s in scores if s is not None]

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text, in input order (higher is more relevant)."""
        texts = list(texts)
        if not texts:
            return []
        size = self.endpoint.max_batch(self.batch_size)
        scores: list[float] = []
        for start in range(0, len(texts), size):
            scores.extend(self._rerank_batch(query, texts[start : start + size]))
        return scores

    def health(self) -> ComponentHealth:
        """``/health`` and ``/info`` (version, model, that it is a reranker); never raises."""
        probe = self.endpoint.probe("reranker")
        return ComponentHealth(
            component="reranker",
            mode=self.mode,
            ok=probe.ok,
            detail=probe.detail,
            version=probe.version,
            model=probe.model,
            endpoint=self.endpoint.shown_url,
        )


class CrossEncoderReranker:
    """A local ``sentence_transformers.CrossEncoder`` model directory (e.g. a downloaded bge-reranker).

    A missing directory, or one without ``config.json``, raises ConfigError here; the model loads on first
    use, once per object (a directory that still is not a loadable model raises ConfigError then). Loading
    sets torch's CPU threads for the process (``threads``; unset = sized to the usable cores).

    Every prediction runs on one thread; with ``batching`` on, concurrent calls of at most ``max_pairs``
    (query, text) pairs in all are scored in one ``predict`` (gathering for up to ``batch_wait_ms`` only while
    others are queued); each caller gets the scores of its own pairs.
    """

    mode: str = "local"

    def __init__(
        self,
        model_dir: Path | str,
        device: str = "cpu",
        batch_size: int = 32,
        *,
        threads: int | None = None,
        batching: bool = True,
        batch_wait_ms: float = 2.0,
        max_pairs: int = 256,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"Rerank batch size must be >= 1, got {batch_size}.")
        self.model_dir = Path(model_dir).expanduser()
        where = f"Reranker model directory {str(self.model_dir)!r}"
        fix = "Set RAGDECK_RERANKER_MODEL_DIR to a local cross-encoder model directory (or unset it)."
        if not self.model_dir.exists():
            raise ConfigError(f"{where} does not exist. {fix}")
        if not self.model_dir.is_dir():
            raise ConfigError(f"{where} is a file, not a directory. {fix}")
        if not (self.model_dir / "config.json").is_file():
            raise ConfigError(f"{where} is not a model: it has no config.json. {fix}")
        self.model_name: str = self.model_dir.name
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self._model: LazyModel[CrossEncoder] = LazyModel(self._load)
        self.batcher: MicroBatcher[tuple[str, str], float] = MicroBatcher(
            self._predict, wait_ms=batch_wait_ms, max_items=max_pairs if batching else 1, name="rerank"
        )

    @property
    def model(self) -> CrossEncoder:
        """The loaded ``CrossEncoder`` (loaded on first access, once)."""
        return self._model.get()

    def _load(self) -> CrossEncoder:
        from sentence_transformers import CrossEncoder

        apply_torch_threads(self.threads)
        try:
            with quiet_model_loading():
                model = CrossEncoder(str(self.model_dir), device=self.device, local_files_only=True)
        except Exception as exc:
            raise ConfigError(
                f"Could not load a cross-encoder from {str(self.model_dir)!r} on device {self.device!r}: "
                f"{type(exc).__name__}: {exc}. Set RAGDECK_RERANKER_MODEL_DIR to a cross-encoder model "
                "directory (config.json, weights, tokenizer)."
            ) from exc
        labels = getattr(model, "num_labels", 1)
        if labels != 1:
            raise ConfigError(
                f"{str(self.model_dir)!r} is a classifier with {labels} labels, not a reranker (1 score per "
                "pair). Set RAGDECK_RERANKER_MODEL_DIR to a cross-encoder reranker."
            )
        return model

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text, in input order (the model's sigmoid: [0, 1] for one logit)."""
        texts = list(texts)
        if not texts:
            return []
        _ = self.model  # load here, in the caller's thread, not on the inference thread
        pairs = [(query, text) for text in texts]
        if len(pairs) <= self.batcher.max_items:
            return self.batcher(pairs)
        return self.batcher.alone(lambda: self._predict(pairs))

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        scores = self.model.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return [float(s) for s in np.asarray(scores, dtype=np.float32).reshape(len(pairs))]

    def health(self) -> ComponentHealth:
        """Never loads the model: a loaded one scores one pair, one not loaded yet is reported so, a failed
        load shows its error. Never raises."""
        base = {"component": "reranker", "mode": self.mode, "model": self.model_name}
        version = f"sentence-transformers {installed_version('sentence-transformers')}"
        if self._model.error is not None:
            return ComponentHealth(**base, ok=False, detail=str(self._model.error), version=version)
        if not self._model.loaded:
            detail = f"in process on {self.device}, {self.model_dir}, not loaded yet: loads on first rerank"
            return ComponentHealth(**base, ok=True, detail=detail, version=version)
        try:
            self.rerank("health probe", ["probe passage"])
            detail = f"in process on {self.device}, {self.model_dir}, loaded"
            return ComponentHealth(**base, ok=True, detail=detail, version=version)
        except Exception as exc:
            return ComponentHealth(**base, ok=False, detail=str(exc), version=version)
