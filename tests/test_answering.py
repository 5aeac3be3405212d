"""Prompt building, citation parsing, refusal detection and ``answer_question``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from ragdeck.console.answering.answers import (
    DEFAULT_SYSTEM_PROMPT,
    FEW_SHOT,
    NO_ANSWER,
    Answer,
    Prompt,
    approx_tokens,
    build_messages,
    few_shot_messages,
    is_no_answer,
    parse_citations,
    user_message,
)
from ragdeck.console.answering.generate import answer_question
from ragdeck.console.interfaces import ChatModel
from ragdeck.console.retrieval.pipeline import RetrievedChunk
from ragdeck.errors import InputError, ServiceUnavailable
from ragdeck.services.types import ChatMessage, ChatResult, ComponentHealth


def hit(rank: int, body: str, *, title: str = "Storage", section: str = "Local storage") -> RetrievedChunk:
    prefix = " > ".join(p for p in (title, section) if p)
    return RetrievedChunk(
        rank=rank,
        chunk_id=f"doc{rank}#sec:{rank}",
        doc_id=f"doc{rank}",
        score=1.0 - rank / 100,
        vector_score=0.5,
        rerank_score=None,
        text=f"{prefix}\n\n{body}" if prefix else body,
        title=title,
        section=section,
        body=body,
    )


HITS = [
    hit(1, "Prometheus keeps two-hour blocks on local disk."),
    hit(2, "The retention time defaults to 15d.", section="Operational aspects"),
    hit(3, "TEI serves embedding models over HTTP.", title="TEI", section="Quick tour"),
]


class ScriptedChatModel:
    """A ChatModel that answers from a script and records what it was sent (the seam, not a mock of it)."""

    mode = "local"
    model_name = "scripted-1"

    def __init__(self, reply: str, *, fail: bool = False) -> None:
        self.reply = reply
        self.fail = fail
        self.calls: list[tuple[list[ChatMessage], int, float]] = []

    def chat(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> ChatResult:
        self.calls.append((list(messages), max_tokens, temperature))
        if self.fail:
            raise ServiceUnavailable("LLM at http://127.0.0.1:1 did not answer")
        return ChatResult(
            text=f"  {self.reply}\n",
            model="served-model",
            prompt_tokens=321,
            completion_tokens=12,
            finish_reason="stop",
            latency_ms=5.0,
        )

    def health(self) -> ComponentHealth:
        return ComponentHealth(component="llm", mode=self.mode, ok=True)


# ------------------------------------------------------------------ prompt


def test_approx_tokens_is_a_quarter_of_the_characters_rounded_up() -> None:
    assert [approx_tokens(t) for t in ("", "abc", "abcd", "abcde", "x" * 4000)] == [0, 1, 1, 2, 1000]


def test_system_prompt_states_the_rules() -> None:
    assert NO_ANSWER == "The context is insufficient to answer this question."
    assert NO_ANSWER in DEFAULT_SYSTEM_PROMPT
    assert "ONLY" in DEFAULT_SYSTEM_PROMPT and "[1]" in DEFAULT_SYSTEM_PROMPT
    assert "concise" in DEFAULT_SYSTEM_PROMPT


def test_build_messages_numbers_contexts_in_rank_order_with_title_and_section() -> None:
    prompt = build_messages("  How long is data kept? ", list(reversed(HITS)))
    assert isinstance(prompt, Prompt) and isinstance(prompt, list)
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert prompt[0].content == DEFAULT_SYSTEM_PROMPT
    user = prompt[-1].content
    assert user.index("[1] Storage > Local storage\nPrometheus keeps") < user.index(
        "[2] Storage > Operational aspects\nThe retention time"
    )
    assert user.index("[2] Storage") < user.index("[3] TEI > Quick tour\nTEI serves")
    assert "Question: How long is data kept?\n" in user
    assert user.count("Storage > Local storage") == 1  # the prefix is not repeated from hit.text
    assert [h.rank for h in prompt.included] == [1, 2, 3]
    assert prompt.dropped == 0 and not prompt.truncated
    contexts = user[user.index("[1]") : user.index("\n\nQuestion:")]
    assert prompt.context_tokens == approx_tokens(contexts)


def test_few_shot_turns_teach_the_format_and_can_be_left_out() -> None:
    (q1, a1), (q2, a2) = FEW_SHOT
    assert parse_citations(a1, 2) == [1] and not is_no_answer(a1)
    assert a2 == NO_ANSWER and is_no_answer(a2)
    shots = few_shot_messages()
    assert [m.content for m in shots[1::2]] == [a1, a2]
    assert q1 in shots[0].content and q2 in shots[2].content and "[1] Server > Flags" in shots[0].content
    assert shots[0].content.endswith("citing them as [n].")
    real = build_messages("How long is data kept?", HITS)
    assert real[1:5] == shots and real[-1].content.startswith("Contexts:\n\n[1] Storage > Local storage")
    bare = build_messages("How long is data kept?", HITS, few_shot=False)
    assert [m.role for m in bare] == ["system", "user"] and bare[-1] == real[-1]
    assert (
        user_message("", "q? ")
        == "Contexts: (none)\n\nQuestion: q?\n\nAnswer from the contexts only, citing them as [n]."
    )
    model = ScriptedChatModel("15d [2].")
    answer_question("How long?", HITS, model, few_shot=False)
    assert len(model.calls[0][0]) == 2


def test_build_messages_drops_lowest_ranked_contexts_whole_to_fit_the_budget() -> None:
    hits = [hit(r, f"Sentence {r}. " + " ".join(["word"] * 190)) for r in (1, 2, 3)]
    block = len("[1] Storage > Local storage\n" + hits[0].body)
    prompt = build_messages("q?", hits, max_context_chars=2 * block + 2 + 50)
    assert [h.rank for h in prompt.included] == [1, 2] and prompt.dropped == 1 and not prompt.truncated
    user = prompt[-1].content
    assert hits[0].body in user and hits[1].body in user
    assert "Sentence 3" not in user and "[3]" not in user  # never a piece of a later context
    assert len(user[user.index("[1]") : user.index("\n\nQuestion:")]) <= 2 * block + 2 + 50
    # one character short of two blocks: only the first fits
    assert len(build_messages("q?", hits, max_context_chars=2 * block + 1).included) == 1


def test_build_messages_cuts_only_a_first_context_that_alone_is_over_budget() -> None:
    hits = [hit(1, "alpha " * 400), hit(2, "short one")]
    prompt = build_messages("q?", hits, max_context_chars=500)
    user = prompt[-1].content
    contexts = user[user.index("[1]") : user.index("\n\nQuestion:")]
    assert prompt.truncated and len(prompt.included) == 1 and prompt.dropped == 1
    assert len(contexts) <= 500 and contexts.endswith("alpha …")
    assert "short one" not in user
    for budget in (1, 2, 3, 7):
        tiny = build_messages("q?", hits, max_context_chars=budget)
        body = tiny[-1].content
        assert len(body[len("Contexts:\n\n") : body.index("\n\nQuestion:")]) <= budget


def test_build_messages_without_body_uses_text_minus_its_prefix_and_rejects_bad_input() -> None:
    bare = RetrievedChunk(1, "c1", "d1", 0.9, 0.9, None, "Title > Sec\n\nThe body text.", "Title", "Sec")
    user = build_messages("q?", [bare])[-1].content
    assert "[1] Title > Sec\nThe body text." in user and user.count("Title > Sec") == 1
    assert "Contexts: (none)" in build_messages("q?", [])[-1].content
    with pytest.raises(InputError, match="empty"):
        build_messages("   ", HITS)
    with pytest.raises(InputError, match="max_context_chars"):
        build_messages("q?", HITS, max_context_chars=0)


# ------------------------------------------------------------------ citations


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("Blocks are two hours [1].", 3, [1]),
        ("A [2]. B [1]. C [2].", 3, [2, 1]),
        ("Both say so [1, 3].", 3, [1, 3]),
        ("Both say so [1,2;3].", 3, [1, 2, 3]),
        ("Adjacent [1][2] markers.", 3, [1, 2]),
        ("A range [1-3].", 5, [1, 2, 3]),
        ("An en dash range [2–4] and [1].", 5, [2, 3, 4, 1]),
        ("Reversed [3-1].", 3, [1, 2, 3]),
        ("Out of range [0] [4] [7-9].", 3, []),
        ("Partly out [2-6].", 3, [2, 3]),
        ("Not citations: [note], [1.5], [a1], (1), 1.", 3, []),
        ("Spaces [ 2 ] inside.", 3, [2]),
        ("Huge range [1-999999].", 2, [1, 2]),
        ("", 3, []),
    ],
)
def test_parse_citations(text: str, n: int, expected: list[int]) -> None:
    assert parse_citations(text, n) == expected


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "text",
    [
        NO_ANSWER,
        f"  {NO_ANSWER}  ",
        NO_ANSWER.lower().rstrip("."),
        f'"{NO_ANSWER}"',
        f"**{NO_ANSWER}**",
        "The provided context does not contain information about the default port.",
        "The given contexts do not mention how retention is configured.",
        "The context doesn't say which GPU is required.",
        "I cannot answer this question from the provided context.",
        "I can't determine the answer based on the contexts given.",
        "I am unable to answer that from the information provided.",
        "I don't know.",
        "Insufficient context to answer.",
        "There is not enough information in the contexts to answer this question.",
        "None of the provided passages mention Kubernetes.",
        "Sorry. The context does not provide the answer to this question.",
        "Unfortunately, the information provided is insufficient to answer the question.",
        "The answer is not found in the given contexts.",
        "It is not possible to determine this from the context.",
        "Answer: The contexts are not sufficient to answer this.",
    ],
)
def test_is_no_answer_detects_refusals(text: str) -> None:
    assert is_no_answer(text)


@pytest.mark.parametrize(
    "text",
    [
        "Prometheus keeps two-hour blocks on local disk [1].",
        "The context window of the model is 512 tokens [2].",
        "Labels give context to a metric; use them to filter series [1].",
        "When the source does not contain labels, Prometheus adds job and instance labels [3].",
        "The retention defaults to 15d [2]. The context does not say how to change it for one series.",
        "If the provided context is insufficient, TEI returns an error [1].",
        "Set --max-batch-tokens to bound memory [1]; the context explains the trade-off [2].",
        "Use `promtool check rules` [1]. I cannot stress enough how useful it is [1].",
        "TEI does not contain a tokenizer for every model; it downloads one from the hub [3].",
        "Insufficient disk space makes compaction fail [1].",
    ],
)
def test_is_no_answer_leaves_answers_alone(text: str) -> None:
    assert not is_no_answer(text)


def test_empty_text_counts_as_no_answer() -> None:
    assert is_no_answer("") and is_no_answer("   \n")


# ------------------------------------------------------------------ answer_question


def test_answer_question_with_a_chat_model_parses_citations() -> None:
    model = ScriptedChatModel("Data is kept 15d [2], in two-hour blocks [1][2]. See also [9].")
    assert isinstance(model, ChatModel)
    answer = answer_question("How long is data kept?", HITS, model, max_tokens=99, temperature=0.3)
    [(messages, max_tokens, temperature)] = model.calls
    assert (max_tokens, temperature) == (99, 0.3)
    assert messages[0].role == "system" and "[3] TEI > Quick tour" in messages[-1].content
    assert answer.mode == "llm" and answer.model == "served-model" and not answer.no_answer
    assert answer.text == "Data is kept 15d [2], in two-hour blocks [1][2]. See also [9]."
    assert [(c.n, c.chunk_id) for c in answer.citations] == [(2, "doc2#sec:2"), (1, "doc1#sec:1")]
    assert [c.n for c in answer.contexts] == [1, 2, 3]
    assert answer.citations[0].text == "The retention time defaults to 15d."
    assert (answer.prompt_tokens, answer.completion_tokens, answer.finish_reason) == (321, 12, "stop")
    assert answer.context_tokens > 0 and answer.generation_ms >= 0


def test_uncited_answer_gets_inferred_citations_marked_as_such() -> None:
    # Small models answer right but often without [n] markers: attribute by word overlap, and say so.
    model = ScriptedChatModel("The retention time defaults to 15d.")
    answer = answer_question("How long is data kept?", HITS, model)
    assert [c.n for c in answer.citations] == [2] and answer.citation_source == "inferred"
    cited = answer_question("How long?", HITS, ScriptedChatModel("It is 15d [2]."))
    assert cited.citation_source == "model"
    unrelated = answer_question("Who?", HITS, ScriptedChatModel("Paris hosted the final in July."))
    assert unrelated.citations == [] and unrelated.citation_source == "none"
    refusal = answer_question("What port does Qdrant use?", HITS, ScriptedChatModel(NO_ANSWER))
    assert refusal.citations == [] and refusal.citation_source == "none"


def test_answer_question_flags_the_models_refusal() -> None:
    model = ScriptedChatModel(NO_ANSWER)
    answer = answer_question("What port does Qdrant use?", HITS, model)
    assert answer.no_answer and answer.citations == [] and len(answer.contexts) == 3


def test_answer_question_reports_only_the_contexts_that_fit() -> None:
    hits = [hit(r, f"Fact {r}. " + "x " * 400) for r in (1, 2, 3)]
    model = ScriptedChatModel("Fact [1] and [3].")
    answer = answer_question("q?", hits, model, max_context_chars=1000)
    assert [c.n for c in answer.contexts] == [1]
    assert [c.n for c in answer.citations] == [1]  # [3] was not in the prompt


def test_answer_question_without_hits_does_not_call_the_model() -> None:
    model = ScriptedChatModel("should not be used")
    answer = answer_question("Anything?", [], model)
    assert model.calls == []
    assert answer.no_answer and answer.text == NO_ANSWER and answer.mode == "llm"
    assert answer.model == "scripted-1" and answer.contexts == []


def test_answer_question_without_a_model_is_extractive() -> None:
    answer = answer_question("How long is the retention time by default?", HITS, None)
    assert answer.mode == "extractive" and not answer.no_answer
    assert answer.text == "The retention time defaults to 15d [2]."
    assert [c.chunk_id for c in answer.citations] == ["doc2#sec:2"]
    assert answer_question("Who painted the Mona Lisa?", HITS, None).no_answer
    assert answer_question("Anything?", [], None).no_answer


def test_answer_question_lets_model_errors_through_and_rejects_empty_questions() -> None:
    with pytest.raises(ServiceUnavailable):
        answer_question("q?", HITS, ScriptedChatModel("", fail=True))
    with pytest.raises(InputError):
        answer_question(" ", HITS, None)


def test_answer_json_round_trip() -> None:
    answer = answer_question("How long?", HITS, ScriptedChatModel("15d [2]."))
    data = json.loads(json.dumps(answer.to_json()))
    assert data["citations"][0]["chunk_id"] == "doc2#sec:2" and data["mode"] == "llm"
    assert set(data) >= {"question", "text", "mode", "model", "no_answer", "citations", "contexts"}
    assert Answer.from_json(data) == answer
    for bad in (
        {"text": "x"},
        {**data, "extra": 1},
        {**data, "citations": "nope"},
        {**data, "no_answer": "no"},
    ):
        with pytest.raises((KeyError, TypeError, ValueError)):
            Answer.from_json(bad)


# ------------------------------------------------------------------ the real local model


@pytest.mark.slow
def test_real_local_model_follows_the_prompt(llama_server) -> None:
    """The packaged Qwen2.5 on llama.cpp: cites the context holding the answer, refuses when none does."""
    from ragdeck.services.llm import OpenAIChatModel

    hits = [
        hit(1, "Prometheus stores samples in two-hour blocks. WAL files are kept in 128MB segments."),
        hit(2, "If no retention flag is set, the retention time defaults to 15d.", section="Operational"),
        hit(3, "TEI supports inference both on GPU and CPU.", title="TEI", section="Quick tour"),
    ]
    model = OpenAIChatModel(
        llama_server.base_url, model=llama_server.model_alias, mode="local", timeout_s=300
    )
    try:
        answered = answer_question("What is the default retention time?", hits, model, max_tokens=48)
        cpu = answer_question("Does TEI run on CPU?", hits, model, max_tokens=48)
        refused = answer_question("Which port does Grafana listen on by default?", hits, model, max_tokens=48)
    finally:
        model.close()
    assert "15d" in answered.text and not answered.no_answer, answered.text
    assert [c.n for c in answered.citations][:1] == [2], answered.text
    assert answered.prompt_tokens > 0 and answered.completion_tokens > 0
    assert not cpu.no_answer and "CPU" in cpu.text and cpu.citations, cpu.text  # refused without few-shot
    assert refused.no_answer, refused.text
