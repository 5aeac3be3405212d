"""Markdown-aware chunking with stable, readable chunk ids.

A document's text is split into sections at ATX headings (``#`` .. ``######``; lines inside fenced code
blocks are not headings). A section shorter than ``min_chars`` is merged with the sections after it up to
and including the next section of at least ``min_chars`` (a short tail of the document joins the group
before it). Each group is packed into chunks of at most ``max_chars``, cut at the latest paragraph break,
else line break, else sentence end, else space, so every chunk but a document's last one has at least
``min_chars``. Consecutive chunks of a group overlap by about ``overlap`` of the later chunk, the overlap
starting at a clean boundary.

A chunk id is ``"{doc_id}#{section-slug}:{ordinal}"``: the slug of the heading of the section where the
chunk's new (non-overlapping) text starts, ``top`` for text before the first heading, ``-2``, ``-3`` ... for
repeated headings in document order; the ordinal counts that section's chunks from 0. Ids depend only on the
text, so they are the same on every run. A group's cuts depend on nothing outside the group, so editing
one section leaves the chunks of every other group unchanged: same ids, same spans relative to their
section (an edit that changes whether a section is shorter than ``min_chars`` changes the merging).
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from ragdeck.console.ingest.documents import Chunk, Document
from ragdeck.errors import InputError

__all__ = ["ChunkingConfig", "Heading", "chunk_document", "chunk_documents", "markdown_headings", "slugify"]

# Share of a chunk's length by which the overlap may miss its target when a clean boundary must be found.
OVERLAP_TOLERANCE = 0.05

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_ANCHOR = re.compile(r"</?a\b[^>]*>", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w]+")

# Boundary classes, best first when several fall in the allowed window.
_PARAGRAPH, _LINE, _SENTENCE, _SPACE = 4, 3, 2, 1
_SENTENCE_END = ".!?"
_CLOSERS = "\"')]*_`"


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are cut: chunk length bounds in characters and the overlap share (0 <= overlap < 0.5).

    ``prefix_title`` / ``prefix_section`` put the document title / section heading in front of the embedded
    text. Raises InputError unless 1 <= min_chars < max_chars and 0 <= overlap < 0.5.
    """

    min_chars: int = 600
    max_chars: int = 1500
    overlap: float = 0.15
    prefix_title: bool = True
    prefix_section: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.min_chars, int) and isinstance(self.max_chars, int)):
            raise InputError(
                f"chunking: min_chars and max_chars must be whole numbers, got {self.min_chars!r} and "
                f"{self.max_chars!r}"
            )
        if self.min_chars < 1 or self.min_chars >= self.max_chars:
            raise InputError(
                f"chunking: min_chars ({self.min_chars}) must be at least 1 and below max_chars "
                f"({self.max_chars}); the runbook uses 600 and 1500"
            )
        if not 0 <= self.overlap < 0.5:
            raise InputError(
                f"chunking: overlap ({self.overlap}) must be a share from 0 up to (not including) 0.5; "
                "the runbook uses 0.10 to 0.20"
            )


@dataclass(frozen=True)
class Heading:
    """An ATX heading: level 1-6, cleaned text, and the offsets of its line (without the newline)."""

    level: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Section:
    name: str  # heading path, readable ("Install > From source"); "" before the first heading
    slug: str  # unique within the document
    start: int  # span without surrounding whitespace
    end: int


def clean_heading(raw: str) -> str:
    """Heading text made readable: links reduced to their text, code ticks, bold marks and anchors removed."""
    text = _ANCHOR.sub("", _LINK.sub(r"\1", raw)).replace("`", "").replace("**", "")
    return _WHITESPACE.sub(" ", text).strip()


def markdown_headings(text: str) -> list[Heading]:
    """Every ATX heading of ``text`` in order, skipping lines inside fenced code blocks (``` or ~~~)."""
    headings: list[Heading] = []
    fence: tuple[str, int] | None = None
    pos = 0
    for line in text.split("\n"):
        start, pos = pos, pos + len(line) + 1
        line = line.rstrip("\r")
        fence_match = _FENCE.match(line)
        if fence is not None:
            if (
                fence_match
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= fence[1]
                and not fence_match.group(2).strip()
            ):
                fence = None
            continue
        if fence_match and not (fence_match.group(1)[0] == "`" and "`" in fence_match.group(2)):
            fence = (fence_match.group(1)[0], len(fence_match.group(1)))
            continue
        heading = _HEADING.match(line)
        if heading:
            headings.append(
                Heading(
                    len(heading.group(1)), clean_heading(heading.group(2) or ""), start, start + len(line)
                )
            )
    return headings


def slugify(text: str) -> str:
    """Lower-case words joined by ``-`` (letters, digits and ``_`` kept; at most 60 characters)."""
    slug = _NON_WORD.sub("-", unicodedata.normalize("NFKC", text).lower()).strip("-_")
    return slug[:60].rstrip("-_")


def _same(a: str, b: str) -> bool:
    return _WHITESPACE.sub(" ", a).strip().casefold() == _WHITESPACE.sub(" ", b).strip().casefold()


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sections(text: str, title: str) -> list[_Section]:
    """Sections with their heading path; a leading heading equal to the title is left out of the path."""
    headings = markdown_headings(text)
    bounds = [0, *(h.start for h in headings), len(text)]
    stack: list[Heading] = []
    used: set[str] = set()
    sections: list[_Section] = []
    for i in range(len(bounds) - 1):
        heading = headings[i - 1] if i else None
        if heading is None:
            name, base = "", "top"
        else:
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
            path = [h.text for h in stack if h.text]
            if path and _same(path[0], title):
                path = path[1:]
            name, base = " > ".join(path), slugify(heading.text) or "section"
        start, end = _trim(text, bounds[i], bounds[i + 1])
        if start == end:
            continue
        slug, n = base, 1
        while slug in used:
            n += 1
            slug = f"{base}-{n}"
        used.add(slug)
        sections.append(_Section(name, slug, start, end))
    return sections


def _groups(sections: list[_Section], min_chars: int) -> list[list[_Section]]:
    """Runs of short sections closed by the next long one; a short tail joins the previous group."""
    groups: list[list[_Section]] = []
    current: list[_Section] = []
    for section in sections:
        current.append(section)
        if section.end - section.start >= min_chars:
            groups.append(current)
            current = []
    if current:
        if groups and current[-1].end - current[0].start < min_chars:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


class _Boundaries:
    """The whitespace runs of a span, classed as chunk ends (cut points) and chunk starts."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.run_starts: list[int] = []
        self.run_ends: list[int] = []
        self.cut_class: list[int] = []
        self.start_class: list[int] = []
        for match in _WHITESPACE.finditer(text, start, end):
            a, b = match.span()
            newlines = text.count("\n", a, b)
            if newlines >= 2:
                cls = _PARAGRAPH
            elif newlines == 1:
                cls = _LINE
            else:
                k = a - 1
                while k > start and text[k] in _CLOSERS:
                    k -= 1
                cls = _SENTENCE if text[k] in _SENTENCE_END else _SPACE
            self.run_starts.append(a)
            self.run_ends.append(b)
            self.start_class.append(cls)
            # Never end a chunk on a heading line: the heading belongs with the text after it.
            heading_before = cls >= _LINE and _HEADING.match(text, text.rfind("\n", 0, a) + 1, a)
            self.cut_class.append(_SPACE if heading_before else cls)

    def cut(self, lo: int, hi: int, wide_hi: int) -> int:
        """Best chunk end in [lo, hi] (best class, then latest), else in [lo, wide_hi], else ``hi`` (hard)."""
        for top in (hi, wide_hi):
            i, j = bisect.bisect_left(self.run_starts, lo), bisect.bisect_right(self.run_starts, top)
            if i < j:
                best = max(range(i, j), key=lambda k: (self.cut_class[k], self.run_starts[k]))
                return self.run_starts[best]
        return hi

    def resume(self, cut: int) -> int:
        """Where new text starts after a chunk ending at ``cut``: the first non-whitespace from ``cut`` on."""
        i = bisect.bisect_right(self.run_starts, cut) - 1
        if i >= 0 and cut < self.run_ends[i]:
            return self.run_ends[i]
        return cut

    def start(self, num: int, slack: int, den: int, lo: int, hi: int) -> int:
        """A chunk start in [lo, hi] near the target ``num / den``: best class within ``slack / den`` of it,
        else the closest (``den > 0``).

        Whole numbers only (no float rounding; ties rounded half up), so that moving the span by ``d``
        moves the result by exactly ``d``: a group's cuts depend only on the group's own text.
        """
        if lo >= hi:
            return hi

        def distance(k: int) -> int:  # to the target, times den
            return abs(self.run_ends[k] * den - num)

        w_lo, w_hi = max(lo, -((slack - num) // den)), min(hi, (num + slack) // den)
        i, j = bisect.bisect_left(self.run_ends, w_lo), bisect.bisect_right(self.run_ends, w_hi)
        if i < j:
            return self.run_ends[max(range(i, j), key=lambda k: (self.start_class[k], -distance(k)))]
        i, j = bisect.bisect_left(self.run_ends, lo), bisect.bisect_right(self.run_ends, hi)
        if i < j:
            near = bisect.bisect_left(self.run_ends, -(-num // den), i, j)  # first end >= target
            return self.run_ends[min((k for k in (near - 1, near) if i <= k < j), key=distance)]
        return min(hi, max(lo, (2 * num + den) // (2 * den)))


def _pack(text: str, start: int, end: int, config: ChunkingConfig) -> list[tuple[int, int]]:
    """Spans of the chunks of one group [start, end) (already trimmed).

    The spans depend only on ``text[start:end]``: moving the group (an edit in an earlier section) moves
    them by the same amount. Hence the overlap target is computed exactly, in whole numbers: in floats,
    ``(prev_end - r * chunk_end) / (1 - r)`` rounds differently at different absolute offsets, which moved
    the tolerance window's bounds by one and picked a different start in an unchanged section.
    """
    m, big = config.min_chars, config.max_chars
    if end - start <= big:
        return [(start, end)]
    bounds = _Boundaries(text, start, end)
    # The decimals the user wrote (0.15 is 3/20, not the binary float just below it), as p/q and a/b.
    r, tolerance = Fraction(str(float(config.overlap))), Fraction(str(OVERLAP_TOLERANCE))
    p, q = r.numerator, r.denominator
    a, b = tolerance.numerator, tolerance.denominator
    # New text per chunk after the first: with an overlap share r the chunk is new / (1 - r) long.
    hi_new = max(1, math.floor((1 - r) * big))
    lo_new = min(hi_new, m if m <= hi_new else math.ceil((1 - r) * m))

    def window(base: int, lo: int, hi: int) -> tuple[int, int, int]:
        # Prefer to leave enough text after the cut for a full last chunk; cut a word only as a last resort.
        if base + lo > end - lo_new:
            return base + lo, base + hi, base + hi
        return base + lo, min(base + hi, end - lo_new), base + hi

    cut = bounds.cut(*window(start, m, big))
    spans = [(start, cut)]
    prev_start, prev_end = start, cut
    while prev_end < end:
        new = bounds.resume(prev_end)  # where the next chunk's new text starts (never whitespace)
        chunk_end = end if end - new <= hi_new else bounds.cut(*window(new, lo_new, hi_new))
        # Solve (prev_end - s) = r * (chunk_end - s) for the start s; stay within [min_chars, max_chars].
        # In whole numbers over den = b (q - p): s = (q prev_end - p chunk_end) / (q - p), and the tolerance
        # a/b of the chunk's length (chunk_end - s) = q (chunk_end - prev_end) / (q - p).
        target = b * (q * prev_end - p * chunk_end)
        slack = a * q * (chunk_end - prev_end)
        lo = max(chunk_end - big, prev_start + 1)
        hi = min(chunk_end - m, new)
        chunk_start = bounds.start(target, slack, b * (q - p), lo, hi)
        spans.append((chunk_start, chunk_end))
        prev_start, prev_end = chunk_start, chunk_end
    return spans


def _embedded_text(title: str, section: str, body: str, config: ChunkingConfig) -> str:
    """``"{title} > {section}\\n\\n{body}"``; a title-only prefix is left out when the body opens with the
    title (its ``#`` heading, or a first line equal to it), so the title appears once, not twice."""
    parts = [p for p, on in ((title, config.prefix_title), (section, config.prefix_section)) if on and p]
    if parts == [title]:
        first = body.lstrip().split("\n", 1)[0]
        if _same(clean_heading(first.lstrip("#").rstrip().rstrip("#")), title):
            parts = []
    return f"{' > '.join(parts)}\n\n{body}" if parts else body


def chunk_document(doc: Document, config: ChunkingConfig | None = None) -> list[Chunk]:
    """Cut ``doc.text`` into chunks (redact it first: spans refer to the text as given).

    Rules: every body is ``doc.text[start:end]``, at most ``max_chars`` long and at least ``min_chars`` except
    the document's last chunk; a document shorter than ``min_chars`` gives one chunk and a blank one none;
    every non-whitespace character lies in some chunk; ids are unique in the document (see the module doc).
    A word is cut only when no whitespace lies in the allowed window: never while words are shorter than
    ``(1 - overlap) * max_chars - min_chars`` (675 characters with the defaults).
    Consecutive chunks of a section overlap by ``overlap`` +/- ``OVERLAP_TOLERANCE`` (0.05) of the later
    chunk wherever a whitespace lies within that tolerance of the target, for configs with
    ``2 * min_chars < (1 - overlap) * max_chars`` (strictly: at equality, e.g. 400 / 1000 / 0.2, a section's
    last chunk was seen to overlap 35-64 %) and ``min_chars >= (overlap + 0.05) * max_chars /
    (1 - overlap)`` (the defaults, and 600 / 1500 with 10-20 % overlap); otherwise a section's last chunk may
    overlap more to reach ``min_chars``.
    """
    config = config or ChunkingConfig()
    text = doc.text
    chunks: list[Chunk] = []
    ordinals: dict[str, int] = {}
    for group in _groups(_sections(text, doc.title), config.min_chars):
        starts = [s.start for s in group]
        spans = _pack(text, group[0].start, group[-1].end, config)
        prev_end = group[0].start
        for chunk_start, chunk_end in spans:
            # The chunk is named after the section where its new text starts.
            new_text = max(chunk_start, prev_end)
            while text[new_text].isspace():
                new_text += 1
            section = group[max(0, bisect.bisect_right(starts, new_text) - 1)]
            ordinal = ordinals.get(section.slug, 0)
            ordinals[section.slug] = ordinal + 1
            body = text[chunk_start:chunk_end]
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{section.slug}:{ordinal}",
                    doc_id=doc.doc_id,
                    title=doc.title,
                    section=section.name,
                    ordinal=ordinal,
                    body=body,
                    text=_embedded_text(doc.title, section.name, body, config),
                    start=chunk_start,
                    end=chunk_end,
                    source=doc.source,
                )
            )
            prev_end = chunk_end
    return chunks


def chunk_documents(docs: Iterable[Document], config: ChunkingConfig | None = None) -> list[Chunk]:
    """Chunks of every document, in order (see ``chunk_document``)."""
    config = config or ChunkingConfig()
    return [chunk for doc in docs for chunk in chunk_document(doc, config)]
