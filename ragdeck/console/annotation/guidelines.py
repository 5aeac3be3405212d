"""The labelling guidelines: one Markdown file per project (data directory), shown beside the Annotate form
and editable there. Until someone saves their own, ``DEFAULT_GUIDELINES`` explains the grades, what a gold
chunk is, and when to skip or flag."""

from __future__ import annotations

from pathlib import Path

from ragdeck.errors import InputError
from ragdeck.services.files import write_text_atomic

__all__ = [
    "DEFAULT_GUIDELINES",
    "FILE_NAME",
    "MAX_CHARS",
    "guidelines_file",
    "read_guidelines",
    "save_guidelines",
]

FILE_NAME = "annotation_guidelines.md"
MAX_CHARS = 50_000

DEFAULT_GUIDELINES = """\
**Relevance grades.** Judge each candidate chunk against the question alone:
- **relevant** (2): the chunk answers the question, or holds a part of the answer a reader needs;
- **partly relevant** (1): on topic and useful, but it does not answer by itself (background, a related
  setting, the answer only implied);
- **not relevant** (0): off topic, or only shares words with the question;
- **unjudged**: not read yet. A chunk you leave unjudged counts as *not relevant* in agreement, so judge the
  ones you read; set a label back to unjudged to withdraw it.

**Gold chunks** are the chunks the answer must come from: the ones graded relevant (and partly relevant,
unless the eval set is published with grade 2 only). Mark every chunk that carries the answer, not only the
best one; use *Neighbours in the document* when the answer runs over a chunk border.

**Reference answer**: the short answer a person would accept, written from the gold chunks only.

**Skip** a question you cannot judge now (outside what you know, or it needs more time). Your labels stay
and count; you can reopen it from the record list and finish it later.

**Flag** a question that is broken: ambiguous, two questions in one, no chunk answers it, or a factual
problem. Say why in the comment: the reviewer reads it on the Review page.
"""


def guidelines_file(data_dir: Path | str) -> Path:
    """Where the project's guidelines live: ``annotation_guidelines.md`` in the data directory."""
    return Path(data_dir) / FILE_NAME


def read_guidelines(path: Path | str) -> str:
    """The saved guidelines, or ``DEFAULT_GUIDELINES`` when none were saved (or the file is blank)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return DEFAULT_GUIDELINES
    return text if text.strip() else DEFAULT_GUIDELINES


def save_guidelines(path: Path | str, text: str) -> str:
    """Replace the guidelines with ``text`` (atomically); blank text restores the default. Returns what is
    now in force. InputError when the text is over ``MAX_CHARS`` characters."""
    if not isinstance(text, str):
        raise InputError(f"guidelines must be text, got {text!r}")
    if len(text) > MAX_CHARS:
        raise InputError(f"guidelines are {len(text):,} characters; keep them under {MAX_CHARS:,}")
    if not text.strip():
        Path(path).unlink(missing_ok=True)
        return DEFAULT_GUIDELINES
    write_text_atomic(path, text.replace("\r\n", "\n"))
    return read_guidelines(path)
