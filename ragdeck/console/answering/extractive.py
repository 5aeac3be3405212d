"""The extractive answerer: when no LLM is configured, answer with the best sentences of the contexts.

1. Each context (rank order, numbered ``[1]..[n]``) is cut into sentences, Markdown-aware: fenced code,
   headings, HTML comments and tags, table rules and front-matter fences are dropped; every bullet or table
   row is its own unit; links keep their text. Sentences repeated across overlapping chunks count once.
2. Terms: lowercase alphanumeric words, English stop words and question words removed, a light suffix
   stemmer (``-ies -> -y``, ``-s``, ``-ing``, ``-ed``, ``-ation``, ``-ly``, a doubled final consonant, final
   ``-e``).
3. Each sentence is scored against the question with BM25 (k1=1.2, b=0.75), the sentences being the
   documents: ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``. Its *coverage* is the share of the question's
   total idf that it matches.
4. A sentence qualifies with coverage >= ``MIN_COVERAGE``; the best qualifying ones scoring at least
   ``RELATIVE_FLOOR`` x the top score are kept, ``max_sentences`` at most and ``per_context`` at most from one
   context, shown in context order then text order, each followed by its ``[n]`` marker. None qualifies:
   ``NO_ANSWER``.

Deterministic (ties go to the better-ranked context, then the earlier sentence); about 2 ms for ten
1,500-character contexts.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ragdeck.console.answering.answers import NO_ANSWER, Answer, CitedContext
from ragdeck.console.retrieval.pipeline import RetrievedChunk

__all__ = ["EXTRACTIVE_MODEL", "MIN_COVERAGE", "extractive_answer", "split_sentences", "terms"]

EXTRACTIVE_MODEL = "extractive"
MIN_COVERAGE = 0.45  # share of the question's idf a sentence must match to be an answer
RELATIVE_FLOOR = 0.5  # a further sentence must score at least this share of the best one
K1, B = 1.2, 0.75
MIN_WORDS = 3
MAX_SENTENCE_CHARS = 500

# Tokens are [a-z0-9]+, so contractions appear split ("doesn't" -> "doesn", "t").
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are aren as at be because been before being below
between both but by can cannot could couldn did didn do does doesn doing don down during each few for
from further had hadn has hasn have haven having he her here hers herself him himself his how i if in
into is isn it its itself just let me more most mustn my myself no nor not of off on once only or other
ought our ours ourselves out over own same shan she should shouldn so some such than that the their
theirs them themselves then there these they this those through to too under until up very was wasn we
were weren what when where which while who whom why will with won would wouldn you your yours yourself
yourselves also may might must shall s t d ll m re ve e g eg ie etc via using use used tell explain
describe mean means
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|[\s:|-]*$")
_TAG_ONLY = re.compile(r"^\s*</?[A-Za-z][^>]*>\s*$")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)(.+?)(?<=\S)\1")
_SENTENCE_END = re.compile(r"[.!?][\"')\]*_`]*\s+(?=[\"'(\[`*_]*[A-Z0-9])")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|no|fig|incl|resp)|\b[A-Z])\.$", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_CODE_SPAN = re.compile(r"(`+[^`]*?`+)")


# ------------------------------------------------------------------ sentences


def _clean_prose(text: str) -> str:
    if "](" in text:
        text = _LINK.sub(r"\1", _IMAGE.sub("", text))
    if "<" in text:
        text = _TAG.sub("", text)
    if "*" in text or "__" in text:
        text = _EMPHASIS.sub(r"\2", text)
    return text


def _clean_inline(text: str) -> str:
    """Links to their text; images, HTML tags and emphasis marks removed (not inside `code` spans)."""
    if "`" in text:
        parts = _CODE_SPAN.split(text)  # odd items are code spans
        text = "".join(p if i % 2 else _clean_prose(p) for i, p in enumerate(parts))
    else:
        text = _clean_prose(text)
    return " ".join(text.split())


def _blocks(markdown: str) -> list[str]:
    """Paragraphs, bullets and table rows of ``markdown`` as one-line strings (code and headings dropped)."""
    blocks: list[str] = []
    paragraph: list[str] = []
    fence: str | None = None
    in_quote = False

    def flush() -> None:
        if paragraph:
            blocks.append(" ".join(paragraph))
            paragraph.clear()

    for line in _HTML_COMMENT.sub("\n", markdown).splitlines():
        marker = _FENCE.match(line)
        if fence is not None:
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = None
            continue
        if marker:
            flush()
            fence = marker.group(1)
            continue
        stripped = line.strip()
        if not stripped or stripped == "---" or _HEADING.match(line) or _TAG_ONLY.match(line):
            flush()
            continue
        if stripped.startswith("|"):
            flush()
            if not _TABLE_RULE.match(stripped):
                cells = [c.strip() for c in stripped.strip("|").split("|")]
                blocks.append("; ".join(c for c in cells if c))
            continue
        is_quote = stripped.startswith(">")
        if is_quote != in_quote:
            flush()
            in_quote = is_quote
        if is_quote:
            stripped = stripped.lstrip("> ").strip()
        bullet = _BULLET.match(stripped)
        if bullet:
            flush()
            stripped = stripped[bullet.end() :].strip()
        paragraph.append(stripped)
    flush()
    return blocks


def _split_block(block: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(block):
        piece = block[start : match.start() + 1]
        if _ABBREVIATION.search(piece):
            continue
        sentences.append(block[start : match.end()].strip())
        start = match.end()
    sentences.append(block[start:].strip())
    return sentences


def split_sentences(markdown: str) -> list[str]:
    """The readable sentences of a Markdown text, in order (see the module docstring for what is dropped).

    Sentences of fewer than 3 words are left out; longer than 500 characters, they are cut at a space ("…").
    """
    out: list[str] = []
    for block in _blocks(markdown):
        for sentence in _split_block(_clean_inline(block)):
            if len(_WORD.findall(sentence.lower())) < MIN_WORDS:
                continue
            if len(sentence) > MAX_SENTENCE_CHARS:
                cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
                sentence = sentence[: cut if cut > 0 else MAX_SENTENCE_CHARS].rstrip(",;:") + " …"
            out.append(sentence)
    return out


# ------------------------------------------------------------------ terms


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A light suffix stemmer: enough to match store / stores / stored / storing, not a linguist."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ation", "ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            if suffix in ("ing", "ed") and word[-1] == word[-2] and word[-1] not in "aeiouylsz":
                word = word[:-1]  # embedded -> embed, running -> run
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text`` (lowercased, stop words removed), in order, repeats kept."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


# ------------------------------------------------------------------ scoring


@dataclass
class _Sentence:
    n: int  # context number
    position: int
    text: str
    tf: Counter[str]
    length: int
    score: float = 0.0
    coverage: float = 0.0


def _with_marker(sentence: str, n: int) -> str:
    """``sentence`` with `` [n]`` before its final period; one introducing dropped code ends "[n]." instead
    of ":"."""
    if sentence.endswith((".", "!", "?")):
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    if sentence.endswith(":"):
        return f"{sentence[:-1].rstrip()} [{n}]."
    return f"{sentence} [{n}]"


def _score(question_terms: set[str], sentences: list[_Sentence]) -> None:
    count = len(sentences)
    df: Counter[str] = Counter()
    for s in sentences:
        df.update(t for t in question_terms if t in s.tf)
    idf = {t: math.log(1 + (count - df[t] + 0.5) / (df[t] + 0.5)) for t in question_terms}
    total_idf = sum(idf.values())
    avg_len = sum(s.length for s in sentences) / count
    for s in sentences:
        norm = K1 * (1 - B + B * s.length / avg_len)
        matched = [t for t in question_terms if t in s.tf]
        s.score = sum(idf[t] * s.tf[t] * (K1 + 1) / (s.tf[t] + norm) for t in matched)
        s.coverage = sum(idf[t] for t in matched) / total_idf


def _pick(sentences: list[_Sentence], max_sentences: int, per_context: int) -> list[_Sentence]:
    qualified = sorted(
        (s for s in sentences if s.coverage >= MIN_COVERAGE and s.score > 0),
        key=lambda s: (-s.score, s.n, s.position),
    )
    if not qualified:
        return []
    floor = qualified[0].score * RELATIVE_FLOOR
    picked: list[_Sentence] = []
    per: Counter[int] = Counter()
    for s in qualified:
        if len(picked) == max_sentences or s.score < floor:
            break
        if per[s.n] < per_context:
            picked.append(s)
            per[s.n] += 1
    return sorted(picked, key=lambda s: (s.n, s.position))


def extractive_answer(
    question: str, hits: Sequence[RetrievedChunk], *, max_sentences: int = 3, per_context: int = 2
) -> Answer:
    """Answer ``question`` with up to ``max_sentences`` sentences quoted from ``hits``, each cited ``[n]``.

    Contexts are numbered in rank order. No hits, a question of stop words only, or no sentence covering
    enough of the question: ``NO_ANSWER`` with ``no_answer=True`` and no citations.
    """
    started = time.perf_counter()
    ranked = sorted(hits, key=lambda h: h.rank)
    contexts = [CitedContext.of(n, hit) for n, hit in enumerate(ranked, start=1)]
    sentences: list[_Sentence] = []
    seen: set[str] = set()
    for ctx in contexts:
        for position, text in enumerate(split_sentences(ctx.text)):
            key = " ".join(text.lower().split())
            if key in seen:  # overlapping chunks repeat sentences: keep the better-ranked copy
                continue
            seen.add(key)
            words = terms(text)
            sentences.append(_Sentence(ctx.n, position, text, Counter(words), max(1, len(words))))
    question_terms = set(terms(question))
    picked: list[_Sentence] = []
    if sentences and question_terms:
        _score(question_terms, sentences)
        picked = _pick(sentences, max(1, max_sentences), max(1, per_context))
    used = sorted({s.n for s in picked})
    return Answer(
        question=question,
        text=" ".join(_with_marker(s.text, s.n) for s in picked) if picked else NO_ANSWER,
        mode="extractive",
        model=EXTRACTIVE_MODEL,
        no_answer=not picked,
        citations=[contexts[n - 1] for n in used],
        contexts=contexts,
        generation_ms=(time.perf_counter() - started) * 1000,
        citation_source="model" if picked else "none",
    )
