"""The console's Ask page through Streamlit's AppTest, on the real embedded stack with the demo collection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from openai_fake import run_fake_openai
from pages import open_page
from streamlit.testing.v1 import AppTest

from ragdeck.console.settings import Settings


def ask(at: AppTest, question: str) -> AppTest:
    at.text_input[0].input(question)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_extractive_answer_is_labelled_and_cites_chunks(demo_data_dir: Path) -> None:
    at = open_page("ask")
    assert at.title[0].value == "Ask"
    assert any("Extractive answers" in w.value for w in at.warning)
    at = ask(at, "How do I expose TEI metrics to Prometheus?")
    assert not at.error
    outcome = at.session_state["ask_outcome"]
    assert outcome.answer.mode == "extractive" and outcome.policy == "A"
    assert outcome.answer.citations, "the extractive answer cites the chunks its sentences came from"
    labels = [e.label for e in at.expander]
    assert len(labels) == len(outcome.answer.contexts) and any(label.startswith("✅") for label in labels)
    assert any("badge[✂️ Extractive · no LLM]" in m.value for m in at.markdown)


@pytest.mark.slow
def test_llm_answer_and_feedback_saved_once(demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_fake_openai(models=["fake-chat-1"]) as llm:
        monkeypatch.setenv("LLM_BASE_URL", llm.url)
        at = open_page("ask")
        assert not any("Extractive answers" in w.value for w in at.warning)
        at = ask(at, "What is a recording rule?")
        outcome = at.session_state["ask_outcome"]
        assert outcome.answer.mode == "llm" and outcome.answer.model == "fake-chat-1"
        assert outcome.answer.prompt_tokens > 0
        assert any("badge[🤖 LLM · fake-chat-1]" in m.value for m in at.markdown)
        assert "What is a recording rule?" in llm.state.last().body["messages"][-1]["content"]
        at.get("feedback")[0].set_value(0).run()  # thumbs down
        assert any("vote is saved" in c.value for c in at.caption)
        at.run()  # a rerun must not save the vote again
    with sqlite3.connect(Settings().state_db) as db:
        rows = db.execute("SELECT response_id, policy, vote FROM feedback").fetchall()
    assert rows == [(outcome.response_id, "A", "down")]


def test_empty_question_is_a_clear_error(demo_data_dir: Path) -> None:
    at = ask(open_page("ask"), "   ")
    assert "empty" in at.error[0].value
