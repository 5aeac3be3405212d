"""Retrieval metrics against ranx on random runs with graded qrels, hand-worked examples, document level."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragdeck.console.evaluation.metrics import (
    RETRIEVAL_METRICS,
    MetricNameError,
    document_qrels,
    document_ranking,
    gold_level,
    metric_names,
    parse_metric,
    score_documents,
    score_levels,
    score_rankings,
)
from ragdeck.errors import InputError

ranx = pytest.importorskip("ranx")

TOL = 1e-9
POOL = [f"d{i}" for i in range(15)]  # a small pool, so rankings and qrels overlap often

query = st.tuples(
    st.lists(st.sampled_from(POOL), max_size=25),  # duplicates allowed: only the first occurrence counts
    st.dictionaries(st.sampled_from(POOL), st.integers(0, 3), max_size=8),  # may hold no relevant id
)


def ranx_scores(rankings, qrels, metrics):
    """ranx's per-query values, in query order. Scores strictly decrease with rank, so ranx's order is ours.
    A sentinel query with one relevant hit is appended: ranx cannot build a Qrels or Run where every query
    is empty."""
    rankings = [*rankings, ["sentinel"]]
    qrels = [*qrels, {"sentinel": 1}]
    ids = [f"q{i:04d}" for i in range(len(rankings))]  # ranx sorts queries by id
    run = {
        q: {d: float(100 - rank) for rank, d in enumerate(dict.fromkeys(r))}
        for q, r in zip(ids, rankings, strict=True)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety warnings from inside ranx
        scores = ranx.evaluate(
            ranx.Qrels(dict(zip(ids, qrels, strict=True))), ranx.Run(run), list(metrics), return_mean=False
        )
    if len(metrics) == 1:
        scores = {metrics[0]: scores}
    return {name: np.asarray(values)[:-1] for name, values in scores.items()}


@settings(max_examples=150, deadline=None)
@given(
    queries=st.lists(query, max_size=12),
    ks=st.lists(st.integers(1, 20), min_size=1, max_size=3, unique=True),
)
def test_every_metric_equals_ranx(queries, ks):
    rankings = [r for r, _ in queries]
    qrels = [q for _, q in queries]
    metrics = [*RETRIEVAL_METRICS, *metric_names(ks)]
    ours = score_rankings(rankings, qrels, metrics)
    theirs = ranx_scores(rankings, qrels, metrics)
    for name in metrics:
        assert ours[name].dtype == np.float64
        assert ours[name].shape == (len(queries),)
        np.testing.assert_allclose(ours[name], theirs[name], rtol=0, atol=TOL, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(queries=st.lists(query, min_size=1, max_size=8), k=st.integers(1, 20))
def test_one_metric_at_a_time_equals_all_at_once(queries, k):
    rankings = [r for r, _ in queries]
    qrels = [q for _, q in queries]
    together = score_rankings(rankings, qrels, metric_names([k]))
    for name, values in together.items():
        np.testing.assert_array_equal(score_rankings(rankings, qrels, [name])[name], values)


# One query worked by hand: relevant ids b (grade 2) and d (grade 1) at ranks 2 and 4; x (grade 3) is never
# retrieved; a (grade 0) is judged not relevant. R = 3.
RANKING = ["a", "b", "c", "d", "e"]
QRELS = {"a": 0, "b": 2, "d": 1, "x": 3}
IDCG = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("recall@1", 0.0),
        ("recall@3", 1 / 3),
        ("recall@5", 2 / 3),
        ("recall", 2 / 3),
        ("precision@1", 0.0),
        ("precision@3", 1 / 3),
        ("precision@10", 2 / 10),  # divided by k even when the ranking is shorter, as ranx
        ("precision", 2 / 5),  # no cut-off: divided by the ranking's length
        ("hit_rate@1", 0.0),
        ("hit_rate@2", 1.0),
        ("hit_rate", 1.0),
        ("mrr@1", 0.0),
        ("mrr@2", 1 / 2),
        ("mrr", 1 / 2),
        ("ndcg@1", 0.0),
        ("ndcg@2", (2 / math.log2(3)) / (3 + 2 / math.log2(3))),
        ("ndcg@5", (2 / math.log2(3) + 1 / math.log2(5)) / IDCG),  # linear gain: g / log2(i + 1)
        ("ndcg", (2 / math.log2(3) + 1 / math.log2(5)) / IDCG),
        ("map@3", (1 / 2) / 3),  # divided by R, not by min(R, k)
        ("map@5", (1 / 2 + 2 / 4) / 3),
        ("map", (1 / 2 + 2 / 4) / 3),
    ],
)
def test_hand_worked_example(name, expected):
    assert score_rankings([RANKING], [QRELS], [name])[name][0] == pytest.approx(expected, abs=1e-12)


def test_duplicates_count_once_at_their_first_rank():
    scores = score_rankings([["a", "b", "b", "a", "c"]], [{"b": 1, "c": 1}], ["precision", "recall@3", "mrr"])
    assert scores["precision"][0] == pytest.approx(2 / 3)  # ranking [a, b, c]
    assert scores["recall@3"][0] == 1.0
    assert scores["mrr"][0] == 0.5


@pytest.mark.parametrize(
    ("ranking", "qrels"),
    [(["a", "b"], {"a": 0, "b": 0}), (["a", "b"], {}), ([], {"a": 2}), ([], {})],
    ids=["only-grade-0", "no-qrels", "empty-ranking", "both-empty"],
)
def test_no_relevant_or_nothing_retrieved_scores_zero(ranking, qrels):
    names = [*RETRIEVAL_METRICS, *metric_names((1, 5))]
    scores = score_rankings([ranking, ["a"]], [qrels, {"a": 1}], names)
    for name in names:
        assert scores[name][0] == 0.0, name
        assert scores[name][1] == pytest.approx(0.2 if name == "precision@5" else 1.0), name


def test_queries_keep_their_order_and_empty_inputs():
    scores = score_rankings([["x", "a"], ["a"], []], [{"a": 1}, {"a": 1}, {"a": 1}], ["mrr@10"])
    np.testing.assert_array_equal(scores["mrr@10"], [0.5, 1.0, 0.0])
    assert score_rankings([], [], ["ndcg@10", "recall"])["ndcg@10"].shape == (0,)
    assert score_rankings([["a"]], [{"a": 1}], []) == {}


def test_rankings_and_qrels_must_pair_up():
    with pytest.raises(ValueError, match="2 rankings but 1 qrels"):
        score_rankings([["a"], ["b"]], [{"a": 1}], ["mrr"])


def test_parse_metric():
    assert parse_metric("recall@10") == ("recall", 10)
    assert parse_metric("mrr") == ("mrr", None)
    assert parse_metric("hit_rate@1") == ("hit_rate", 1)
    assert [parse_metric(n)[0] for n in RETRIEVAL_METRICS] == list(RETRIEVAL_METRICS)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("recal@5", "unknown metric 'recal@5'"),
        ("NDCG@5", "unknown metric"),
        ("ndcg_burges@5", "unknown metric"),
        ("", "unknown metric"),
        ("recall@0", "k must be an integer >= 1"),
        ("recall@-1", "k must be an integer >= 1"),
        ("recall@", "k must be an integer >= 1"),
        ("recall@ten", "k must be an integer >= 1"),
        ("recall@1.5", "k must be an integer >= 1"),
        ("recall@²", "k must be an integer >= 1"),
        ("recall@5@5", "k must be an integer >= 1"),
    ],
)
def test_parse_metric_errors(name, message):
    with pytest.raises(ValueError, match=message) as raised:
        parse_metric(name)
    assert isinstance(raised.value, MetricNameError)
    assert isinstance(raised.value, InputError)  # fronts render it as a user error


def test_metric_names():
    names = metric_names()
    assert len(names) == len(RETRIEVAL_METRICS) * 4
    assert names[:4] == ["recall@1", "recall@3", "recall@5", "recall@10"]
    assert names[-1] == "map@10"
    assert metric_names([7]) == [f"{m}@7" for m in RETRIEVAL_METRICS]
    assert all(parse_metric(n)[1] in (1, 3, 5, 10) for n in names)


def test_document_ranking_counts_each_document_once_at_its_first_chunk():
    ranking = ["A#intro:0", "A#intro:1", "A#setup:0", "B#usage:0", "A#intro:2", "faq"]
    assert document_ranking(ranking) == ["A", "B", "faq"]


def test_document_qrels_take_the_highest_grade_per_document():
    assert document_qrels({"A#intro:0": 0, "A#setup:0": 2, "A": 1, "B#usage:3": 0, "C": 3}) == {
        "A": 2,
        "B": 0,
        "C": 3,
    }


def test_score_documents():
    rankings = [["A#intro:0", "A#intro:1", "A#setup:0", "B#usage:0"]]
    qrels = [{"A#setup:0": 1, "C#x:0": 2}]
    names = ["recall@2", "mrr", "precision@2", "ndcg@2"]
    chunks = score_rankings(rankings, qrels, names)
    documents = score_documents(rankings, qrels, names)
    assert chunks["recall@2"][0] == 0.0  # the gold chunk is third
    assert chunks["mrr"][0] == pytest.approx(1 / 3)
    assert documents["recall@2"][0] == 0.5  # document ranking [A, B]: A found, C not
    assert documents["mrr"][0] == 1.0
    assert documents["precision@2"][0] == 0.5
    assert documents["ndcg@2"][0] == pytest.approx(1 / (2 + 1 / math.log2(3)))  # ideal: C (2) then A (1)


CHUNKS = [f"d{d}#s:{c}" for d in range(40) for c in range(5)]  # 40 documents of 5 chunks each


@settings(max_examples=60, deadline=None)
@given(
    queries=st.lists(
        st.tuples(
            st.permutations(CHUNKS).map(lambda p: p[: len(p) // 2 + 1]),
            st.dictionaries(
                st.sampled_from([*CHUNKS, *(f"d{d}" for d in range(45))]), st.integers(0, 3), max_size=6
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_score_levels_equals_ranx_at_k_chunks_and_k_documents(queries):
    """Chunk-level gold: ``metric@k`` over k chunks; every query: ``doc_metric@k`` over k documents of the
    deduplicated ranking (k = 1, 10, 100: 101 chunks hold at most 40 documents, so the cut-offs differ)."""
    rankings = [r for r, _ in queries]
    qrels = [q for _, q in queries]
    levels, ours = score_levels(rankings, qrels, [1, 10, 100])
    names = metric_names([1, 10, 100])
    docs = ranx_scores([document_ranking(r) for r in rankings], [document_qrels(q) for q in qrels], names)
    chunks = ranx_scores(rankings, qrels, names)
    for i, (level, metrics) in enumerate(zip(levels, ours, strict=True)):
        assert level == gold_level(qrels[i])
        for name in names:
            assert metrics[f"doc_{name}"] == pytest.approx(docs[name][i], abs=TOL), name
            if level == "chunk":
                assert metrics[name] == pytest.approx(chunks[name][i], abs=TOL), name
            else:
                assert name not in metrics  # document-level gold has only doc_ metrics
