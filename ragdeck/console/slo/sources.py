"""Where the SLO page's numbers come from, in order: Prometheus (``PROMETHEUS_URL``: history, budgets, burn
rates), else the RAG API's own ``/metrics`` (``RAGDECK_API_URL`` or the API the console hosts: values since
it started), else the eval runs alone. The quality objectives (faithfulness, recall@k) always come from the
latest eval runs of the live index version, so a fresh start with the demo's eval runs still has numbers;
availability, latency and error rate then show "no data" and the reading says how to get some.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragdeck.console.interfaces import MetricsQuery
from ragdeck.console.online.ports import RoutingAdmin
from ragdeck.console.slo.live import slo_from_prometheus, slo_from_samples
from ragdeck.console.slo.objectives import SloStatus, SloTargets, quality_status
from ragdeck.errors import RagdeckError
from ragdeck.services.types import RunRow

QUALITY = ("faithfulness",)  # plus the targets' recall metric: objectives read from eval runs
HOW_TO_GET_REQUESTS = (
    "start the RAG API on the Canary page (the console serves it) and send it traffic (Replay there, or "
    "`ragdeck replay`); or run `ragdeck api serve` elsewhere and set RAGDECK_API_URL; or set PROMETHEUS_URL "
    "(docker compose runs one) for error budgets, burn rates and history"
)
NO_HISTORY = (
    "Values since the API process started, without history: set PROMETHEUS_URL for error budgets, burn "
    "rates and the SLIs over time."
)


@dataclass(frozen=True)
class SloReading:
    """The objectives now; ``source`` says where their numbers came from, ``kind`` which source it was
    ("prometheus", "api" or "eval runs"); ``problem`` a source that failed (the next one was used);
    ``hint`` what to do to get the numbers missing (None when nothing is missing)."""

    statuses: list[SloStatus]
    source: str
    kind: str
    problem: str | None = None
    hint: str | None = None


def is_quality(status: SloStatus, targets: SloTargets) -> bool:
    """Whether ``status`` is a quality objective (read from eval runs, not from requests)."""
    return status.name in (*QUALITY, targets.recall_metric)


def slo_from_eval_runs(
    targets: SloTargets, runs: Sequence[RunRow], collection: str, why: str
) -> list[SloStatus]:
    """Every objective with no request metrics: availability, latency and error rate "no data" (``why``
    in their note), the quality objectives from the latest eval runs of ``collection``."""
    request_objectives = (
        ("availability", f"≥ {targets.availability:.3%} of served requests succeed", targets.availability,
         "", True),
        ("retrieval + rerank P95", f"P95 of retrieval + rerank ≤ {targets.retrieval_p95_ms:g} ms",
         targets.retrieval_p95_ms, "ms", False),
        ("generation P95", f"P95 of generation ≤ {targets.generation_p95_s:g} s", targets.generation_p95_s,
         "s", False),
        ("error rate", f"< {targets.error_rate:.2%} of served requests fail", targets.error_rate, "", False),
    )  # fmt: skip
    return [
        *(SloStatus(n, d, None, t, u, h, note=why) for n, d, t, u, h in request_objectives),
        quality_status("faithfulness", "faithfulness", targets.faithfulness, runs, collection),
        quality_status(targets.recall_metric, targets.recall_metric, targets.recall, runs, collection),
    ]


def read_slos(
    query: MetricsQuery | None,
    admin: Callable[[], RoutingAdmin | None],
    targets: SloTargets,
    runs: Sequence[RunRow],
    collection: str,
    *,
    prometheus_shown: str = "",
) -> SloReading:
    """The objectives from the first source that answers (see the module docstring); never raises for a
    missing or failing source: it says so in ``problem`` and ``hint`` instead."""
    problem = None
    if query is not None:
        try:
            statuses = slo_from_prometheus(query, targets, runs, collection)
        except RagdeckError as exc:
            problem = f"{exc}. Falling back to the RAG API's /metrics (no history)."
        else:
            quiet = all(s.value is None for s in statuses if not is_quality(s, targets))
            hint = f"Prometheus has no requests of the RAG API yet: {HOW_TO_GET_REQUESTS}." if quiet else None
            return SloReading(statuses, f"Prometheus at {prometheus_shown}", "prometheus", hint=hint)
    api = admin()
    if api is not None:
        try:
            samples = api.metrics()
        except RagdeckError as exc:
            problem = (problem + " " if problem else "") + f"The RAG API at {api.shown_url}: {exc}."
        else:
            statuses = slo_from_samples(samples, targets, runs, collection)
            source = f"the RAG API's /metrics at {api.shown_url}"
            return SloReading(statuses, source, "api", problem, NO_HISTORY)
    why = "no request metrics: " + ("the sources above failed" if problem else "no metrics source configured")
    return SloReading(
        slo_from_eval_runs(targets, runs, collection, why),
        "eval runs in the state database (quality objectives only)",
        "eval runs",
        problem,
        f"No request metrics, so availability, latency and error rate show no data. To get them: "
        f"{HOW_TO_GET_REQUESTS}.",
    )
