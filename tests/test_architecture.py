"""The architecture holds: the import contracts of pyproject.toml pass, and fail on a forbidden import.

Contracts (``[tool.importlinter]``): fronts -> console -> services -> errors and never back up; no
Streamlit or plotly in the domain or the adapters; no import cycles between sibling packages or modules.
Also: no module over 400 lines unless it is listed below with the reason it is still that long.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
# Modules still over MAX_LINES, each with its reason. Split one and remove it here (the test insists).
LONG_MODULES = {
    "ragdeck/console/evalsets/io.py": "three file formats (JSONL, CSV, TREC qrels) with line-exact errors",
    "ragdeck/console/evalsets/model.py": "the record, its parser and the set checks (shared field rules)",
    "ragdeck/console/online/panel.py": "the live A/B panel's Prometheus and in-process sources",
    "ragdeck/console/online/replay.py": "open-loop replay: scheduler, sender pool and summary",
    "ragdeck/console/wiring.py": "the composition root: every adapter built from settings in one place",
    "ragdeck/services/qdrant_server.py": "the qdrant-client adapter: search, admin and snapshots",
    "ragdeck/services/llama_local.py": "GGUF join, server process, build features and smoke generation",
    "ragdeck/services/http.py": "timeouts, retries, error naming and the TEI endpoint the adapters share",
    "ragdeck/services/judge.py": "the Ragas judge with its LLM and embedding wrappers",
}


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.fail(f"{lint} is missing: install the test extra (pip install -e '.[test]')")
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONDONTWRITEBYTECODE": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "3 kept, 0 broken" in result.stdout, result.stdout[-3000:]


def test_the_contracts_fail_on_a_forbidden_import(tmp_path: Path) -> None:
    """A copy of the package with one violation of each contract: all three are reported broken."""
    copy = tmp_path / "src" / "ragdeck"
    shutil.copytree(ROOT / "ragdeck", copy, ignore=shutil.ignore_patterns("demo_corpus", "__pycache__"))
    with (copy / "console" / "evaluation" / "metrics.py").open("a") as f:
        f.write("\nimport plotly  # forbidden: presentation in the domain\n")
    with (copy / "services" / "http.py").open("a") as f:
        f.write("\nfrom ragdeck.console import settings  # forbidden: an adapter importing the domain\n")
    with (copy / "console" / "identity.py").open("a") as f:
        f.write("\nfrom ragdeck.console import roles  # forbidden: roles imports identity, a cycle\n")
    result = _lint(tmp_path, pythonpath=tmp_path / "src")
    out = result.stdout
    assert result.returncode != 0, out[-3000:]
    assert "0 kept, 3 broken" in out, out[-6000:]
    assert "ragdeck.services.http -> ragdeck.console.settings" in out, out[-6000:]
    assert "ragdeck.console.evaluation.metrics -> plotly" in out, out[-6000:]


def test_no_module_is_long_without_a_reason() -> None:
    lengths = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "ragdeck").rglob("*.py")
        if "demo_corpus" not in path.parts
    }
    unexplained = {p: n for p, n in lengths.items() if n > MAX_LINES and p not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_LINES} lines without a reason in LONG_MODULES: {unexplained}"
    stale = sorted(p for p in LONG_MODULES if lengths.get(p, 0) <= MAX_LINES)
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): remove from LONG_MODULES: {stale}"
