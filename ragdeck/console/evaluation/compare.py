"""Offline A/B comparison of two stored eval runs over the same eval set version, query by query.

Queries are paired by id; a query missing from either run, or failed in either, is dropped (and counted).
Per metric: means of A and B over the pairs, the difference B - A with its paired bootstrap 95 % interval,
the two-sided paired permutation (sign-flip) p-value, the Holm-adjusted p across the metrics compared, and
how many queries B wins, ties (within 1e-12) or loses. Every metric is taken as higher-is-better.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ragdeck.console.evaluation.report import headline_metrics, retrieval_label, scoring_lines
from ragdeck.console.evaluation.stats import holm, paired_bootstrap_ci, paired_permutation_test
from ragdeck.errors import InputError
from ragdeck.services.types import RunRow

TIE_TOLERANCE = 1e-12
CONFIDENCE = 0.95
DROP_REASONS = ("only_in_a", "only_in_b", "failed_in_a", "failed_in_b", "failed_in_both")


ALPHA = 0.05  # the significance level of a comparison's decisions (Holm-adjusted p-values)


@dataclass(frozen=True)
class MetricComparison:
    """One metric over the queries both runs scored: means, B - A with its interval, p-values, W/T/L."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
    p_holm: float
    wins: int
    ties: int
    losses: int

    def decision(self, alpha: float = ALPHA) -> str:
        """What the Holm-adjusted test supports at ``alpha``: "B better", "B worse" or "no difference"."""
        if self.p_holm < alpha and self.diff > 0:
            return "B better"
        if self.p_holm < alpha and self.diff < 0:
            return "B worse"
        return "no difference"


@dataclass(frozen=True)
class Comparison:
    """Run B against run A: the paired queries, what was dropped and why, and one row per metric."""

    run_a: RunRow
    run_b: RunRow
    pairs: list[tuple[dict[str, Any], dict[str, Any]]]
    dropped: dict[str, list[str]]
    metrics: list[MetricComparison]
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str) -> MetricComparison:
        """The row of one compared metric; InputError naming those compared when it is not one of them."""
        for row in self.metrics:
            if row.metric == name:
                return row
        raise InputError(f"metric {name!r} was not compared: use one of {', '.join(self.compared)}")

    @property
    def compared(self) -> list[str]:
        """The compared metric names, in order."""
        return [row.metric for row in self.metrics]

    def per_query(self, metric: str) -> list[dict[str, Any]]:
        """Each paired query's ``a`` and ``b`` values on ``metric`` (NaN when a run lacks it) and its
        ``outcome`` for B: "win", "tie" or "loss" (None when a value is missing)."""
        self.metric(metric)
        rows = []
        for ra, rb in self.pairs:
            a, b = _value(ra, metric), _value(rb, metric)
            outcome = None
            if not (math.isnan(a) or math.isnan(b)):
                outcome = "tie" if abs(b - a) <= TIE_TOLERANCE else ("win" if b > a else "loss")
            rows.append(
                {
                    "query_id": ra["query_id"],
                    "question": ra.get("question", ""),
                    "a": a,
                    "b": b,
                    "outcome": outcome,
                }
            )
        return rows

    def largest_regressions(self, metric: str, n: int = 10) -> list[dict[str, Any]]:
        """Up to ``n`` queries where B scores lower than A on ``metric``, worst first (then in eval-set
        order), each with its question, both values, both retrieved chunk and document id lists, both
        answers and the gold ids: a side-by-side drill-down."""
        self.metric(metric)
        rows = []
        for position, (ra, rb) in enumerate(self.pairs):
            a, b = _value(ra, metric), _value(rb, metric)
            if math.isnan(a) or math.isnan(b) or b - a >= -TIE_TOLERANCE:
                continue
            rows.append((b - a, position, ra, rb, a, b))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [
            {
                "query_id": ra["query_id"],
                "question": ra.get("question", ""),
                "a": a,
                "b": b,
                "diff": diff,
                "gold": sorted(g for g, grade in (ra.get("gold") or {}).items() if grade > 0),
                "retrieved_a": [h["chunk_id"] for h in ra.get("retrieved", [])],
                "retrieved_b": [h["chunk_id"] for h in rb.get("retrieved", [])],
                "retrieved_docs_a": [h.get("doc_id") for h in ra.get("retrieved", [])],
                "retrieved_docs_b": [h.get("doc_id") for h in rb.get("retrieved", [])],
                "answer_a": (ra.get("answer") or {}).get("text"),
                "answer_b": (rb.get("answer") or {}).get("text"),
            }
            for diff, _, ra, rb, a, b in rows[: max(0, n)]
        ]

    def to_json(self, regressions: int = 10) -> dict[str, Any]:
        """Both runs, the pairing, one object per metric, and each metric's ``regressions`` worst queries."""
        return {
            "run_a": _run_json(self.run_a),
            "run_b": _run_json(self.run_b),
            "eval_set": {"name": self.run_a.set_name, "hash": self.run_a.set_hash},
            "paired": len(self.pairs),
            "dropped": self.dropped,
            "confidence": CONFIDENCE,
            "notes": self.notes,
            "metrics": [{k: _finite(v) for k, v in asdict(row).items()} for row in self.metrics],
            "regressions": {m: self.largest_regressions(m, regressions) for m in self.compared},
        }

    def markdown(self, regressions: int = 5) -> str:
        """The comparison as Markdown: both runs, the pairing, the metric table and, for each metric B
        loses on, its worst queries."""
        a, b = self.run_a, self.run_b
        lines = [
            f"## A/B: `{a.run_id}` (A) vs `{b.run_id}` (B)",
            "",
            f"- eval set `{a.set_name}` sha256:{a.set_hash[:12]}, {len(self.pairs)} queries paired",
            f"- A: {_describe(a)}",
            *(f"  - {line}" for line in run_header(a)[1:]),
            f"- B: {_describe(b)}",
            *(f"  - {line}" for line in run_header(b)[1:]),
        ]
        dropped = [f"{len(ids)} {reason.replace('_', ' ')}" for reason, ids in self.dropped.items() if ids]
        lines.append("- dropped: " + (", ".join(dropped) if dropped else "none"))
        lines += [f"- note: {note}" for note in self.notes]
        lines += [
            "",
            "| metric | A | B | B−A [95 % CI] | p | p (Holm) | W/T/L |",
            "|---|---:|---:|---|---:|---:|---|",
        ]
        for r in self.metrics:
            lines.append(
                f"| {r.metric} | {r.mean_a:.4f} | {r.mean_b:.4f} | {r.diff:+.4f} [{r.low:+.4f}, "
                f"{r.high:+.4f}] | {_p(r.p_value)} | {_p(r.p_holm)} | {r.wins}/{r.ties}/{r.losses} |"
            )
        short = [f"{r.metric} (n={r.n})" for r in self.metrics if r.n < len(self.pairs)]
        lines += [
            "",
            "B−A > 0: B is better. p: two-sided paired permutation test (sign flips); p (Holm): adjusted "
            f"across the {len(self.metrics)} metrics shown. W/T/L: queries where B is better / equal / "
            "worse.",
        ]
        if short:
            lines.append("Scored on fewer queries (a value missing in a run): " + ", ".join(short) + ".")
        for r in self.metrics:
            worst = self.largest_regressions(r.metric, regressions) if r.losses else []
            if not worst:
                continue
            lines += ["", f"### Largest regressions of B on {r.metric}", "", "| query | A | B | question |"]
            lines.append("|---|---:|---:|---|")
            for q in worst:
                question = str(q["question"]).replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {q['query_id']} | {q['a']:.4f} | {q['b']:.4f} | {question} |")
        return "\n".join(lines) + "\n"


def _value(result: dict[str, Any], metric: str) -> float:
    value = (result.get("metrics") or {}).get(metric)
    return math.nan if value is None else float(value)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _p(p: float) -> str:
    if math.isnan(p):
        return "–"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def run_label(run: RunRow) -> str:
    """One line naming a run for a picker: id, eval set and version, policy or collection, time, status."""
    config = run.config.get("policy") or {}
    policy = f"{config.get('name') or run.collection} ({retrieval_label(config)})"
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.created_at))
    by = f" · by {run.config['created_by']}" if run.config.get("created_by") else ""
    version = f"{run.set_name} sha256:{run.set_hash[:8]}"
    return f"{run.run_id} · {version} · {policy} · {when} UTC · {run.status}{by}"


def same_set_version(run: RunRow, runs: Sequence[RunRow]) -> list[RunRow]:
    """The other runs in ``runs`` over the same eval set version as ``run``: those it can be compared to."""
    return [r for r in runs if r.set_hash == run.set_hash and r.run_id != run.run_id]


def default_pair(runs: Sequence[RunRow]) -> tuple[str, str | None]:
    """The runs Compare opens on, from ``runs`` newest first: B is the newest finished run that has an earlier
    finished run of the same eval set version, A the newest such earlier run (a baseline, then a candidate:
    the demo's dense run, then its hybrid one). Without such a pair: the newest run as A, no B."""
    done = [r for r in runs if r.status == "done"]
    for i, b in enumerate(done):
        a = next((r for r in done[i + 1 :] if r.set_hash == b.set_hash), None)
        if a is not None:
            return a.run_id, b.run_id
    return runs[0].run_id, None


def metric_table(comparison: Comparison) -> list[dict[str, Any]]:
    """One display row per compared metric: means, B − A with its interval, p-values and W/T/L."""
    return [
        {
            "metric": r.metric,
            "n": r.n,
            "A": round(r.mean_a, 4),
            "B": round(r.mean_b, 4),
            "B − A": round(r.diff, 4),
            "95 % CI": f"[{r.low:+.4f}, {r.high:+.4f}]",
            "p": _finite(r.p_value),
            "p (Holm)": _finite(r.p_holm),
            "wins": r.wins,
            "ties": r.ties,
            "losses": r.losses,
        }
        for r in comparison.metrics
    ]


def run_header(run: RunRow) -> list[str]:
    """What a run was, a line each: its id, collection, policy, retrieval mode and fusion; then its level,
    depth and the reranker actually used (``report.scoring_lines``)."""
    return [_describe(run), *scoring_lines(run)]


def _describe(run: RunRow) -> str:
    policy = run.config.get("policy") or {}
    name = f", policy `{policy['name']}`" if policy.get("name") else ""
    answers = ", answers judged" if run.config.get("answers") else ""
    mode = f", {retrieval_label(policy)} retrieval" if policy else ""
    return f"`{run.run_id}`: collection `{run.collection}`{name}{mode}{answers} ({run.status})"


def _run_json(run: RunRow) -> dict[str, Any]:
    return {"run_id": run.run_id, "status": run.status, "collection": run.collection, "config": run.config}


def _pair(
    results_a: Sequence[dict[str, Any]], results_b: Sequence[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], dict[str, list[str]]]:
    """Queries in A's order that both runs finished, and the ids dropped by reason."""
    by_id_b = {r["query_id"]: r for r in results_b}
    ids_a = {r["query_id"] for r in results_a}
    dropped: dict[str, list[str]] = {reason: [] for reason in DROP_REASONS}
    pairs = []
    for ra in results_a:
        qid = ra["query_id"]
        rb = by_id_b.get(qid)
        if rb is None:
            dropped["only_in_a"].append(qid)
        elif ra.get("error") and rb.get("error"):
            dropped["failed_in_both"].append(qid)
        elif ra.get("error"):
            dropped["failed_in_a"].append(qid)
        elif rb.get("error"):
            dropped["failed_in_b"].append(qid)
        else:
            pairs.append((ra, rb))
    dropped["only_in_b"] = [r["query_id"] for r in results_b if r["query_id"] not in ids_a]
    return pairs, dropped


def _metric_names(run: RunRow, results: Sequence[dict[str, Any]]) -> list[str]:
    """Metric names of a run: from its summary, else from its results."""
    names = list((run.summary or {}).get("metrics") or {})
    for r in results:
        names += [n for n in (r.get("metrics") or {}) if n not in names]
    return names


def compare_runs(
    run_a: RunRow,
    results_a: Sequence[dict[str, Any]],
    run_b: RunRow,
    results_b: Sequence[dict[str, Any]],
    metrics: Sequence[str] | None = None,
) -> Comparison:
    """Compare run B against run A query by query (see the module docstring).

    ``metrics`` default to the headline metrics of A (``headline_metrics``) that B has too. InputError when
    the runs evaluated different eval set versions, when a named metric is missing from either run, or when
    no query was finished by both.
    """
    if run_a.set_hash != run_b.set_hash:
        raise InputError(
            f"runs {run_a.run_id} and {run_b.run_id} evaluated different versions of the eval set "
            f"(A: `{run_a.set_name}` sha256:{run_a.set_hash[:12]}, B: `{run_b.set_name}` "
            f"sha256:{run_b.set_hash[:12]}): re-run one of them on the same version to compare them"
        )
    names_a, names_b = _metric_names(run_a, results_a), _metric_names(run_b, results_b)
    if metrics:
        missing = [m for m in metrics if m not in names_a or m not in names_b]
        if missing:
            common = [n for n in names_a if n in names_b]
            raise InputError(
                f"metric {', '.join(map(repr, missing))} is not in both runs: use one of "
                f"{', '.join(common) or 'none (the runs share no metric)'}"
            )
        chosen = list(dict.fromkeys(metrics))
    else:
        summary = (
            run_a.summary if (run_a.summary or {}).get("metrics") else {"metrics": dict.fromkeys(names_a)}
        )
        chosen = [m for m in headline_metrics(summary) if m in names_b]
        if not chosen:
            chosen = [n for n in names_a if n in names_b]
    pairs, dropped = _pair(results_a, results_b)
    if not pairs:
        raise InputError(
            f"runs {run_a.run_id} and {run_b.run_id} have no query that both finished without error: "
            "nothing to compare"
        )
    notes = [
        f"run {run.run_id} is {run.status}: compared on the queries it finished"
        for run in (run_a, run_b)
        if run.status != "done"
    ]
    rows = []
    for name in chosen:
        a = np.array([_value(ra, name) for ra, _ in pairs])
        b = np.array([_value(rb, name) for _, rb in pairs])
        keep = ~(np.isnan(a) | np.isnan(b))
        a, b = a[keep], b[keep]
        d = b - a
        diff, low, high = paired_bootstrap_ci(a, b, confidence=CONFIDENCE)
        empty = a.size == 0
        rows.append(
            {
                "metric": name,
                "n": int(a.size),
                "mean_a": math.nan if empty else float(a.mean()),
                "mean_b": math.nan if empty else float(b.mean()),
                "diff": diff,
                "low": low,
                "high": high,
                "p_value": paired_permutation_test(a, b),
                "wins": int(np.count_nonzero(d > TIE_TOLERANCE)),
                "ties": int(np.count_nonzero(np.abs(d) <= TIE_TOLERANCE)),
                "losses": int(np.count_nonzero(d < -TIE_TOLERANCE)),
            }
        )
    adjusted = holm({row["metric"]: row["p_value"] for row in rows})
    compared = [MetricComparison(**row, p_holm=adjusted[row["metric"]]) for row in rows]
    return Comparison(run_a, run_b, pairs, dropped, compared, notes)
