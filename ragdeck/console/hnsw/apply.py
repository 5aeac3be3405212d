"""Applying a choice, live and audited: a policy's default search-time ef (a run-time policy override every
process picks up), or a collection's m / ef_construct (server: ``update_collection`` then wait for the
index; embedded: rebuilt on a copy and swapped in, so searches keep working). Both need the operator role
when the actor is a user; every attempt, refused or failed ones too, is in the audit log.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict

from ragdeck.console import audit
from ragdeck.console.hnsw.grid import Progress
from ragdeck.console.hnsw.ports import TuningStore
from ragdeck.console.retrieval.policies import load_policies
from ragdeck.console.retrieval.ports import PolicyOverrideStore
from ragdeck.console.roles import User, require
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.services.types import HnswConfig


def check_apply(actor: User | str, collection: str, *, log: audit.AuditLog) -> None:
    """Changing a live collection's index needs the operator role (PermissionDenied, audited, otherwise).
    Roles apply to users (``ui.current_user()``, ``roles.cli_user()``); a plain name is trusted code."""
    if isinstance(actor, User):
        require(actor, "collection.hnsw", target=f"collection:{collection}", log=log)


def apply_policy_ef(
    settings: Settings,
    policy: str,
    ef: int | None,
    *,
    actor: User | str,
    overrides: PolicyOverrideStore,
    log: audit.AuditLog,
) -> tuple[int | None, int | None]:
    """Set the default search-time ef of ``policy`` (None: the engine's default) in ``overrides``
    (``wiring.build_policy_overrides``: the state database, where every process's policy loader picks it
    up); returns (before, after). A user needs the operator role."""
    policies = load_policies(settings, overrides.all())
    if policy not in policies:
        raise InputError(f"unknown policy {policy!r}: use one of {', '.join(sorted(policies))}")
    if ef is not None and (isinstance(ef, bool) or not isinstance(ef, int) or ef < 1):
        raise InputError(f"ef must be an integer >= 1 (or unset), got {ef!r}")
    if isinstance(actor, User):
        require(actor, "policy.hnsw_ef", target=f"policy:{policy}", log=log)
    before = policies[policy].hnsw_ef
    name = actor if isinstance(actor, str) else actor.name
    overrides.set(policy, "hnsw_ef", ef, actor=name)
    audit.record(actor, "policy.hnsw_ef", f"policy:{policy}", before=before, after=ef, log=log)
    return before, ef


def _while_reporting(
    work: Callable[[], None],
    report: Progress,
    stage: str,
    counts: Callable[[], tuple[int, int]] | None = None,
    poll_s: float = 0.5,
) -> None:
    """Run ``work`` on a worker thread, reporting ``stage`` with the elapsed seconds (and ``counts()``, e.g.
    vectors indexed of all, when given) every ``poll_s``; its exception is raised here."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hnsw-apply") as pool:
        future = pool.submit(work)
        while True:
            done, total = 0, 1
            if counts is not None:
                with contextlib.suppress(Exception):  # progress is best effort; the work's errors count
                    done, total = counts()
            report(f"{stage} ({time.monotonic() - started:.0f} s)", done, total)
            finished, _ = concurrent.futures.wait([future], timeout=poll_s)
            if finished:
                future.result()  # raises the work's error
                report(f"{stage}: done", 1, 1)
                return


def apply_hnsw(
    store: TuningStore,
    collection: str,
    m: int,
    ef_construct: int,
    *,
    actor: User | str,
    log: audit.AuditLog,
    progress: Progress | None = None,
) -> tuple[HnswConfig, HnswConfig]:
    """Change m / ef_construct of a live collection (server: ``update_collection``, then wait for the
    index; embedded: rebuilt on a copy and swapped in, searches keep working); returns (before, after).
    A user needs the operator role. Not cancellable: it completes or fails as a whole."""
    physical = store.resolve(collection)
    check_apply(actor, physical, log=log)
    before = store.collection_info(physical).hnsw
    wanted = HnswConfig(m=m, ef_construct=ef_construct, full_scan_threshold=before.full_scan_threshold)
    report = progress or (lambda stage, done, total: None)
    try:
        stage = f"rebuilding {physical} with m={m} ef_construct={ef_construct}"
        _while_reporting(lambda: store.update_hnsw(physical, wanted), report, stage)
        if store.capabilities.mode == "server":

            def indexed() -> tuple[int, int]:
                info = store.collection_info(physical)
                return info.indexed_vectors, max(info.points, 1)

            _while_reporting(lambda: store.finish_indexing(physical), report, "server indexing", indexed)
    except BaseException:
        audit.record(
            actor,
            "collection.hnsw",
            f"collection:{physical}",
            before=asdict(before),
            after=asdict(wanted),
            outcome="failed",
            log=log,
        )
        raise
    after = store.collection_info(physical).hnsw
    report("done", 1, 1)
    audit.record(
        actor,
        "collection.hnsw",
        f"collection:{physical}",
        before=asdict(before),
        after=asdict(after),
        log=log,
    )
    return before, after
