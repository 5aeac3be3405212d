"""The embedded vector store: Qdrant's own shard engine (qdrant-edge-py) in this process.

qdrant-edge has shards, not collections, aliases or snapshots; this adapter adds them with plain files::

    <root>/collections/<name>/shard/        one EdgeShard directory per collection
    <root>/collections/<name>/meta.json     dimension, distance, HNSW settings, lexical model, created_at
    <root>/aliases.json                     {alias: collection}
    <root>/snapshots/<collection>/<snapshot>.tar (+ .json: SnapshotInfo and the alias mapping)
    <root>/collections/.rebuild-<token>/    the copy an in-place HNSW rebuild builds (removed after)

Every JSON file is replaced atomically (temp file, fsync, ``os.replace``) and collection directories appear
and disappear by ``rename``, so a reader sees either the old state or the new one. The engine allows one open
handle per shard directory per process; handles live in a process-wide registry (one per collection
directory, each with its own lock), so several store objects on the same root share them, and a shard held
by another process raises ``StoreBusy``.

Modules, one job each: ``store`` (``EmbeddedQdrantStore``: points, search, retrieve, scroll), ``catalog``
(collections and aliases), ``snapshots``, ``rebuild`` (in-place HNSW rebuild, index size on disk),
``build_index`` (the child program the rebuild runs), ``_shards`` (paths, the handle registry,
aliases.json, file helpers) and ``_convert`` (engine config, filters, vectors, records).
"""

from ragdeck.services.qdrant_embedded.store import EmbeddedQdrantStore

__all__ = ["EmbeddedQdrantStore"]
