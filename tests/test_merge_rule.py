"""The merge rule as the pages state it (``MERGE_RULE``) is the rule ``export_gold`` applies: each quoted
example is checked against the code, and each sentence of the rule against a store that exercises it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragdeck.console import annotation
from ragdeck.console.annotation.gold import MERGE_EXAMPLES, MERGE_RULE, majority_grade
from ragdeck.console.annotation.records import RELEVANCE
from ragdeck.console.annotation.review import review_items
from ragdeck.console.settings import Settings
from ragdeck.services.annotation_store import SqliteAnnotationStore


@pytest.mark.parametrize(("grades", "merged"), MERGE_EXAMPLES)
def test_each_example_the_rule_quotes_is_what_the_code_gives(grades: tuple[int, ...], merged: int) -> None:
    assert majority_grade(list(grades)) == merged
    assert " + ".join(RELEVANCE[g] for g in grades) + f" → **{RELEVANCE[merged]}**" in MERGE_RULE


def test_the_stated_rule_holds_on_a_store(data_dir: Path) -> None:
    store = SqliteAnnotationStore(Settings().state_db)
    tie, partly, decided, skipped = annotation.add_questions(
        store, ["Tie?", "Relevant and partly?", "Decided?", "Skipped?"], "typed", "ann"
    )
    # "A tie is not a majority ... with two annotators a chunk gets the lower of their two grades"
    annotation.set_label(store, tie, "alice", "c1", 2)
    annotation.set_label(store, tie, "bob", "c1", 0)
    annotation.set_label(store, tie, "bob", "c2", 2)  # "a chunk an annotator did not grade counts as not"
    annotation.set_label(store, partly, "alice", "c1", 2)
    annotation.set_label(store, partly, "bob", "c1", 1)
    # "a reviewer's decision ... replaces the annotators' grades, whichever way it goes"
    for person in ("alice", "bob"):
        annotation.set_label(store, decided, person, "c1", 2)
        annotation.set_label(store, decided, person, "c2", 0)
    annotation.adjudicate(store, decided, "c1", 0, "carol")
    annotation.adjudicate(store, decided, "c2", 2, "carol")
    # "one who skipped it without grading anything does not [count]"; "the most recently saved non-empty
    # answer of one who counts"
    annotation.set_label(store, skipped, "alice", "c1", 2)
    annotation.set_answer(store, skipped, "alice", "Alice's answer.", "done")
    annotation.set_answer(store, skipped, "bob", "Bob's newer answer.", "skipped")
    gold = {g.question_id: g for g in annotation.export_gold(store, include_empty=True)}
    assert gold[tie].gold_chunk_ids == ()
    assert gold[partly].relevance == {"c1": 1}
    assert gold[decided].gold_chunk_ids == ("c2",)
    assert gold[skipped].relevance == {"c1": 2} and gold[skipped].annotators == ("alice",)
    assert (gold[skipped].reference_answer, gold[skipped].answer_by) == ("Alice's answer.", "alice")

    items = {i.question_id: i for i in review_items(store)}  # Review shows the same merged grades
    assert items[tie].merged == {"c1": 0, "c2": 0} and items[tie].disputed == ("c1", "c2")
    assert items[decided].merged == {"c1": 0, "c2": 2} and items[decided].open == ()
    assert skipped not in items  # one annotator counts there, and nobody flagged it


def test_the_docs_state_the_same_rule() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "eval-sets.md").read_text(encoding="utf-8")
    for line in MERGE_RULE.splitlines()[1:]:
        assert line in docs, f"docs/eval-sets.md lacks (or words differently) the merge rule's line: {line}"
