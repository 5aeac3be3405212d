"""Drafting questions from chunks with an LLM: cleaning replies, picking chunks, and the real local model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ragdeck.console.annotation.drafts import clean_question, draft_questions, pick_chunks
from ragdeck.services.types import ChatMessage, ChatResult, ComponentHealth, StoredPoint


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("How long does Prometheus keep data by default?", "How long does Prometheus keep data by default?"),
        ('Question: "What does the /rerank route return?"\n', "What does the /rerank route return?"),
        ("1. Which flag sets the retention time?", "Which flag sets the retention time?"),
        ("Sure! Which port does Perses listen on? It is 8080.", "Sure! Which port does Perses listen on?"),
        ("What does this passage describe?", None),
        ("Prometheus keeps data for 15 days.", None),
        ("Why?", None),
    ],
)
def test_clean_question(reply: str, expected: str | None) -> None:
    assert clean_question(reply) == expected


class Scripted:
    """A ChatModel that replays replies (the seam, not a mock of HTTP)."""

    mode, model_name = "local", "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.prompts = list(replies), []

    def chat(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> ChatResult:
        self.prompts.append(messages[-1].content)
        return ChatResult(text=self.replies.pop(0), model="scripted")

    def health(self) -> ComponentHealth:
        return ComponentHealth("llm", "local", True)


def test_drafts_keep_their_source_chunk_and_skip_bad_replies() -> None:
    chunks = [StoredPoint(f"d{i}#s:0", {"doc_id": f"d{i}", "body": f"passage {i} " * 50}) for i in range(3)]
    model = Scripted(["What is passage zero about?", "no question here", "Which thing is passage two?"])
    drafts = draft_questions(model, chunks)
    assert [(d.chunk_id, d.question) for d in drafts] == [
        ("d0#s:0", "What is passage zero about?"),
        ("d2#s:0", "Which thing is passage two?"),
    ]
    assert "passage 1 passage 1" in model.prompts[1]


@pytest.mark.slow
def test_pick_chunks_and_draft_with_the_real_local_llm(demo_snapshot: Path, llama_server) -> None:
    from ragdeck.services.llm import OpenAIChatModel
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    with EmbeddedQdrantStore(demo_snapshot / "qdrant") as store:
        chunks = pick_chunks(store, "rag_chunks", 3, seed=1)
        assert pick_chunks(store, "rag_chunks", 3, seed=1) == chunks  # the seed fixes the pick
    assert len(chunks) == 3 and len({c.payload["doc_id"] for c in chunks}) == 3
    with OpenAIChatModel(llama_server.base_url, timeout_s=120) as model:
        drafts = draft_questions(model, chunks)
    assert drafts, "the packaged model drafted no usable question from 3 real chunks"
    assert all(d.question.endswith("?") and d.chunk_id in {c.id for c in chunks} for d in drafts)
