"""bootstrap_ci against scipy.stats.bootstrap (percentile method) and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import ragdeck.console.evaluation.stats as stats_module
from ragdeck.console.evaluation.stats import bootstrap_ci

RESAMPLES = 20_000


def monte_carlo_tolerance(data: np.ndarray, confidence: float) -> float:
    """How far two independent percentile bootstraps of ``data`` (RESAMPLES each) may land apart.

    The bootstrap means are close to normal with sd s / sqrt(n); a p-quantile estimated from B draws has a
    standard error of sqrt(p (1 - p) / B) / f(q), f the density at the quantile. Two independent estimates
    differ with sd sqrt(2) times that; 5 sd makes a chance failure practically impossible, yet an interval
    from a wrong quantile, a wrong confidence or a biased resample would be off by more. Data with a few
    distinct values (0/1 hits) have resample means on a grid; one grid step is added for them.
    """
    p = (1 - confidence) / 2
    sd = data.std(ddof=1) / math.sqrt(len(data))
    density = stats.norm.pdf(stats.norm.ppf(p)) / sd
    distinct = np.unique(data)
    grid = np.diff(distinct).min() / len(data) if len(distinct) <= 10 else 0.0
    return 5 * math.sqrt(2) * math.sqrt(p * (1 - p) / RESAMPLES) / density + grid


@pytest.mark.parametrize(
    ("data", "confidence"),
    [
        (np.random.default_rng(1).normal(0.6, 0.2, 50), 0.95),  # e.g. ndcg@10 of 50 queries
        (np.random.default_rng(2).exponential(1.0, 200), 0.95),  # skewed
        ((np.random.default_rng(3).random(100) < 0.3).astype(float), 0.95),  # hit_rate: 0/1 values
        (np.random.default_rng(4).uniform(0, 1, 30), 0.90),
    ],
)
def test_matches_scipy_percentile_bootstrap(data, confidence):
    mean, low, high = bootstrap_ci(data, confidence=confidence, n_resamples=RESAMPLES, seed=7)
    reference = stats.bootstrap(
        (data,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile",
        rng=np.random.default_rng(11),
    ).confidence_interval  # fmt: skip
    tolerance = monte_carlo_tolerance(data, confidence)
    assert tolerance < 0.15 * (reference.high - reference.low)  # the check is much tighter than the interval
    assert mean == pytest.approx(float(np.mean(data)), abs=1e-12)
    assert low == pytest.approx(reference.low, abs=tolerance)
    assert high == pytest.approx(reference.high, abs=tolerance)
    assert low <= mean <= high


def test_same_seed_same_interval_and_other_seed_close():
    data = np.random.default_rng(5).normal(size=40)
    assert bootstrap_ci(data, seed=3) == bootstrap_ci(list(data), seed=3)
    _, low_a, high_a = bootstrap_ci(data, seed=3)
    _, low_b, high_b = bootstrap_ci(data, seed=4)
    assert (low_a, high_a) != (low_b, high_b)
    assert low_a == pytest.approx(low_b, abs=0.05) and high_a == pytest.approx(high_b, abs=0.05)


def test_wider_with_higher_confidence():
    data = np.random.default_rng(6).normal(size=60)
    _, low_90, high_90 = bootstrap_ci(data, confidence=0.90)
    _, low_99, high_99 = bootstrap_ci(data, confidence=0.99)
    assert low_99 < low_90 and high_90 < high_99


def test_nans_are_dropped():
    data = [0.2, float("nan"), 0.4, 0.9, float("nan"), 0.5]
    assert bootstrap_ci(data) == bootstrap_ci([0.2, 0.4, 0.9, 0.5])


def test_edge_cases():
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    assert all(math.isnan(x) for x in bootstrap_ci([float("nan"), float("nan")]))
    assert bootstrap_ci([0.25]) == (0.25, 0.25, 0.25)
    assert bootstrap_ci([0.25, float("nan")]) == (0.25, 0.25, 0.25)
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0, 1.0)
    mean, low, high = bootstrap_ci([0.0, 1.0], n_resamples=1)
    assert mean == 0.5 and low == high


@pytest.mark.parametrize(
    "bad", [{"confidence": 0.0}, {"confidence": 1.0}, {"confidence": 95}, {"n_resamples": 0}]
)
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        bootstrap_ci([0.1, 0.2], **bad)


def test_chunked_resampling(monkeypatch):
    data = np.random.default_rng(8).normal(size=500)
    whole = bootstrap_ci(data, n_resamples=4000)
    monkeypatch.setattr(stats_module, "_MAX_DRAWS", 500 * 7)  # 7 resamples a chunk, the last one short
    chunked = bootstrap_ci(data, n_resamples=4000)
    assert chunked[0] == whole[0]
    assert chunked[1] == pytest.approx(whole[1], abs=0.02) and chunked[2] == pytest.approx(whole[2], abs=0.02)


def test_bootstrap_cis_equals_bootstrap_ci_column_by_column() -> None:
    from ragdeck.console.evaluation.stats import bootstrap_cis

    rng = np.random.default_rng(3)
    columns = {
        "a": rng.random(43).tolist(),
        "b": (rng.random(43) > 0.5).astype(float).tolist(),
        "c": [*rng.random(20).tolist(), float("nan")],  # another length after NaNs are dropped
        "d": [0.25],
        "e": [],
    }
    together = bootstrap_cis(columns, n_resamples=3000, seed=5)
    assert list(together) == list(columns)
    for name, values in columns.items():
        alone = bootstrap_ci(values, n_resamples=3000, seed=5)
        np.testing.assert_allclose(together[name], alone, rtol=0, atol=1e-12, equal_nan=True)
