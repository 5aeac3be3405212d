"""The child program that builds the HNSW index of a closed shard directory, run by ``update_hnsw``::

    python -m ragdeck.services.qdrant_embedded.build_index SHARD_DIR DIMENSION M EF_CONSTRUCT \\
        FULL_SCAN_THRESHOLD LEXICAL

It opens the shard with the collection's engine config and the given HNSW settings (LEXICAL is 1 when the
collection has the BM25 sparse vector, else 0), runs the optimizers (which rebuild the index), flushes and
closes it; exit status 0 when the index is built. It runs in its own process because the engine holds the
GIL while it builds, which would stall the parent's searches. The shard must not be open elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from qdrant_edge import EdgeShard

from ragdeck.services.qdrant_embedded._convert import edge_config
from ragdeck.services.types import HnswConfig


def build_index(shard_dir: Path, dimension: int, hnsw: HnswConfig, lexical: bool) -> None:
    """Open ``shard_dir`` with ``hnsw``, build its index, flush and close it."""
    shard = EdgeShard.load(str(shard_dir), edge_config(dimension, hnsw, lexical))
    shard.optimize()
    shard.flush()
    shard.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ragdeck.services.qdrant_embedded.build_index",
        description="Build the HNSW index of a closed qdrant-edge shard directory with new settings.",
    )
    parser.add_argument("shard_dir", type=Path, help="the closed shard directory (a collection's shard/)")
    parser.add_argument("dimension", type=int, help="the collection's vector dimension")
    parser.add_argument("m", type=int, help="HNSW m")
    parser.add_argument("ef_construct", type=int, help="HNSW ef_construct")
    parser.add_argument("full_scan_threshold", type=int, help="HNSW full_scan_threshold (KB)")
    parser.add_argument(
        "lexical",
        type=int,
        choices=(0, 1),
        metavar="lexical",
        help="1 when the collection has the BM25 sparse vector",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the index the arguments name; 0 when done (the engine's error propagates otherwise)."""
    args = _parser().parse_args(argv)
    hnsw = HnswConfig(m=args.m, ef_construct=args.ef_construct, full_scan_threshold=args.full_scan_threshold)
    build_index(args.shard_dir, args.dimension, hnsw, bool(args.lexical))
    return 0


if __name__ == "__main__":
    sys.exit(main())
