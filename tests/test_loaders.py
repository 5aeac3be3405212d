"""Loading a corpus: folders of Markdown, single files, BEIR JSONL, and every way a file can be wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ragdeck.console.ingest.loaders import CorpusProblems, Problem, load_documents
from ragdeck.errors import InputError

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_corpus"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- folders and Markdown files ---------------------------------------------------------------------------


def test_folder_ids_titles_front_matter_and_skipped_files(tmp_path: Path) -> None:
    write(
        tmp_path / "guides" / "setup.md",
        '---\ntitle: "Set up: the basics"\nsort_rank: 2\n---\n\nInstall it.\n',
    )
    write(tmp_path / "guides" / "faq_page.markdown", "Intro line.\n\n# Frequently asked\n\nText.\n")
    write(tmp_path / "notes" / "release-notes.txt", "Plain text, no heading.\r\nSecond line.\r\n")
    write(tmp_path / "guides" / "index.md", "No heading here.\n")
    write(tmp_path / ".hidden" / "secret.md", "# Hidden\n")
    write(tmp_path / "guides" / ".draft.md", "# Draft\n")
    write(tmp_path / "LICENSE", "Apache")
    write(tmp_path / "LICENSE.md", "Apache")
    write(tmp_path / "NOTICE.txt", "Notice")
    write(tmp_path / "SOURCES.md", "# Sources\n")
    write(tmp_path / "script.py", "print('not a document')\n")

    docs = load_documents(tmp_path)

    assert [d.doc_id for d in docs] == [
        "guides/faq_page",
        "guides/index",
        "guides/setup",
        "notes/release-notes",
    ]
    by_id = {d.doc_id: d for d in docs}
    setup = by_id["guides/setup"]
    assert setup.title == "Set up: the basics"
    assert setup.text == "\nInstall it.\n"
    assert setup.metadata == {"title": "Set up: the basics", "sort_rank": 2}
    assert setup.source == "guides/setup.md"
    assert by_id["guides/faq_page"].title == "Frequently asked"
    assert by_id["notes/release-notes"].title == "Release notes"
    assert by_id["notes/release-notes"].text == "Plain text, no heading.\nSecond line.\n"
    assert by_id["guides/index"].title == "Guides"


def test_front_matter_blocks_comments_and_unclosed(tmp_path: Path) -> None:
    text = "---\n# a comment\ntitle: Spec\nauthor:\n- name: A\n  email: a@example.com\n---\nBody\n"
    doc = load_documents(write(tmp_path / "spec.md", text))[0]
    assert doc.title == "Spec" and doc.text == "Body\n"
    assert doc.metadata == {"title": "Spec", "author": "- name: A\n  email: a@example.com"}
    unclosed = load_documents(write(tmp_path / "open.md", "---\ntitle: x\nno closing line\n"))[0]
    assert unclosed.metadata == {} and unclosed.text.startswith("---\n")


def test_leading_html_comment_goes_to_metadata(tmp_path: Path) -> None:
    text = "<!--Copyright 2023.\n\nLicensed under Apache 2.0.\n-->\n\n# Title Here\n\nBody.\n"
    doc = load_documents(write(tmp_path / "page.md", text))[0]
    assert doc.title == "Title Here"
    assert doc.text == "\n# Title Here\n\nBody.\n"
    assert doc.metadata["header_comment"].startswith("Copyright 2023.")


def test_heading_inside_code_fence_is_not_the_title(tmp_path: Path) -> None:
    doc = load_documents(write(tmp_path / "shell_tips.md", "```sh\n# install\n```\n\nText.\n"))[0]
    assert doc.title == "Shell tips"


def test_single_file_uses_its_stem(tmp_path: Path) -> None:
    docs = load_documents(write(tmp_path / "alerts.md", "# Alerting\n\nRoutes alerts.\n"))
    assert [(d.doc_id, d.title, d.source) for d in docs] == [("alerts", "Alerting", "alerts.md")]


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    doc = load_documents(write(tmp_path / "bom.md", b"\xef\xbb\xbf# Hello\n"))[0]
    assert doc.text == "# Hello\n" and doc.title == "Hello"


# --- errors for paths and files -------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope: no such file or folder; give a folder"):
        load_documents(tmp_path / "nope")


def test_unsupported_file_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"report\.pdf: unsupported file type '\.pdf'; expected"):
        load_documents(write(tmp_path / "report.pdf", b"%PDF"))


def test_folder_without_documents(tmp_path: Path) -> None:
    write(tmp_path / "data.csv", "a,b\n")
    with pytest.raises(InputError) as info:
        load_documents(tmp_path)
    assert str(info.value) == (
        f"no documents in {tmp_path}: expected .md, .markdown or .txt files, or a BEIR .jsonl corpus"
    )


def test_all_documents_empty(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\ntitle: Only front matter\n---\n")
    write(tmp_path / "b.txt", "  \n\n")
    with pytest.raises(InputError, match=r"no text in .*: all 2 document\(s\) are empty"):
        load_documents(tmp_path)


def test_one_empty_document_among_others_is_kept(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\ntitle: Index\n---\n")
    write(tmp_path / "b.md", "Text.\n")
    assert [d.doc_id for d in load_documents(tmp_path)] == ["a", "b"]


def test_invalid_utf8_names_file_byte_and_line(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "bad.md", b"# Title\n\ncaf\xe9 au lait\n")
    with pytest.raises(InputError) as info:
        load_documents(tmp_path / "docs")
    assert str(info.value) == (
        f"{tmp_path / 'docs' / 'bad.md'}: not valid UTF-8 at byte 12 (line 3); "
        "save the file as UTF-8 and load it again"
    )


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write(tmp_path / "locked.md", "# Locked\n")
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == "locked.md":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(InputError) as info:
        load_documents(tmp_path)
    assert str(info.value) == (
        f"{target}: cannot read the file (Permission denied); check that it exists and is readable"
    )


# --- BEIR JSONL ----------------------------------------------------------------------------------------


def test_beir_corpus(tmp_path: Path) -> None:
    lines = [
        {"_id": "d1", "title": "Histograms", "text": "Buckets count observations.", "url": "https://x"},
        {"_id": 42, "text": "No title here.", "metadata": {"lang": "en"}},
    ]
    content = json.dumps(lines[0]) + "\n\n  \n" + json.dumps(lines[1]) + "\n"
    docs = load_documents(write(tmp_path / "corpus.jsonl", content))
    assert [(d.doc_id, d.title, d.text, d.source) for d in docs] == [
        ("d1", "Histograms", "Buckets count observations.", "corpus.jsonl:1"),
        ("42", "", "No title here.", "corpus.jsonl:4"),
    ]
    assert docs[0].metadata == {"url": "https://x"}
    assert docs[1].metadata == {"lang": "en"}


def test_beir_reports_every_problem_with_line_and_field(tmp_path: Path) -> None:
    lines = [
        '{"_id": "a", "text": "fine"}',  # 1
        '{"_id": "b", "text": "broken"',  # 2: invalid JSON
        '["not", "an", "object"]',  # 3
        '{"text": "no id"}',  # 4
        '{"_id": "  ", "text": "blank id"}',  # 5
        '{"_id": "c"}',  # 6: no text
        '{"_id": "d", "text": 12}',  # 7
        "",  # 8: blank, skipped
        '{"_id": "a", "text": "again"}',  # 9: duplicate of line 1
        '{"_id": null, "text": "null id", "title": 3}',  # 10
    ]
    path = write(tmp_path / "corpus.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(CorpusProblems) as info:
        load_documents(path)
    err = info.value
    assert isinstance(err, InputError)
    assert [(p.line, p.field) for p in err.problems] == [
        (2, None), (3, None), (4, "_id"), (5, "_id"), (6, "text"), (7, "text"), (9, "_id"), (10, "_id"),
        (10, "title"),
    ]  # fmt: skip
    assert str(err).split("\n") == [
        f"{path}: 9 problems; fix these lines and load the file again",
        "  line 2: invalid JSON: Expecting ',' delimiter at column 30",
        "  line 3: expected a JSON object, got a list",
        '  line 4, field "_id": missing; every line needs an "_id" (string or integer)',
        '  line 5, field "_id": empty; give every document a non-empty id',
        '  line 6, field "text": missing; every line needs a "text" string',
        '  line 7, field "text": must be a string, got a number',
        "  line 9, field \"_id\": duplicate id 'a', first used on line 1",
        '  line 10, field "_id": must be a string or an integer, got null',
        '  line 10, field "title": must be a string, got a number',
    ]
    assert err.problems[0] == Problem(
        str(path), 2, None, "invalid JSON: Expecting ',' delimiter at column 30"
    )


def test_beir_long_problem_lists_are_shortened_in_the_message(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.jsonl", "\n".join('{"_id": "x"}' for _ in range(25)) + "\n")
    with pytest.raises(CorpusProblems) as info:
        load_documents(path)
    # 25 lines lack "text"; lines 2-25 also repeat the id
    assert len(info.value.problems) == 49
    message = str(info.value).split("\n")
    assert message[0] == f"{path}: 49 problems; fix these lines and load the file again"
    assert len(message) == 22 and message[-1] == "  ... and 29 more"


def test_beir_single_problem_is_singular(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"_id": 1, "text": "ok"}\n{"_id": 2}\n')
    with pytest.raises(CorpusProblems, match=r"c\.jsonl: 1 problem; fix"):
        load_documents(path)


def test_beir_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no documents in .*empty\.jsonl"):
        load_documents(write(tmp_path / "empty.jsonl", "\n\n"))


def test_beir_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.jsonl", b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "\xff"}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl: not valid UTF-8 at byte 49 \(line 2\)"):
        load_documents(path)


def test_beir_deep_nesting_and_overlong_ids_are_named_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path / "corpus.jsonl",
        '{"_id": "a", "text": "fine"}\n'
        + "[" * 100_000
        + "\n"
        + '{"_id": '
        + "1" * 10_000
        + ', "text": "x"}\n'
        + '{"_id": "d", "text": "x", "metadata": '
        + '{"k": ' * 70
        + "1"
        + "}" * 70
        + "}\n",
    )
    with pytest.raises(CorpusProblems) as info:
        load_documents(path)
    deep = "invalid JSON: arrays or objects nested more than 64 levels deep (flatten the value) at column"
    long = "invalid JSON: a number of 10000 digits (over 4300: write long ids as strings, in quotes)"
    assert [(p.line, p.field, p.message) for p in info.value.problems] == [
        (2, None, f"{deep} 65"),
        (3, None, f"{long} at column 9"),
        (4, None, f"{deep} {38 + 63 * 6 + 1}"),  # the 64th '{"k": ' inside the line's object
    ]


def test_front_matter_with_a_long_number_keeps_it_as_text(tmp_path: Path) -> None:
    path = write(tmp_path / "doc.md", "---\nref: " + "4" * 5000 + "\ncount: 12\n---\n# Doc\n\nText.\n")
    (doc,) = load_documents(path)
    assert doc.metadata == {"ref": "4" * 5000, "count": 12}


def test_special_files_are_refused_up_front(tmp_path: Path) -> None:
    fifo = tmp_path / "notes.md"
    os.mkfifo(fifo)  # a read would block until a writer came: refused before any open
    with pytest.raises(InputError, match=r"notes.md is a named pipe \(FIFO\), not a file"):
        load_documents(fifo)
    with pytest.raises(InputError, match=r"null is a character device, not a file"):
        load_documents(Path(os.devnull))
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nText.\n")
    os.mkfifo(folder / "b.md")  # in a folder, special files are skipped like other non-files
    assert [d.doc_id for d in load_documents(folder)] == ["a"]


# --- the demo corpus -----------------------------------------------------------------------------------


def test_demo_corpus_loads_114_documents() -> None:
    docs = load_documents(DEMO_CORPUS)
    assert len(docs) == 114  # every .md file but SOURCES.md; LICENSE files have no suffix
    ids = {d.doc_id for d in docs}
    assert len(ids) == 114
    assert "SOURCES" not in ids
    assert all((DEMO_CORPUS / d.source).is_file() and d.source == f"{d.doc_id}.md" for d in docs)
    by_id = {d.doc_id: d for d in docs}
    data_model = by_id["prometheus-docs/docs/concepts/data_model"]
    assert data_model.title == "Data model"
    assert data_model.metadata == {"title": "Data model", "sort_rank": 1}
    assert not data_model.text.startswith("---")
    assert by_id["prometheus-docs/docs/specs/om/index"].title == "OpenMetrics"  # quotes stripped
    assert by_id["prometheus-server/docs/index"].title == "Prometheus"  # front matter has no title
    tei = by_id["tei/docs/source/en/index"]
    assert tei.title == "Text Embeddings Inference" and "Licensed under" in tei.metadata["header_comment"]
    assert sum(not d.text.strip() for d in docs) == 16  # section index pages: front matter only
