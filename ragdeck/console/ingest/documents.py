"""The corpus data model: a loaded ``Document`` and the ``Chunk`` cut from it (embedded and stored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The payload fields a chunk stores as text (``Chunk.payload``): a filter on one of them matches text, so
# ``doc_id=2024`` means the document "2024", never the number 2024 (which no stored text would equal).
TEXT_PAYLOAD_FIELDS = ("chunk_id", "doc_id", "title", "section", "text", "body", "source")


@dataclass
class Document:
    """One source document.

    ``text`` is the body (front matter removed); ``source`` is the file path relative to the corpus folder,
    or ``file.jsonl:LINE`` for a BEIR corpus; ``metadata`` holds front-matter keys or extra JSONL fields.
    Mutable on purpose: ingestion replaces ``text`` with its redacted version before chunking.
    """

    doc_id: str
    title: str
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, with its span in the text that was chunked.

    ``body == document_text[start:end]``; ``text`` is what gets embedded:
    ``"{title} > {section}\\n\\n{body}"`` (empty parts and disabled prefixes left out, and a title-only prefix
    when the body opens with the title, so the title appears once); ``ordinal`` is the
    position within its section (0-based).
    """

    chunk_id: str
    doc_id: str
    title: str
    section: str
    ordinal: int
    body: str
    text: str
    start: int
    end: int
    source: str = ""

    def payload(self) -> dict[str, Any]:
        """The payload stored with the vector (every field, JSON-ready)."""
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "section": self.section,
            "ordinal": self.ordinal,
            "text": self.text,
            "body": self.body,
            "start": self.start,
            "end": self.end,
            "source": self.source,
        }
