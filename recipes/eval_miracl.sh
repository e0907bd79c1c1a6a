#!/usr/bin/env bash
# Evaluate a dense retriever on MIRACL with Pyserini: nDCG@10 and R@100 per language (hybrid_tevatron.eval.program).
#   bash recipes/eval_miracl.sh MODEL OUTPUT_DIR --languages "de yo sw" [options]      # --help lists them
# Offline / local sources ({lang} and {split} are filled in per language):
#   --topics /data/miracl/topics.miracl-v1.0-{lang}-dev.tsv --qrels /data/miracl/qrels.miracl-v1.0-{lang}-dev.tsv
#   --corpus /data/miracl-corpus          (a local copy of the HF repo, holding miracl-corpus-v1.0-{lang}/)
# Several GPUs: --encode_processes N (one corpus shard per GPU, merged). Several nodes: write the corpus JSONL
# (python -m hybrid_tevatron.eval.benchmarks.miracl prepare), encode it with torchrun on every node, merge, then pass
# --index LANG=DIR (docs/evaluation.md, "Beyond one machine").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/python.sh"
exec "$PYTHON" -m hybrid_tevatron.eval miracl "$@"
