"""Load a corpus: a folder of Markdown / text files, one such file, or a BEIR ``corpus.jsonl``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragdeck.console.ingest.chunking import markdown_headings
from ragdeck.console.ingest.documents import Document
from ragdeck.errors import InputError
from ragdeck.services.inputs import parse_json, special_file
from ragdeck.services.text import json_type_name

__all__ = ["TEXT_SUFFIXES", "CorpusProblems", "Problem", "load_documents"]

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
# Licence and attribution files that travel with a corpus but are not documents (matched on the upper-cased
# name): LICENSE*, LICENCE*, NOTICE*, COPYING*, and SOURCES.md / SOURCES.txt (provenance, as in the demo).
_NOT_DOCUMENTS = re.compile(r"^(LICEN[CS]E|NOTICE|COPYING)|^SOURCES\.(MD|MARKDOWN|TXT)$")
_MAX_LISTED = 20  # problems spelled out in a message; the exception carries all of them
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:(.*)$")
_FRONT_CLOSE = re.compile(r"^(---|\.\.\.)[ \t]*$")
_LEADING_COMMENT = re.compile(r"\s*<!--(.*?)-->[ \t]*\n?", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    """One problem found in a corpus file: 1-based line and the field concerned (None for the whole line)."""

    file: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f', field "{self.field}"' if self.field else "")
        return f"{where}: {self.message}"


class CorpusProblems(InputError):
    """Every problem of one corpus file, reported together; ``problems`` lists them in line order."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = [f"{file}: {count}; fix these lines and load the file again"]
        lines += [f"  {p}" for p in problems[:_MAX_LISTED]]
        if len(problems) > _MAX_LISTED:
            lines.append(f"  ... and {len(problems) - _MAX_LISTED} more")
        super().__init__("\n".join(lines))


def load_documents(path: Path | str) -> list[Document]:
    """Load every document under ``path``.

    - A folder: each ``.md``, ``.markdown`` and ``.txt`` file below it, recursively, in sorted path order,
      skipping hidden files and folders and licence / attribution files (LICENSE*, LICENCE*, NOTICE*,
      COPYING*, SOURCES.md). ``doc_id`` is the POSIX path relative to the folder without its suffix;
      ``source`` keeps the suffix. Title: front matter ``title:``, else the first ``# `` heading, else the
      file name made readable. Front matter is removed from ``text``, its keys go to ``metadata``; an HTML
      comment opening the body (a licence header) goes to ``metadata["header_comment"]``.
    - One ``.md`` / ``.markdown`` / ``.txt`` file: one document, ``doc_id`` is the file's stem.
    - A ``.jsonl`` file in BEIR corpus format: one object a line with ``_id`` (string or integer), ``text``
      (string) and optional ``title``; other keys (and the items of a ``metadata`` object) go to ``metadata``;
      ``source`` is ``name.jsonl:LINE``; blank lines are skipped. All problems of the file are reported
      together in one ``CorpusProblems`` (an InputError) naming line and field.

    Raises InputError for a missing path, a special file (FIFO, device, socket: a read could block forever),
    an unsupported file type, an unreadable file (permissions, invalid UTF-8 with its byte offset), JSON
    nested too deeply or holding a number too long to convert (``services.inputs.parse_json``) and a corpus
    with no document or only empty ones. Line ends become ``\\n``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{path}: no such file or folder; give a folder of Markdown files or a BEIR corpus.jsonl"
        )
    _refuse_special(path)
    if path.is_dir():
        docs = _load_folder(path)
    elif path.suffix.lower() == ".jsonl":
        docs = _load_jsonl(path)
    elif path.suffix.lower() in TEXT_SUFFIXES:
        docs = [_markdown_document(path, path.stem, path.name)]
    else:
        raise InputError(
            f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; expected a folder, a .md, "
            ".markdown or .txt file, or a BEIR .jsonl corpus"
        )
    if not docs:
        raise InputError(
            f"no documents in {path}: expected .md, .markdown or .txt files, or a BEIR .jsonl corpus"
        )
    if all(not doc.text.strip() for doc in docs):
        raise InputError(
            f"no text in {path}: all {len(docs)} document(s) are empty; add content and load again"
        )
    return docs


def _load_folder(folder: Path) -> list[Document]:
    found: list[tuple[str, Path]] = []
    for file in folder.rglob("*"):
        rel = file.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not file.is_file():
            continue
        if file.suffix.lower() in TEXT_SUFFIXES and not _NOT_DOCUMENTS.match(file.name.upper()):
            found.append((rel.as_posix(), file))
    found.sort()
    return [_markdown_document(file, rel[: -len(file.suffix)], rel) for rel, file in found]


def _refuse_special(path: Path) -> None:
    kind = special_file(path)
    if kind is not None:
        raise InputError(
            f"{path} is {kind}, not a file: give a folder, a .md/.txt file or a BEIR corpus.jsonl "
            "(copy a stream to a file first)"
        )


def _read_text(file: Path) -> str:
    _refuse_special(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{file}: cannot read the file ({exc.strerror or exc}); check that it exists and is readable"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, offset) + 1
        raise InputError(
            f"{file}: not valid UTF-8 at byte {offset} (line {line}); "
            "save the file as UTF-8 and load it again"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_document(file: Path, doc_id: str, source: str) -> Document:
    raw = _read_text(file)
    metadata, body = _split_front_matter(raw)
    # A comment opening the file (a licence header, doc-builder notes) is not content: keep it as metadata.
    comment = _LEADING_COMMENT.match(body)
    if comment:
        metadata["header_comment"] = comment.group(1).strip()
        body = body[comment.end() :]
    title = metadata.get("title")
    if not isinstance(title, str) or not title.strip():
        title = next((h.text for h in markdown_headings(body) if h.level == 1 and h.text), "") or _readable(
            file
        )
    return Document(doc_id=doc_id, title=title.strip(), text=body, source=source, metadata=metadata)


def _readable(file: Path) -> str:
    stem = file.stem
    if stem.lower() in {"index", "readme"} and file.parent.name:
        stem = file.parent.name
    words = re.sub(r"[_\-\s]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else file.name


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A leading ``---`` block of ``key: value`` lines, parsed leniently, and the text after it.

    Top-level scalar values lose their quotes (whole numbers become ints); a key with an indented or list
    block under it keeps that block as text; ``#`` comments are ignored. No closing line: no front matter.
    """
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    close = next((i for i in range(1, len(lines)) if _FRONT_CLOSE.match(lines[i])), None)
    if close is None:
        return {}, text
    metadata: dict[str, Any] = {}
    key: str | None = None
    block: list[str] = []

    def flush() -> None:
        if key is not None and block:
            metadata[key] = "\n".join(block).strip("\n")

    for line in lines[1:close]:
        match = _FRONT_KEY.match(line)
        if match and not line.startswith((" ", "\t")):
            flush()
            key, block = match.group(1), []
            value = match.group(2).strip()
            if value:
                metadata[key] = _scalar(value)
        elif line.strip() and not line.lstrip().startswith("#") and key is not None:
            block.append(line)
    flush()
    body = "\n".join(lines[close + 1 :])
    return metadata, body


def _scalar(value: str) -> Any:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if re.fullmatch(r"-?\d{1,18}", value):  # longer digit runs (ids, card-like numbers) stay text
        return int(value)
    return value


def _load_jsonl(file: Path) -> list[Document]:
    text = _read_text(file)
    problems: list[Problem] = []
    docs: list[Document] = []
    first_seen: dict[str, int] = {}
    name = str(file)

    def problem(line: int, field: str | None, message: str) -> None:
        problems.append(Problem(name, line, field, message))

    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
        except json.JSONDecodeError as exc:
            problem(number, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(obj, dict):
            problem(number, None, f"expected a JSON object, got {json_type_name(obj)}")
            continue
        ok = True
        doc_id = obj.get("_id")
        if "_id" not in obj:
            problem(number, "_id", 'missing; every line needs an "_id" (string or integer)')
            ok = False
        elif isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
            problem(number, "_id", f"must be a string or an integer, got {json_type_name(doc_id)}")
            ok = False
        elif not str(doc_id).strip():
            problem(number, "_id", "empty; give every document a non-empty id")
            ok = False
        elif str(doc_id) in first_seen:
            problem(
                number, "_id", f"duplicate id {str(doc_id)!r}, first used on line {first_seen[str(doc_id)]}"
            )
            ok = False
        else:
            first_seen[str(doc_id)] = number
        if "text" not in obj:
            problem(number, "text", 'missing; every line needs a "text" string')
            ok = False
        elif not isinstance(obj["text"], str):
            problem(number, "text", f"must be a string, got {json_type_name(obj['text'])}")
            ok = False
        title = obj.get("title")
        if title is not None and not isinstance(title, str):
            problem(number, "title", f"must be a string, got {json_type_name(title)}")
            ok = False
        if not ok:
            continue
        metadata = {k: v for k, v in obj.items() if k not in {"_id", "title", "text", "metadata"}}
        extra = obj.get("metadata")
        if isinstance(extra, dict):
            metadata.update(extra)
        elif extra is not None:
            metadata["metadata"] = extra
        docs.append(
            Document(
                doc_id=str(doc_id),
                title=(title or "").strip(),
                text=obj["text"],
                source=f"{file.name}:{number}",
                metadata=metadata,
            )
        )
    if problems:
        raise CorpusProblems(name, problems)
    return docs
