"""Questions to label: adding them (deduped by their normalised text), and accepting or discarding the
drafts an LLM generated."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from ragdeck.console.annotation.checks import check_name
from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.annotation.records import SOURCES, NewQuestion, Question
from ragdeck.errors import InputError
from ragdeck.services.text import normalize_question

__all__ = ["accept_draft", "add_questions", "default_question_id", "discard_draft"]


def default_question_id(norm: str) -> str:
    """The id of a question given none: ``q-`` + 12 hex digits of the SHA-256 of its normalised text."""
    return "q-" + hashlib.sha256(norm.encode()).hexdigest()[:12]


def add_questions(
    repo: AnnotationRepository, items: Iterable[str | Mapping[str, Any]], source: str, actor: str
) -> list[str]:
    """Add questions; returns one id per item, in order. Deduped by ``normalize_question``.

    An item is the question text or a mapping with ``question`` and optional ``id``, ``tags`` and
    ``draft``. A question already in the store (or earlier in ``items``) returns the existing id and is
    not added again. Ids default to ``default_question_id``. Questions from ``source="generated"`` are
    drafts until a person accepts them (``accept_draft``).
    """
    if source not in SOURCES:
        raise InputError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    actor = check_name(actor, "actor")
    if isinstance(items, str | Mapping):
        raise InputError("add_questions takes a list of questions, not a single one: wrap it in a list")
    parsed = []
    for i, item in enumerate(items):
        data = {"question": item} if isinstance(item, str) else dict(item)
        text = data.get("question")
        if not isinstance(text, str) or not normalize_question(text):
            raise InputError(f"item {i}: question must be non-empty text, got {text!r}")
        tags = data.get("tags") or ()
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise InputError(f"item {i}: tags must be a list of strings, got {tags!r}")
        given = data.get("id")
        if given is not None:
            given = check_name(given, f"item {i}: id")
        norm = normalize_question(text)
        parsed.append(
            NewQuestion(
                id=given or default_question_id(norm),
                question=text.strip(),
                norm=norm,
                source=source,
                draft=bool(data.get("draft", source == "generated")),
                tags=tuple(tags),
            )
        )
    return repo.insert_questions(parsed, actor)


def accept_draft(
    repo: AnnotationRepository, question_id: str, actor: str, question: str | None = None
) -> Question:
    """A person accepts a generated draft (optionally edited); it then enters queues and exports."""
    actor = check_name(actor, "actor")
    repo.question(question_id)  # InputError when unknown, before the text is judged
    if question is None:
        return repo.accept_question(question_id, actor)
    norm = normalize_question(question)
    if not norm:
        raise InputError("the accepted question text is empty: type the question or discard the draft")
    return repo.accept_question(question_id, actor, text=question.strip(), norm=norm)


def discard_draft(repo: AnnotationRepository, question_id: str, actor: str) -> None:
    """Delete a draft question and anything recorded on it (undo restores all of it)."""
    actor = check_name(actor, "actor")
    if not repo.delete_draft(question_id, actor):
        raise InputError(f"question {question_id!r} is not a draft: only drafts can be discarded")
