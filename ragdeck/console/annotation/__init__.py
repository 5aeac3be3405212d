"""Annotation: what annotators do to build gold.

Owns the annotation rules and their records: adding questions deduped by their normalised text, accepting
or discarding LLM drafts (``questions``); labels with source spans, reference answers and statuses,
finishing a question as done, skipped or flagged (with a comment), adjudication and undo (``labelling``);
each annotator's queue and progress, assignments and the overlap sample (``queue``); an annotator's record
list with statuses, filters and previous / next (``worklist``); the project's labelling guidelines
(``guidelines``); who counts on a question, the majority rule and the gold export (``gold``); the input
checks (``checks``) and the records (``records``). Also candidate chunks, keyword filtering, previews and
escaped highlighting for a question (``candidates``), LLM-drafted questions (``drafts``), inter-annotator
agreement (``agreement``) and what Review and Publish show of a question: who said what, the merged grades,
each answer, the chunks' text (``review``). Fronts: the Annotate, Review and Publish pages.

Storage is a port: the functions take an ``AnnotationRepository`` (``ports``) as their first argument and
never build one. Its adapter, ``ragdeck.services.annotation_store.SqliteAnnotationStore``, is built by
``ragdeck.console.wiring.build_annotation_store`` and reaches the pages through
``ragdeck.ui.get_annotation_store``. The adapter only reads and writes, one transaction a call; every
decision (what input is valid, in which order questions are served, how overlap is sampled, what is gold)
is made here.

Where the records live: the records the store keeps and returns (``Question``, ``Label``, ``Answer``,
``Adjudication``, ``Change``, ``ChunkSpan``, plus ``NewQuestion`` and ``AnnotationSnapshot`` for writing and
reading) are plain dataclasses in ``ragdeck.services.types``, because an adapter must never import the
domain; ``records`` re-exports them, so the domain and the fronts import every record from here. The
records only the rules make (``Progress``, ``OverlapPlan``, ``GoldQuestion``) are defined in ``records``.
The other way, the adapter returning rows for the domain to turn into records, would convert every read
twice for no gain: these records carry no behaviour.
"""

from ragdeck.console.annotation.gold import export_gold, labels_by_question, majority_grade
from ragdeck.console.annotation.labelling import (
    adjudicate,
    clear_label,
    finish,
    set_answer,
    set_label,
    undo,
)
from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.annotation.questions import accept_draft, add_questions, discard_draft
from ragdeck.console.annotation.queue import assign, overlap_sample, plan_overlap, progress, queue
from ragdeck.console.annotation.records import (
    RELEVANCE,
    SOURCES,
    STATUSES,
    Adjudication,
    Answer,
    Change,
    ChunkSpan,
    GoldQuestion,
    Label,
    OverlapPlan,
    Progress,
    Question,
)

__all__ = [
    "RELEVANCE",
    "SOURCES",
    "STATUSES",
    "Adjudication",
    "AnnotationRepository",
    "Answer",
    "Change",
    "ChunkSpan",
    "GoldQuestion",
    "Label",
    "OverlapPlan",
    "Progress",
    "Question",
    "accept_draft",
    "add_questions",
    "adjudicate",
    "assign",
    "clear_label",
    "discard_draft",
    "export_gold",
    "finish",
    "labels_by_question",
    "majority_grade",
    "overlap_sample",
    "plan_overlap",
    "progress",
    "queue",
    "set_answer",
    "set_label",
    "undo",
]
