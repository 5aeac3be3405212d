#!/usr/bin/env bash
# Demo eval of dense vs lexical vs hybrid retrieval, from a fresh temporary data directory.
#
# Usage: bash bench/hybrid_eval.sh [DATA_DIR]   (from the repository root, with the project's venv in .venv)
#
# Builds the demo collection (`ragdeck demo`) in DATA_DIR (default: a new temporary directory, removed at the
# end; a DATA_DIR you name is kept and a demo collection already in it is reused), then runs the demo gold set
# retrieval-only, no reranker, top-10 (top-K 40 per list for hybrid), concurrency 1, five times:
#   dense; lexical (BM25); hybrid RRF k=60; hybrid weighted fusion with dense_weight 0.5 and 0.7,
# each with --json into bench/results/hybrid_eval/, and compares dense vs lexical and dense vs hybrid RRF with
# `ragdeck compare` (paired bootstrap 95 % intervals, permutation p-values, Holm-adjusted), Markdown and JSON.
set -euo pipefail

RAGDECK=${RAGDECK:-.venv/bin/ragdeck}
PY=${PY:-.venv/bin/python}
SET=eval_sets/demo_gold.jsonl
OUT=bench/results/hybrid_eval
mkdir -p "$OUT"

if [[ $# -ge 1 ]]; then
    DATA_DIR=$1
else
    DATA_DIR=$(mktemp -d)
    trap 'rm -rf "$DATA_DIR"' EXIT
fi
export RAGDECK_DATA_DIR=$DATA_DIR HF_HUB_OFFLINE=1
echo "data dir: $DATA_DIR"

"$RAGDECK" demo

run_eval() { # name, then ragdeck eval options
    local name=$1
    shift
    echo
    echo "## ragdeck eval --set $SET --retrieval-only --no-rerank --k 10 --concurrency 1 $*"
    "$RAGDECK" eval --set "$SET" --retrieval-only --no-rerank --k 10 --concurrency 1 "$@" \
        --json "$OUT/$name.json"
}

run_eval dense --retrieval dense
run_eval lexical --retrieval lexical
run_eval hybrid_rrf60 --retrieval hybrid --fusion rrf --rrf-k 60
run_eval hybrid_w05 --retrieval hybrid --fusion weighted --dense-weight 0.5
run_eval hybrid_w07 --retrieval hybrid --fusion weighted --dense-weight 0.7

run_id() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' "$OUT/$1.json"; }
DENSE=$(run_id dense)
for other in lexical hybrid_rrf60; do
    echo
    echo "## ragdeck compare dense ($DENSE) vs $other ($(run_id "$other"))"
    "$RAGDECK" compare "$DENSE" "$(run_id "$other")" | tee "$OUT/compare_dense_$other.md"
    "$RAGDECK" compare "$DENSE" "$(run_id "$other")" --json > "$OUT/compare_dense_$other.json"
done
echo
echo "wrote $OUT/"
