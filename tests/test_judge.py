"""The answer judge: Ragas' offline string metrics, Ragas' LLM metrics against a scripted OpenAI-compatible
fake (claims, verdicts, failures), the wiring that picks one, and a slow check with the real local model."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from openai_fake import CHAT, run_fake_openai

from ragdeck.console.evaluation.ports import AnswerJudge
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_judge
from ragdeck.services.judge import (
    ANSWER_RELEVANCY,
    ANSWER_SIMILARITY_OFFLINE,
    CONTEXT_RECALL,
    CONTEXT_RECALL_OFFLINE,
    FAITHFULNESS,
    ROUGE_L_OFFLINE,
    OfflineJudge,
    RagasJudge,
)
from ragdeck.services.types import ClaimVerdict

QUESTION = "How does Prometheus collect metrics?"
CONTEXT = (
    "Prometheus collects metrics from configured targets at given intervals by scraping their HTTP "
    "endpoints. It stores all scraped samples locally and evaluates rules over this data."
)
REFERENCE = "Prometheus scrapes metrics from the HTTP endpoints of its targets at regular intervals."


# ---------------------------------------------------------------------------------------------- offline


@pytest.fixture(scope="module")
def offline() -> OfflineJudge:
    return OfflineJudge()


def test_offline_judge_orders_identical_above_unrelated(offline: OfflineJudge) -> None:
    same = offline.judge(QUESTION, REFERENCE, [CONTEXT], REFERENCE, [CONTEXT])
    close_answer = "Prometheus scrapes metrics from HTTP endpoints of targets."
    close = offline.judge(QUESTION, close_answer, [CONTEXT], REFERENCE, [CONTEXT])
    unrelated = offline.judge(QUESTION, "Bananas ripen faster next to apples.", [], REFERENCE, [CONTEXT])

    assert isinstance(offline, AnswerJudge)
    assert same.mode == "offline" and not same.claims and not same.errors
    assert set(same.scores) == set(offline.metric_names)
    for name in (ANSWER_SIMILARITY_OFFLINE, ROUGE_L_OFFLINE):
        assert same.scores[name] == pytest.approx(1.0)
        assert same.scores[name] > close.scores[name] > unrelated.scores[name]
    assert unrelated.scores[ROUGE_L_OFFLINE] == 0.0
    assert same.scores[CONTEXT_RECALL_OFFLINE] == 1.0
    assert unrelated.scores[CONTEXT_RECALL_OFFLINE] == 0.0  # nothing retrieved


def test_offline_judge_names_never_collide_with_llm_names(offline: OfflineJudge) -> None:
    assert all(name.endswith("_offline") for name in offline.metric_names)
    assert not set(offline.metric_names) & {FAITHFULNESS, ANSWER_RELEVANCY, CONTEXT_RECALL}


def test_offline_judge_without_references_gives_none_with_reasons(offline: OfflineJudge) -> None:
    result = offline.judge(QUESTION, "Something.", [CONTEXT])
    assert result.scores == dict.fromkeys(offline.metric_names)
    assert set(result.errors) == set(offline.metric_names)
    assert "reference answer" in result.errors[ROUGE_L_OFFLINE]
    assert "reference contexts" in result.errors[CONTEXT_RECALL_OFFLINE]


def test_offline_context_recall_counts_reference_contexts_found(offline: OfflineJudge) -> None:
    other = "Alertmanager deduplicates, groups and routes alerts to receivers such as email or PagerDuty."
    retrieved = [CONTEXT + " ", "unrelated text"]
    result = offline.judge(QUESTION, REFERENCE, retrieved, REFERENCE, [CONTEXT, other])
    assert result.scores[CONTEXT_RECALL_OFFLINE] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------- llm (fake)

STATEMENTS = [
    "Prometheus scrapes metrics from HTTP endpoints.",
    "Prometheus stores samples locally.",
    "Prometheus was written in Rust.",
]


VERDICTS = {
    STATEMENTS[0]: (1, "It says it scrapes HTTP endpoints."),
    STATEMENTS[1]: (1, "It says samples are stored locally."),
    STATEMENTS[2]: (0, "It does not mention Rust."),
}


def prompt_of(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def input_of(prompt: str) -> dict[str, Any]:
    """The input JSON at the end of a Ragas prompt (``input: {...}\nOutput: ``)."""
    return json.loads(prompt.rsplit("input: ", 1)[1].rsplit("Output:", 1)[0])


def scripted_judge(body: dict[str, Any]) -> str:
    """What a good judge model answers to each of Ragas' prompts (recognised by their instructions)."""
    prompt = prompt_of(body)
    if prompt.startswith("Given a question and an answer, analyze the complexity"):
        return json.dumps({"statements": STATEMENTS})
    if prompt.startswith("Your task is to judge the faithfulness"):
        asked = input_of(prompt)["statements"]
        verdicts = [{"statement": s, "reason": VERDICTS[s][1], "verdict": VERDICTS[s][0]} for s in asked]
        return json.dumps({"statements": verdicts})
    if prompt.startswith("Given a context and an answer, analyze each statement"):
        classes = [
            {"statement": "Prometheus scrapes targets.", "reason": "Stated.", "attributed": 1},
            {"statement": "It does so at intervals.", "reason": "Stated.", "attributed": 1},
            {"statement": "Targets expose HTTP endpoints.", "reason": "Stated.", "attributed": 1},
            {"statement": "It alerts by SMS.", "reason": "Not in the context.", "attributed": 0},
        ]
        return json.dumps({"classifications": classes})
    if prompt.startswith("Generate a question for the given answer"):
        return json.dumps({"question": QUESTION, "noncommittal": 0})
    return "unexpected prompt"


def fake_embed(texts: list[str]) -> list[list[float]]:
    """Bag-of-letters vectors: equal texts embed equally (cosine 1)."""
    return [[float(text.lower().count(ch)) for ch in "abcdefghijklmnopqrstuvwxyz"] for text in texts]


def test_ragas_judge_returns_claims_and_faithfulness_equals_supported_share() -> None:
    with run_fake_openai(models=["judge-1"], reply=scripted_judge) as fake:
        judge = RagasJudge(fake.origin, "judge-1", embed=fake_embed)
        result = judge.judge(QUESTION, "Some answer about Prometheus.", [CONTEXT], REFERENCE)
        bodies = [r.body for r in fake.state.requests if r.path == CHAT]

    assert isinstance(judge, AnswerJudge)
    assert judge.mode == result.mode == "llm"
    assert judge.metric_names == (FAITHFULNESS, ANSWER_RELEVANCY, CONTEXT_RECALL)
    assert result.errors == {}
    assert result.claims == [
        ClaimVerdict(STATEMENTS[0], True, "It says it scrapes HTTP endpoints."),
        ClaimVerdict(STATEMENTS[1], True, "It says samples are stored locally."),
        ClaimVerdict(STATEMENTS[2], False, "It does not mention Rust."),
    ]
    supported = sum(c.verdict for c in result.claims)
    assert result.scores[FAITHFULNESS] == pytest.approx(supported / len(result.claims))
    assert result.scores[FAITHFULNESS] == pytest.approx(2 / 3)
    assert result.scores[CONTEXT_RECALL] == pytest.approx(3 / 4)
    assert result.scores[ANSWER_RELEVANCY] == pytest.approx(1.0)
    # 2 faithfulness + 3 regenerated questions + 1 context recall; deterministic JSON requests.
    assert len(bodies) == 6
    assert all(b["temperature"] == 0.0 and b["model"] == "judge-1" for b in bodies)
    assert all(b.get("response_format") == {"type": "json_object"} for b in bodies)


def test_ragas_judge_per_claim_asks_one_verdict_per_claim() -> None:
    with run_fake_openai(models=["judge-1"], reply=scripted_judge) as fake:
        judge = RagasJudge(fake.url, "judge-1", per_claim=True)
        result = judge.judge(QUESTION, "Some answer about Prometheus.", [CONTEXT])
        prompts = [prompt_of(r.body) for r in fake.state.requests if r.path == CHAT]
    nli = [input_of(p)["statements"] for p in prompts if p.startswith("Your task is to judge")]
    assert sorted(nli) == sorted([s] for s in STATEMENTS)
    assert [(c.statement, c.verdict) for c in result.claims] == [
        (s, bool(VERDICTS[s][0])) for s in STATEMENTS
    ]
    assert result.scores[FAITHFULNESS] == pytest.approx(2 / 3)


def test_ragas_judge_without_embedder_or_reference() -> None:
    with run_fake_openai(models=["judge-1"], reply=scripted_judge) as fake:
        judge = RagasJudge(f"{fake.url}/", "judge-1")
        result = judge.judge(QUESTION, "Some answer.", [CONTEXT])
    assert judge.metric_names == (FAITHFULNESS, CONTEXT_RECALL)
    assert set(result.scores) == {FAITHFULNESS, CONTEXT_RECALL}
    assert result.scores[FAITHFULNESS] == pytest.approx(2 / 3)
    assert result.scores[CONTEXT_RECALL] is None
    assert "reference" in result.errors[CONTEXT_RECALL]


def test_ragas_judge_survives_a_garbage_judge() -> None:
    with run_fake_openai(models=["judge-1"], reply=lambda body: "I think it is fine!! {not json") as fake:
        judge = RagasJudge(fake.url, "judge-1", embed=fake_embed)
        result = judge.judge(QUESTION, "An answer.", [CONTEXT], REFERENCE)
        asked = fake.state.count(CHAT)
    assert asked == 3 * 2  # each metric's first prompt, asked once more (reasks=1)
    assert "after 2 attempts: reply does not fit StatementGeneratorOutput" in result.errors[FAITHFULNESS]
    assert result.claims == []
    assert result.scores == dict.fromkeys(judge.metric_names)
    assert set(result.errors) == set(judge.metric_names)
    assert all("\n" not in why and 0 < len(why) <= 240 for why in result.errors.values())


def test_ragas_judge_one_bad_metric_keeps_the_others() -> None:
    def half_broken(body: dict[str, Any]) -> str:
        return "{}" if prompt_of(body).startswith("Given a context and an answer") else scripted_judge(body)

    with run_fake_openai(models=["judge-1"], reply=half_broken) as fake:
        result = RagasJudge(fake.url, "judge-1").judge(QUESTION, "An answer.", [CONTEXT], REFERENCE)
    assert result.scores[FAITHFULNESS] == pytest.approx(2 / 3)
    assert result.scores[CONTEXT_RECALL] is None and CONTEXT_RECALL in result.errors


def test_ragas_judge_timeout_and_unreachable_server_give_errors() -> None:
    with run_fake_openai(models=["judge-1"], reply=scripted_judge, delay_s=3.0) as fake:
        started = time.monotonic()
        result = RagasJudge(fake.url, "judge-1", timeout_s=0.3).judge(QUESTION, "An answer.", [CONTEXT])
        took = time.monotonic() - started
        url = fake.url
    assert result.scores[FAITHFULNESS] is None
    assert "timed out" in result.errors[FAITHFULNESS]
    assert took < 3.0
    down = RagasJudge(url, "judge-1", timeout_s=1.0).judge(QUESTION, "An answer.", [CONTEXT])
    assert down.scores[FAITHFULNESS] is None and "Connection" in down.errors[FAITHFULNESS]


def test_ragas_judge_is_safe_from_worker_threads() -> None:
    with run_fake_openai(models=["judge-1"], reply=scripted_judge) as fake:
        judge = RagasJudge(fake.url, "judge-1")
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda i: judge.judge(QUESTION, f"Answer {i}.", [CONTEXT]), range(8)))
    assert all(r.scores[FAITHFULNESS] == pytest.approx(2 / 3) and len(r.claims) == 3 for r in results)


def test_ragas_judge_resolves_the_model_once_on_first_use() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def first_model() -> str:
        with lock:
            calls.append(1)
        return "judge-2"

    with run_fake_openai(models=["judge-1", "judge-2"], reply=scripted_judge) as fake:
        judge = RagasJudge(fake.url, first_model)
        assert calls == []
        judge.judge(QUESTION, "A.", [CONTEXT])
        judge.judge(QUESTION, "B.", [CONTEXT])
        assert fake.state.last().body["model"] == "judge-2"
    assert calls == [1]

    def no_server() -> str:
        raise RuntimeError("GET /v1/models failed")

    failed = RagasJudge("http://127.0.0.1:9/v1", no_server).judge(QUESTION, "A.", [CONTEXT])
    assert failed.scores == {FAITHFULNESS: None, CONTEXT_RECALL: None}
    assert failed.errors[FAITHFULNESS].startswith("no judge model: RuntimeError")


# ---------------------------------------------------------------------------------------------- wiring


def test_build_judge_is_offline_without_an_llm(data_dir: Path) -> None:
    assert build_judge(Settings()).mode == "offline"


def test_build_judge_uses_the_rag_llm_and_its_first_model(data_dir: Path) -> None:
    with run_fake_openai(models=["served-1", "served-2"], reply=scripted_judge) as fake:
        judge = build_judge(Settings(llm_base_url=fake.origin))
        assert judge.mode == "llm"
        assert judge.metric_names == (FAITHFULNESS, CONTEXT_RECALL)  # no embedder given
        result = judge.judge(QUESTION, "A.", [CONTEXT], REFERENCE)
        assert fake.state.last().body["model"] == "served-1"
        assert fake.state.count("/v1/models") == 1
    assert result.scores[FAITHFULNESS] == pytest.approx(2 / 3)
    assert build_judge(Settings(llm_base_url=fake.origin, judge_enabled=False)).mode == "offline"


def test_build_judge_prefers_its_own_server_model_and_key(data_dir: Path) -> None:
    with run_fake_openai(models=["big-judge"], reply=scripted_judge, api_key="judge-key") as fake:
        settings = Settings(
            llm_base_url="http://127.0.0.1:9/v1",
            llm_model="small-rag",
            llm_api_key="rag-key",
            judge_base_url=fake.url,
            judge_api_key="judge-key",
        )
        judge = build_judge(settings, embedder=None)
        result = judge.judge(QUESTION, "A.", [CONTEXT])
        last = fake.state.last()
    assert last.body["model"] == "big-judge" and last.authorization == "Bearer judge-key"
    assert result.scores[FAITHFULNESS] == pytest.approx(2 / 3)
    assert build_judge(Settings(judge_base_url=fake.url, judge_model="m")).model_name == "m"


def test_build_judge_settings_from_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_BASE_URL", "http://127.0.0.1:8099/v1/ ")
    monkeypatch.setenv("RAGDECK_JUDGE_MODEL", " ")
    monkeypatch.setenv("RAGDECK_JUDGE_TIMEOUT_S", "30")
    settings = Settings()
    assert settings.judge_base_url == "http://127.0.0.1:8099/v1"
    assert settings.judge_model is None and settings.judge_timeout_s == 30.0 and settings.judge_enabled
    monkeypatch.setenv("RAGDECK_JUDGE_ENABLED", "false")
    assert build_judge(Settings()).mode == "offline"


def test_build_judge_with_the_local_embedder_scores_answer_relevancy(data_dir: Path, local_embedder) -> None:
    with run_fake_openai(models=["judge-1"], reply=scripted_judge) as fake:
        judge = build_judge(Settings(llm_base_url=fake.url), local_embedder)
        result = judge.judge(QUESTION, "Prometheus scrapes HTTP endpoints.", [CONTEXT], REFERENCE)
    assert ANSWER_RELEVANCY in judge.metric_names
    assert result.scores[ANSWER_RELEVANCY] == pytest.approx(1.0, abs=1e-4)  # the same question regenerated


# ---------------------------------------------------------------------------------------------- real model

PROMETHEUS = (
    "Prometheus is an open-source systems monitoring and alerting toolkit originally built at SoundCloud. "
    "Prometheus collects and stores its metrics as time series data: metrics information is stored with the "
    "timestamp at which it was recorded, alongside optional key-value pairs called labels."
)
FAITHFUL = (
    "Prometheus is an open-source systems monitoring and alerting toolkit. It stores metrics as time series."
)
MIXED = "Prometheus was originally built at SoundCloud. It stores its metrics in a PostgreSQL database."
UNFAITHFUL = "Prometheus is a proprietary spreadsheet program sold by Oracle. It was first built at Google."


@pytest.mark.slow
def test_faithfulness_orders_answers_with_the_local_model(llama_server) -> None:
    """Three judge calls, each 1 claim extraction + 1 verdict per claim (per_claim: the 1.5B model got 6 of 6
    verdicts right that way, 4 of 6 when judging all claims in one completion)."""
    judge = RagasJudge(
        llama_server.base_url, llama_server.model_alias, timeout_s=600.0, max_tokens=400, per_claim=True
    )
    question = "What is Prometheus?"
    started = time.monotonic()
    results = {
        name: judge.judge(question, answer, [PROMETHEUS])
        for name, answer in (("faithful", FAITHFUL), ("mixed", MIXED), ("unfaithful", UNFAITHFUL))
    }
    took = time.monotonic() - started
    scores = {name: r.scores[FAITHFULNESS] for name, r in results.items()}
    report = {
        name: (r.scores, r.errors, [(c.statement, c.verdict) for c in r.claims])
        for name, r in results.items()
    }
    print(f"faithfulness {scores} in {took:.0f} s; {report}")
    assert all(value is not None for value in scores.values()), report
    # Measured: 1.0 (2 of 2 claims supported), 0.5 (1 of 2), 0.0 (0 of 2).
    assert scores["faithful"] > scores["mixed"] > scores["unfaithful"], report
