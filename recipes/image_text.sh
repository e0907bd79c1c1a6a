#!/usr/bin/env bash
# Image-text retrieval with a frozen image tower (docs/image_text.md): train a multilingual text tower + head on
# Flickr30k images with Multi30K captions (en de fr cs), evaluate on MSCOCO images with XTD10 captions (11 languages).
#   FLICKR_IMAGES=/data/flickr30k-images IMAGE_SPLITS=/data/multi30k-dataset/data/task1/image_splits \
#   COCO_IMAGES=/data/coco/train2014 bash recipes/image_text.sh [OUT]          # default runs/image_text
# Environment: TOWER [openai/clip-vit-base-patch32], MODEL [intfloat/multilingual-e5-small], REGIME [hybrid],
# ALPHA [0.5], STEPS [2000], BATCH [128], LR [5e-5], TEMPERATURE [0.05], MULTI30K, XTD10 [../shared/data/...].
# Images and the two checkpoints are not in this repository: they come from their owners (or the hub).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/python.sh"
OUT=${1:-${OUT:-runs/image_text}}
: "${FLICKR_IMAGES:?set FLICKR_IMAGES (Flickr30k images)}" "${IMAGE_SPLITS:?set IMAGE_SPLITS (Multi30K image_splits)}"
: "${COCO_IMAGES:?set COCO_IMAGES (the MSCOCO 2014 images XTD10 names)}"
export TOWER=${TOWER:-openai/clip-vit-base-patch32}
MULTI30K=${MULTI30K:-$ROOT/../shared/data/multi30k} XTD10=${XTD10:-$ROOT/../shared/data/xtd10}
py() { "$PYTHON" -m "$@"; }
[[ -s "$OUT/data/flickr/manifest.json" ]] || py hybrid_tevatron.images.data --multi30k "$MULTI30K" --split train \
  --image_splits "$IMAGE_SPLITS" --images "$FLICKR_IMAGES" --output_dir "$OUT/data/flickr"
[[ -s "$OUT/data/xtd10/manifest.json" ]] || py hybrid_tevatron.images.data --xtd10 "$XTD10" --images "$COCO_IMAGES" \
  --output_dir "$OUT/data/xtd10"
for set in flickr xtd10; do   # the frozen tower encodes each image once
  [[ -s "$OUT/index/$set/docid" ]] || py hybrid_tevatron.images.encode --tower "$TOWER" --corpus "$OUT/data/$set" \
    --output "$OUT/index/$set"
done
TRAIN=$(py hybrid_tevatron.studies.budget image_text "$OUT")  # its flags: hybrid_tevatron/studies/train_commands.py
eval "TRAIN=($TRAIN)"
py "${TRAIN[@]}"
py hybrid_tevatron.eval images "$OUT/model" "$OUT/eval/xtd10" --image_data "$OUT/data/xtd10" \
  --image_index "$OUT/index/xtd10" --overwrite
