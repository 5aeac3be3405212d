"""A/B comparison of two eval runs: the paired statistics against scipy/statsmodels, power and false
positives on synthetic runs, refusal across eval set versions, and ``ragdeck compare``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runner import assert_one_line_error, run_cli
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ragdeck.console.evaluation.compare import compare_runs
from ragdeck.console.evaluation.stats import holm, paired_bootstrap_ci, paired_permutation_test
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.types import RunRow

SET_HASH = "ab" * 32
METRICS = ("recall@10", "mrr@10", "ndcg@10")


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y - x, axis=axis)


# --- statistics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "discrete"), [(5, False), (10, False), (16, False), (12, True), (16, True)])
def test_permutation_test_equals_scipys_exact_enumeration(n: int, discrete: bool) -> None:
    rng = np.random.default_rng(n)
    if discrete:  # hit-rate-like values: many tied differences and tied null statistics
        a = rng.integers(0, 2, n).astype(float)
        b = rng.integers(0, 2, n) / 3
    else:
        a = rng.random(n)
        b = a + rng.normal(0.1, 0.2, n)
    ref = stats.permutation_test(
        (a, b), _mean_diff, permutation_type="samples", vectorized=True, n_resamples=np.inf
    )
    assert paired_permutation_test(a, b) == pytest.approx(ref.pvalue, rel=1e-12, abs=0)


def test_permutation_test_edge_cases_and_monte_carlo_correction() -> None:
    assert math.isnan(paired_permutation_test([], []))
    assert paired_permutation_test([0.5, 0.2, 0.1], [0.5, 0.2, 0.1]) == 1.0
    assert paired_permutation_test([0.0, 0.0], [1.0, 1.0]) == 0.5  # 2 of 4 sign vectors as extreme
    a = np.zeros(40)
    b = np.ones(40)  # no sign flip but the observed one is as extreme: count 0 → p = 1 / (N + 1)
    assert paired_permutation_test(a, b, n_resamples=999) == pytest.approx(1 / 1000)
    assert paired_permutation_test([1.0, np.nan, 0.0], [2.0, 5.0, 0.0]) == 1.0  # NaN pair dropped
    with pytest.raises(ValueError, match="same length"):
        paired_permutation_test([1.0], [1.0, 2.0])


def test_paired_bootstrap_interval_agrees_with_scipy_percentile() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(50)
    b = np.clip(a + rng.normal(-0.05, 0.15, 50), 0, 1)
    d = b - a
    mean, low, high = paired_bootstrap_ci(a, b, n_resamples=20000, seed=1)
    ref = stats.bootstrap(
        (a, b), _mean_diff, paired=True, vectorized=True, method="percentile", n_resamples=20000, rng=2
    )
    assert mean == pytest.approx(d.mean(), abs=1e-15)
    # Both ends are Monte Carlo estimates from independent resamples. The 2.5 % quantile of N = 20000
    # resample means has a standard error of about sqrt(.025 * .975 / N) / phi(1.96) ≈ 0.019 standard
    # errors of the mean (se = sd(d) / sqrt(n)); the difference of two estimates about 0.027 se. 0.15 se is
    # over 5 of those, yet a tenth of the interval's width (3.9 se).
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.15 * se)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.15 * se)
    assert paired_bootstrap_ci([1.0, np.nan], [2.0, 0.0]) == (1.0, 1.0, 1.0)


def test_holm_equals_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for raw in (rng.random(8) ** 3, np.array([0.01, 0.04, 0.04, 0.03, 0.5, 0.2]), np.array([0.3, 0.9])):
        names = [f"m{i}" for i in range(raw.size)]
        adjusted = holm(dict(zip(names, raw, strict=True)))
        expected = multipletests(raw, method="holm")[1]
        assert list(adjusted) == names
        np.testing.assert_allclose([adjusted[k] for k in names], expected, rtol=1e-15, atol=0)
    assert holm({}) == {}
    with_nan = holm({"a": 0.01, "b": math.nan, "c": 0.02})
    assert math.isnan(with_nan["b"]) and with_nan["a"] == pytest.approx(0.02) and with_nan["c"] == 0.02


def test_a_a_false_positive_rate_is_near_alpha() -> None:
    """400 A/A comparisons of n = 40 queries (two noisy runs of one system): about 5 % reach p < 0.05."""
    seeds, alpha = 400, 0.05
    rejected = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        difficulty = rng.random(40)
        a = np.clip(difficulty + rng.normal(0, 0.1, 40), 0, 1)
        b = np.clip(difficulty + rng.normal(0, 0.1, 40), 0, 1)
        rejected += paired_permutation_test(a, b, n_resamples=2000, seed=seed) < alpha
    # Binomial(400, 0.05): mean 20, sd 4.4; 3 sd either side.
    sd = math.sqrt(seeds * alpha * (1 - alpha))
    assert abs(rejected - seeds * alpha) <= 3 * sd, rejected


# --- comparing runs ---------------------------------------------------------------------------------------


def make_run(run_id: str, set_hash: str = SET_HASH, metrics: tuple[str, ...] = METRICS) -> RunRow:
    summary = {
        "finished": 0,
        "failed": 0,
        "metrics": {m: {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 40} for m in metrics},
    }
    config = {"policy": {"name": run_id, "alias": "rag_chunks"}, "answers": False}
    return RunRow(run_id, 1.0, 1.0, "done", "demo", set_hash, f"col_{run_id}", 40, config, summary)


def make_results(values: dict[str, np.ndarray], prefix: str = "") -> list[dict[str, Any]]:
    n = len(next(iter(values.values())))
    return [
        {
            "query_id": f"q{i}",
            "question": f"question {i}?",
            "gold": {f"c{i}": 1},
            "metrics": {m: float(v[i]) for m, v in values.items()},
            "retrieved": [{"chunk_id": f"{prefix}c{i}", "doc_id": f"d{i}", "score": 0.9}],
            "answer": {"text": f"{prefix}answer {i}"},
            "error": None,
        }
        for i in range(n)
    ]


def synthetic_pair(shift: float, seed: int = 0, n: int = 40) -> tuple[list[dict], list[dict]]:
    """Per-query metrics of A and of B = A + shift + noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    a = {m: rng.random(n) for m in METRICS}
    b = {m: np.clip(v + shift + rng.normal(0, 0.1, n), 0, 1) for m, v in a.items()}
    return make_results(a), make_results(b, prefix="b_")


def test_a_b_worse_by_a_real_margin_is_detected() -> None:
    results_a, results_b = synthetic_pair(-0.15)
    comparison = compare_runs(make_run("A"), results_a, make_run("B"), results_b)
    assert comparison.compared == list(METRICS)  # headline order: recall, mrr, ndcg
    for row in comparison.metrics:
        assert row.n == 40 and row.diff == pytest.approx(row.mean_b - row.mean_a)
        assert row.high < 0 and row.p_value < 0.05 and row.p_holm < 0.05
        assert row.p_holm >= row.p_value and row.losses > row.wins
        assert row.wins + row.ties + row.losses == 40
    worst = comparison.largest_regressions("ndcg@10", n=5)
    assert len(worst) == 5
    assert [w["diff"] for w in worst] == sorted(w["diff"] for w in worst)
    assert worst[0]["diff"] < 0 and worst[0]["retrieved_b"] == [f"b_{worst[0]['retrieved_a'][0]}"]
    assert worst[0]["answer_b"].startswith("b_answer") and worst[0]["gold"] == [worst[0]["retrieved_a"][0]]
    text = comparison.markdown()
    assert "| metric | A | B | B−A [95 % CI] | p | p (Holm) | W/T/L |" in text
    assert "Largest regressions of B on recall@10" in text


def test_an_a_a_comparison_is_not_significant() -> None:
    results_a, results_b = synthetic_pair(0.0, seed=11)
    comparison = compare_runs(make_run("A"), results_a, make_run("A2"), results_b)
    for row in comparison.metrics:
        assert row.low < 0 < row.high and row.p_value > 0.05
    same = compare_runs(make_run("A"), results_a, make_run("A"), results_a)
    assert all(r.p_value == 1.0 and r.ties == 40 and r.diff == 0 for r in same.metrics)
    assert same.largest_regressions("mrr@10") == []


def test_different_eval_set_versions_are_refused() -> None:
    results_a, results_b = synthetic_pair(0.0)
    other = "cd" * 32
    with pytest.raises(InputError) as caught:
        compare_runs(make_run("A"), results_a, make_run("B", set_hash=other), results_b)
    message = str(caught.value)
    assert SET_HASH[:12] in message and other[:12] in message and "re-run one of them" in message


def test_queries_are_paired_by_id_and_drops_are_reported() -> None:
    results_a, results_b = synthetic_pair(0.0, n=10)
    results_a[1]["error"] = "search: timeout"
    results_b[2]["error"] = "search: timeout"
    results_a[3]["error"] = results_b[3]["error"] = "embed: down"
    del results_b[4]
    results_b.append({**results_b[0], "query_id": "extra"})
    results_b.reverse()  # pairing is by id, not position
    comparison = compare_runs(make_run("A"), results_a, make_run("B"), results_b, ["mrr@10"])
    assert len(comparison.pairs) == 6 and comparison.compared == ["mrr@10"]
    assert comparison.dropped == {
        "only_in_a": ["q4"],
        "only_in_b": ["extra"],
        "failed_in_a": ["q1"],
        "failed_in_b": ["q2"],
        "failed_in_both": ["q3"],
    }
    assert "dropped: 1 only in a, 1 only in b, 1 failed in a, 1 failed in b, 1 failed in both" in (
        comparison.markdown()
    )
    with pytest.raises(InputError, match="'faithfulness' is not in both runs"):
        compare_runs(make_run("A"), results_a, make_run("B"), results_b, ["faithfulness"])


# --- ragdeck compare --------------------------------------------------------------------------------------


def _store_runs(results_b_shift: float, other_hash: bool = False) -> None:
    store = EvalStore(Settings().state_db)
    results_a, results_b = synthetic_pair(results_b_shift)
    for run, results in (
        (make_run("run-a"), results_a),
        (make_run("run-b"), results_b),
        (make_run("run-c", set_hash="cd" * 32), results_b),
    ):
        store.create_run(run)
        for position, result in enumerate(results):
            store.save_result(run.run_id, result["query_id"], position, True, result)


def test_cli_compare_prints_markdown_and_json(data_dir: Path, monkeypatch, capsys) -> None:
    _store_runs(-0.15)
    code, out, err = run_cli(monkeypatch, capsys, "compare", "run-a", "run-b")
    assert code == 0, err
    assert "## A/B: `run-a` (A) vs `run-b` (B)" in out and "| recall@10 |" in out
    code, out, err = run_cli(monkeypatch, capsys, "compare", "run-a", "run-b", "--metric", "mrr@10", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["paired"] == 40 and [m["metric"] for m in data["metrics"]] == ["mrr@10"]
    assert data["metrics"][0]["p_value"] < 0.05 and data["regressions"]["mrr@10"][0]["diff"] < 0


def test_cli_compare_takes_eval_json_files(data_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """The files ``ragdeck eval --json`` writes compare like stored runs, alone or with a run id."""
    from ragdeck.console.evaluation.export import export_json

    _store_runs(-0.15)
    store = EvalStore(Settings().state_db)
    files = {}
    for run_id in ("run-a", "run-b"):
        run = store.get_run(run_id)
        run.config["policy"].update(retrieval="hybrid", fusion="rrf", rrf_k=60, rerank=True)
        run.summary["rerankers"] = ["cross-encoder-x"]
        files[run_id] = tmp_path / f"{run_id}.json"
        files[run_id].write_text(json.dumps(export_json(run, store.results(run_id))))
    code, by_file, err = run_cli(
        monkeypatch, capsys, "compare", str(files["run-a"]), str(files["run-b"]), "--json"
    )
    assert code == 0, err
    code, by_id, err = run_cli(monkeypatch, capsys, "compare", "run-a", "run-b", "--json")
    assert code == 0, err
    file_data, id_data = json.loads(by_file), json.loads(by_id)
    assert file_data["metrics"] == id_data["metrics"] and file_data["paired"] == 40
    assert file_data["regressions"]["mrr@10"][0]["question"].startswith("question ")
    code, out, err = run_cli(monkeypatch, capsys, "compare", "run-a", str(files["run-b"]))
    assert code == 0, err
    assert "hybrid RRF k=60 retrieval" in out and "reranker: cross-encoder-x (used)" in out
    code, _, err = run_cli(monkeypatch, capsys, "compare", "run-a", str(tmp_path / "nope.json"))
    assert_one_line_error(code, err, "nope.json", "give a run id or a run file")
    (tmp_path / "other.json").write_text('{"run_id": "x"}')
    code, _, err = run_cli(monkeypatch, capsys, "compare", "run-a", str(tmp_path / "other.json"))
    assert_one_line_error(code, err, "not a `ragdeck eval --json` file")


def test_cli_compare_errors_are_one_line(data_dir: Path, monkeypatch, capsys) -> None:
    _store_runs(0.0)
    code, _, err = run_cli(monkeypatch, capsys, "compare", "run-a", "run-c")
    assert_one_line_error(code, err, "different versions", SET_HASH[:12], ("cd" * 32)[:12])
    code, _, err = run_cli(monkeypatch, capsys, "compare", "run-a", "nope")
    assert_one_line_error(code, err, "unknown eval run 'nope'")
    code, _, err = run_cli(monkeypatch, capsys, "compare", "run-a", "run-b", "-m", "bogus@3")
    assert_one_line_error(code, err, "'bogus@3' is not in both runs")


def test_compare_page_shows_statistics_scatter_and_regressions_and_refuses_other_versions(
    data_dir: Path,
) -> None:
    from pages import open_page

    _store_runs(-0.15)
    at = open_page("compare")
    at.selectbox[0].set_value("run-a").run()
    # by default only runs of the same eval set version are offered
    assert [o.split(" · ")[0] for o in at.selectbox[1].options] == ["run-b"]
    at.selectbox[1].set_value("run-b").run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "B − A" in d.value.columns)
    assert list(table["metric"]) == list(METRICS)
    assert (table["B − A"] < 0).all() and (table["p (Holm)"] < 0.05).all()
    assert (table["wins"] + table["ties"] + table["losses"] == 40).all()
    headers = [m.value for m in at.markdown if m.value.startswith(("**A**\n", "**B**\n"))]
    assert len(headers) == 2 and "collection `col_run-a`" in headers[0] and "dense retrieval" in headers[1]
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) == 3 and "per query: A against B" in charts[1].proto.spec
    assert "Power against questions" in charts[2].proto.spec  # the sample-size panel
    assert any(s.value == "Largest regressions of B on recall@10" for s in at.subheader)
    assert len(at.expander) == 20
    assert [d.label for d in at.get("download_button")] == [
        "Download comparison (JSON)",
        "Download report (Markdown)",
    ]

    at.toggle(key="compare_any_version").set_value(True).run()
    at.selectbox[1].set_value("run-c").run()
    assert any("different versions of the eval set" in e.value for e in at.error)


def test_the_forest_plot_colours_each_metric_by_its_holm_decision_with_a_legend() -> None:
    from dataclasses import replace

    from ragdeck.charts.ab import DECISION_COLOURS, diff_forest, pair_scatter

    results_a, results_b = synthetic_pair(-0.15)
    comparison = compare_runs(make_run("A"), results_a, make_run("B"), results_b)
    worse = comparison.metrics[0]
    # An interval clear of 0 whose Holm-adjusted p is not below alpha is "no difference", not red.
    borderline = replace(worse, metric="borderline@10", low=-0.2, high=-0.01, p_value=0.03, p_holm=0.09)
    better = replace(worse, metric="better@10", diff=0.1, low=0.05, high=0.15, p_holm=0.001)
    assert [r.decision() for r in (worse, borderline, better)] == ["B worse", "no difference", "B better"]
    figure = diff_forest(replace(comparison, metrics=[worse, borderline, better]))
    traces = {t.name: list(t.y) for t in figure.data}
    assert traces == {
        "B better (Holm p < 0.05)": ["better@10"],
        "no difference": ["borderline@10"],
        "B worse (Holm p < 0.05)": [worse.metric],
    }
    assert [t.marker.color for t in figure.data] == list(DECISION_COLOURS.values())
    assert all(t.showlegend for t in figure.data) and figure.layout.xaxis.title.text
    names = [t.name for t in pair_scatter(comparison, worse.metric).data]
    assert any(n.startswith("B loses") for n in names) and not any("losss" in n for n in names)


def test_compare_opens_on_the_two_newest_finished_runs_of_one_set_version_older_as_a() -> None:
    from dataclasses import replace

    from ragdeck.console.evaluation.compare import default_pair

    def at(run_id: str, when: float, **changes: Any) -> RunRow:
        return replace(make_run(run_id), created_at=when, **changes)

    dense, hybrid = at("dense", 1.0), at("hybrid", 2.0)
    assert default_pair([hybrid, dense]) == ("dense", "hybrid")  # baseline first, then the candidate
    other = at("other", 3.0, set_hash="cd" * 32)  # newest, but alone on its version
    running = at("running", 4.0, status="running")
    assert default_pair([running, other, hybrid, dense]) == ("dense", "hybrid")
    assert default_pair([other, hybrid]) == ("other", None)  # no pair: the newest as A
