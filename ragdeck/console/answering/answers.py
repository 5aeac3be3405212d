"""Grounded answers: the prompt, citation markers, refusal detection and the ``Answer`` record.

The model sees the retrieved chunks as numbered contexts ``[1]..[n]`` (rank order) and is told to answer
only from them, cite every claim with ``[n]`` and reply ``NO_ANSWER`` verbatim when they do not hold the
answer; two worked example turns (``FEW_SHOT``) come first, which the small packaged model needs.
``generate.answer_question`` sends the prompt (or, with no chat model, asks the extractive answerer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ragdeck.console.retrieval.pipeline import RetrievedChunk
from ragdeck.errors import InputError
from ragdeck.services.types import ChatMessage

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "FEW_SHOT",
    "NO_ANSWER",
    "Answer",
    "CitedContext",
    "Prompt",
    "approx_tokens",
    "build_messages",
    "context_body",
    "few_shot_messages",
    "is_no_answer",
    "parse_citations",
    "user_message",
]

NO_ANSWER = "The context is insufficient to answer this question."

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using ONLY the numbered contexts in the user's message.\n"
    "- Cite the context that supports each claim with its number in square brackets, e.g. [1] or [2][3].\n"
    "- Do not use outside knowledge; do not cite numbers that are not listed.\n"
    "- If the contexts do not contain the answer, reply with exactly this sentence and nothing else:\n"
    f'  "{NO_ANSWER}"\n'
    "- Be concise: a few sentences at most."
)

TRUNCATION_MARK = " …"

_EXAMPLE_CONTEXTS = (
    "[1] Server > Flags\nThe HTTP API listens on port 9090 unless --web.listen-address is set.\n\n"
    "[2] Server > Logging\nLogs are written to stderr in logfmt."
)
# Two worked turns shown before the real question: one cited answer, one refusal. Small local models
# (the packaged Qwen2.5 1.5B) otherwise either refuse answerable questions or answer without citing.
FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "Which port does the HTTP API use?",
        "The HTTP API listens on port 9090 unless --web.listen-address is set [1].",
    ),
    ("Who founded the project?", NO_ANSWER),
)


def approx_tokens(text: str) -> int:
    """A cheap token estimate: ``ceil(len(text) / 4)`` (~4 characters a token in English; 0 for "")."""
    return math.ceil(len(text) / 4)


def context_body(hit: RetrievedChunk) -> str:
    """The chunk's text without its title/section prefix: ``body``, else ``text`` minus the prefix."""
    if hit.body.strip():
        return hit.body.strip()
    text = hit.text.strip()
    prefix = " > ".join(p for p in (hit.title, hit.section) if p)
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :].lstrip()
    return text


def _context_block(n: int, hit: RetrievedChunk) -> str:
    label = " > ".join(p for p in (hit.title, hit.section) if p)
    header = f"[{n}] {label}" if label else f"[{n}]"
    return f"{header}\n{context_body(hit)}"


class Prompt(list[ChatMessage]):
    """The chat messages (a list, ready for ``ChatModel.chat``) plus what went into them.

    ``included``: the hits in the prompt, context ``[n]`` being ``included[n-1]``; ``dropped``: hits left out
    to fit the budget; ``truncated``: the first context was cut; ``context_tokens``: ``approx_tokens`` of the
    context blocks (the API's ``rag_prompt_ctx_tokens``).
    """

    def __init__(
        self,
        messages: Sequence[ChatMessage],
        included: Sequence[RetrievedChunk],
        *,
        dropped: int,
        truncated: bool,
        context_tokens: int,
    ) -> None:
        super().__init__(messages)
        self.included = list(included)
        self.dropped = dropped
        self.truncated = truncated
        self.context_tokens = context_tokens


def user_message(contexts: str, question: str) -> str:
    """The user turn: the numbered context blocks (or "(none)"), the question and the reminder to cite."""
    head = f"Contexts:\n\n{contexts}\n\n" if contexts else "Contexts: (none)\n\n"
    return f"{head}Question: {question.strip()}\n\nAnswer from the contexts only, citing them as [n]."


def few_shot_messages() -> list[ChatMessage]:
    """The ``FEW_SHOT`` turns as user/assistant messages over the same two example contexts."""
    turns: list[ChatMessage] = []
    for question, answer in FEW_SHOT:
        turns += [
            ChatMessage("user", user_message(_EXAMPLE_CONTEXTS, question)),
            ChatMessage("assistant", answer),
        ]
    return turns


def build_messages(
    question: str,
    hits: Sequence[RetrievedChunk],
    *,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_context_chars: int = 6000,
    few_shot: bool = True,
) -> Prompt:
    """The system message, the ``FEW_SHOT`` example turns (unless ``few_shot=False``, about 180 tokens
    saved) and a user message holding contexts ``[1]..[n]`` (rank order) and the question.

    Budget: the context blocks (header line + chunk text, blank lines between) take at most
    ``max_context_chars``. Hits are added best rank first until the next one would not fit; it and every
    lower-ranked hit are dropped. The only block ever cut is the first one, when it alone exceeds the budget
    (cut at a space, marked with "…"). Raises InputError for an empty question or a budget below 1.
    """
    if not question.strip():
        raise InputError("the question is empty: type a question to answer")
    if max_context_chars < 1:
        raise InputError(f"max_context_chars must be at least 1, got {max_context_chars}")
    ranked = sorted(hits, key=lambda h: h.rank)
    blocks: list[str] = []
    used = 0
    truncated = False
    for hit in ranked:
        block = _context_block(len(blocks) + 1, hit)
        extra = len(block) + (2 if blocks else 0)
        if used + extra <= max_context_chars:
            blocks.append(block)
            used += extra
            continue
        if not blocks:  # the best context alone is over budget: keep its beginning
            keep = max(0, max_context_chars - len(TRUNCATION_MARK))
            cut = block.rfind(" ", 0, keep + 1)
            cut_block = block[: cut if cut > keep // 2 else keep].rstrip() + TRUNCATION_MARK
            blocks.append(cut_block[:max_context_chars])
            truncated = True
        break
    contexts = "\n\n".join(blocks)
    messages = [ChatMessage("system", system_prompt)]
    messages += few_shot_messages() if few_shot else []
    messages.append(ChatMessage("user", user_message(contexts, question)))
    return Prompt(
        messages,
        ranked[: len(blocks)],
        dropped=len(ranked) - len(blocks),
        truncated=truncated,
        context_tokens=approx_tokens(contexts),
    )


# ------------------------------------------------------------------ citations

_NUMBER_OR_RANGE = r"\d{1,6}(?:\s*[-–]\s*\d{1,6})?"
_CITATION = re.compile(rf"\[\s*({_NUMBER_OR_RANGE}(?:\s*[,;]\s*{_NUMBER_OR_RANGE})*)\s*\]")


def parse_citations(text: str, n_contexts: int) -> list[int]:
    """Context numbers cited in ``text`` (1-based), in order of first appearance, without duplicates.

    Accepts ``[1]``, ``[1, 2]``, ``[1][2]`` and ranges ``[1-3]`` (either order); numbers outside
    ``1..n_contexts`` are ignored. Anything else in brackets (``[note]``, ``[1.5]``) is not a citation.
    """
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(text):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
            lo, hi = min(bounds), max(bounds)
            for n in range(max(lo, 1), min(hi, n_contexts) + 1):
                seen.setdefault(n, None)
    return list(seen)


# ------------------------------------------------------------------ refusals

_SOURCE = r"(?:contexts?|passages?|documents?|sources?|excerpts?|snippets?|information|text)"
_QUALIFIER = r"(?:(?:provided|given|above|supplied|retrieved|available|listed|numbered)\s+)?"
_REFUSALS = [
    # "the (provided) context does not contain / mention / ... the answer"
    rf"\b(?:the|these|this|provided|given|above)\s+{_QUALIFIER}{_SOURCE}\b[^.]{{0,40}}?\b(?:does|do|did)"
    r"\s*(?:not|n't)\s+(?:contain|include|provide|mention|say|specify|cover|address|have|give|state|"
    r"describe|explain|discuss)",
    # "the context is insufficient / not sufficient / not enough"
    rf"\b{_SOURCE}\b[^.]{{0,40}}?\b(?:is|are|was|were|seems?)\s+(?:\w+\s+)?(?:insufficient|not\s+sufficient|"
    r"not\s+enough|inadequate|lacking)",
    r"\binsufficient\s+(?:context|information|details?|evidence)\b",
    r"\b(?:no|not\s+enough|not\s+sufficient)\s+(?:relevant\s+)?(?:information|context|details?|mention|evidence)"
    r"\b[^.]{0,40}?\b(?:provided|available|given|contexts?|passages?|documents?|to\s+answer)",
    rf"\b(?:none|nothing)\s+(?:of|in)\s+the\s+{_QUALIFIER}{_SOURCE}",
    # "I cannot answer / determine ... (from the context)"
    r"\b(?:i|we)\s+(?:cannot|can\s*not|can't|could\s+not|couldn't|am\s+unable\s+to|are\s+unable\s+to|"
    r"am\s+not\s+able\s+to|do\s+not|don't)\s+(?:answer|determine|find|tell|say|know|provide\s+an\s+answer)",
    r"\b(?:unable|not\s+possible|impossible)\s+to\s+(?:answer|determine|tell)\b",
    r"\bthe\s+answer\s+(?:is\s+not|isn't|cannot\s+be)\s+(?:found|given|determined|present|contained|in)\b",
]
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in _REFUSALS))
_HEDGE = re.compile(r"^(?:i'?m\s+sorry|sorry|i\s+apologi[sz]e|apologies|unfortunately|answer:?)\W*$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_CITED = re.compile(r"\[\s*\d")


def _normalized(text: str) -> str:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[*_`>#]+", " ", text)  # Markdown emphasis, quotes and headings
    return re.sub(r"\s+", " ", text).strip().lower()


def is_no_answer(text: str) -> bool:
    """True when ``text`` declines to answer for want of context.

    It is a refusal when it contains ``NO_ANSWER`` and cites nothing, or when its first real sentence
    (after hedges such as "Sorry." or "Answer:") is a refusal: "the provided context does not contain…",
    "I cannot answer … from the context", "insufficient context", "none of the passages mention…". A
    sentence with a citation marker ``[n]`` is a claim, never a refusal; a refusal later in an answer
    (a partial answer) does not count. Empty text counts as a refusal.
    """
    norm = _normalized(text)
    if not norm:
        return True
    if _normalized(NO_ANSWER).rstrip(".") in norm and not _CITED.search(norm):
        return True
    sentences = [s for s in _SENTENCE_SPLIT.split(norm) if s.strip()]
    while sentences and _HEDGE.match(sentences[0]):
        sentences.pop(0)
    if not sentences:
        return False
    first = sentences[0]
    return not _CITED.search(first) and _REFUSAL.search(first) is not None


# ------------------------------------------------------------------ the answer


@dataclass
class CitedContext:
    """A numbered context of the prompt: ``n`` is its ``[n]`` marker."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    score: float
    text: str

    @classmethod
    def of(cls, n: int, hit: RetrievedChunk) -> CitedContext:
        """The context ``[n]`` for ``hit`` (its text without the title/section prefix)."""
        return cls(n, hit.chunk_id, hit.doc_id, hit.title, float(hit.score), context_body(hit))


@dataclass
class Answer:
    """An answer with its evidence: ``citations`` are the contexts it cites (extractive: the ones it used),
    ``contexts`` every context it was given. Token counts are the server's (0 for extractive answers);
    ``context_tokens`` is ``approx_tokens`` of the context blocks.
    """

    question: str
    text: str
    mode: str  # "llm" | "extractive"
    model: str
    no_answer: bool
    citations: list[CitedContext] = field(default_factory=list)
    contexts: list[CitedContext] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    context_tokens: int = 0
    generation_ms: float = 0.0
    finish_reason: str | None = None
    citation_source: str = "model"  # "model": its own [n] markers; "inferred": by word overlap; "none"
    fallback_reason: str | None = None  # set when this extractive answer stands in for a failed LLM

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (citations and contexts as lists of dicts)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        """The inverse of ``to_json`` (e.g. for a cached answer); KeyError / TypeError / ValueError when
        ``data`` is not one (a missing or unknown field, a wrong type)."""
        if not isinstance(data, dict):
            raise TypeError(f"an answer must be a JSON object, got {type(data).__name__}")
        values = dict(data)
        for name in ("citations", "contexts"):
            items = values.get(name, [])
            if not isinstance(items, list):
                raise TypeError(f"answer field {name!r} must be a list")
            values[name] = [CitedContext(**item) for item in items]
        answer = cls(**values)
        if not isinstance(answer.text, str) or not isinstance(answer.no_answer, bool):
            raise ValueError("answer fields 'text' and 'no_answer' must be a string and a boolean")
        return answer
