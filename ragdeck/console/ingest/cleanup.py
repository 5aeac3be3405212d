"""Deleting a collection by hand (``ragdeck collection delete``): operators only, audited, never one an
alias points at (the alias would vanish with it) and never one an ingest is still building; the ingest
marker of a deleted collection is forgotten too."""

from __future__ import annotations

from ragdeck.console import audit
from ragdeck.console.ingest import journal as ingest_journal
from ragdeck.console.ingest.ports import IngestJournal, IngestStore
from ragdeck.console.roles import User, require
from ragdeck.errors import CollectionNotFound, RagdeckError, StoreBusy


def delete_collection(
    store: IngestStore,
    user: User,
    name: str,
    *,
    journal: IngestJournal | None = None,
    log: audit.AuditLog,
) -> int | None:
    """Delete the collection ``name`` unless an alias points at it (InputError naming the alias) or an
    ingest still builds it (CollectionExists); returns how many points it held (None if unknown)."""
    require(user, "collection.delete", target=name, log=log)
    if not store.collection_exists(name):
        aliases = store.list_aliases()
        if name in aliases:
            raise CollectionNotFound(
                f"'{name}' is an alias (of '{aliases[name]}'), not a collection: name a collection "
                f"(`ragdeck collections` lists them)"
            )
        raise CollectionNotFound(f"no collection '{name}': `ragdeck collections` lists the collections")
    marker = journal.get(name) if journal is not None else None
    if marker is not None and ingest_journal.owner_alive(marker):
        raise ingest_journal.busy_error(name, marker)
    try:
        points: int | None = store.collection_info(name).points
    except StoreBusy:
        raise
    except RagdeckError:  # a damaged collection can still be deleted
        points = None
    store.delete_collection(name, unless_aliased=True)
    if journal is not None:
        journal.remove(name)
    audit.record(
        user, "collection.delete", name, before={"points": points, "partial": marker is not None}, log=log
    )
    return points
