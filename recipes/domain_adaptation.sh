#!/usr/bin/env bash
# Domain adaptation of hybrid batch training, scored by caption proxy (captions of the same image in other
# languages stand in for the image; not image retrieval). Cells, time, outputs: docs/domain_adaptation.md.
#   bash recipes/domain_adaptation.sh [OUT]     # default runs/domain_adaptation; resumable; another config refused
# Environment: the budget (python -m hybrid_tevatron.studies.budget: MODEL, STEPS, BATCH, ...), SEEDS [1 2: headline
# cells; the others the first], CELLS, EVAL_SETS [xtd10 m30k-desc m30k-2016 xquad-r], EVAL_IMAGES [all], EVAL_QUESTIONS [all],
# EVAL_LANGUAGES, FLICKR_IMAGES [all], KEEP_MODELS [0], XQUAD_R, MULTI30K, MULTI30K_TASK2, XTD10
# (docs/domain_adaptation.md says what each does).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/_common.sh"
OUT=${1:-${OUT:-runs/domain_adaptation}}
XQUAD_R=$(lareqa_dir xquad-r "${XQUAD_R:-}")
export XQUAD_R
"$PYTHON" -m hybrid_tevatron.studies.domain_study run --root "$OUT"
EXPECTED=$ROOT/recipes/expected/domain_adaptation.yaml
CHECK=("$PYTHON" -m hybrid_tevatron.studies.check_expected)
if [[ -f "$EXPECTED" ]] && "${CHECK[@]}" --matches_config "$EXPECTED" < "$OUT/config.json"; then
  "${CHECK[@]}" "$EXPECTED" --results "$OUT/summary.json" || echo "(tolerances: docs/domain_adaptation.md)"
fi
