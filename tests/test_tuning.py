"""Retrieval studies (``console.tuning``, ``ragdeck tune``) on the demo collection and the demo gold set."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli

import ragdeck
from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evalsets.model import EvalSet
from ragdeck.console.evaluation.runner import EvalDeps, EvalPlan, EvalRunner
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.settings import Settings
from ragdeck.console.tuning.record import Study, new_study_id
from ragdeck.console.tuning.space import SearchSpace, trial_label
from ragdeck.console.tuning.split import split_questions
from ragdeck.console.tuning.study import StudyDeps, StudyRunner, objective_name, plan_study
from ragdeck.console.wiring import build_policy_drafts, build_study_files
from ragdeck.errors import InputError
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import ComponentHealth

DEMO_GOLD = Path(ragdeck.__file__).parent / "demo_eval_sets" / "demo_gold.jsonl"
OBJECTIVE = "doc_ndcg@10"
SMALL = SearchSpace(
    modes=("lexical", "hybrid"), fusions=("rrf", "weighted", "dbsf"), rrf_ks=(10, 60), dense_weights=(0.3,),
    top_ks=(20, 40),
)  # fmt: skip


class Counting:
    """Counts the calls made to the wrapped object's methods named in ``methods``."""

    def __init__(self, inner: Any, *methods: str) -> None:
        self._inner, self._methods, self.calls = inner, set(methods), Counter()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in self._methods:
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return value(*args, **kwargs)

        return counted


@pytest.fixture
def demo(demo_data_dir: Path) -> Iterator[tuple[EmbeddedQdrantStore, EvalSet]]:
    with EmbeddedQdrantStore(demo_data_dir / "qdrant") as store:
        yield store, read_jsonl(DEMO_GOLD)


def _runner(
    store: Any, embedder: Any, evalset: EvalSet, space: SearchSpace = SMALL, **plan: Any
) -> StudyRunner:
    study_plan = plan_study(evalset, Policy(name="A"), "rag_chunks", objective=OBJECTIVE, space=space, **plan)
    return StudyRunner(StudyDeps(store, embedder), study_plan, evalset)


def test_the_split_is_disjoint_complete_and_reproducible_from_its_seed() -> None:
    ids = [f"q{i}" for i in range(43)]
    split = split_questions(ids, seed=7, test_fraction=0.3)
    assert not set(split.tune_ids) & set(split.test_ids)
    assert sorted([*split.tune_ids, *split.test_ids]) == sorted(ids)
    assert len(split.test_ids) == 13
    assert split_questions(ids, seed=7, test_fraction=0.3) == split
    assert split_questions(ids, seed=8, test_fraction=0.3).test_ids != split.test_ids
    assert split_questions(["a", "b"], test_fraction=0.9).tune_ids  # one question stays on each side
    for bad, match in ((["a"], "at least 2"), (["a", "a", "b"], "repeats")):
        with pytest.raises(InputError, match=match):
            split_questions(bad)
    with pytest.raises(InputError, match="between 0 and 1"):
        split_questions(ids, test_fraction=1.0)


def test_the_space_varies_only_knobs_that_change_the_ranking() -> None:
    trials = SMALL.trials(reranker=False, top_n=10)
    labels = [trial_label(t) for t in trials]
    assert len(labels) == len(set(labels))
    assert labels[0] == "lexical" and "top_k" not in trials[0] and "hnsw_ef" not in trials[0]
    assert sum(t["retrieval"] == "hybrid" for t in trials) == (2 + 1 + 1) * 2  # rrf k × 2, weighted, dbsf
    assert all("rerank" not in t for t in trials)  # no reranker configured: not varied
    with_reranker = SearchSpace(modes=("dense",), top_ks=(20, 40)).trials(reranker=True, top_n=10)
    assert [trial_label(t) for t in with_reranker] == [
        "dense",
        "dense top_k=20 rerank",
        "dense top_k=40 rerank",
    ]
    assert (
        SearchSpace(top_ks=(5, 40)).trials(reranker=False, top_n=10)[-1]["top_k"] == 40
    )  # 5 < top_n: left out
    with pytest.raises(InputError, match="fusion must be one of"):
        SearchSpace(fusions=("max",))


def test_a_trial_scores_what_ragdeck_eval_scores(demo, local_embedder, monkeypatch, capsys, tmp_path) -> None:
    store, evalset = demo
    runner = _runner(store, local_embedder, evalset)
    study = runner.run(Study(new_study_id(), runner.plan))
    tune_set = EvalSet("tune", [r for r in evalset.records if r.id in set(study.plan.split.tune_ids)])
    evaluator = EvalRunner(EvalDeps(Retriever(store, local_embedder), EvalStore(tmp_path / "runs.db")))
    by_label = {t["label"]: t for t in study.trials}
    for label in (
        "lexical",
        "hybrid rrf k=10 top_k=20",
        "hybrid weighted 0.3 dense top_k=40",
        "hybrid dbsf top_k=20",
    ):
        trial = by_label[label]
        policy = runner.policy(trial["params"])
        run, prepared = evaluator.start(tune_set, EvalPlan(policy, concurrency=1))
        run = evaluator.execute(run, prepared)
        assert trial["tune_score"] == pytest.approx(run.summary["metrics"][OBJECTIVE]["mean"], abs=1e-9), (
            label
        )

    # and through the command itself: `ragdeck eval` of the tune questions in lexical mode
    import ragdeck.console.wiring as wiring

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    tune_file = tmp_path / "tune.jsonl"
    tune_file.write_text("".join(line for line in DEMO_GOLD.read_text().splitlines(True)
                                 if json.loads(line)["id"] in set(study.plan.split.tune_ids)))  # fmt: skip
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", "--set", str(tune_file), "--collection", "rag_chunks",
        "--retrieval", "lexical", "--json", str(tmp_path / "eval.json"),
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((tmp_path / "eval.json").read_text())["summary"]
    assert by_label["lexical"]["tune_score"] == pytest.approx(summary[OBJECTIVE], abs=1e-9)


def test_fusion_and_cut_off_trials_make_no_embedding_and_no_engine_call(demo, local_embedder) -> None:
    store, evalset = demo
    engine = Counting(store, "search", "search_lexical", "search_both", "search_hybrid")
    embedder = Counting(local_embedder, "embed_query", "embed_documents")
    space = SearchSpace(modes=("hybrid",), fusions=("rrf", "weighted", "dbsf"), rrf_ks=(10, 60), top_ks=(40,))
    runner = _runner(engine, embedder, evalset, space)
    seen: list[tuple[int, int]] = []
    runner.run(
        Study(new_study_id(), runner.plan),
        progress=lambda done, _: seen.append((sum(engine.calls.values()), sum(embedder.calls.values()))),
    )
    assert len(seen) == 1 + 6  # before the first trial, then after each: rrf × 2, weighted × 3, dbsf
    after_first = seen[1]
    assert after_first[0] > 0 and after_first[1] > 0  # the first trial fetched and embedded
    assert all(calls == after_first for calls in seen[2:])  # the other fusions: nothing at all


def test_a_budget_excludes_slow_trials_and_says_so(demo, local_embedder) -> None:
    store, evalset = demo
    runner = _runner(store, local_embedder, evalset, budget_p95_ms=5.0)
    runner.p95_ms = lambda policy: 1.0 if policy.retrieval == "lexical" else 50.0  # type: ignore[method-assign]
    study = runner.run(Study(new_study_id(), runner.plan))
    assert study.chosen is not None and study.chosen["label"] == "lexical"
    assert all(t["within_budget"] is (t["label"] == "lexical") for t in study.trials)

    tight = _runner(store, local_embedder, evalset, budget_p95_ms=0.5)
    tight.p95_ms = runner.p95_ms  # type: ignore[method-assign]
    study = tight.run(Study(new_study_id(), tight.plan))
    assert (
        study.chosen is None and study.decision == "keep the baseline: no trial met the P95 budget of 0.5 ms"
    )


def test_cancel_stops_between_trials_and_resume_runs_only_the_rest(demo, local_embedder) -> None:
    store, evalset = demo
    runner = _runner(store, local_embedder, evalset)
    cancel, saved = threading.Event(), []
    study = runner.run(
        Study(new_study_id(), runner.plan),
        save=lambda s: saved.append(json.dumps(s.to_json())),
        progress=lambda done, _: cancel.set() if done == 3 else None,
        cancel=cancel,
    )
    assert study.status == "cancelled" and len(study.trials) == 3 and study.chosen is None
    first = [dict(t) for t in study.trials]
    resumed = Study.from_json(json.loads(saved[-1]))
    again = _runner(store, local_embedder, evalset)
    done = again.run(resumed)
    assert done.status == "done" and len(done.trials) == len(again.trials)
    assert done.trials[:3] == first  # kept as saved, not run again
    assert done.test is not None and done.decision


def test_ragdeck_tune_writes_the_whole_report_and_a_draft(
    demo_data_dir, local_embedder, monkeypatch, capsys
) -> None:
    import ragdeck.console.wiring as wiring

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    out, page = demo_data_dir.parent / "study.json", demo_data_dir.parent / "study.html"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "tune", "--set", str(DEMO_GOLD), "--collection", "rag_chunks",
        "--metric", "ndcg@10", "--modes", "dense,hybrid", "--fusions", "rrf,dbsf", "--rrf-k", "60",
        "--top-k", "40", "--seed", "3",
        "--json", str(out), "--html", str(page), "--draft", "tuned",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out.read_text())
    assert (
        report["objective"] == OBJECTIVE
        and report["eval_set"]["version"] == read_jsonl(DEMO_GOLD).content_hash()
    )
    split = report["split"]
    assert split["seed"] == 3 and len(split["tune_ids"]) + len(split["test_ids"]) == 43
    assert [t["label"] for t in report["trials"]] == [
        "dense",
        "hybrid rrf k=60 top_k=40",
        "hybrid dbsf top_k=40",
    ]
    for trial in report["trials"]:
        assert trial["params"]["retrieval"] and trial["tune_score"] is not None and trial["p95_ms"] > 0
    assert (
        report["chosen"]["params"]
        and report["chosen_knobs"]["retrieval"] == report["chosen"]["params"]["retrieval"]
    )
    test = report["test"]
    for key in ("baseline_mean", "chosen_mean", "difference", "ci_low", "ci_high", "p_value", "optimism"):
        assert isinstance(test[key], float), key
    assert test["optimism"] == pytest.approx(test["tune_gain"] - test["difference"])
    assert len(test["per_question"]) == len(split["test_ids"])
    assert "decision:" in stdout and report["decision"] in stdout
    assert report["study_id"] in page.read_text() and "<table>" in page.read_text()
    assert build_study_files(Settings()).load(report["study_id"])["status"] == "done"
    draft = build_policy_drafts(Settings()).get_draft("tuned")
    assert (
        draft.study_id == report["study_id"]
        and draft.knobs["retrieval"] == report["chosen_knobs"]["retrieval"]
    )


def test_the_objective_must_be_a_metric_the_runner_scores() -> None:
    assert objective_name("ndcg@10") == "doc_ndcg@10"
    assert objective_name("recall@5", "gold") == "recall@5"
    assert objective_name("doc_mrr@10", "gold") == "doc_mrr@10"
    for bad, match in (("ndcg", "cut-off"), ("bleu@10", "unknown metric")):
        with pytest.raises(InputError, match=match):
            objective_name(bad)


class WordOverlapReranker:
    """A cheap, deterministic cross-encoder stand-in (the share of the question's words in the passage) that
    records every (question, passage) pair it is asked to score. What is under test is the study's reuse
    of scores and its equality with the eval runner, which do not depend on the model."""

    mode, model_name = "local", "word-overlap"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        self.asked.extend((query, text) for text in texts)
        words = set(query.lower().split())
        return [len(words & set(text.lower().split())) / max(1, len(words)) for text in texts]

    def health(self) -> ComponentHealth:
        return ComponentHealth("reranker", self.mode, ok=True, model=self.model_name)


def test_reranker_trials_score_what_eval_scores_and_reuse_the_scores(demo, local_embedder, tmp_path) -> None:
    """With a reranker, rerank off and on at two depths are tried; each trial equals the eval runner with
    that reranker, and the study never asks the reranker to score the same (question, chunk) twice: the
    deeper trial reranks only the candidates the shallower one did not."""
    store, evalset = demo
    space = SearchSpace(modes=("dense",), top_ks=(20, 40))
    reranker = WordOverlapReranker()
    study_plan = plan_study(evalset, Policy(name="A"), "rag_chunks", objective=OBJECTIVE, space=space)
    runner = StudyRunner(StudyDeps(store, local_embedder, reranker), study_plan, evalset)
    assert runner.rerank_cache is not None
    behind_cache = runner.rerank_cache.reranker = WordOverlapReranker()  # what the trials' cache asks
    study = runner.run(Study(new_study_id(), runner.plan))
    asked = behind_cache.asked
    assert [t["label"] for t in study.trials] == ["dense", "dense top_k=20 rerank", "dense top_k=40 rerank"]
    assert asked and len(asked) == len(set(asked))  # no chunk scored twice for one question
    assert study.trials[1]["tune_score"] != study.trials[0]["tune_score"]  # the reranker changed rankings

    tune_set = EvalSet("tune", [r for r in evalset.records if r.id in set(study.plan.split.tune_ids)])
    evaluator = EvalRunner(EvalDeps(Retriever(store, local_embedder, reranker), EvalStore(tmp_path / "r.db")))
    for trial in study.trials:
        run, prepared = evaluator.start(tune_set, EvalPlan(runner.policy(trial["params"]), concurrency=1))
        mean = evaluator.execute(run, prepared).summary["metrics"][OBJECTIVE]["mean"]
        assert trial["tune_score"] == pytest.approx(mean, abs=1e-9), trial["label"]
