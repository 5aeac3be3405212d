"""Generating one answer: prompt the chat model and read its citations, or answer extractively without one."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ragdeck.console.answering.answers import (
    DEFAULT_SYSTEM_PROMPT,
    NO_ANSWER,
    Answer,
    CitedContext,
    build_messages,
    is_no_answer,
    parse_citations,
)
from ragdeck.console.answering.attribution import infer_citations
from ragdeck.console.answering.extractive import extractive_answer
from ragdeck.console.interfaces import ChatModel
from ragdeck.console.retrieval.pipeline import RetrievedChunk
from ragdeck.errors import InputError


def answer_question(
    question: str,
    hits: Sequence[RetrievedChunk],
    chat_model: ChatModel | None,
    *,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_tokens: int = 384,
    temperature: float = 0.0,
    max_context_chars: int = 6000,
    few_shot: bool = True,
) -> Answer:
    """Answer ``question`` from ``hits``: with ``chat_model`` by prompting it, else extractively.

    No hits: a no-answer ``Answer`` (text ``NO_ANSWER``) without calling the model. Errors from the chat
    model (ServiceUnavailable) propagate; the caller decides whether to fall back to the extractive answerer.
    """
    if not question.strip():
        raise InputError("the question is empty: type a question to answer")
    if chat_model is None:
        return extractive_answer(question, hits)
    if not hits:
        return Answer(question, NO_ANSWER, "llm", chat_model.model_name, True)
    prompt = build_messages(
        question, hits, system_prompt=system_prompt, max_context_chars=max_context_chars, few_shot=few_shot
    )
    contexts = [CitedContext.of(n, hit) for n, hit in enumerate(prompt.included, start=1)]
    started = time.perf_counter()
    result = chat_model.chat(prompt, max_tokens=max_tokens, temperature=temperature)
    elapsed_ms = (time.perf_counter() - started) * 1000
    text = result.text.strip()
    no_answer = is_no_answer(text)
    cited = parse_citations(text, len(contexts))
    source = "model" if cited else "none"
    if not cited and not no_answer:
        cited = infer_citations(text, [c.text for c in contexts])
        source = "inferred" if cited else "none"
    return Answer(
        question=question,
        text=text,
        mode="llm",
        model=result.model or chat_model.model_name,
        no_answer=no_answer,
        citations=[contexts[n - 1] for n in cited],
        contexts=contexts,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        context_tokens=prompt.context_tokens,
        generation_ms=elapsed_ms,
        finish_reason=result.finish_reason,
        citation_source=source,
    )
