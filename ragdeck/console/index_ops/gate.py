"""The gate of a shadow version: evaluate it and the live version on the same eval set with the same policy,
compare them query by query and check the gate's conditions; the outcome is kept with the version, where
``swap`` reads it. The eval runners are handed in (``wiring.build_eval_runner_for`` for a shadow embedded
with another model)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ragdeck.console import audit
from ragdeck.console.index_ops.catalog import VersionCatalog
from ragdeck.console.index_ops.records import DEFAULT_MAX_REGRESSION, GateResult, Progress
from ragdeck.console.jobs import Cancelled
from ragdeck.console.roles import User, require
from ragdeck.errors import CollectionNotFound

if TYPE_CHECKING:
    from ragdeck.console.audit import AuditLog
    from ragdeck.console.evalsets.model import EvalSet
    from ragdeck.console.evaluation.gate import Condition
    from ragdeck.console.evaluation.runner import EvalRunner
    from ragdeck.console.retrieval.policies import Policy


class GateOps:
    """Gate shadow versions of the catalog's alias against its live version."""

    def __init__(self, catalog: VersionCatalog, log: AuditLog) -> None:
        self.catalog = catalog
        self.log = log

    def gate(
        self,
        user: User,
        collection: str,
        evalset: EvalSet,
        runner: EvalRunner,
        policy: Policy,
        *,
        conditions: Sequence[Condition] = (),
        max_regression: float | None = DEFAULT_MAX_REGRESSION,
        ks: tuple[int, ...] | None = None,
        progress: Progress | None = None,
        shadow_runner: EvalRunner | None = None,
        cancel: threading.Event | None = None,
    ) -> GateResult:
        """Evaluate ``collection`` and the live version on ``evalset`` with ``policy`` and check the gate.

        The gate passes when every condition holds on the shadow and, with a live version, no headline
        metric fell by more than ``max_regression`` against it, and that version is still live when the
        gate ends. The result is kept with the version, naming the live version read when the gate
        started: ``swap`` expects the alias to point there still.
        ``shadow_runner`` evaluates the shadow when it was embedded with another model. Setting ``cancel``
        stops the eval runs between queries: ``Cancelled``, and nothing is kept.
        """
        from ragdeck.console.evaluation.compare import compare_runs
        from ragdeck.console.evaluation.gate import check_gate
        from ragdeck.console.evaluation.plan import DEFAULT_KS, EvalPlan
        from ragdeck.console.evaluation.report import headline_metrics, means

        require(user, "index.gate", target=collection, log=self.log)
        if not self.catalog.store.collection_exists(collection):
            raise CollectionNotFound(f"no collection '{collection}' to gate: rebuild it first")
        live = self.catalog.live()
        self.catalog.adopt(collection)

        def run(target: str, stage: str, by: EvalRunner) -> Any:
            plan = EvalPlan(
                policy=dataclasses.replace(policy, alias=target), ks=ks or DEFAULT_KS, concurrency=2
            )
            row, prepared = by.start(evalset, plan, source=f"index gate of {collection}")
            step = (lambda done, total: progress(stage, done, total)) if progress else None
            row = by.execute(row, prepared, progress=step, cancel=cancel)
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"the gate of '{collection}' was cancelled at the {stage} run: nothing kept")
            return row, by.deps.runs.results(row.run_id)

        shadow_row, shadow_results = run(collection, "shadow", shadow_runner or runner)
        shadow_means = means(shadow_row.summary)
        live_row = comparison = None
        if live is not None and live != collection:
            live_row, live_results = run(live, "live", runner)
            comparison = compare_runs(live_row, live_results, shadow_row, shadow_results)
        outcome = check_gate(
            shadow_means,
            conditions,
            baseline=means(live_row.summary) if live_row else None,
            max_regression=max_regression if live_row else None,
            compared=comparison.compared if comparison else headline_metrics(shadow_row.summary),
        )
        live_now = self.catalog.live()
        if live_now != live:  # the comparison is with a version no longer live: it cannot clear a swap
            outcome.passed = False
            outcome.failures.append(
                f"the alias moved from '{live}' to '{live_now}' during the gate: gate it again"
            )
        headline = headline_metrics(shadow_row.summary)
        live_means = means(live_row.summary) if live_row else {}
        result = GateResult(
            collection=collection,
            passed=outcome.passed,
            failures=outcome.failures,
            checks=outcome.checks,
            live_collection=live,
            live_run=live_row.run_id if live_row else None,
            shadow_run=shadow_row.run_id,
            set_name=evalset.name,
            set_hash=evalset.content_hash(),
            comparison_md=comparison.markdown() if comparison else "",
            metrics={m: {"live": live_means.get(m), "shadow": shadow_means.get(m)} for m in headline},
        )
        stored = {**result.to_json(), "at": time.time(), "by": user.name}
        self.catalog.registry.update_version(
            collection, gate=stored, cleared_by_run=shadow_row.run_id if outcome.passed else None
        )
        audit.record(
            user,
            "index.gate",
            collection,
            after={"passed": outcome.passed, "failures": outcome.failures, "shadow_run": shadow_row.run_id},
            outcome="ok" if outcome.passed else "failed",
            log=self.log,
        )
        return result
