"""A fake text-embeddings-inference server for tests, backed by the real local embedding model.

It speaks TEI's documented shapes (docs/openapi.json of huggingface/text-embeddings-inference):
``POST /embed`` -> list of float lists, ``POST /rerank`` -> ``[{"index", "score"(, "text")}]`` sorted by
score, ``GET /info``, ``GET /health``; errors as ``{"error", "error_type"}`` with TEI's statuses
(413 validation, 422 tokenizer, 424 backend, 429 overloaded, 503 unhealthy, 400 empty). Knobs: fail the next
N requests with any status (optionally with ``Retry-After``), add a delay, count requests and batch sizes.

``run_fake_tei(embedder)`` serves it with uvicorn on 127.0.0.1 and a free port in a background thread;
pass the session-scoped ``local_embedder`` fixture so the model loads once per test session.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from servers import serve_asgi

from ragdeck.services.embedders import PACKAGED_MODEL_NAME, LocalEmbedder

WORK_PATHS = ("/embed", "/rerank")
_ERROR_TYPES = {
    400: "empty",
    413: "validation",
    422: "tokenizer",
    424: "backend",
    429: "overloaded",
    503: "unhealthy",
}
_ERROR_TEXTS = {
    400: "`inputs` cannot be empty",
    413: "Batch size error",
    422: "Tokenization error",
    424: "Inference failed",
    429: "Model is overloaded",
    503: "unhealthy",
}


@functools.cache
def shared_local_embedder() -> LocalEmbedder:
    """One packaged all-MiniLM-L6-v2 per process, for ``run_fake_tei`` when no embedder is passed.

    In tests pass the session-scoped ``local_embedder`` fixture instead (tests/conftest.py), so the
    fake and the test share one loaded model.
    """
    return LocalEmbedder()


def rerank_score(cosine: float, *, raw: bool = False) -> float:
    """The fake reranker's score for a query/text cosine: a logit ``8*cos - 2``, sigmoid unless ``raw``."""
    logit = 8.0 * cosine - 2.0
    return logit if raw else 1.0 / (1.0 + math.exp(-logit))


@dataclass
class Fault:
    """One injected failure."""

    status: int
    retry_after: str | None = None
    message: str | None = None
    paths: tuple[str, ...] = WORK_PATHS


@dataclass
class FakeTeiState:
    """Configuration, fault knobs and counters of one fake server (thread-safe)."""

    model_type: str = "embedding"  # "embedding" | "reranker"
    model_id: str = PACKAGED_MODEL_NAME
    max_client_batch_size: int = 8
    max_input_length: int = 256
    auto_truncate: bool = True
    version: str = "1.7.1"
    delay_s: float = 0.0
    unhealthy: bool = False
    requests: Counter[str] = field(default_factory=Counter)  # path -> requests received (failed ones too)
    batch_sizes: dict[str, list[int]] = field(default_factory=dict)  # path -> inputs per answered request
    faults: deque[Fault] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def fail_next(
        self,
        n: int,
        status: int = 503,
        *,
        retry_after: str | None = None,
        message: str | None = None,
        paths: tuple[str, ...] = WORK_PATHS,
    ) -> None:
        """Answer the next ``n`` requests to ``paths`` with ``status`` (TEI error body, maybe Retry-After)."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after, message, paths) for _ in range(n))

    def reset(self) -> None:
        """Clear faults, delay, health flag and counters (configuration stays)."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.batch_sizes.clear()
            self.delay_s = 0.0
            self.unhealthy = False

    def count(self, path: str) -> None:
        """Count a request that never reached the fault knobs (e.g. a malformed body)."""
        with self.lock:
            self.requests[path] += 1

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            self.requests[path] += 1
            if self.faults and path in self.faults[0].paths:
                return self.faults.popleft()
            return None

    def _record_batch(self, path: str, size: int) -> None:
        with self.lock:
            self.batch_sizes.setdefault(path, []).append(size)

    def info(self) -> dict[str, Any]:
        """The ``/info`` body (fields of TEI's ``Info`` schema)."""
        if self.model_type == "reranker":
            model_type: dict[str, Any] = {
                "reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}
            }
        else:
            model_type = {"embedding": {"pooling": "mean"}}
        return {
            "model_id": self.model_id,
            "model_sha": None,
            "model_dtype": "float32",
            "model_type": model_type,
            "max_concurrent_requests": 512,
            "max_input_length": self.max_input_length,
            "max_batch_tokens": 16384,
            "max_batch_requests": None,
            "max_client_batch_size": self.max_client_batch_size,
            "auto_truncate": self.auto_truncate,
            "tokenization_workers": 1,
            "version": self.version,
            "sha": None,
            "docker_label": None,
        }


def tei_error(
    status: int, error: str | None = None, error_type: str | None = None, **headers: str
) -> Response:
    """A TEI error answer: ``{"error", "error_type"}`` with the status TEI uses for that type."""
    body = {
        "error": error or _ERROR_TEXTS.get(status, "error"),
        "error_type": error_type or _ERROR_TYPES.get(status, "backend"),
    }
    return JSONResponse(body, status_code=status, headers=headers or None)


@functools.cache
def _torch_model(path: str) -> Any:
    """The model on sentence-transformers (torch), once per path: the fake reads its modules (the pooled
    vector before Normalize for normalize=false), which ONNX Runtime's graph does not expose."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


def create_app(embedder: LocalEmbedder, state: FakeTeiState) -> FastAPI:
    """The fake TEI app; handlers are sync so the model runs in the threadpool."""
    app = FastAPI()
    model = embedder.model if embedder.runtime == "torch" else _torch_model(str(embedder.path))

    def fault_or_delay(path: str) -> Response | None:
        fault = state._take_fault(path)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return tei_error(fault.status, fault.message, **headers)
        if state.delay_s > 0 and path in WORK_PATHS:
            state.stop.wait(state.delay_s)
        return None

    def token_count(text: str) -> int:
        return len(model.tokenizer(text, verbose=False)["input_ids"])

    def encode(texts: list[str], normalize: bool) -> np.ndarray:
        if normalize:
            return model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        # The packaged model ends in a Normalize module; TEI's normalize=false gives the pooled vector.
        prepare = getattr(model, "preprocess", None) or model.tokenize
        features = prepare(texts)
        with torch.no_grad():
            for module in model:
                if type(module).__name__ != "Normalize":
                    features = module(features)
        return features["sentence_embedding"].cpu().numpy()

    def too_long(texts: list[str], truncate: bool) -> Response | None:
        if truncate:
            return None
        for text in texts:
            n = token_count(text)
            if n > state.max_input_length:
                msg = f"`inputs` must have less than {state.max_input_length} tokens. Given: {n}"
                return tei_error(413, msg, "validation")
        return None

    def batch_too_large(n: int) -> Response | None:
        if n > state.max_client_batch_size:
            msg = f"batch size {n} > maximum allowed batch size {state.max_client_batch_size}"
            return tei_error(413, msg, "validation")
        return None

    async def json_body(request: Request, required: tuple[str, ...]) -> dict[str, Any] | Response:
        # axum's Json extractor answers 422 in plain text when the body does not fit the schema.
        try:
            body = await request.json()
        except ValueError:
            return PlainTextResponse("Failed to parse the request body as JSON", status_code=400)
        missing = [k for k in required if not isinstance(body, dict) or k not in body]
        if missing:
            msg = f"Failed to deserialize the JSON body into the target type: missing field `{missing[0]}`"
            return PlainTextResponse(msg, status_code=422)
        return body

    @app.get("/health")
    def health() -> Response:
        if (answer := fault_or_delay("/health")) is not None:
            return answer
        if state.unhealthy:
            return tei_error(503, "unhealthy", "unhealthy")
        return Response(status_code=200)

    @app.get("/info")
    def info() -> Response:
        if (answer := fault_or_delay("/info")) is not None:
            return answer
        return JSONResponse(state.info())

    @app.post("/embed")
    async def embed(request: Request) -> Response:
        body = await json_body(request, ("inputs",))
        if isinstance(body, Response):
            state.count("/embed")
            return body
        return await _threaded(_embed, body)

    def _embed(body: dict[str, Any]) -> Response:
        if (answer := fault_or_delay("/embed")) is not None:
            return answer
        if state.model_type != "embedding":
            return tei_error(424, "model is not an embedding model", "backend")
        inputs = body["inputs"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return PlainTextResponse("Failed to deserialize the JSON body: `inputs` must be strings", 422)
        if not texts or any(t == "" for t in texts):
            return tei_error(400, "`inputs` cannot be empty", "empty")
        if (answer := batch_too_large(len(texts))) is not None:
            return answer
        truncate = state.auto_truncate if body.get("truncate") is None else bool(body["truncate"])
        if (answer := too_long(texts, truncate)) is not None:
            return answer
        vectors = encode(texts, bool(body.get("normalize", True)))
        state._record_batch("/embed", len(texts))
        return JSONResponse(np.asarray(vectors, dtype=np.float32).tolist())

    @app.post("/rerank")
    async def rerank(request: Request) -> Response:
        body = await json_body(request, ("query", "texts"))
        if isinstance(body, Response):
            state.count("/rerank")
            return body
        return await _threaded(_rerank, body)

    def _rerank(body: dict[str, Any]) -> Response:
        if (answer := fault_or_delay("/rerank")) is not None:
            return answer
        texts = body["texts"]
        if not texts:
            return tei_error(413, "`texts` cannot be empty", "validation")
        if state.model_type != "reranker":
            return tei_error(424, "model is not a re-ranker model", "backend")
        if (answer := batch_too_large(len(texts))) is not None:
            return answer
        truncate = state.auto_truncate if body.get("truncate") is None else bool(body["truncate"])
        query = str(body["query"])
        pairs = [f"{query} {text}" for text in texts]  # TEI checks the length of each (query, text) pair
        if (answer := too_long(pairs, truncate)) is not None:
            return answer
        vectors = encode([query, *texts], normalize=True)
        cosines = vectors[1:] @ vectors[0]
        raw = bool(body.get("raw_scores", False))
        ranks: list[dict[str, Any]] = []
        for index, cosine in enumerate(cosines):
            rank: dict[str, Any] = {"index": index, "score": rerank_score(float(cosine), raw=raw)}
            if body.get("return_text", False):
                rank["text"] = texts[index]
            ranks.append(rank)
        ranks.sort(key=lambda r: r["score"], reverse=True)
        state._record_batch("/rerank", len(texts))
        return JSONResponse(ranks)

    return app


async def _threaded(fn: Any, body: dict[str, Any]) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, body)


@dataclass
class FakeTei:
    """A running fake server: its base URL and state."""

    url: str
    state: FakeTeiState


@contextmanager
def run_fake_tei(embedder: LocalEmbedder | None = None, **state: Any) -> Iterator[FakeTei]:
    """Serve a fake TEI on 127.0.0.1:<free port> in a background thread; stop it on exit.

    ``state`` sets ``FakeTeiState`` fields (``model_type="reranker"``, ``max_client_batch_size=4``, ...).
    """
    fake_state = FakeTeiState(**state)
    app = create_app(embedder or shared_local_embedder(), fake_state)
    with serve_asgi(app, "fake-tei", on_stop=fake_state.stop.set) as origin:
        yield FakeTei(url=origin, state=fake_state)
