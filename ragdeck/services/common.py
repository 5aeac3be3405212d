"""What the service adapters share; they may import this module (and ``files``), never each other's.

Imports nothing from ragdeck but ``ragdeck.errors`` and ``ragdeck.services`` ``types`` and ``files``.

- names and HNSW settings: ``is_valid_name``, ``check_name``, ``check_hnsw``;
- files: ``write_json_atomic`` and ``fsync_dir``, from ``ragdeck.services.files`` (atomic writes), kept here
  for the adapters that import them from this module;
- points: ``chunk_id_of``, ``stored_point``, ``scored_hit``, ``in_order``, ``check_batch_size``,
  ``dimension_mismatch``;
- local models: ``LazyModel`` (load once, remember the failure), ``quiet_model_loading``;
- TEI clients: ``TeiClient`` (base URL, served model name, ``close``, ``with``);
- processes: ``stop_process``, ``pid_alive``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from ragdeck.errors import ConfigError, DimensionMismatch, InputError
from ragdeck.services.files import fsync_dir, write_json_atomic
from ragdeck.services.types import HnswConfig, ScoredHit, StoredPoint

__all__ = [
    "NAME_RE",
    "LazyModel",
    "TeiClient",
    "check_batch_size",
    "check_hnsw",
    "check_name",
    "chunk_id_of",
    "dimension_mismatch",
    "fsync_dir",
    "in_order",
    "is_valid_name",
    "pid_alive",
    "quiet_model_loading",
    "scored_hit",
    "stored_point",
    "write_json_atomic",
]

T = TypeVar("T")

# ------------------------------------------------------------------ names and HNSW settings

# Qdrant's collection-name rule, restricted to what is safe as a directory name: 1-255 ASCII letters,
# digits, '_', '-' or '.', not starting with '.'. Collections, aliases and snapshots all follow it.
NAME_RE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,254}", re.ASCII)


def is_valid_name(name: object) -> bool:
    """True when ``name`` is a string that is a valid collection, alias or snapshot name."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def check_name(name: str, what: str = "collection") -> str:
    """Raise InputError unless ``name`` is a valid collection or alias name; return it."""
    if not is_valid_name(name):
        raise InputError(
            f"invalid {what} name {name!r}: use 1-255 letters, digits, '_', '-' or '.', not starting with '.'"
        )
    return name


def check_hnsw(hnsw: HnswConfig) -> None:
    """Raise InputError for HNSW settings Qdrant would refuse (or silently misread)."""
    if hnsw.m < 0 or hnsw.ef_construct < 4 or hnsw.full_scan_threshold < 0:
        raise InputError(
            f"invalid HNSW settings m={hnsw.m}, ef_construct={hnsw.ef_construct}, "
            f"full_scan_threshold={hnsw.full_scan_threshold}: use m >= 0, ef_construct >= 4, "
            f"full_scan_threshold >= 0"
        )


# ------------------------------------------------------------------ points


def chunk_id_of(point_id: Any, payload: Mapping[str, Any] | None) -> str:
    """The chunk id of a stored point: the payload's ``chunk_id``, else the point id itself."""
    chunk_id = (payload or {}).get("chunk_id")
    return str(chunk_id) if chunk_id is not None else str(point_id)


def stored_point(point_id: Any, payload: Mapping[str, Any] | None, vector: list[float] | None) -> StoredPoint:
    """A ``StoredPoint`` from an engine's record: chunk id, a copy of the payload, the vector as given."""
    payload = dict(payload or {})
    return StoredPoint(id=chunk_id_of(point_id, payload), payload=payload, vector=vector)


def scored_hit(point_id: Any, score: float, payload: Mapping[str, Any] | None) -> ScoredHit:
    """A ``ScoredHit`` from an engine's search result: chunk id, the score, a copy of the payload."""
    payload = dict(payload or {})
    return ScoredHit(id=chunk_id_of(point_id, payload), score=float(score), payload=payload)


def in_order(points: Iterable[StoredPoint], wanted: Sequence[str]) -> list[StoredPoint]:
    """``points`` in the order of the chunk ids ``wanted``; ids with no point are skipped."""
    by_id = {p.id: p for p in points}
    return [by_id[i] for i in wanted if i in by_id]


def check_batch_size(batch_size: int) -> None:
    """Raise InputError unless ``batch_size`` is at least 1 (``iter_points``)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")


def dimension_mismatch(collection: str, expected: int, got: int) -> DimensionMismatch:
    """The error for points whose vectors do not have the collection's size."""
    return DimensionMismatch(
        f"collection '{collection}' holds {expected}-d vectors but got {got}-d ones; "
        f"use the embedder the collection was built with or rebuild it"
    )


# ------------------------------------------------------------------ local models


class LazyModel(Generic[T]):
    """A model loaded by ``loader`` on the first ``get()``, once (thread-safe).

    A ConfigError from ``loader`` is remembered and raised again by every later ``get()`` without loading
    again; any other exception is not remembered (the next ``get()`` tries again).
    """

    def __init__(self, loader: Callable[[], T]) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._model: T | None = None
        self._error: ConfigError | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (never loads it)."""
        return self._model is not None

    @property
    def error(self) -> ConfigError | None:
        """The ConfigError of a failed load, remembered; None otherwise (never loads)."""
        return self._error

    def get(self) -> T:
        """The loaded model (loading it now if this is the first call)."""
        with self._lock:
            if self._model is None:
                if self._error is not None:
                    raise self._error
                try:
                    self._model = self._loader()
                except ConfigError as exc:
                    self._error = exc
                    raise
            return self._model


def installed_version(distribution: str) -> str:
    """A package's installed version from its metadata (cheap: imports nothing), else "unknown"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bars (they would land in the CLI's stderr)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# ------------------------------------------------------------------ TEI clients


class TeiEndpointLike(Protocol):
    """What ``TeiClient`` needs of its endpoint (``ragdeck.services.http.TeiEndpoint``)."""

    base_url: str

    def model_id(self) -> str | None: ...

    def close(self) -> None: ...


E = TypeVar("E", bound=TeiEndpointLike)


class TeiClient(Generic[E]):
    """Base of the TEI embedder and reranker: ``base_url``, ``model_name``, ``close`` and ``with``.

    The subclass sets ``self.endpoint`` (a ``ragdeck.services.http.TeiEndpoint``) in its ``__init__``.
    """

    endpoint: E
    _model_name: str | None = None

    @property
    def base_url(self) -> str:
        """The server's base URL (no trailing slash)."""
        return self.endpoint.base_url

    @property
    def model_name(self) -> str:
        """The served model id from ``/info`` (or ``TEI at <url>`` while unknown)."""
        return self._model_name or self.endpoint.model_id() or f"TEI at {self.endpoint.shown_url}"

    @model_name.setter
    def model_name(self, value: str) -> None:
        self._model_name = value

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        self.endpoint.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ------------------------------------------------------------------ processes


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    """SIGTERM a child process, SIGKILL it after ``timeout_s``, and reap it (nothing when gone already)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one of another user counts; a zombie, killed but not
    reaped by its parent yet, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): alive as far as we can tell
        return True


def aliased_error(name: str, aliases: list[str]) -> InputError:
    """The refusal to delete a collection aliases point at (``delete_collection(unless_aliased=True)``)."""
    names = ", ".join(f"'{a}'" for a in sorted(aliases))
    return InputError(
        f"collection '{name}' is behind alias {names}: point the alias at another collection first "
        f"(`ragdeck index swap`, or delete the alias), then delete it"
    )
