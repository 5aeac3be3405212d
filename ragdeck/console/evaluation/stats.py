"""Statistics over per-query metric values: confidence intervals for their mean, and paired tests of two
runs over the same queries (bootstrap interval of the difference, sign-flip permutation test, Holm)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

__all__ = [
    "bootstrap_ci",
    "bootstrap_cis",
    "holm",
    "paired_bootstrap_ci",
    "paired_permutation_test",
    "student_t_quantile",
]

_MAX_DRAWS = 4_000_000  # indices drawn at once (32 MB of int64); larger resample matrices go in chunks


def bootstrap_ci(
    values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its percentile-bootstrap confidence interval.

    NaNs are dropped first. ``n_resamples`` resamples of size n are drawn with replacement (one index matrix,
    in chunks when large) from ``numpy.random.default_rng(seed)``; low and high are the (1 - confidence) / 2
    and (1 + confidence) / 2 quantiles of the resample means (linear interpolation, as
    ``scipy.stats.bootstrap(..., method="percentile")``).
    No values → (nan, nan, nan); one value v → (v, v, v). ``ValueError`` for a confidence outside (0, 1) or
    fewer than one resample.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[~np.isnan(data)]
    n = data.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if n == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    rows = max(1, _MAX_DRAWS // n)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        means[start:stop] = data[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.percentile(means, [100 * tail, 100 * (1 - tail)])
    return mean, float(low), float(high)


def bootstrap_cis(
    columns: Mapping[str, Sequence[float]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """``bootstrap_ci`` of every column, with the same values, computed together: columns with the same
    number of values (after dropping NaNs) are resampled with one shared index matrix, as ``bootstrap_ci``
    draws it for each of them alone (an eval run's dozens of metrics cost about one bootstrap)."""
    results: dict[str, tuple[float, float, float]] = {}
    groups: dict[int, list[tuple[str, np.ndarray]]] = {}
    for name, values in columns.items():
        data = np.asarray(values, dtype=np.float64).ravel()
        data = data[~np.isnan(data)]
        if data.size < 2:
            results[name] = bootstrap_ci(data, confidence=confidence, n_resamples=n_resamples, seed=seed)
        else:
            groups.setdefault(data.size, []).append((name, data))
    if not 0 < confidence < 1 or n_resamples < 1:
        bootstrap_ci([0.0, 1.0], confidence=confidence, n_resamples=n_resamples)  # raises the same errors
    tail = (1 - confidence) / 2
    for n, members in groups.items():
        matrix = np.column_stack([data for _, data in members])  # n x m
        rng = np.random.default_rng(seed)
        means = np.empty((n_resamples, matrix.shape[1]))
        rows = max(1, _MAX_DRAWS // (n * matrix.shape[1]))
        for start in range(0, n_resamples, rows):
            stop = min(start + rows, n_resamples)
            means[start:stop] = matrix[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
        lows, highs = np.percentile(means, [100 * tail, 100 * (1 - tail)], axis=0)
        for j, (name, data) in enumerate(members):
            results[name] = (float(data.mean()), float(lows[j]), float(highs[j]))
    return {name: results[name] for name in columns}


_EXACT_MAX_N = 16  # up to 2**16 sign vectors are enumerated; more pairs are sampled
_TIE_RTOL = 1e-12  # null statistics within this relative distance of the observed one count as extreme


def _paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """b - a over the pairs where neither value is NaN; ``ValueError`` when the lengths differ."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired values need the same length, got {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return y[keep] - x[keep]


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high) of the paired differences d_i = b_i - a_i: their mean and its percentile-bootstrap
    interval, resampling whole pairs (``bootstrap_ci`` of d; as ``scipy.stats.bootstrap((a, b), paired=True,
    method="percentile")`` of mean(b - a)). Pairs with a NaN on either side are dropped.
    No pairs → (nan, nan, nan). ``ValueError`` for different lengths, or what ``bootstrap_ci`` refuses.
    """
    return bootstrap_ci(_paired_differences(a, b), confidence=confidence, n_resamples=n_resamples, seed=seed)


def paired_permutation_test(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10000, seed: int = 0
) -> float:
    """Two-sided p-value of the paired randomisation test of mean(b - a) = 0.

    Under the null each difference d_i = b_i - a_i is as likely to have either sign, so the null distribution
    of T = sum(s_i d_i) is taken over sign vectors s in {-1, 1}^n; p = P(|T| >= |T_obs|), with a relative
    tolerance of 1e-12 so that rounding does not break ties. Pairs with a NaN on either side are dropped.

    With n <= 16 pairs all 2^n sign vectors are enumerated and p is exact (equal to
    ``scipy.stats.permutation_test(..., permutation_type="samples")``). With more, ``n_resamples`` random
    sign vectors are drawn from ``numpy.random.default_rng(seed)`` and p = (count + 1) / (n_resamples + 1),
    where count is how many of them are at least as extreme: the observed signs count as one draw, so p is
    never 0 and P(p <= alpha) <= alpha holds for the Monte Carlo test itself (Phipson and Smyth, 2010).
    No pairs → nan; all differences zero → 1.0. ``ValueError`` for different lengths or n_resamples < 1.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    d = _paired_differences(a, b)
    n = d.size
    if n == 0:
        return math.nan
    threshold = abs(float(d.sum())) * (1 - _TIE_RTOL)
    if n <= _EXACT_MAX_N:
        bits = (np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)) & 1
        null = (1 - 2 * bits).astype(np.float64) @ d
        return float(np.count_nonzero(np.abs(null) >= threshold) / 2**n)
    rng = np.random.default_rng(seed)
    count = 0
    rows = max(1, _MAX_DRAWS // n)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(stop - start, n))
        count += int(np.count_nonzero(np.abs(signs @ d) >= threshold))
    return (count + 1) / (n_resamples + 1)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of a family of p-values, in the given order.

    With the m p-values sorted ascending p_(1) <= ... <= p_(m), the adjusted p_(i) is
    max_{j <= i} min(1, (m - j + 1) p_(j)): monotone in the raw p and capped at 1 (as
    ``statsmodels.stats.multitest.multipletests(method="holm")``). NaN p-values stay NaN and do not count
    in m. Empty → {}.
    """
    names = list(p_values)
    raw = np.array([p_values[k] for k in names], dtype=np.float64)
    adjusted = np.full(raw.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(raw))
    m = valid.size
    if m:
        order = valid[np.argsort(raw[valid], kind="stable")]
        scaled = np.minimum(1.0, raw[order] * np.arange(m, 0, -1))
        adjusted[order] = np.maximum.accumulate(scaled)
    return {name: float(v) for name, v in zip(names, adjusted, strict=True)}


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below the mean
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def _student_t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0."""
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


@lru_cache(maxsize=1024)
def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with ``df`` degrees of freedom (as
    ``scipy.stats.t.ppf(p, df)``, to about 1e-9 relative), so the runtime needs no scipy."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    tail = min(p, 1.0 - p)  # bisect on the tail itself: 1 - p would lose the digits of a small tail
    if tail == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while _student_t_upper_tail(high, df) > tail:
        low, high = high, high * 2.0
    for _ in range(200):  # bisection: the tail is monotone in t, so this cannot miss
        mid = (low + high) / 2.0
        if mid in (low, high):
            break
        if _student_t_upper_tail(mid, df) > tail:
            low = mid
        else:
            high = mid
    quantile = (low + high) / 2.0
    return quantile if p > 0.5 else -quantile
