"""Metric names in one place (ragdeck.console.evaluation.metric_names): the name@k form, its parsing, and
everyone reading and writing names through it."""

from __future__ import annotations

import pytest

from ragdeck.console.evaluation import gate, metrics, plan, report
from ragdeck.console.evaluation import metric_names as mn
from ragdeck.console.evaluation.metric_names import (
    ANSWER_METRIC_ORDER,
    DEFAULT_KS,
    RETRIEVAL_METRICS,
    MetricName,
    MetricNameError,
    cut_offs_up_to,
    cutoff_metric,
    document_name,
    metric_name,
    metric_names,
    parse_metric,
    parse_metric_name,
)
from ragdeck.console.retrieval.policies import Policy
from ragdeck.errors import InputError
from ragdeck.services import judge


@pytest.mark.parametrize("metric", RETRIEVAL_METRICS)
@pytest.mark.parametrize("k", [None, 1, 10, 1000])
@pytest.mark.parametrize("document", [False, True])
def test_names_round_trip(metric: str, k: int | None, document: bool) -> None:
    name = metric_name(metric, k, document=document)
    assert parse_metric_name(name) == MetricName(metric, k, document)
    assert str(parse_metric_name(name)) == name


def test_the_written_forms() -> None:
    assert metric_name("recall", 10) == "recall@10"
    assert metric_name("mrr") == "mrr"
    assert metric_name("hit_rate", 5, document=True) == "doc_hit_rate@5"
    assert document_name("ndcg@3") == "doc_ndcg@3"
    assert parse_metric("recall@10") == ("recall", 10)
    assert parse_metric("map") == ("map", None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("recal@5", r"unknown metric 'recal@5': use one of recall, precision, hit_rate, mrr, ndcg, map"),
        ("NDCG@5", "unknown metric 'NDCG@5'"),
        ("doc_", "unknown metric 'doc_'"),
        ("doc_faithfulness", "unknown metric"),
        ("faithfulness", "unknown metric"),
        ("", "unknown metric"),
        (
            "recall@0",
            r"bad cut-off in 'recall@0': k must be an integer >= 1 \(write 'recall' for no cut-off\)",
        ),
        ("doc_recall@x", r"k must be an integer >= 1 \(write 'doc_recall' for no cut-off\)"),
        ("recall@", "k must be an integer >= 1"),
        ("recall@1.5", "k must be an integer >= 1"),
        ("recall@5@5", "k must be an integer >= 1"),
        ("recall@ 5", "k must be an integer >= 1"),
    ],
)
def test_bad_names_are_refused_with_a_clear_error(name: str, message: str) -> None:
    with pytest.raises(MetricNameError, match=message) as raised:
        parse_metric_name(name)
    assert isinstance(raised.value, InputError) and isinstance(raised.value, ValueError)


def test_writing_a_bad_name_is_refused_too() -> None:
    with pytest.raises(MetricNameError, match="unknown metric"):
        metric_name("recal", 10)
    with pytest.raises(MetricNameError, match="k must be an integer >= 1"):
        metric_name("recall", 0)


def test_the_metrics_score_gold_level_names_only() -> None:
    with pytest.raises(MetricNameError, match="unknown metric 'doc_recall@10'"):
        parse_metric("doc_recall@10")


def test_names_with_and_without_a_cut_off() -> None:
    assert cutoff_metric("faithfulness") is None and cutoff_metric("mrr") is None
    assert cutoff_metric("doc_recall@10") == MetricName("recall", 10, True)
    with pytest.raises(MetricNameError):
        cutoff_metric("faithfulness@3")


def test_metric_names_at_cut_offs() -> None:
    assert metric_names([5]) == ["recall@5", "precision@5", "hit_rate@5", "mrr@5", "ndcg@5", "map@5"]
    assert metric_names([1], document=True)[0] == "doc_recall@1"
    assert len(metric_names()) == len(RETRIEVAL_METRICS) * len(DEFAULT_KS)


@pytest.mark.parametrize(
    ("ks", "k", "expected"),
    [
        ((1, 3, 5, 10), None, (1, 3, 5, 10)),
        ((1, 3, 5, 10), 5, (1, 3, 5)),
        ((1, 3, 5, 10), 20, (1, 3, 5, 10, 20)),
        ((10, 1, 10), 4, (1, 4)),
    ],
)
def test_cut_offs_up_to(ks: tuple[int, ...], k: int | None, expected: tuple[int, ...]) -> None:
    assert cut_offs_up_to(ks, k) == expected


def test_one_definition_everywhere() -> None:
    assert metrics.RETRIEVAL_METRICS is RETRIEVAL_METRICS
    assert metrics.parse_metric is parse_metric and metrics.metric_names is metric_names
    assert metrics.MetricNameError is MetricNameError
    assert plan.DEFAULT_KS is DEFAULT_KS
    assert set(ANSWER_METRIC_ORDER) >= {judge.FAITHFULNESS, judge.ANSWER_RELEVANCY, judge.CONTEXT_RECALL}
    assert all(mn.is_offline_metric(n) for n in judge.OfflineJudge.metric_names)


def test_the_runner_names_both_levels() -> None:
    eval_plan = plan.EvalPlan(Policy("A", top_k=10, top_n=5), ks=(1, 5))
    names = eval_plan.retrieval_metric_names()
    assert names == metric_names([1, 5]) + metric_names([1, 5], document=True)


def test_reports_read_names_through_the_parser() -> None:
    summary = {
        "metrics": {
            name: {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 3}
            for name in [
                *metric_names([1, 10]),
                *metric_names([1, 10], document=True),
                "token_f1",
                "rouge_l_offline",
            ]
        }
    }
    assert report.headline_metrics(summary) == [
        *metric_names([10]),
        "doc_hit_rate@10",
        "doc_recall@10",
        "token_f1",
        "rouge_l_offline",
    ]
    gold = report.metric_curves(summary)
    docs = report.metric_curves(summary, mn.DOC_PREFIX)
    assert len(gold) == len(docs) == 12
    assert {(r["metric"], r["k"]) for r in gold} == {(m, k) for m in RETRIEVAL_METRICS for k in (1, 10)}


def test_the_gate_hints_from_the_name() -> None:
    outcome = gate.check_gate({"recall@5": 0.9}, gate.parse_gate("recall@10>=0.8,faithfulness>=0.8"))
    assert "is k=10 among the run's --k cut-offs?" in outcome.failures[0]
    assert "an answer metric" in outcome.failures[1]
