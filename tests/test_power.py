"""Sample size: the normal approximation against hand-computed values, its power figure against simulations
of the paired test on synthetic data, the resampling method, the edge cases, ``ragdeck evalset power`` and
the panels of the Compare and Evaluate pages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_runner import assert_one_line_error, run_cli
from scipy import stats
from test_compare import SET_HASH, _store_runs, make_results, make_run, synthetic_pair

from ragdeck.console.evaluation.power import (
    Simulator,
    normal_mde,
    normal_n,
    normal_power,
    sample_size,
    spread_of_differences,
    spread_of_pair,
    spread_of_run,
)
from ragdeck.console.evaluation.stats import paired_permutation_test, student_t_quantile
from ragdeck.errors import InputError

Z_975, Z_80, Z_90 = 1.959964, 0.841621, 1.281552  # standard normal quantiles, from a table


@pytest.mark.parametrize("df", [1, 1.5, 2, 3, 5, 9, 12, 29, 100, 1000, 1e5])
def test_the_t_quantile_equals_scipys_without_needing_scipy(df: float) -> None:
    """The simulation's critical value comes from ragdeck's own Student-t quantile (scipy is only a test
    dependency): equal to scipy's across the tails, the centre and fractional degrees of freedom."""
    for p in (1e-9, 1e-4, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.995, 1 - 1e-9):
        expected = float(stats.t.ppf(p, df))
        assert student_t_quantile(p, df) == pytest.approx(expected, rel=1e-8, abs=1e-12), (p, df)
    for p, bad_df in ((0.0, 3), (1.0, 3), (0.5, 0)):
        with pytest.raises(ValueError):
            student_t_quantile(p, bad_df)


def test_normal_approximation_against_hand_computed_values() -> None:
    # n = ((1.959964 + 0.841621) * 0.1 / 0.02)^2 = 14.0079^2 = 196.22 -> 197
    assert normal_n(0.02, 0.1) == 197
    assert normal_n(0.04, 0.1) == 50  # 49.06 -> 50
    # 90 % power, alpha 0.01: ((2.575829 + 1.281552) * 0.15 / 0.05)^2 = 133.9 -> 134
    assert normal_n(0.05, 0.15, power=0.9, alpha=0.01) == 134
    assert normal_mde(50, 0.1) == pytest.approx((Z_975 + Z_80) * 0.1 / math.sqrt(50), rel=1e-6)
    assert normal_mde(50, 0.1) == pytest.approx(0.039620, abs=1e-6)
    assert normal_mde(100, 0.2, power=0.9) == pytest.approx((Z_975 + Z_90) * 0.2 / 10, rel=1e-6)
    # the two formulas are inverses: the MDE at the n needed is at most delta, and at n - 1 above it
    assert normal_mde(197, 0.1) <= 0.02 < normal_mde(196, 0.1)
    # the power at the MDE is the target (plus the negligible far tail)
    assert normal_power(50, normal_mde(50, 0.1), 0.1) == pytest.approx(0.8, abs=1e-6)
    # the figure: 50 questions, SD of a difference about 0.08, detect 0.04 about nine times in ten
    assert normal_power(50, 0.04, 0.08) == pytest.approx(0.94, abs=0.01)


def _rejection_rate_t(delta: float, sd: float, n: int, reps: int, seed: int) -> float:
    """Share of ``reps`` synthetic paired samples d ~ N(delta, sd) of size n that the paired t-test rejects
    at 0.05 (two-sided)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(delta, sd, size=(reps, n))
    return float(np.mean(stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05))


def _rejection_rate_permutation(delta: float, sd: float, n: int, reps: int, seed: int) -> float:
    """The same with the Compare page's test (sign-flip permutation on the pairs a = 0, b = d)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(reps):
        d = rng.normal(delta, sd, size=n)
        hits += paired_permutation_test(np.zeros(n), d, n_resamples=2000, seed=i) < 0.05
    return hits / reps


@pytest.mark.parametrize(("delta", "sd"), [(0.02, 0.1), (0.05, 0.2), (0.04, 0.08)])
def test_the_power_figure_matches_a_simulation_at_the_computed_n(delta: float, sd: float) -> None:
    n = normal_n(delta, sd)
    rate = _rejection_rate_t(delta, sd, n, reps=4000, seed=1)
    assert rate == pytest.approx(0.8, rel=0.10), (n, rate)
    # and with the permutation test the Compare page runs (fewer repetitions: each is a full test)
    rate = _rejection_rate_permutation(delta, sd, n, reps=300, seed=2)
    assert rate == pytest.approx(0.8, rel=0.10), (n, rate)


@pytest.mark.parametrize(("n", "sd", "power"), [(50, 0.1, 0.8), (30, 0.25, 0.9), (120, 0.05, 0.8)])
def test_a_simulation_at_the_mde_rejects_at_the_target_power(n: int, sd: float, power: float) -> None:
    mde = normal_mde(n, sd, power=power)
    rate = _rejection_rate_t(mde, sd, n, reps=4000, seed=3)
    assert rate == pytest.approx(power, rel=0.10), (mde, rate)
    # a tenth of the MDE is far from detectable: the test's figure must be able to fail
    assert _rejection_rate_t(mde / 10, sd, n, reps=2000, seed=4) < 0.2


def test_the_resampling_method_agrees_with_the_normal_one_on_normal_data() -> None:
    rng = np.random.default_rng(5)
    spread = spread_of_differences(rng.normal(0.01, 0.12, 80), "ndcg@10")
    normal = sample_size(spread, 0.03)
    simulated = sample_size(spread, 0.03, method="simulation", simulations=2000, seed=0)
    assert normal.method == "normal" and "normal approximation" in normal.method_text
    assert simulated.method == "simulation" and "resampling" in simulated.method_text
    assert simulated.n_needed == pytest.approx(normal.n_needed, rel=0.10)
    assert simulated.mde == pytest.approx(normal.mde, rel=0.10)
    assert simulated.power_at_current == pytest.approx(normal.power_at_current, abs=0.05)
    # seeded: the same figures again; another seed moves them a little
    again = sample_size(spread, 0.03, method="simulation", simulations=2000, seed=0)
    assert again.to_json() == simulated.to_json()


def test_the_resampling_power_matches_fresh_draws_from_a_skewed_distribution() -> None:
    """Per-question differences of rank metrics are lumpy (many zeros, a few large jumps): the simulated
    power at n is the share of fresh samples of n from that distribution the t-test rejects."""
    rng = np.random.default_rng(6)
    population = rng.choice([0.0, 0.0, 0.0, 0.5, -0.3, 1.0, -1.0, 0.2], size=20000)
    population = population - population.mean()
    observed = rng.choice(population, size=1000)  # the questions a set has
    delta = 0.06
    n = normal_n(delta, float(observed.std(ddof=1)))
    figure = Simulator(observed, simulations=4000, seed=1).power(n, delta)
    fresh = population[rng.integers(0, population.size, size=(4000, n))] + delta
    rate = float(np.mean(stats.ttest_1samp(fresh, 0.0, axis=1).pvalue < 0.05))
    assert figure == pytest.approx(rate, rel=0.10), (n, figure, rate)
    assert rate == pytest.approx(0.8, rel=0.10)


def test_edge_cases_are_refused_with_what_to_do() -> None:
    with pytest.raises(InputError, match="needs at least 2"):
        spread_of_differences([0.1])
    with pytest.raises(InputError, match="no spread"):
        spread_of_differences([0.1, 0.1, 0.1])
    spread = spread_of_differences([0.1, -0.1, 0.2, 0.0])
    for bad in (0.0, -0.02, math.nan):
        with pytest.raises(InputError, match="delta must be a difference > 0"):
            sample_size(spread, bad)
    with pytest.raises(InputError, match="alpha must be between 0 and 1"):
        sample_size(spread, 0.02, alpha=1.5)
    with pytest.raises(InputError, match="power must be between"):
        sample_size(spread, 0.02, power=1.0)
    with pytest.raises(InputError, match="method must be one of normal, simulation"):
        sample_size(spread, 0.02, method="exact")

    results_a, results_b = synthetic_pair(0.05, n=10)
    with pytest.raises(InputError, match="different versions of the eval set"):
        spread_of_pair(make_run("A"), results_a, make_run("B", set_hash="cd" * 32), results_b, "mrr@10")
    other_questions = [{**r, "query_id": f"other-{r['query_id']}"} for r in results_b]
    with pytest.raises(InputError, match="no query that both finished"):
        spread_of_pair(make_run("A"), results_a, make_run("B"), other_questions, "mrr@10")
    one_shared = [{**r, "query_id": f"other-{i}" if i else r["query_id"]} for i, r in enumerate(results_b)]
    with pytest.raises(InputError, match="has 1 question"):
        spread_of_pair(make_run("A"), results_a, make_run("B"), one_shared, "mrr@10")
    with pytest.raises(InputError, match="not in both runs"):
        spread_of_pair(make_run("A"), results_a, make_run("B"), results_b, "faithfulness")
    with pytest.raises(InputError, match="every paired difference"):
        spread_of_pair(make_run("A"), results_a, make_run("A2"), results_a, "mrr@10")
    with pytest.raises(InputError, match="no metric 'faithfulness'"):
        spread_of_run(make_run("A"), results_a, "faithfulness")
    with pytest.raises(InputError, match="rho must be in"):
        spread_of_run(make_run("A"), results_a, "mrr@10", rho=1.0)


def test_one_run_assumes_the_paired_spread_from_rho_and_says_so() -> None:
    values = np.array([0.2, 0.9, 0.5, 0.7, 0.1, 1.0, 0.4, 0.6])
    results = make_results({"ndcg@10": values})
    results.append({**results[0], "query_id": "failed", "error": "search: timeout"})
    sd = values.std(ddof=1)
    half = spread_of_run(make_run("A", metrics=("ndcg@10",)), results, "ndcg@10")
    assert half.n == 8 and half.sd == pytest.approx(sd) and half.source == "one run"
    assert "ρ = 0.5" in half.assumption and "σ_d = σ·√(2(1 − ρ))" in half.assumption
    close = spread_of_run(make_run("A", metrics=("ndcg@10",)), results, "ndcg@10", rho=0.8)
    assert close.sd == pytest.approx(sd * math.sqrt(0.4))
    report = sample_size(close, 0.05)
    assert report.n_needed == normal_n(0.05, close.sd) and any(
        line.startswith("assumption:") for line in report.lines()
    )


def _diffs(results_a: list[dict], results_b: list[dict], metric: str) -> list[float]:
    return [b["metrics"][metric] - a["metrics"][metric] for a, b in zip(results_a, results_b, strict=True)]


def test_paired_spread_uses_the_questions_both_runs_finished() -> None:
    results_a, results_b = synthetic_pair(0.05, n=30)
    results_b[0]["error"] = "search: timeout"
    spread = spread_of_pair(make_run("A"), results_a, make_run("B"), results_b, "ndcg@10")
    diffs = _diffs(results_a[1:], results_b[1:], "ndcg@10")
    assert spread.n == 29 and spread.sd == pytest.approx(np.std(diffs, ddof=1))
    assert spread.observed_diff == pytest.approx(np.mean(diffs))
    assert "1 question(s) not finished by both runs were left out" in spread.notes


# --- ragdeck evalset power ---------------------------------------------------------------------------


def test_cli_power_from_two_runs_and_from_one(data_dir: Path, monkeypatch, capsys) -> None:
    _store_runs(0.05)
    code, out, err = run_cli(
        monkeypatch, capsys, "evalset", "power", "--run", "run-a", "--run", "run-b", "-m", "mrr@10",
        "--delta", "0.05", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    results_a, results_b = synthetic_pair(0.05)
    sd = float(np.std(_diffs(results_a, results_b, "mrr@10"), ddof=1))
    assert data["source"] == "paired" and data["method"] == "normal" and data["n_current"] == 40
    assert data["sd"] == pytest.approx(sd) and data["n_needed"] == normal_n(0.05, sd)
    assert data["mde"] == pytest.approx(normal_mde(40, sd))
    assert data["curve"][0]["n"] == 2 and 0 < data["curve"][-1]["power"] <= 1
    code, out, err = run_cli(
        monkeypatch, capsys, "evalset", "power", "--run", "run-a", "--run", "run-b", "-m", "mrr@10",
        "--delta", "0.05", "--method", "simulation", "--simulations", "500",
    )  # fmt: skip
    assert code == 0, err
    assert "questions needed to detect Δ = 0.05 in mrr@10" in out and "this set has 40" in out
    assert "method: simulation by resampling" in out and "(500 simulations, seed 0)" in out
    code, out, err = run_cli(monkeypatch, capsys, "evalset", "power", "--run", "run-a", "--rho", "0.7")
    assert code == 0, err
    assert "in recall@10" in out  # the first headline metric by default
    assert "assumption: one run: σ_d = σ·√(2(1 − ρ)) with ρ = 0.7" in out and "method: paired normal" in out


def test_cli_power_errors_are_one_line(data_dir: Path, monkeypatch, capsys) -> None:
    _store_runs(0.05)
    base = ("evalset", "power", "--run", "run-a")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--run", "run-c")
    assert_one_line_error(code, err, "different versions", SET_HASH[:12])
    code, _, err = run_cli(monkeypatch, capsys, *base, "--run", "run-b", "--delta", "0")
    assert_one_line_error(code, err, "delta must be a difference > 0")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--metric", "bogus@3")
    assert_one_line_error(code, err, "no metric 'bogus@3'", "use one of recall@10")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--run", "run-b", "--run", "run-c")
    assert_one_line_error(code, err, "once (one run) or twice")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--method", "exact")
    assert_one_line_error(code, err, "method must be one of normal, simulation")
    code, _, err = run_cli(monkeypatch, capsys, "evalset", "power", "--run", "nope")
    assert_one_line_error(code, err, "unknown eval run 'nope'")


# --- the panels -------------------------------------------------------------------------------------------


def test_compare_page_sizes_the_pair(data_dir: Path) -> None:
    from pages import open_page

    _store_runs(0.05)
    at = open_page("compare")
    at.selectbox[0].set_value("run-a").run()
    at.selectbox[1].set_value("run-b").run()
    assert not at.exception, at.exception
    assert any(s.value == "Sample size" for s in at.subheader)
    at.selectbox(key="power_pair_metric").set_value("mrr@10").run()
    at.number_input(key="power_pair_delta").set_value(0.05).run()
    assert not at.exception, at.exception
    results_a, results_b = synthetic_pair(0.05)
    sd = float(np.std(_diffs(results_a, results_b, "mrr@10"), ddof=1))
    headline = next(m.value for m in at.markdown if "questions needed to detect" in m.value)
    assert f"**{normal_n(0.05, sd)} questions needed to detect Δ = 0.05 in mrr@10" in headline
    assert (
        f"this set has 40, and the smallest difference it can detect is {normal_mde(40, sd):.4f}" in headline
    )
    assert any("paired normal approximation" in c.value for c in at.caption)
    spec = at.get("plotly_chart")[-1].proto.spec
    assert "Power against questions (normal)" in spec and "this set: 40" in spec
    at.selectbox(key="power_pair_method").set_value("simulation").run()
    assert not at.exception, at.exception
    assert any("simulation by resampling" in c.value for c in at.caption)
    at.number_input(key="power_pair_alpha").set_value(0.2).run()  # a looser α needs fewer questions
    looser = next(m.value for m in at.markdown if "questions needed to detect" in m.value)
    assert int(looser.split()[0].strip("*")) < normal_n(0.05, sd)
