"""The annotator's workspace rules: escaped highlighting, previews, the record list with filters and
previous / next, flagging with a comment, skipped labels in agreement, and the guidelines file."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ragdeck.console import annotation
from ragdeck.console.annotation.agreement import question_agreement
from ragdeck.console.annotation.candidates import highlight
from ragdeck.console.annotation.gold import labels_by_question
from ragdeck.console.annotation.guidelines import (
    DEFAULT_GUIDELINES,
    guidelines_file,
    read_guidelines,
    save_guidelines,
)
from ragdeck.console.annotation.review import preview
from ragdeck.console.annotation.worklist import keep, record_list, step
from ragdeck.errors import InputError
from ragdeck.services.annotation_store import SqliteAnnotationStore


class _Text(HTMLParser):
    """The text a browser shows for an HTML fragment (entities decoded, tags dropped), and the marks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text, self.marks, self.tags, self._in_mark = "", [], [], False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "mark":
            self._in_mark = True
            self.marks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._in_mark:
            self.marks[-1] += data


def _shown(fragment: str) -> _Text:
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return parser


ADVERSARIAL = [
    "```python\nprint('tei metrics')\n```\nmetrics after the fence",
    "Use `curl /metrics` and ``double `tick` metrics``",
    ":orange-background[x] and :red[metrics] and :material/home:",
    "<script>alert('metrics')</script><b>bold metrics</b> &amp; &lt;not a tag&gt;",
    "$E = mc^2$ and $$\\sum metrics$$ cost $5 and $6",
    "**metrics** __bold__ *it* # heading\n> quote\n- item\n\n\n  indented   spaces\t tab",
    "Ünïcödé metrics — “quotes” 日本語 metrics emoji 🎉 zero\u200bwidth \u00a0nbsp",
    "\nleading newline, metrics and trailing\n",
    "a < b > c & d \" ' metrics' metrics\"",
]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_highlight_shows_exactly_the_text_and_marks_the_terms(text: str) -> None:
    fragment = highlight(text, ["metrics", "tei"])
    shown = _shown(fragment)
    assert shown.text == text  # what the page shows is the chunk, character for character
    assert set(shown.tags) <= {"div", "mark"}  # no tag from the chunk survives as a tag
    expected = re.findall(r"(?<![\w])(metrics|tei)(?![\w])", text, re.IGNORECASE)
    assert shown.marks == expected and expected  # every whole-word term marked, nothing else
    assert ":orange-background[" not in fragment.replace(":orange-background[x]", "")


def test_highlight_without_terms_or_with_empty_terms_marks_nothing() -> None:
    for terms in ([], [""]):
        shown = _shown(highlight("<b>x</b> metrics", terms))
        assert (shown.text, shown.marks) == ("<b>x</b> metrics", [])
    assert _shown(highlight("TEI exports metrics; teis stay.", ["tei"])).marks == ["TEI"]


def test_preview_is_the_first_lines_and_a_prefix() -> None:
    short = "one\ntwo\nthree"
    assert preview(short) == short
    assert preview("a\nb\nc\nd\ne") == "a\nb\nc"
    long = "word " * 200
    head = preview(long)
    assert long.startswith(head) and len(head) <= 300 and len(head) > 200


@pytest.fixture
def store(tmp_path: Path) -> SqliteAnnotationStore:
    return SqliteAnnotationStore(tmp_path / "state.sqlite3")


def test_record_list_statuses_filters_and_previous_next(store: SqliteAnnotationStore) -> None:
    q1, q2, q3, q4, q5 = annotation.add_questions(
        store, [f"What is setting number {i}?" for i in range(1, 6)], source="typed", actor="lead"
    )
    annotation.assign(store, [q4], ["ann"])
    annotation.assign(store, [q5], ["bob"])
    annotation.set_label(store, q1, "ann", "c1", 2)
    annotation.finish(store, q1, "ann", "done", "An answer.")
    annotation.finish(store, q2, "ann", "skipped")
    annotation.finish(store, q3, "ann", "flagged", comment="  two questions\nin one ")
    rows = record_list(store, "ann")
    assert [(r.question_id, r.status, r.whose) for r in rows] == [
        (q4, "open", "mine"),  # assigned to ann first
        (q1, "done", "unassigned"),
        (q2, "skipped", "unassigned"),
        (q3, "flagged", "unassigned"),
        (q5, "open", "others'"),  # assigned to others last
    ]
    assert rows[1].labels == 1 and rows[3].comment == "two questions in one"
    assert [r.question_id for r in keep(rows, "Open")] == [q4, q5]
    assert [r.question_id for r in keep(rows, "Skipped")] == [q2]
    assert [r.question_id for r in keep(rows, "Flagged")] == [q3]
    assert [r.question_id for r in keep(rows, "Done")] == [q1]
    assert [r.question_id for r in keep(rows, "Others'")] == [q5]
    assert len(keep(rows, "All")) == 5
    with pytest.raises(InputError):
        keep(rows, "Mine")
    assert (step(rows, q2, -1), step(rows, q2, +1)) == (q1, q3)
    assert (step(rows, q4, -1), step(rows, q5, +1)) == (None, None)  # past either end
    assert (step(rows, None, -1), step(rows, None, +1)) == (q5, q4)  # nothing open: last / first
    assert step([], q1, +1) is None
    # Others see their own statuses only.
    assert {r.status for r in record_list(store, "bob")} == {"open"}


def test_flag_needs_a_comment_and_finishing_again_resolves_it(store: SqliteAnnotationStore) -> None:
    [qid] = annotation.add_questions(store, ["Which port does TEI use?"], source="typed", actor="lead")
    with pytest.raises(InputError, match="say why"):
        annotation.finish(store, qid, "ann", "flagged", comment="   ")
    assert store.answers(qid, "ann") == []  # nothing saved
    with pytest.raises(InputError):
        annotation.finish(store, qid, "ann", "open")
    annotation.finish(store, qid, "ann", "flagged", "port 80?", comment="no chunk says it")
    [flagged] = store.answers(qid, "ann")
    assert (flagged.status, flagged.note, flagged.reference_answer) == (
        "flagged",
        "no chunk says it",
        "port 80?",
    )
    assert annotation.queue(store, "ann") == []  # a flagged question leaves the queue...
    annotation.finish(store, qid, "ann", "done", "Port 80 in the container.")  # ...and can be finished
    [done] = store.answers(qid, "ann")
    assert (done.status, done.note, done.reference_answer) == ("done", "", "Port 80 in the container.")
    annotation.undo(store, "ann")  # undo brings the flag and its comment back
    [back] = store.answers(qid, "ann")
    assert (back.status, back.note) == ("flagged", "no chunk says it")


def test_labels_given_before_a_skip_stay_in_agreement_and_gold(store: SqliteAnnotationStore) -> None:
    labelled, bare = annotation.add_questions(store, ["Question one?", "Question two?"], "typed", "lead")
    for person, grade in (("ann", 2), ("bob", 0)):
        annotation.set_label(store, labelled, person, "c1", grade)
    annotation.finish(store, labelled, "ann", "done")
    annotation.finish(store, labelled, "bob", "skipped")  # bob judged c1, then skipped the question
    annotation.finish(store, bare, "bob", "skipped")  # a skip with no labels judges nothing
    annotation.finish(store, bare, "ann", "done")
    counted = labels_by_question(store)
    assert counted[labelled] == {"ann": {"c1": 2}, "bob": {"c1": 0}}
    assert counted[bare] == {"ann": {}}
    agreement = question_agreement(counted[labelled])
    assert agreement.annotators == ("ann", "bob") and agreement.disagreements == ("c1",)
    [gold] = [g for g in annotation.export_gold(store, include_empty=True) if g.question_id == labelled]
    assert gold.annotators == ("ann", "bob") and gold.gold_chunk_ids == ()  # two annotators: both must agree


def test_guidelines_default_save_and_restore(tmp_path: Path) -> None:
    path = guidelines_file(tmp_path)
    assert path.name == "annotation_guidelines.md"
    assert read_guidelines(path) == DEFAULT_GUIDELINES
    assert all(
        w in DEFAULT_GUIDELINES for w in ("relevant", "partly relevant", "Gold chunks", "Skip", "Flag")
    )
    assert (
        save_guidelines(path, "# Ours\r\nGrade 2 only when it answers.")
        == "# Ours\nGrade 2 only when it answers."
    )
    assert read_guidelines(path) == "# Ours\nGrade 2 only when it answers."
    assert save_guidelines(path, "  \n") == DEFAULT_GUIDELINES and not path.exists()
    with pytest.raises(InputError):
        save_guidelines(path, "x" * 60_000)
    assert not path.exists()
