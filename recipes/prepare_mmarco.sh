#!/usr/bin/env bash
# mMARCO -> our parallel training format (one Tevatron JSONL per language, aligned by query id and docid).
# Needs Hugging Face Hub access: the missing files of the dataset repository unicamp-dl/mmarco are downloaded
# (python -m hybrid_tevatron.data.mmarco --download): the triples ids file (0.9 GB) and, per language, its
# collection (2.7-7.7 GB) and training queries.
#   bash recipes/prepare_mmarco.sh [OUTPUT_DIR]          # default data/mmarco
# Environment: LANGS ["ar de en es hi ru zh", ISO codes or mMARCO names; the paper's 7, see docs/reproduction.md],
# MAX_QUERIES [all ~400k: keep the first N training query ids], NEGATIVES [7 hard negatives at most, from the
# MS MARCO triples], MMARCO_DIR [OUTPUT_DIR/raw, reused], MMARCO_REVISION [main], TRANSLATION [google].
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/python.sh"
OUT=${1:-data/mmarco}
"$PYTHON" -m hybrid_tevatron.data.mmarco --download --mmarco_dir "${MMARCO_DIR:-$OUT/raw}" --output_dir "$OUT/train" \
  --languages ${LANGS:-ar de en es hi ru zh} --negatives "${NEGATIVES:-7}" --translation "${TRANSLATION:-google}" \
  --revision "${MMARCO_REVISION:-main}" ${MAX_QUERIES:+--max_queries "$MAX_QUERIES"}
echo "mMARCO training data: $OUT/train/{lang}.jsonl (stats: $OUT/train/stats.json)"
