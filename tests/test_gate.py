"""The CI gate: thresholds, missing metrics, regressions against a baseline."""

from __future__ import annotations

import pytest

from ragdeck.console.evaluation.gate import Condition, check_gate, parse_gate
from ragdeck.errors import InputError


def test_parse_reads_every_operator_and_spacing() -> None:
    got = parse_gate(" recall@10>=0.85, faithfulness > 0.8,mrr<=1,ndcg@5<0.99 ,hit_rate@1==1")
    assert got == [
        Condition("recall@10", ">=", 0.85),
        Condition("faithfulness", ">", 0.8),
        Condition("mrr", "<=", 1.0),
        Condition("ndcg@5", "<", 0.99),
        Condition("hit_rate@1", "==", 1.0),
    ]


@pytest.mark.parametrize("text", ["recall@10", "recall@10 => 0.8", ">=0.8", "recall@10>=high", ",", ""])
def test_parse_rejects_bad_items_with_an_example(text: str) -> None:
    with pytest.raises(InputError, match=r"recall@10>=0\.85"):
        parse_gate(text)


def test_a_gate_that_passes_and_one_that_fails_with_the_reason() -> None:
    means = {"recall@10": 0.9, "faithfulness": 0.7}
    passed = check_gate(means, parse_gate("recall@10>=0.85"))
    assert passed.passed and passed.failures == []
    failed = check_gate(means, parse_gate("recall@10>=0.85,faithfulness>=0.8"))
    assert not failed.passed
    assert failed.failures == ["faithfulness = 0.7000, the gate wants >= 0.8"]


def test_a_metric_the_run_lacks_fails_the_gate() -> None:
    outcome = check_gate({"recall@10": 0.9}, parse_gate("faithfulness>=0.8,recall@20>=0.5"))
    assert not outcome.passed
    assert "faithfulness was not computed" in outcome.failures[0] and "answer metric" in outcome.failures[0]
    assert "k=20" in outcome.failures[1]


def test_regression_against_a_baseline() -> None:
    baseline = {"recall@10": 0.90, "mrr@10": 0.70}
    ok = check_gate(
        {"recall@10": 0.885, "mrr@10": 0.75},
        baseline=baseline,
        max_regression=0.02,
        compared=["recall@10", "mrr@10"],
    )
    assert ok.passed
    bad = check_gate(
        {"recall@10": 0.85, "mrr@10": 0.75},
        baseline=baseline,
        max_regression=0.02,
        compared=["recall@10", "mrr@10"],
    )
    assert not bad.passed
    assert bad.failures == [
        "recall@10 fell from 0.9000 (baseline) to 0.8500: a drop of 0.0500, more than the allowed 0.02"
    ]
    # exactly at the limit passes (floating point noise included)
    edge = check_gate(
        {"recall@10": 0.88}, baseline={"recall@10": 0.90}, max_regression=0.02, compared=["recall@10"]
    )
    assert edge.passed
