"""Sample size of an eval set: how many questions detect a difference, and the smallest one a set detects.

The spread comes from the data. Two runs over the same questions (paired by query id, as ``compare``
pairs them) give the per-question differences d_i = b_i - a_i and their standard deviation σ_d. One run
gives only the metric's standard deviation σ, so the paired one is assumed: σ_d = σ·√(2(1 − ρ)), with ρ
the correlation between two policies' per-question values (ρ = 0.5 by default: σ_d = σ; a caller who
knows the policies agree more, say ρ = 0.8, passes it).

Two methods, always named in the output:

- ``normal``: the paired normal approximation. n = ((z_{1−α/2} + z_{power}) σ_d / δ)², rounded up; the
  smallest detectable difference (MDE) at n questions is (z_{1−α/2} + z_{power}) σ_d / √n; the power at n is
  Φ(δ√n/σ_d − z_{1−α/2}) + Φ(−δ√n/σ_d − z_{1−α/2}).
- ``simulation``: resampling. The observed differences, centred and shifted to mean δ (one run: its centred
  values scaled to σ_d), are drawn with replacement n at a time, ``simulations`` times from a seeded
  generator; the power is the share of draws a two-sided paired t-test rejects at α (a t-test, not the
  Compare page's permutation test: thousands of permutation tests per point would be too slow, and the two
  agree closely past a dozen questions). n is the smallest n whose simulated power reaches the target
  (searched up to ``MAX_SIMULATED_N``), the MDE the smallest δ whose simulated power at the set's n does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from ragdeck.console.evaluation.stats import student_t_quantile
from ragdeck.errors import InputError
from ragdeck.services.types import RunRow

Method = Literal["normal", "simulation"]
METHODS: tuple[str, ...] = ("normal", "simulation")
DEFAULT_POWER = 0.8
DEFAULT_ALPHA = 0.05
DEFAULT_RHO = 0.5
DEFAULT_SIMULATIONS = 2000
MAX_SIMULATED_N = 5000  # the simulation searches n up to here; beyond, it reports "more than"
_MAX_DRAWS = 4_000_000  # indices drawn at once

METHOD_TEXT = {
    "normal": "paired normal approximation: n = ((z(1−α/2) + z(power)) · σ_d / δ)²",
    "simulation": "simulation by resampling the differences (shifted to mean δ), two-sided paired t-test",
}


@dataclass(frozen=True)
class Spread:
    """What the sample size is computed from: the differences (or one run's centred values scaled to the
    assumed σ_d), their standard deviation, the number of questions and where they came from."""

    metric: str
    values: tuple[float, ...]  # resampled by the simulation; mean 0 unless paired (observed differences)
    sd: float  # σ_d, the standard deviation of a per-question difference
    source: str  # "paired" (two runs) or "one run"
    assumption: str | None = None  # how σ_d was assumed (one run), None when observed
    observed_diff: float | None = None  # mean(b - a), paired only
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """Questions the set has (with a value of the metric on every side)."""
        return len(self.values)


def _spread(metric: str, values: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    values = values[~np.isnan(values)]
    if values.size < 2:
        raise InputError(
            f"{what} has {values.size} question(s) with a value of {metric}: a sample size needs at least 2 "
            "(run the eval set with more questions, or pick a metric the run scored)"
        )
    sd = float(values.std(ddof=1))
    if not sd > 1e-12 * max(1.0, float(np.abs(values).max())):  # rounding, not spread
        raise InputError(
            f"every {'paired difference' if 'runs' in what else 'value'} of {metric} in {what} is the same "
            f"({values[0]:g}): with no spread there is no sample size to compute; pick another metric, or "
            "compare two runs that differ on some question"
        )
    return values, sd


def _metric_value(result: dict[str, Any], metric: str) -> float:
    value = (result.get("metrics") or {}).get(metric)
    return math.nan if value is None else float(value)


def _check_metric(run: RunRow, results: Sequence[dict[str, Any]], metric: str) -> None:
    names = list((run.summary or {}).get("metrics") or {})
    for r in results:
        names += [n for n in (r.get("metrics") or {}) if n not in names]
    if metric not in names:
        raise InputError(
            f"run {run.run_id} has no metric {metric!r}: use one of {', '.join(names) or 'none (no scores)'}"
        )


def spread_of_pair(
    run_a: RunRow,
    results_a: Sequence[dict[str, Any]],
    run_b: RunRow,
    results_b: Sequence[dict[str, Any]],
    metric: str,
) -> Spread:
    """The per-question differences B − A on ``metric`` over the questions both runs finished (paired by
    query id as ``compare.compare_runs`` pairs them). InputError when the runs evaluated different eval set
    versions, lack the metric, share fewer than 2 questions, or differ by the same amount on every one."""
    from ragdeck.console.evaluation.compare import compare_runs

    comparison = compare_runs(run_a, results_a, run_b, results_b, [metric])
    rows = comparison.per_query(metric)
    diffs = np.array([r["b"] - r["a"] for r in rows], dtype=np.float64)
    what = f"runs {run_a.run_id} and {run_b.run_id}"
    diffs, sd = _spread(metric, diffs, what)
    dropped = sum(len(ids) for ids in comparison.dropped.values())
    notes = [f"{dropped} question(s) not finished by both runs were left out"] if dropped else []
    return Spread(
        metric,
        tuple(float(d) for d in diffs),
        sd,
        "paired",
        observed_diff=float(diffs.mean()),
        notes=(*comparison.notes, *notes),
    )


def spread_of_run(
    run: RunRow, results: Sequence[dict[str, Any]], metric: str, *, rho: float = DEFAULT_RHO
) -> Spread:
    """One run's values of ``metric`` with the paired spread assumed: σ_d = σ·√(2(1 − ρ)), ρ the assumed
    correlation of two policies' per-question values (0.5: σ_d = σ). InputError for ρ outside [−1, 1), a
    missing metric, fewer than 2 scored questions or no spread."""
    if not -1 <= rho < 1:
        raise InputError(f"rho must be in [-1, 1) (the assumed correlation of two runs), got {rho}")
    _check_metric(run, results, metric)
    values = np.array([_metric_value(r, metric) for r in results if not r.get("error")], dtype=np.float64)
    values, sd_metric = _spread(metric, values, f"run {run.run_id}")
    scale = math.sqrt(2 * (1 - rho))
    sd = sd_metric * scale
    assumption = (
        f"one run: σ_d = σ·√(2(1 − ρ)) with ρ = {rho:g} (the assumed correlation of two policies' "
        f"per-question values), σ = {sd_metric:.4g}, so σ_d = {sd:.4g}"
    )
    centred = (values - values.mean()) * scale
    return Spread(metric, tuple(float(v) for v in centred), sd, "one run", assumption=assumption)


def spread_of_differences(differences: Sequence[float], metric: str = "metric") -> Spread:
    """Paired differences given directly (tests, other callers)."""
    diffs, sd = _spread(metric, np.asarray(differences, dtype=np.float64), "the paired runs")
    return Spread(metric, tuple(float(d) for d in diffs), sd, "paired", observed_diff=float(diffs.mean()))


# ---------------------------------------------------------------- the normal approximation


def _check(delta: float | None, power: float, alpha: float) -> None:
    if delta is not None and not (delta > 0 and math.isfinite(delta)):
        raise InputError(
            f"delta must be a difference > 0 in the metric's units (e.g. 0.02 nDCG), got {delta}"
        )
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha}")
    if not alpha / 2 < power < 1:
        raise InputError(f"power must be between α/2 and 1 (e.g. 0.8), got {power}")


def _z_sum(power: float, alpha: float) -> float:
    z = NormalDist()
    return z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)


def normal_n(delta: float, sd: float, *, power: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA) -> int:
    """Questions needed: ⌈((z_{1−α/2} + z_{power}) σ_d / δ)²⌉, at least 2."""
    _check(delta, power, alpha)
    return max(2, math.ceil((_z_sum(power, alpha) * sd / delta) ** 2 - 1e-9))


def normal_mde(n: int, sd: float, *, power: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA) -> float:
    """The smallest difference n questions detect: (z_{1−α/2} + z_{power}) σ_d / √n."""
    _check(None, power, alpha)
    return _z_sum(power, alpha) * sd / math.sqrt(n)


def normal_power(n: int, delta: float, sd: float, *, alpha: float = DEFAULT_ALPHA) -> float:
    """The power of the two-sided paired z-test at n questions: Φ(δ√n/σ_d − z) + Φ(−δ√n/σ_d − z)."""
    z = NormalDist()
    crit = z.inv_cdf(1 - alpha / 2)
    shift = delta * math.sqrt(n) / sd
    return z.cdf(shift - crit) + z.cdf(-shift - crit)


# ---------------------------------------------------------------- simulation


@dataclass
class Simulator:
    """Seeded resampling of ``values`` (centred) n at a time: per n, the means and SDs of ``simulations``
    draws, kept so that the power at any δ costs one comparison (the shift moves only the mean)."""

    values: np.ndarray
    simulations: int = DEFAULT_SIMULATIONS
    seed: int = 0
    _cache: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        self.values = self.values - self.values.mean()
        if self.simulations < 100:
            raise InputError(f"simulations must be at least 100, got {self.simulations}")

    def _draws(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n not in self._cache:
            rng = np.random.default_rng([self.seed, n])
            means, sds = np.empty(self.simulations), np.empty(self.simulations)
            rows = max(1, _MAX_DRAWS // n)
            for start in range(0, self.simulations, rows):
                stop = min(start + rows, self.simulations)
                sample = self.values[rng.integers(0, self.values.size, size=(stop - start, n))]
                means[start:stop] = sample.mean(axis=1)
                sds[start:stop] = sample.std(axis=1, ddof=1)
            self._cache[n] = (means, sds)
        return self._cache[n]

    def power(self, n: int, delta: float, alpha: float = DEFAULT_ALPHA) -> float:
        """Share of the draws of n where the two-sided paired t-test of mean 0 rejects at ``alpha`` when
        the true mean difference is ``delta``."""
        means, sds = self._draws(n)
        crit = student_t_quantile(1 - alpha / 2, n - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.abs(means + delta) / (sds / math.sqrt(n))
        return float(np.mean(np.where(sds > 0, stat > crit, np.abs(means + delta) > 0)))

    def n_needed(self, delta: float, power: float, alpha: float, start: int) -> int | None:
        """The smallest n in [2, MAX_SIMULATED_N] whose simulated power reaches ``power`` (None: none
        does); a doubling search from ``start`` then bisection."""
        low, high = 1, max(2, min(start, MAX_SIMULATED_N))
        while self.power(high, delta, alpha) < power:
            if high >= MAX_SIMULATED_N:
                return None
            low, high = high, min(2 * high, MAX_SIMULATED_N)
        while high - low > 1:
            mid = (low + high) // 2
            if mid >= 2 and self.power(mid, delta, alpha) >= power:
                high = mid
            else:
                low = mid
        return high

    def mde(self, n: int, power: float, alpha: float, guess: float) -> float:
        """The smallest δ whose simulated power at n reaches ``power`` (bisection to 0.1 % of it)."""
        low, high = 0.0, max(guess, 1e-12)
        while self.power(n, high, alpha) < power:
            low, high = high, 2 * high
        while high - low > 1e-3 * high:
            mid = (low + high) / 2
            if self.power(n, mid, alpha) >= power:
                high = mid
            else:
                low = mid
        return high


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class PowerReport:
    """The sample size of one metric: questions needed for δ, the set's n and MDE, and a power curve."""

    metric: str
    method: str
    method_text: str
    source: str
    assumption: str | None
    delta: float
    power: float
    alpha: float
    sd: float
    n_current: int
    n_needed: int | None  # None: more than MAX_SIMULATED_N (simulation)
    mde: float
    power_at_current: float
    observed_diff: float | None
    curve: list[tuple[int, float]]
    notes: list[str]
    simulations: int | None = None
    seed: int | None = None

    def needed_text(self) -> str:
        """ "N questions" or "more than N questions"."""
        if self.n_needed is None:
            return f"more than {MAX_SIMULATED_N} questions"
        return f"{self.n_needed} questions"

    def headline(self) -> str:
        """One sentence: N needed to detect Δ at this power and α; this set has M; its MDE."""
        return (
            f"{self.needed_text()} needed to detect Δ = {self.delta:g} in {self.metric} with power "
            f"{self.power:.0%} at α = {self.alpha:g} (two-sided); this set has {self.n_current}, and the "
            f"smallest difference it can detect is {self.mde:.4f} (its power for Δ = {self.delta:g}: "
            f"{self.power_at_current:.0%})."
        )

    def lines(self) -> list[str]:
        """The report as text lines (the CLI's output)."""
        lines = [
            self.headline(),
            f"method: {self.method_text}"
            + (f" ({self.simulations} simulations, seed {self.seed})" if self.simulations else ""),
            f"spread: σ_d = {self.sd:.4f} ({'observed' if self.source == 'paired' else 'assumed'})",
        ]
        if self.assumption:
            lines.append(f"assumption: {self.assumption}")
        if self.observed_diff is not None:
            lines.append(f"observed mean difference B − A: {self.observed_diff:+.4f}")
        lines += [f"note: {note}" for note in self.notes]
        return lines

    def to_json(self) -> dict[str, Any]:
        """Every field, the curve as [{"n", "power"}]."""
        data = asdict(self)
        data["curve"] = [{"n": n, "power": p} for n, p in self.curve]
        data["headline"] = self.headline()
        return data


def _curve_ns(top: int) -> list[int]:
    """About 25 question counts from 2 to ``top``, evenly spaced."""
    top = max(top, 4)
    return sorted({max(2, round(2 + (top - 2) * i / 24)) for i in range(25)})


def sample_size(
    spread: Spread,
    delta: float,
    *,
    power: float = DEFAULT_POWER,
    alpha: float = DEFAULT_ALPHA,
    method: str = "normal",
    simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 0,
) -> PowerReport:
    """The sample size of ``spread``'s metric for a difference ``delta`` (see the module docstring)."""
    _check(delta, power, alpha)
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    n_normal = normal_n(delta, spread.sd, power=power, alpha=alpha)
    n = spread.n
    notes = list(spread.notes)
    if method == "normal":
        needed: int | None = n_normal
        mde = normal_mde(n, spread.sd, power=power, alpha=alpha)
        at_current = normal_power(n, delta, spread.sd, alpha=alpha)
        ns = _curve_ns(int(1.5 * max(n_normal, n)))
        curve = [(k, normal_power(k, delta, spread.sd, alpha=alpha)) for k in ns]
        sims, used_seed = None, None
    else:
        sim = Simulator(np.array(spread.values), simulations, seed)
        needed = sim.n_needed(delta, power, alpha, n_normal)
        mde = sim.mde(n, power, alpha, normal_mde(n, spread.sd, power=power, alpha=alpha))
        at_current = sim.power(n, delta, alpha)
        top = min(MAX_SIMULATED_N, int(1.5 * max(needed or MAX_SIMULATED_N, n)))
        curve = [(k, sim.power(k, delta, alpha)) for k in _curve_ns(top)]
        sims, used_seed = simulations, seed
        if spread.source == "one run":
            notes.append("one run: the simulation resamples this run's centred values scaled to σ_d")
        if n < 12:
            notes.append(f"only {n} questions to resample: the simulated figures rest on very few values")
    return PowerReport(
        metric=spread.metric,
        method=method,
        method_text=METHOD_TEXT[method],
        source=spread.source,
        assumption=spread.assumption,
        delta=delta,
        power=power,
        alpha=alpha,
        sd=spread.sd,
        n_current=n,
        n_needed=needed,
        mde=mde,
        power_at_current=at_current,
        observed_diff=spread.observed_diff,
        curve=curve,
        notes=notes,
        simulations=sims,
        seed=used_seed,
    )
