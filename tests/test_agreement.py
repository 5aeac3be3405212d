"""Agreement statistics against reference implementations (scikit-learn, statsmodels, krippendorff) and
textbook examples."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from ragdeck.console.annotation.agreement import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_from_ratings,
    jaccard,
    krippendorff_alpha,
    overall_agreement,
    question_agreement,
)
from ragdeck.errors import InputError

TOL = 1e-9

# Fleiss (1971): 30 patients, 6 psychiatrists each, 5 diagnoses (as tabulated in R's irr::diagnoses).
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip

# The Wikipedia "Fleiss' kappa" worked example: 10 items, 14 raters, 5 categories, kappa 0.210.
WIKIPEDIA_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", p. 8: 4 observers x 12 units, gaps.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def as_nan(matrix: list[list[object]]) -> np.ndarray:
    return np.array([[np.nan if x is None else x for x in row] for row in matrix], dtype=float)


# ------------------------------------------------------------------ Cohen


def test_cohen_kappa_textbook_and_sklearn() -> None:
    # 50 items: both yes 20, both no 15, a yes / b no 5, a no / b yes 10 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=TOL)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=TOL)
    assert cohen_kappa(a, a) == 1.0


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn warns on single-label samples (kappa nan)
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_sklearn_on_random_data(weights: str | None) -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, k = int(rng.integers(2, 40)), int(rng.integers(2, 5))
        a = rng.integers(0, k, n)
        # Correlated second rater: copies a with probability 0.6.
        b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))
        expected = cohen_kappa_score(a, b, weights=weights)
        got = cohen_kappa(a.tolist(), b.tolist(), weights=weights)  # type: ignore[arg-type]
        if math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=TOL)


def test_cohen_kappa_edge_cases() -> None:
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))  # p_e = 1: undefined
    assert cohen_kappa([0, 1], [1, 0]) == pytest.approx(-1.0)
    with pytest.raises(InputError, match="different numbers"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(InputError, match="weights"):
        cohen_kappa([1], [1], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="ordered"):
        cohen_kappa([1, "a"], ["a", 1], weights="linear")
    # Unorderable labels are fine for plain (nominal) kappa.
    assert cohen_kappa([1, "a", "a"], ["a", 1, "a"]) == pytest.approx(cohen_kappa([1, 2, 2], [2, 1, 2]))


# ------------------------------------------------------------------ Fleiss


def test_fleiss_kappa_textbook_tables() -> None:
    assert fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(sm_fleiss_kappa(np.array(WIKIPEDIA_TABLE)), abs=TOL)
    assert round(fleiss_kappa(WIKIPEDIA_TABLE), 3) == 0.210
    table, _ = aggregate_raters(np.array(FLEISS_1971))
    assert fleiss_kappa(table.tolist()) == pytest.approx(0.4302445, abs=5e-8)  # Fleiss 1971 / R irr
    assert fleiss_kappa_from_ratings(FLEISS_1971) == pytest.approx(sm_fleiss_kappa(table), abs=TOL)


def test_fleiss_kappa_matches_statsmodels_on_random_data() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        items, raters, k = int(rng.integers(2, 30)), int(rng.integers(2, 7)), int(rng.integers(2, 5))
        truth = rng.integers(0, k, items)[:, None]
        ratings = np.where(rng.random((items, raters)) < 0.5, truth, rng.integers(0, k, (items, raters)))
        table, _ = aggregate_raters(ratings)
        expected = sm_fleiss_kappa(table)
        assert fleiss_kappa(table.tolist()) == pytest.approx(expected, abs=TOL)
        assert fleiss_kappa_from_ratings(ratings.tolist()) == pytest.approx(expected, abs=TOL)


def test_fleiss_kappa_edge_cases() -> None:
    assert math.isnan(fleiss_kappa([]))
    assert math.isnan(fleiss_kappa([[3, 0], [3, 0]]))  # everyone always picked the same category
    assert fleiss_kappa_from_ratings([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="same number of ratings"):
        fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(InputError, match="at least 2 ratings"):
        fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(InputError, match="negative"):
        fleiss_kappa([[3, -1], [1, 1]])
    with pytest.raises(InputError, match="categories"):
        fleiss_kappa([[1, 1], [1, 1, 0]])
    with pytest.raises(InputError, match="missing rating"):
        fleiss_kappa_from_ratings([[1, None], [1, 1]])
    with pytest.raises(InputError, match="not among the categories"):
        fleiss_kappa_from_ratings([[1, 3]], categories=[0, 1, 2])


# ------------------------------------------------------------------ Krippendorff


@pytest.mark.parametrize(
    ("level", "textbook"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_2011_worked_example(level: str, textbook: float) -> None:
    got = krippendorff_alpha(K2011, level)  # type: ignore[arg-type]
    assert round(got, 3) == textbook
    assert got == pytest.approx(krippendorff.alpha(as_nan(K2011), level_of_measurement=level), abs=TOL)


def test_krippendorff_docs_example_with_sparse_raters() -> None:
    data = [
        [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
        [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
        [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
    ]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.691358, abs=5e-7)
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.810845, abs=5e-7)


def test_krippendorff_strings_with_an_ordered_domain() -> None:
    names = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    data = [[None if x is None else names[x] for x in row] for row in K2011]
    domain = list(names.values())
    assert krippendorff_alpha(data, "ordinal", value_domain=domain) == pytest.approx(
        krippendorff_alpha(K2011, "ordinal"), abs=TOL
    )
    assert krippendorff_alpha(data, "nominal") == pytest.approx(krippendorff_alpha(K2011, "nominal"), abs=TOL)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_matches_the_package_on_random_data(level: str) -> None:
    rng = np.random.default_rng(23)
    checked = 0
    while checked < 150:
        raters, items, k = int(rng.integers(2, 6)), int(rng.integers(2, 25)), int(rng.integers(2, 5))
        truth = rng.integers(0, k, items)
        data = np.where(rng.random((raters, items)) < 0.6, truth, rng.integers(0, k, (raters, items))).astype(
            float
        )
        data[rng.random((raters, items)) < 0.25] = np.nan
        pairable = (~np.isnan(data)).sum(axis=0) >= 2
        if not pairable.any() or len(np.unique(data[:, pairable][~np.isnan(data[:, pairable])])) < 2:
            continue
        rows = [[None if np.isnan(x) else int(x) for x in row] for row in data]
        expected = krippendorff.alpha(data, level_of_measurement=level)
        assert krippendorff_alpha(rows, level) == pytest.approx(expected, abs=TOL)  # type: ignore[arg-type]
        checked += 1


def test_krippendorff_edge_cases() -> None:
    assert math.isnan(krippendorff_alpha([]))
    assert math.isnan(krippendorff_alpha([[1, None], [None, 2]]))  # no item rated twice
    assert math.isnan(krippendorff_alpha([[1, 1], [1, 1]]))  # a single value: no expected disagreement
    assert krippendorff_alpha([[1, 2, float("nan")], [1, 2, 3]]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="one entry per item"):
        krippendorff_alpha([[1, 2], [1]])
    with pytest.raises(InputError, match="level"):
        krippendorff_alpha([[1]], "cardinal")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="numeric"):
        krippendorff_alpha([["a", "b"], ["a", "a"]], "interval", value_domain=["a", "b"])
    with pytest.raises(InputError, match="value domain"):
        krippendorff_alpha([[1, 2], [1, 3]], "ordinal", value_domain=[1, 2])


# ------------------------------------------------------------------ Jaccard and per-question agreement


def test_jaccard() -> None:
    assert jaccard(set(), set()) == 1.0
    assert jaccard({"a"}, set()) == 0.0
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(["a", "a"], ("a",)) == 1.0


def test_question_agreement_two_annotators_counts_unjudged_as_not_relevant() -> None:
    labels = {"bob": {"c1": 2, "c2": 1}, "ann": {"c1": 2, "c3": 1, "c4": 0}}
    qa = question_agreement(labels)
    assert qa.annotators == ("ann", "bob")
    assert qa.chunks == ("c1", "c2", "c3", "c4")
    assert qa.gold_sets == {"ann": frozenset({"c1", "c3"}), "bob": frozenset({"c1", "c2"})}
    assert qa.jaccard == pytest.approx(1 / 3)
    assert qa.disagreements == ("c2", "c3")
    ann, bob = [2, 0, 1, 0], [2, 1, 0, 0]
    assert (qa.kappa_method, qa.kappa) == ("cohen", pytest.approx(cohen_kappa_score(ann, bob), abs=TOL))
    assert qa.alpha == pytest.approx(krippendorff.alpha(np.array([ann, bob]), level_of_measurement="ordinal"))
    # Candidates shown but ticked by nobody are agreed "not relevant" items.
    wider = question_agreement(labels, candidates=["c5", "c6"])
    assert wider.chunks[-2:] == ("c5", "c6")
    assert wider.kappa == pytest.approx(cohen_kappa_score([*ann, 0, 0], [*bob, 0, 0]), abs=TOL)
    assert question_agreement(labels, min_relevance=2).jaccard == 1.0  # only c1 is "relevant" for both


def test_question_agreement_three_annotators_and_one() -> None:
    labels = {"a": {"c1": 2, "c2": 1}, "b": {"c1": 2}, "c": {"c1": 1, "c2": 1, "c3": 2}}
    qa = question_agreement(labels)
    ratings = [[2, 2, 1], [1, 0, 1], [0, 0, 2]]
    table, _ = aggregate_raters(np.array(ratings), n_cat=3)
    assert qa.kappa_method == "fleiss"
    assert qa.kappa == pytest.approx(sm_fleiss_kappa(table), abs=TOL)
    assert qa.pairwise_jaccard == {("a", "b"): 0.5, ("a", "c"): 2 / 3, ("b", "c"): 1 / 3}
    assert qa.jaccard == pytest.approx(0.5)
    single = question_agreement({"a": {"c1": 2}})
    assert single.kappa_method == "none" and math.isnan(single.kappa) and math.isnan(single.jaccard)
    with pytest.raises(InputError, match="min_relevance"):
        question_agreement(labels, min_relevance=0)


def test_overall_agreement_pools_questions() -> None:
    same_pair = {
        "q1": {"ann": {"c1": 2, "c2": 1}, "bob": {"c1": 2}},
        "q2": {"ann": {"d1": 1}, "bob": {"d1": 1, "d2": 2}},
        "q3": {"ann": {"e1": 2}},  # one annotator: left out
    }
    overall = overall_agreement(same_pair)
    ann, bob = [2, 1, 1, 0], [2, 0, 1, 2]
    assert (overall.n_questions, overall.n_items, overall.annotators) == (2, 4, ("ann", "bob"))
    assert overall.kappa_method == "cohen"
    assert overall.kappa == pytest.approx(cohen_kappa_score(ann, bob), abs=TOL)
    assert overall.alpha == pytest.approx(
        krippendorff.alpha(np.array([ann, bob]), level_of_measurement="ordinal")
    )
    assert overall.mean_jaccard == pytest.approx((0.5 + 0.5) / 2)
    assert set(overall.per_question) == {"q1", "q2"}

    # Two raters per item but different pairs: Fleiss; alpha sees the missing cells.
    rotating = {
        "q1": {"ann": {"c1": 2}, "bob": {"c1": 2, "c2": 1}},
        "q2": {"bob": {"d1": 1}, "cy": {"d2": 1}},
    }
    overall = overall_agreement(rotating, level="nominal")
    ratings = [[2, 2], [0, 1], [1, 0], [0, 1]]
    table, _ = aggregate_raters(np.array(ratings), n_cat=3)
    assert overall.kappa_method == "fleiss" and overall.kappa == pytest.approx(
        sm_fleiss_kappa(table), abs=TOL
    )
    matrix = [[2, 0, None, None], [2, 1, 1, 0], [None, None, 0, 1]]
    assert overall.alpha == pytest.approx(krippendorff.alpha(as_nan(matrix), level_of_measurement="nominal"))

    # A varying number of raters: no kappa, alpha still defined.
    mixed = {"q1": {"a": {"c1": 2}, "b": {"c1": 2}}, "q2": {"a": {"d1": 1}, "b": {}, "c": {"d1": 1}}}
    overall = overall_agreement(mixed)
    assert overall.kappa_method == "none" and math.isnan(overall.kappa) and not math.isnan(overall.alpha)
    empty = overall_agreement({})
    assert empty.n_items == 0 and math.isnan(empty.alpha) and math.isnan(empty.mean_jaccard)
