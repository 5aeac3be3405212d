"""Every benchmark under ``bench/`` still runs: each script at its smallest size on a copy of the demo data,
as a user would start it (``python bench/X.py``, from the repository root). The figures are not checked
(these machines are noisy); the run must end cleanly and print its summary line. bench/eval.py once broke
unnoticed when the embedder's executor was renamed: this is the test that would have said so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# script, its smallest arguments ({data}: a demo data dir, {out}: a results file), a line its summary prints
SMALLEST = [
    ("eval.py", ["--repeat", "1", "--data-dir", "{data}"], "overhead over the raw batched loop"),
    ("search.py", ["--queries", "5", "--data-dir", "{data}"], "P50"),
    ("store.py", ["--runs", "1", "--repeat", "1", "--queries", "5", "--data-dir", "{data}", "--out", "{out}"],
     "µs"),
    ("hybrid.py", ["--runs", "1", "--queries", "5", "--data-dir", "{data}", "--out", "{out}"], "P95"),
    ("tune.py", ["--repeat", "1", "--data-dir", "{data}", "--out", "{out}"], "trials"),
    ("metrics.py", ["--queries", "200", "--depth", "20", "--repeat", "1"], "ranx"),
    ("api_load.py", ["--seconds", "1", "--rounds", "1", "--clients", "1", "--configs", "batching",
                     "--data-dir", "{data}"], "throughput"),
]  # fmt: skip


@pytest.mark.parametrize(("script", "arguments", "summary"), SMALLEST, ids=[s[0] for s in SMALLEST])
def test_a_benchmark_runs_at_its_smallest_size(
    script: str, arguments: list[str], summary: str, demo_data_dir: Path, tmp_path: Path
) -> None:
    filled = [a.format(data=demo_data_dir, out=tmp_path / "result.json") for a in arguments]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *filled],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tails = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{tails}"
    assert summary in done.stdout, done.stdout[-3000:]
