"""A rebuild that stops after its first embedded batch, writes MARKER and waits to be killed.

Usage: python rebuild_until_killed.py CORPUS MARKER  (settings from the environment: RAGDECK_DATA_DIR ...)
"""

import sys
import threading
from pathlib import Path

from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.roles import cli_user
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_index_ops, build_stack
from ragdeck.services.types import HnswConfig

corpus, marker = Path(sys.argv[1]), Path(sys.argv[2])
stack = build_stack(Settings())
ops = build_index_ops(stack.settings, stack)


def progress(stage: str, done: int, total: int) -> None:
    if stage == "embed" and 0 < done < total:
        marker.write_text(f"{done}/{total}")
        threading.Event().wait()  # hold here, half-built, until SIGKILL


ops.rebuild(
    cli_user(),
    corpus,
    stack.embedder,
    chunking=ChunkingConfig(min_chars=250, max_chars=700, overlap=0.15),
    hnsw=HnswConfig(m=8, ef_construct=64),
    batch_size=4,
    progress=progress,
)
raise SystemExit("the rebuild finished: it should have been killed half-way")
