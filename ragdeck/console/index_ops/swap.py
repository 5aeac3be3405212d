"""The alias swap: point the serving alias at a finished shadow version in one atomic store call, only when
its gate passed against the version live now (or an operator overrides that with a written reason), and
only when it was embedded with the model queries are embedded with. ``move_alias`` is the one way the
alias moves (swap and rollback): the store call, the registry's history and the audit entry.

A move is kept in the history in two steps around the store call: a ``pending`` row (with its process)
before the alias changes, marked ``done`` with the audit entry once it has. A process killed between the two
leaves a pending row; ``settle_interrupted`` (run before every move) compares it with the alias it finds:
the alias points at the row's target, so the move happened and is recorded (and audited) now; or it does
not, so the move never happened and the row goes. A pending row of a process still alive, or of another
host, is left alone."""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import EllipsisType
from typing import TYPE_CHECKING

from ragdeck.console import audit
from ragdeck.console.index_ops.catalog import VersionCatalog
from ragdeck.console.index_ops.records import AliasMove, GateBlocked
from ragdeck.console.roles import User, require
from ragdeck.errors import AliasConflict, CollectionNotFound, InputError
from ragdeck.services.common import pid_alive

if TYPE_CHECKING:
    from ragdeck.console.audit import AuditLog


def move_alias(
    catalog: VersionCatalog,
    user: User,
    action: str,
    collection: str,
    before: str | None,
    reason: str,
    extra: dict,
    *,
    log: AuditLog,
) -> AliasMove:
    """Point the catalog's alias at ``collection`` only if it still points at ``before`` (readers see the
    old or the new version, never a mix), and keep the move in the alias history and the audit log in the
    same step; AliasConflict (audited as failed) when it moved since it was read."""
    alias = catalog.alias
    settle_interrupted(catalog, log=log)
    event_id = catalog.registry.add_event(
        alias=alias,
        action=action,
        from_collection=before,
        to_collection=collection,
        actor=user.name,
        reason=reason,
        pending=True,
    )

    def record() -> None:
        catalog.registry.settle_event(event_id, moved=True)
        audit.record(
            user,
            action,
            alias,
            before={"collection": before},
            after={"collection": collection, **extra},
            reason=reason,
            log=log,
        )

    try:
        catalog.store.compare_and_set_alias(alias, collection, expected=before, on_moved=record)
    except BaseException as exc:
        catalog.registry.settle_event(event_id, moved=False)  # the alias was put back, or never moved
        if isinstance(exc, AliasConflict):
            refused(user, action, alias, exc, log=log)
        raise
    return AliasMove(alias, action.split(".")[-1], before, collection, user.name, reason)


def settle_interrupted(catalog: VersionCatalog, *, log: AuditLog) -> list[dict]:
    """Settle the pending moves of the catalog's alias left by processes that died on this host: recorded
    and audited when the alias points at their target, deleted when it does not; the rows settled."""
    settled: list[dict] = []
    dead = [
        event
        for event in catalog.registry.events(
            catalog.alias, None, state="pending"
        )  # few rows, not the history
        if event.get("host") == socket.gethostname() and event.get("pid") and not pid_alive(int(event["pid"]))
    ]
    live = catalog.live() if dead else None
    for event in dead:
        moved = event["to_collection"] == live
        if catalog.registry.settle_event(int(event["id"]), moved=moved) and moved:
            audit.record(
                str(event["actor"]),
                str(event["action"]),
                catalog.alias,
                before={"collection": event["from_collection"]},
                after={"collection": event["to_collection"], "recorded_after": "the moving process died"},
                reason=str(event["reason"]),
                log=log,
            )
        settled.append({**event, "state": "done" if moved else "dropped"})
    return settled


def refused(user: User, action: str, alias: str, exc: AliasConflict, *, log: AuditLog) -> None:
    """Keep a move refused for a stale expectation in the audit log (outcome ``failed``)."""
    audit.record(
        user,
        action,
        alias,
        before={"collection": exc.expected},
        after={"collection": exc.actual},
        reason=str(exc),
        outcome="failed",
        log=log,
    )


def expect_live(catalog: VersionCatalog, expected: str | EllipsisType | None) -> str | None:
    """The alias's target the caller expects (``...``: the one it points at now), checked against the
    current one: AliasConflict when the caller's (shown or read earlier) is out of date."""
    current = catalog.live()
    if expected is ...:
        return current
    if expected != current:
        raise AliasConflict(catalog.alias, expected, current)
    return expected


class SwapOps:
    """Swap the catalog's alias to a gated version."""

    def __init__(
        self,
        catalog: VersionCatalog,
        log: AuditLog,
        *,
        serving_model: str | Callable[[], str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.log = log
        self.serving_model = serving_model  # the model queries are embedded with (a callable: asked late)

    def swap(
        self,
        user: User,
        collection: str,
        *,
        reason: str = "",
        override: bool = False,
        expected: str | EllipsisType | None = ...,
    ) -> AliasMove:
        """Point the alias at ``collection`` when its gate passed against the live version.

        ``expected`` is the live version the caller showed or read (None: no alias yet; ``...``: the one
        live now): the gate must have compared with it and the alias must still point at it when it
        moves, else AliasConflict and nothing changes. ``override`` swaps without a passed gate; it needs
        a written ``reason`` (operators only, as every swap).
        """
        alias, registry = self.catalog.alias, self.catalog.registry
        require(user, "index.swap", target=alias, log=self.log)
        reason = reason.strip()
        if not self.catalog.store.collection_exists(collection):
            raise CollectionNotFound(f"no collection '{collection}' to swap to: rebuild it first")
        row = registry.version(collection)
        if row is not None and row["status"] not in ("ready",):
            raise InputError(
                f"'{collection}' is {row['status']}, not ready: only a finished rebuild can go live"
            )
        try:
            current = expect_live(self.catalog, expected)
        except AliasConflict as exc:
            refused(user, "index.swap", alias, exc, log=self.log)
            raise
        if current == collection:
            raise InputError(f"'{collection}' is already live behind '{alias}'")
        model = self.serving_model() if callable(self.serving_model) else self.serving_model
        built_with = (row or {}).get("spec", {}).get("embedding_model") if row else None
        if model and built_with and built_with != model:
            raise InputError(
                f"'{collection}' was embedded with {built_with!r} but queries are embedded with {model!r}: "
                "set RAGDECK_EMBEDDING_MODEL / TEI_URL to that model for the console and API, then swap"
            )
        gate = (row or {}).get("gate") if row else None
        problem = None
        if not gate:
            problem = f"'{collection}' has not been gated: run `ragdeck index gate {collection}` first"
        elif not gate.get("passed"):
            problem = f"the gate of '{collection}' failed: " + "; ".join(gate.get("failures") or [])
        elif gate.get("live_collection") != current:
            problem = (
                f"the gate of '{collection}' compared it with '{gate.get('live_collection')}', but "
                f"'{current}' is live now: gate it again"
            )
        if problem and not override:
            raise GateBlocked(problem + "; or override with a written reason (operators only)")
        if problem and not reason:
            raise InputError(
                "an override of the gate needs a written reason: say why this version must go live"
            )
        extra = {"gate": "overridden" if problem else "passed"}
        if problem:
            extra["gate_problem"] = problem
            registry.update_version(
                collection, gate={**(gate or {}), "override": True, "override_reason": reason}
            )
        return move_alias(self.catalog, user, "index.swap", collection, current, reason, extra, log=self.log)
