"""Vector store on a Qdrant server, through qdrant-client (REST).

Chunk ids map to point ids with ``point_uuid``; the chunk id also rides in the payload under ``chunk_id``
and comes back as the id of every hit. Aliases are Qdrant's own (a move is one atomic
``update_collection_aliases`` call). Qdrant does not keep aliases in snapshots, so every snapshot taken here
gets a sidecar JSON under ``meta_dir/snapshots/<collection>/<snapshot>.json`` with the whole alias mapping.

The same class also runs on qdrant-client's local mode (``QdrantClient(":memory:")`` or ``path=``), which the
tests use. Local mode is brute force: it ignores HNSW settings (``collection_info`` shows the defaults it
reports, ``update_hnsw`` changes nothing), always reports 0 indexed vectors, and has no snapshots.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ragdeck.errors import (
    AliasConflict,
    CollectionExists,
    CollectionNotFound,
    ConfigError,
    InputError,
    RagdeckError,
    ServiceUnavailable,
)
from ragdeck.services import native_rrf
from ragdeck.services.common import (
    aliased_error,
    check_batch_size,
    check_hnsw,
    check_name,
    dimension_mismatch,
    in_order,
    is_valid_name,
    scored_hit,
    stored_point,
)
from ragdeck.services.files import atomic_path, write_json_atomic
from ragdeck.services.inputs import parse_json
from ragdeck.services.lexical import LEXICAL_MODEL, LEXICAL_VECTOR, encoder, lexical_text, no_lexical_index
from ragdeck.services.redact import redact_text, redact_url
from ragdeck.services.types import (
    CollectionInfo,
    ComponentHealth,
    FusedHit,
    HnswConfig,
    PayloadFilter,
    ScoredHit,
    SnapshotInfo,
    StoreCapabilities,
    StoredPoint,
    VectorPoint,
    point_uuid,
)

UPSERT_BATCH = 256
# Segments bigger than this (KB of vectors) get an HNSW index. Qdrant's default (20 MB) would leave the
# collections ragdeck builds (a few MB) brute force forever, so m / ef would change nothing.
INDEXING_THRESHOLD_KB = 1
_DIM_ERROR = re.compile(r"expected dim:?\s*(\d+),\s*got\s*(\d+)")


def _to_filter(payload_filter: PayloadFilter | None) -> models.Filter | None:
    if not payload_filter:
        return None
    return models.Filter(
        must=[
            models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in payload_filter.items()
        ]
    )


def _server_message(exc: UnexpectedResponse) -> str:
    try:
        return str(exc.structured()["status"]["error"])
    except Exception:
        return exc.content.decode("utf-8", "replace")[:300] or (exc.reason_phrase or "")


def _created_at(value: str | None) -> str:
    """Qdrant's naive UTC timestamp as ISO 8601 with an explicit UTC offset."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


class QdrantServerStore:
    """``VectorStore`` over a Qdrant server (or qdrant-client's local mode, for tests)."""

    mode: str = "server"

    def __init__(self, client: QdrantClient, *, meta_dir: Path, url: str | None = None) -> None:
        options = client.init_options
        self.client = client
        self.meta_dir = Path(meta_dir)
        self._alias_lock = threading.RLock()  # serialises this process's compare-and-set alias moves
        self._rrf_k: bool | None = None  # whether the server's RRF takes a k (asked on first hybrid search)
        self.local = options.get("location") == ":memory:" or options.get("path") is not None
        self.url = url or options.get("url") or options.get("location") or options.get("host")
        self._api_key: str | None = options.get("api_key")
        if self.local:
            self.endpoint = f"qdrant-client local mode ({options.get('path') or ':memory:'})"
        else:
            self.endpoint = redact_url(str(self.url or getattr(client._client, "rest_uri", "Qdrant server")))

    @classmethod
    def connect(cls, url: str, api_key: str | None, timeout_s: float, meta_dir: Path) -> QdrantServerStore:
        """A store on the Qdrant server at ``url`` (REST). Connects lazily: nothing is sent until first use.

        A URL without a port gets qdrant-client's default port 6333 (write ``:443`` behind a proxy).
        """
        try:
            client = QdrantClient(
                url=url, api_key=api_key, timeout=max(1, math.ceil(timeout_s)), check_compatibility=False
            )
        except ValueError as exc:
            raise ConfigError(
                f"QDRANT_URL {redact_url(url)!r} is not usable: {redact_text(str(exc))}; write it like http://qdrant:6333"
            ) from exc
        return cls(client, meta_dir=meta_dir, url=url)

    @property
    def capabilities(self) -> StoreCapabilities:
        """A Qdrant server: cluster view and snapshots (kept on the server), shards and replicas, no index
        sizes; qdrant-client's local mode (``local``) has neither cluster nor snapshots and no HNSW index."""
        return StoreCapabilities(
            mode=self.mode,
            local_files=False,
            index_sizes=False,
            cluster=not self.local,
            snapshots=not self.local,
            sharding=True,
            hnsw=not self.local,
            native_fusion=True,
        )

    # ---- error translation ---------------------------------------------------------------------

    @contextmanager
    def _calls(self, name: str | None = None) -> Iterator[None]:
        """Turn qdrant-client, httpx and local-mode exceptions into ragdeck errors (the one place)."""
        try:
            yield
        except RagdeckError:
            raise
        except UnexpectedResponse as exc:
            raise self._from_status(exc, name) from exc
        except ResponseHandlingException as exc:
            if isinstance(exc.source, httpx.HTTPError):
                raise self._unreachable(exc.source) from exc
            raise ServiceUnavailable(
                f"Qdrant at {self.endpoint} answered something qdrant-client cannot read "
                f"({type(exc.source).__name__}); check that QDRANT_URL points at a Qdrant server "
                f"of a version qdrant-client 1.20 supports"
            ) from exc
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        except ResourceExhaustedResponse as exc:  # HTTP 429 with Retry-After
            raise ServiceUnavailable(
                f"Qdrant at {self.endpoint} is rate limiting ({exc}); retry in {exc.retry_after_s} s"
            ) from exc
        except json.JSONDecodeError as exc:  # a 200 that is not JSON: a proxy page, not Qdrant
            raise ServiceUnavailable(
                f"Qdrant at {self.endpoint} answered something that is not JSON; "
                f"check that QDRANT_URL points at Qdrant's REST port, not a proxy or another service"
            ) from exc
        except NotImplementedError as exc:  # local mode: snapshots
            raise ConfigError(
                f"snapshots need a Qdrant server; {self.endpoint} cannot take or restore them "
                f"(set QDRANT_URL to a Qdrant server)"
            ) from exc
        except ValueError as exc:  # local mode reports user errors as ValueError
            raise self._from_message(str(exc), name, exc) from exc
        except RuntimeError as exc:
            if "closed" in str(exc):
                raise ServiceUnavailable(
                    f"the connection to {self.endpoint} is closed; reopen the vector store"
                ) from exc
            raise

    def _unreachable(self, source: BaseException) -> ServiceUnavailable:
        if isinstance(source, httpx.TimeoutException):
            what = f"did not answer in time ({type(source).__name__})"
            hint = "check the server's load, or raise RAGDECK_HTTP_TIMEOUT_S"
        else:
            connect = isinstance(source, httpx.ConnectError)
            what = "cannot be reached" if connect else f"failed ({redact_text(str(source))})"
            hint = "check that the server runs and that QDRANT_URL names its REST port (6333)"
        return ServiceUnavailable(f"vector store (QDRANT_URL): Qdrant at {self.endpoint} {what}: {hint}")

    def _from_status(self, exc: UnexpectedResponse, name: str | None) -> RagdeckError:
        status = exc.status_code or 0
        message = _server_message(exc)
        if status == 404 and name is not None:
            return self._not_found(name)
        if status in (401, 403):
            return ConfigError(
                f"Qdrant at {self.endpoint} refused the request (HTTP {status}: {message}); "
                f"check QDRANT_API_KEY"
            )
        if status == 409:
            return CollectionExists(f"{message} (Qdrant at {self.endpoint}); pick another name")
        if status in (400, 422):
            return self._from_message(message, name, exc)
        return ServiceUnavailable(
            f"Qdrant at {self.endpoint} answered HTTP {status}: {message}; check the server's log and retry"
        )

    def _from_message(self, message: str, name: str | None, exc: Exception) -> RagdeckError:
        lowered = message.lower()
        dims = _DIM_ERROR.search(lowered)
        if dims:
            return dimension_mismatch(name or "?", int(dims.group(1)), int(dims.group(2)))
        if "not found" in lowered or "doesn't exist" in lowered or "does not exist" in lowered:
            return self._not_found(name) if name else CollectionNotFound(message)
        if "already exists" in lowered:
            return CollectionExists(f"{message}; pick another name")
        if isinstance(exc, UnexpectedResponse):
            return InputError(f"Qdrant at {self.endpoint} rejected the request: {message}")
        raise exc

    def _not_found(self, name: str) -> CollectionNotFound:
        """CollectionNotFound naming what does exist (best effort: listing may fail too)."""
        try:
            collections = sorted(c.name for c in self.client.get_collections().collections)
            aliases = self._aliases()
            known = ", ".join(collections) or "none"
            alias_text = ", ".join(f"{a} -> {c}" for a, c in sorted(aliases.items())) or "none"
            listing = f"collections: {known}; aliases: {alias_text}"
        except Exception:
            listing = "could not list what exists"
        return CollectionNotFound(
            f"no collection or alias '{name}' in Qdrant at {self.endpoint} ({listing}); "
            f"check the name or build the collection first"
        )

    # ---- names ------------------------------------------------------------------------------------

    def _aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def _collections(self) -> set[str]:
        return {c.name for c in self.client.get_collections().collections}

    def resolve(self, name: str) -> str:
        """The physical collection behind an alias, or ``name`` itself; raises CollectionNotFound."""
        check_name(name)
        with self._calls(name):
            target = self._aliases().get(name)
            if target is not None:
                return target
            if name in self._collections():
                return name
        raise self._not_found(name)

    def collection_exists(self, name: str) -> bool:
        """True when ``name`` is a physical collection (aliases do not count)."""
        if not is_valid_name(name):
            return False
        with self._calls(name):
            return name in self._collections()

    def list_aliases(self) -> dict[str, str]:
        """Alias -> collection for every alias."""
        with self._calls():
            return dict(sorted(self._aliases().items()))

    def set_alias(self, alias: str, collection: str) -> None:
        """Create or move an alias in one atomic step (delete + create in one request)."""
        check_name(alias, "alias")
        check_name(collection)
        with self._calls(collection):
            self._move_alias(alias, collection, self._aliases())

    def compare_and_set_alias(
        self,
        alias: str,
        collection: str,
        *,
        expected: str | None,
        on_moved: Callable[[], None] | None = None,
    ) -> None:
        """Move ``alias`` to ``collection`` only if it points at ``expected`` now (None: no alias yet),
        else AliasConflict; then read it back and call ``on_moved`` (history, audit).

        Qdrant's alias API has no compare-and-set: this reads, compares, moves in one request and reads
        back, serialised within this process; a move by another client between the read and the move is
        seen only by the read-back (AliasConflict naming where it points). When ``on_moved`` fails the
        alias is put back and its error raised.
        """
        check_name(alias, "alias")
        check_name(collection)
        with self._alias_lock, self._calls(collection):
            aliases = self._aliases()
            if aliases.get(alias) != expected:
                raise AliasConflict(alias, expected, aliases.get(alias))
            self._move_alias(alias, collection, aliases)
            actual = self._aliases().get(alias)
            if actual != collection:
                raise AliasConflict(alias, collection, actual)
            if on_moved is not None:
                try:
                    on_moved()
                except BaseException:
                    if expected is None:
                        self._delete_alias(alias)
                    else:
                        self._move_alias(alias, expected, self._aliases())
                    raise

    def _move_alias(self, alias: str, collection: str, aliases: dict[str, str]) -> None:
        """Point ``alias`` at ``collection`` (delete + create in one request); call inside ``_calls``."""
        collections = self._collections()
        if alias in collections:
            raise InputError(
                f"'{alias}' is a collection, so it cannot also be an alias; pick another alias name"
            )
        if collection not in collections:
            if collection in aliases:
                raise CollectionNotFound(
                    f"'{collection}' is an alias (of '{aliases[collection]}'), not a collection; "
                    f"point '{alias}' at a collection"
                )
            raise self._not_found(collection)
        operations: list[models.AliasOperations] = []
        if alias in aliases:
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        self.client.update_collection_aliases(change_aliases_operations=operations)

    def _delete_alias(self, alias: str) -> None:
        self.client.update_collection_aliases(
            change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            ]
        )

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (the collection stays); raises CollectionNotFound for an unknown alias."""
        check_name(alias, "alias")
        with self._calls(alias):
            aliases = self._aliases()
            if alias not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise CollectionNotFound(
                    f"no alias '{alias}' in Qdrant at {self.endpoint} (aliases: {known})"
                )
            self._delete_alias(alias)

    # ---- collections ------------------------------------------------------------------------------

    def create_collection(
        self,
        name: str,
        dimension: int,
        hnsw: HnswConfig,
        *,
        shards: int | None = None,
        replicas: int | None = None,
        lexical: bool = True,
    ) -> None:
        """Create an empty cosine collection with one unnamed dense vector and, unless ``lexical`` is False,
        the BM25 sparse vector ``lexical`` with Qdrant's IDF modifier; raises CollectionExists.

        ``shards`` / ``replicas`` set Qdrant's shard_number / replication_factor (unset: the server's).
        """
        check_name(name)
        if not isinstance(dimension, int) or dimension < 1:
            raise InputError(f"invalid vector dimension {dimension!r} for '{name}': use a positive integer")
        check_hnsw(hnsw)
        with self._calls(name):
            aliases = self._aliases()
            if name in aliases:
                raise InputError(
                    f"'{name}' is an alias (of '{aliases[name]}'); a collection cannot share its name: "
                    f"pick another name or delete the alias"
                )
            if name in self._collections():
                raise CollectionExists(f"collection '{name}' already exists; pick another name or delete it")
            self.client.create_collection(
                collection_name=name,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                sparse_vectors_config=(
                    {LEXICAL_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
                    if lexical
                    else None
                ),
                hnsw_config=models.HnswConfigDiff(
                    m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=hnsw.full_scan_threshold
                ),
                optimizers_config=models.OptimizersConfigDiff(indexing_threshold=INDEXING_THRESHOLD_KB),
                shard_number=shards,
                replication_factor=replicas,
            )

    def delete_collection(self, name: str, *, unless_aliased: bool = False) -> None:
        """Delete a collection and every alias that points at it; raises CollectionNotFound.
        ``unless_aliased``: InputError instead when an alias points at it (checked just before: the server
        cannot make the check and the delete one step)."""
        check_name(name)
        with self._calls(name):
            aliases = self._aliases()
            if name not in self._collections():
                if name in aliases:
                    raise CollectionNotFound(
                        f"'{name}' is an alias of '{aliases[name]}', not a collection; "
                        f"delete the alias, or delete '{aliases[name]}' itself"
                    )
                raise self._not_found(name)
            pointing = [a for a, c in aliases.items() if c == name]
            if pointing and unless_aliased:
                raise aliased_error(name, pointing)
            if pointing:
                self.client.update_collection_aliases(
                    change_aliases_operations=[
                        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=a))
                        for a in pointing
                    ]
                )
            self.client.delete_collection(collection_name=name)

    def _info(self, physical: str, aliases: dict[str, str]) -> CollectionInfo:
        info = self.client.get_collection(collection_name=physical)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict):  # named vectors: a collection ragdeck did not build; show the first
            vectors = next(iter(vectors.values()), None)
        hnsw = info.config.hnsw_config
        points = info.points_count or 0
        return CollectionInfo(
            name=physical,
            dimension=vectors.size if vectors else 0,
            distance=str(vectors.distance.value) if vectors else "none",
            points=points,
            indexed_vectors=min(info.indexed_vectors_count or 0, points),
            hnsw=HnswConfig(
                m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=hnsw.full_scan_threshold
            ),
            aliases=sorted(a for a, c in aliases.items() if c == physical),
            status=str(getattr(info.status, "value", info.status)),
            segments=info.segments_count,
            lexical=LEXICAL_MODEL if LEXICAL_VECTOR in (info.config.params.sparse_vectors or {}) else None,
        )

    def collection_info(self, name: str) -> CollectionInfo:
        """One collection (an alias is resolved); raises CollectionNotFound."""
        physical = self.resolve(name)
        with self._calls(name):
            return self._info(physical, self._aliases())

    def list_collections(self) -> list[CollectionInfo]:
        """Every physical collection with counts, HNSW config and the aliases pointing at it."""
        with self._calls():
            aliases, names = self._aliases(), sorted(self._collections())
        infos = []
        for name in names:
            try:
                with self._calls(name):
                    infos.append(self._info(name, aliases))
            except CollectionNotFound:  # deleted meanwhile
                continue
        return infos

    def finish_indexing(self, name: str, *, timeout_s: float = 600.0, poll_s: float = 0.5) -> None:
        """Wait until the server has indexed everything (collection status green).

        Upserts are written with ``wait=True``, so they are already durable in the server's WAL. A grey
        collection (optimizations pending) gets an empty optimizer update, which starts them. Local mode has
        no index and returns at once. Raises ServiceUnavailable on red status or after ``timeout_s``.
        """
        physical = self.resolve(name)
        if self.local:
            return
        deadline = time.monotonic() + timeout_s
        nudged = False
        with self._calls(physical):
            while True:
                info = self.client.get_collection(collection_name=physical)
                status = info.status
                if status == models.CollectionStatus.GREEN:
                    return
                if status == models.CollectionStatus.RED:
                    raise ServiceUnavailable(
                        f"collection '{physical}' in Qdrant at {self.endpoint} is red (optimizer: "
                        f"{info.optimizer_status}); check the server's log, then rebuild the collection"
                    )
                if status == models.CollectionStatus.GREY and not nudged:
                    self.client.update_collection(
                        collection_name=physical, optimizers_config=models.OptimizersConfigDiff()
                    )
                    nudged = True
                if time.monotonic() >= deadline:
                    raise ServiceUnavailable(
                        f"collection '{physical}' in Qdrant at {self.endpoint} is still {status.value} "
                        f"after {timeout_s:.0f} s of indexing ({info.indexed_vectors_count or 0} of "
                        f"{info.points_count or 0} vectors indexed); wait and check its status again"
                    )
                time.sleep(poll_s)

    def update_hnsw(self, name: str, hnsw: HnswConfig) -> None:
        """Change m / ef_construct / full_scan_threshold; the server rebuilds the index in the background.

        ``finish_indexing`` waits for the rebuild. Local mode is brute force: it keeps its reported config
        and nothing changes.
        """
        check_hnsw(hnsw)
        physical = self.resolve(name)
        with self._calls(physical):
            accepted = self.client.update_collection(
                collection_name=physical,
                hnsw_config=models.HnswConfigDiff(
                    m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=hnsw.full_scan_threshold
                ),
            )
        if not accepted and not self.local:
            raise ServiceUnavailable(
                f"Qdrant at {self.endpoint} did not apply the HNSW change to '{physical}'; "
                f"check the server's log"
            )

    # ---- points -----------------------------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points (by chunk id) in batches; raises DimensionMismatch on a wrong size."""
        physical = self.resolve(name)
        if not points:
            return
        with self._calls(physical):
            info = self._info(physical, {})
        dimension, lexical = info.dimension, bool(info.lexical)
        structs = []
        for point in points:
            if not isinstance(point.id, str) or not point.id:
                raise InputError(f"point id {point.id!r} is not a non-empty chunk id string")
            if len(point.vector) != dimension:
                raise dimension_mismatch(physical, dimension, len(point.vector))
            payload = dict(point.payload or {})
            stored_id = payload.setdefault("chunk_id", point.id)
            if stored_id != point.id:
                raise InputError(
                    f"point '{point.id}' carries payload chunk_id '{stored_id}'; "
                    f"they must be the same chunk id"
                )
            dense = [float(x) for x in point.vector]
            vector: Any = dense
            terms = encoder().document(lexical_text(payload)) if lexical else None
            if terms:  # text with no indexable term gets no sparse vector, as on the embedded engine
                vector = {
                    "": dense,
                    LEXICAL_VECTOR: models.SparseVector(indices=terms.indices, values=terms.values),
                }
            structs.append(models.PointStruct(id=point_uuid(point.id), vector=vector, payload=payload))
        with self._calls(physical):
            for begin in range(0, len(structs), UPSERT_BATCH):
                self.client.upsert(
                    collection_name=physical, points=structs[begin : begin + UPSERT_BATCH], wait=True
                )

    def search(
        self,
        name: str,
        vector: Sequence[float],
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> list[ScoredHit]:
        """Nearest points by cosine similarity, best first; ``name`` may be an alias (the server resolves
        it in the same request, so a concurrent alias move is seen whole)."""
        check_name(name)
        if limit <= 0:
            self.resolve(name)
            return []
        query_filter = _to_filter(payload_filter)
        query = [float(x) for x in vector]
        params = models.SearchParams(hnsw_ef=hnsw_ef, exact=exact) if exact or hnsw_ef else None
        try:
            with self._calls(name):
                response = self.client.query_points(
                    collection_name=name,
                    query=query,
                    limit=limit,
                    query_filter=query_filter,
                    search_params=params,
                    with_payload=True,
                )
        except ValueError:
            # Local mode does not check the query's size (numpy fails instead); the server does.
            dimension = self.collection_info(name).dimension
            if dimension != len(query):
                raise dimension_mismatch(self.resolve(name), dimension, len(query)) from None
            raise
        return [scored_hit(p.id, p.score, p.payload) for p in response.points]

    def search_lexical(
        self, name: str, text: str, limit: int, *, payload_filter: PayloadFilter | None = None
    ) -> list[ScoredHit]:
        """Points by BM25 score of ``text`` (the server's IDF over the collection), best first; points that
        share no term with it are not returned. Raises InputError for a collection built without a
        lexical index."""
        check_name(name)
        terms = encoder().query(text)
        if limit <= 0 or not terms.indices:
            if not self.collection_info(name).lexical:
                raise no_lexical_index(self.resolve(name))
            return []
        try:
            with self._calls(name):
                response = self.client.query_points(
                    collection_name=name,
                    query=models.SparseVector(indices=terms.indices, values=terms.values),
                    using=LEXICAL_VECTOR,
                    limit=limit,
                    query_filter=_to_filter(payload_filter),
                    with_payload=True,
                )
        except RagdeckError:
            if not self.collection_info(name).lexical:  # one request per query while it has the index
                raise no_lexical_index(self.resolve(name)) from None
            raise
        return [scored_hit(p.id, p.score, p.payload) for p in response.points]

    def search_both(
        self,
        name: str,
        vector: Sequence[float],
        text: str,
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> tuple[list[ScoredHit], list[ScoredHit]]:
        """The dense and the lexical candidates of one hybrid query, in one request to the server (the
        Query API's batch endpoint): ``(search(...), search_lexical(...))``."""
        check_name(name)
        terms = encoder().query(text)
        if limit <= 0 or not terms.indices:
            dense = self.search(
                name, vector, limit, hnsw_ef=hnsw_ef, exact=exact, payload_filter=payload_filter
            )
            return dense, self.search_lexical(name, text, limit, payload_filter=payload_filter)
        query_filter = _to_filter(payload_filter)
        params = models.SearchParams(hnsw_ef=hnsw_ef, exact=exact) if exact or hnsw_ef else None
        requests = [
            models.QueryRequest(
                query=[float(x) for x in vector],
                limit=limit,
                filter=query_filter,
                params=params,
                with_payload=True,
            ),
            models.QueryRequest(
                query=models.SparseVector(indices=terms.indices, values=terms.values),
                using=LEXICAL_VECTOR,
                limit=limit,
                filter=query_filter,
                with_payload=True,
            ),
        ]
        try:
            with self._calls(name):
                dense, lexical = self.client.query_batch_points(collection_name=name, requests=requests)
        except (RagdeckError, ValueError):
            # Name the cause the single searches name: a wrong vector size or no lexical index.
            self.search(name, vector, 1, payload_filter=payload_filter)
            self.search_lexical(name, text, 1, payload_filter=payload_filter)
            raise
        return (
            [scored_hit(p.id, p.score, p.payload) for p in dense.points],
            [scored_hit(p.id, p.score, p.payload) for p in lexical.points],
        )

    def search_hybrid(
        self,
        name: str,
        vector: Sequence[float],
        text: str,
        limit: int,
        *,
        depth: int,
        rrf_k: int,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
        ranks: bool = True,
    ) -> list[FusedHit]:
        """Hybrid search fused by the server: the top ``depth`` dense and lexical candidates fused by RRF
        with ``k`` passed explicitly (the server's default k is 2), the best ``limit`` returned with
        payloads, each with its rank and score in both lists, in one request (the fused query and the two
        lists without payloads); the same as ``fuse(*search_both(..., depth), rrf_k=...)``
        (``services.native_rrf``). A server older than 1.16 takes no k: ragdeck fuses then. ``ranks``
        False: the fused query alone when no two of its scores tie (``native_rrf.without_ranks``)."""
        check_name(name)
        terms = encoder().query(text)
        if limit <= 0 or depth <= 0:
            return []
        if not terms.indices or not self._rrf_takes_k():
            dense_hits, lexical_hits = self.search_both(
                name, vector, text, depth, hnsw_ef=hnsw_ef, exact=exact, payload_filter=payload_filter
            )
            return native_rrf.from_lists(dense_hits, lexical_hits, limit, rrf_k)
        query_filter = _to_filter(payload_filter)
        params = models.SearchParams(hnsw_ef=hnsw_ef, exact=exact) if exact or hnsw_ef else None
        dense = [float(x) for x in vector]
        sparse = models.SparseVector(indices=terms.indices, values=terms.values)
        prefetch = [
            models.Prefetch(query=dense, limit=depth, params=params, filter=query_filter),
            models.Prefetch(query=sparse, using=LEXICAL_VECTOR, limit=depth, filter=query_filter),
        ]
        rrf = models.RrfQuery(rrf=models.Rrf(k=rrf_k))
        fused_query = models.QueryRequest(
            prefetch=prefetch, query=rrf, limit=limit, filter=query_filter, with_payload=True
        )
        if not ranks:
            alone = fused_query.model_copy(update={"limit": limit + 1})
            try:
                with self._calls(name):
                    (answer,) = self.client.query_batch_points(collection_name=name, requests=[alone])
            except (RagdeckError, ValueError):
                answer = None  # the full path below names the cause
            found = native_rrf.without_ranks(answer.points, limit) if answer is not None else None
            if found is not None:
                return found
        requests = [
            fused_query,
            models.QueryRequest(
                query=dense, limit=depth, filter=query_filter, params=params, with_payload=False
            ),
            models.QueryRequest(
                query=sparse, using=LEXICAL_VECTOR, limit=depth, filter=query_filter, with_payload=False
            ),
        ]
        try:
            with self._calls(name):
                fused, dense_list, lexical_list = self.client.query_batch_points(
                    collection_name=name, requests=requests
                )
        except (RagdeckError, ValueError):
            # Name the cause the single searches name: a wrong vector size or no lexical index.
            self.search(name, vector, 1, payload_filter=payload_filter)
            self.search_lexical(name, text, 1, payload_filter=payload_filter)
            raise

        def load(ids: list[Any]) -> list[models.Record]:
            with self._calls(name):
                return self.client.retrieve(collection_name=name, ids=ids, with_payload=True)

        return native_rrf.fused(fused.points, dense_list.points, lexical_list.points, limit, rrf_k, load)

    def _rrf_takes_k(self) -> bool:
        """Whether the server's RRF takes a k (Qdrant 1.16 and later; qdrant-client's local mode does);
        the version is asked once."""
        if self._rrf_k is None:
            if self.local:
                self._rrf_k = True
            else:
                try:
                    with self._calls():
                        version = self.client.info().version
                    numbers = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
                    self._rrf_k = numbers >= (1, 16)
                except Exception:  # unknown: ragdeck fuses, which is right on any version
                    return False
        return self._rrf_k

    @staticmethod
    def _stored(record: models.Record, with_vectors: bool) -> StoredPoint:
        vector = None
        dense = record.vector.get("") if isinstance(record.vector, dict) else record.vector
        if with_vectors and dense is not None:
            vector = [float(x) for x in dense]  # type: ignore[union-attr]
        return stored_point(record.id, record.payload, vector)

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """Points by chunk id, in the order asked (missing ids are skipped). Vectors come back unit-length."""
        physical = self.resolve(name)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        with self._calls(physical):
            records = self.client.retrieve(
                collection_name=physical,
                ids=[point_uuid(i) for i in wanted],
                with_payload=True,
                with_vectors=with_vectors,
            )
        return in_order((self._stored(r, with_vectors) for r in records), wanted)

    def iter_points(
        self, name: str, *, batch_size: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every point of a collection, fetched ``batch_size`` at a time with scroll (checked eagerly)."""
        physical = self.resolve(name)
        check_batch_size(batch_size)
        return self._scroll(physical, batch_size, with_vectors)

    def _scroll(self, physical: str, batch_size: int, with_vectors: bool) -> Iterator[StoredPoint]:
        offset: Any = None
        while True:
            with self._calls(physical):
                records, offset = self.client.scroll(
                    collection_name=physical,
                    limit=batch_size,
                    offset=offset,
                    with_payload=True,
                    with_vectors=with_vectors,
                )
            for record in records:
                yield self._stored(record, with_vectors)
            if offset is None:
                return

    # ---- snapshots --------------------------------------------------------------------------------

    def _sidecar(self, collection: str, snapshot: str) -> Path:
        if not is_valid_name(snapshot):
            raise InputError(f"invalid snapshot name {snapshot!r}")
        return self.meta_dir / "snapshots" / collection / f"{snapshot}.json"

    def _recorded_aliases(self, collection: str, snapshot: str) -> dict[str, str]:
        path = self._sidecar(collection, snapshot)
        if not path.exists():
            return {}
        try:
            return dict(parse_json(path.read_text(encoding="utf-8"))["aliases"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read the alias record {path}: {exc}; delete or fix the file") from exc

    def _require_server(self, what: str) -> None:
        if self.local:
            raise ConfigError(
                f"{what} needs a Qdrant server; {self.endpoint} has no snapshots "
                f"(set QDRANT_URL to a Qdrant server)"
            )

    def index_bytes(self, name: str) -> dict[str, int]:
        """ConfigError: Qdrant's server reports no sizes on disk (``capabilities.index_sizes`` is False)."""
        raise ConfigError(
            f"{self.endpoint} reports no index sizes of '{name}'; only the embedded store measures them"
        )

    def cluster_info(self, name: str) -> dict[str, Any]:
        """Shards, replicas and peers of one collection (an alias is resolved): this peer, every peer's
        address, the collection's shard_number / replication_factor, and each shard with its peer and state.
        """
        self._require_server("the cluster view")
        physical = self.resolve(name)
        with self._calls(physical):
            params = self.client.get_collection(physical).config.params
            status = self.client.http.distributed_api.cluster_status().result
            layout = self.client.http.distributed_api.collection_cluster_info(physical).result
        status_json = status.model_dump(mode="json") if status is not None else {}
        peers = status_json.get("peers") or {}
        shards = [
            {
                "shard_id": s.shard_id,
                "peer_id": layout.peer_id,
                "state": str(s.state.value),
                "points": s.points_count,
            }
            for s in layout.local_shards
        ] + [
            {"shard_id": s.shard_id, "peer_id": s.peer_id, "state": str(s.state.value), "points": None}
            for s in layout.remote_shards
        ]
        return {
            "collection": physical,
            "cluster": status_json.get("status", "disabled"),
            "peer_id": layout.peer_id,
            "peers": [{"peer_id": int(k), "uri": v.get("uri")} for k, v in sorted(peers.items())],
            "shard_number": params.shard_number,
            "replication_factor": params.replication_factor,
            "shards": sorted(shards, key=lambda r: (r["shard_id"], r["peer_id"])),
        }

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """Snapshot one collection on the server and record the current alias mapping in a sidecar file."""
        self._require_server("taking a snapshot")
        physical = self.resolve(name)
        with self._calls(physical):
            aliases = dict(sorted(self._aliases().items()))
            description = self.client.create_snapshot(collection_name=physical, wait=True)
        if description is None:
            raise ServiceUnavailable(
                f"Qdrant at {self.endpoint} returned no snapshot for '{physical}'; retry"
            )
        info = SnapshotInfo(
            name=description.name,
            collection=physical,
            created_at=_created_at(description.creation_time),
            size_bytes=description.size,
            aliases=aliases,
        )
        sidecar = self._sidecar(physical, info.name)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(sidecar, asdict(info))
        return info

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        """Snapshots of one collection (an alias is resolved), newest first, with their alias mappings."""
        check_name(name)
        with self._calls(name):
            physical = self._aliases().get(name, name)
            descriptions = self.client.list_snapshots(collection_name=physical)
        infos = [
            SnapshotInfo(
                name=d.name,
                collection=physical,
                created_at=_created_at(d.creation_time),
                size_bytes=d.size,
                aliases=self._recorded_aliases(physical, d.name),
            )
            for d in descriptions
        ]
        return sorted(infos, key=lambda s: (s.created_at, s.name), reverse=True)

    def restore_snapshot(
        self,
        name: str,
        snapshot: str,
        *,
        restore_aliases: bool = True,
        expected_aliases: Mapping[str, str | None] | None = None,
        on_restored: Callable[[], None] | None = None,
    ) -> None:
        """Replace the collection's contents with a snapshot the server holds; then, by default, point the
        aliases that pointed at this collection when the snapshot was taken back at it (one atomic step),
        read them back and call ``on_restored`` (history, audit). ``expected_aliases`` are checked first:
        AliasConflict, and nothing restored, when one moved (no compare-and-set on the server: see
        ``compare_and_set_alias``).

        The server fetches the snapshot from its own REST URL, so it must reach itself at the URL this
        store uses (true for ``http://qdrant:6333`` in compose and for ``localhost`` with the same port).
        """
        self._require_server("restoring a snapshot")
        physical = self._existing_snapshot(name, snapshot)
        recorded = self._recorded_aliases(physical, snapshot)
        pointing = sorted(a for a, c in recorded.items() if c == physical)
        with self._calls(physical):
            clash = sorted(set(pointing) & self._collections())
        if restore_aliases and clash:
            raise InputError(
                f"cannot restore aliases {', '.join(clash)}: collections now have those names; "
                f"delete them or restore with restore_aliases=False"
            )
        base = str(getattr(self.client._client, "rest_uri", self.url)).rstrip("/")
        with self._alias_lock, self._calls(physical):
            current = self._aliases()
            for alias, want in (expected_aliases or {}).items():
                if current.get(alias) != want:
                    raise AliasConflict(alias, want, current.get(alias))
            self.client.recover_snapshot(
                collection_name=physical,
                location=f"{base}/collections/{physical}/snapshots/{snapshot}",
                api_key=self._api_key,
                priority=models.SnapshotPriority.SNAPSHOT,
                wait=True,
            )
            if restore_aliases and pointing:
                current = self._aliases()
                operations: list[models.AliasOperations] = [
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=a))
                    for a in pointing
                    if a in current
                ]
                operations += [
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(collection_name=physical, alias_name=a)
                    )
                    for a in pointing
                ]
                self.client.update_collection_aliases(change_aliases_operations=operations)
                after = self._aliases()
                for alias in pointing:
                    if after.get(alias) != physical:
                        raise AliasConflict(alias, physical, after.get(alias))
            if on_restored is not None:
                on_restored()

    def _existing_snapshot(self, name: str, snapshot: str) -> str:
        """The collection behind ``name``, once it is known to hold ``snapshot`` (InputError otherwise)."""
        check_name(name)
        with self._calls(name):
            physical = self._aliases().get(name, name)
        known = [s.name for s in self.list_snapshots(physical)]
        if snapshot not in known:
            raise InputError(
                f"collection '{physical}' has no snapshot '{snapshot}' "
                f"(snapshots: {', '.join(known) or 'none'})"
            )
        return physical

    def snapshot_path(self, name: str, snapshot: str) -> Path | None:
        """None: the server keeps its snapshots (download them from its REST API)."""
        return None

    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path:
        """Stream a snapshot the server holds into ``dest`` (atomically: ``files.atomic_path``)."""
        self._require_server("downloading a snapshot")
        physical = self._existing_snapshot(name, snapshot)
        base = str(getattr(self.client._client, "rest_uri", self.url)).rstrip("/")
        http = self.client.http.client._client  # qdrant-client's own httpx client: its transport and TLS
        headers = {"api-key": self._api_key} if self._api_key else {}
        request = http.build_request(
            "GET", f"{base}/collections/{physical}/snapshots/{snapshot}", headers=headers
        )
        dest = Path(dest)
        with atomic_path(dest) as tmp, self._calls(physical):
            response = http.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise ServiceUnavailable(
                        f"Qdrant at {self.endpoint} answered HTTP {response.status_code} for snapshot "
                        f"'{snapshot}' of '{physical}'; check that it still exists (list the snapshots)"
                    )
                with open(tmp, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
            finally:
                response.close()
        return dest

    # ---- health and lifetime ----------------------------------------------------------------------

    def health(self) -> ComponentHealth:
        """Whether the server answers, with its version; never raises."""
        try:
            with self._calls():
                version = "local-mode" if self.local else self.client.info().version
                count = len(self._collections())
        except Exception as exc:
            return ComponentHealth(
                component="vector store",
                mode=self.mode,
                ok=False,
                endpoint=self.endpoint,
                detail=redact_text(str(exc)),
            )
        detail = f"{count} collection{'s' if count != 1 else ''}"
        if self.local:
            detail += "; local mode is brute force (no HNSW, no snapshots)"
        return ComponentHealth(
            component="vector store",
            mode=self.mode,
            ok=True,
            version=version,
            endpoint=self.endpoint,
            detail=detail,
        )

    def close(self) -> None:
        """Close the client's connections (or local files)."""
        self.client.close()

    def __enter__(self) -> QdrantServerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
