"""The one question normaliser (ragdeck.services.text): the answer cache, the annotation store and eval sets
compare questions in the same form."""

from __future__ import annotations

import pytest

from ragdeck.console.annotation import questions
from ragdeck.console.answering import cache
from ragdeck.console.evalsets import model
from ragdeck.services.text import normalize_question


def test_every_user_has_the_same_function() -> None:
    assert cache.normalize_question is normalize_question
    assert model.normalize_question is normalize_question
    assert questions.normalize_question is normalize_question  # dedupes questions to label


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        # What the eval set and annotation store copies did, kept (the cache's own cases are in
        # test_answer_cache.py).
        ("  What is   the WAL?? ", "what is the wal"),  # spaces, case, end punctuation
        (" Ｗhat  is\tWAL ?", "what is wal"),  # NFKC, tabs, a space before '?'
        ("ＷＨＡＴ is ＴＥＩ！", "what is tei"),  # full-width letters and '!' (NFKC)
        ("什么是 WAL。", "什么是 wal"),  # ideographic full stop
        ("line\u2028break\u00a0here", "line break here"),  # every Unicode space is a space
        # The strictest copy's rules (the answer cache's), now everyone's.
        ("¿Qué es TEI?", "qué es tei"),  # punctuation at the start too
        ("((What is TEI?))", "what is tei"),  # nested enclosing pairs
        ("What is a.b.c?", "what is a.b.c"),
        ("  ", ""),
        ("«»", ""),
    ],
)
def test_normal_forms(raw: str, normal: str) -> None:
    assert normalize_question(raw) == normal


@pytest.mark.parametrize("raw", ["What is TEI?", " «(What  IS tei)» ", "[a] (b)", "?", "x.y"])
def test_normalising_twice_changes_nothing(raw: str) -> None:
    once = normalize_question(raw)
    assert normalize_question(once) == once


def test_stable_ids_and_duplicates_follow_the_normal_form() -> None:
    assert model.stable_id('"What is the WAL?"') == model.stable_id("what is the wal")
    records = [
        model.EvalRecord(id="q1", question="What is the WAL?", gold_context_ids=["d#s:0"]),
        model.EvalRecord(id="q2", question="«what is the WAL»", gold_context_ids=["d#s:1"]),
    ]
    problems = model.cross_problems(records)
    assert [(p.field, "same question as record 1" in p.message) for p in problems] == [("question", True)]
