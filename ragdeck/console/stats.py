"""Statistics over per-query metric values: confidence intervals for their mean."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_cis"]

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
