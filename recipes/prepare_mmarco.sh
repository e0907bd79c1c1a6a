#!/usr/bin/env bash
# mMARCO -> our parallel training format (one Tevatron JSONL per language, aligned by query id and docid).
# Needs Hugging Face Hub access (downloads from the dataset repository unicamp-dl/mmarco).
#   bash recipes/prepare_mmarco.sh [OUTPUT_DIR]          # default data/mmarco
# Environment:
#   LANGS="ar de en es hi ru zh"   ISO codes or mMARCO names (default: the paper's 7, see docs/reproduction.md)
#   MAX_QUERIES=                    keep the first N training query ids (default: all ~400k)
#   NEGATIVES=7                     max hard negatives per query (from the MS MARCO triples)
#   MMARCO_DIR=OUTPUT_DIR/raw       where the raw files go (reused when already there)
#   MMARCO_REVISION=main  TRANSLATION=google
# Download size: the triples ids file (0.9 GB) + per language its collection (2.7-7.7 GB) and train queries.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-data/mmarco}
LANGS=${LANGS:-"ar de en es hi ru zh"}
NEGATIVES=${NEGATIVES:-7}
MMARCO_DIR=${MMARCO_DIR:-$OUT/raw}
MMARCO_REVISION=${MMARCO_REVISION:-main}
TRANSLATION=${TRANSLATION:-google}
source "$ROOT/recipes/python.sh"

declare -A NAME=([ar]=arabic [de]=german [en]=english [es]=spanish [fr]=french [hi]=hindi [id]=indonesian
                 [it]=italian [ja]=japanese [nl]=dutch [pt]=portuguese [ru]=russian [vi]=vietnamese [zh]=chinese)
files=(data/triples.train.ids.small.tsv)
for lang in $LANGS; do
  name=${NAME[$lang]:-$lang}
  files+=("data/$TRANSLATION/collections/${name}_collection.tsv" "data/$TRANSLATION/queries/train/${name}_queries.train.tsv")
done
missing=()
for f in "${files[@]}"; do [[ -s "$MMARCO_DIR/$f" ]] || missing+=("$f"); done
if ((${#missing[@]})); then
  if command -v hf >/dev/null; then HF=(hf download); else HF=(huggingface-cli download); fi
  echo "downloading ${#missing[@]} files of unicamp-dl/mmarco@$MMARCO_REVISION to $MMARCO_DIR" >&2
  "${HF[@]}" unicamp-dl/mmarco "${missing[@]}" --repo-type dataset --revision "$MMARCO_REVISION" \
    --local-dir "$MMARCO_DIR" >&2
  for f in "${missing[@]}"; do
    [[ -s "$MMARCO_DIR/$f" ]] || { echo "error: $MMARCO_DIR/$f still missing after the download (no Hub access?)" >&2; exit 1; }
  done
fi
args=(--mmarco_dir "$MMARCO_DIR" --output_dir "$OUT/train" --languages $LANGS --negatives "$NEGATIVES"
      --translation "$TRANSLATION")
[[ -n "${MAX_QUERIES:-}" ]] && args+=(--max_queries "$MAX_QUERIES")
"$PYTHON" -m hybrid_tevatron.data.mmarco "${args[@]}"
echo "mMARCO training data: $OUT/train/{$(echo $LANGS | tr ' ' ,)}.jsonl (stats: $OUT/train/stats.json)"
