"""Running ``ragdeck`` in process through its entry point, and checking its one-line errors."""

from __future__ import annotations

import sys

import pytest

from ragdeck.cli import main


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str
) -> tuple[int, str, str]:
    """``ragdeck ARGS`` through ``ragdeck.cli.main`` (the entry point): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["ragdeck", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit code 1 and an ``error: …`` message (no traceback) that contains every needle."""
    assert code == 1
    text = " ".join(line for line in err.strip().splitlines() if line.strip())
    assert text.startswith("error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in text, (needle, err)
