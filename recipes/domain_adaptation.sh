#!/usr/bin/env bash
# Domain adaptation of hybrid batch training, scored by caption proxy (captions of the same image in other
# languages stand in for the image; not image retrieval). Cells, time, outputs: docs/domain_adaptation.md.
#   bash recipes/domain_adaptation.sh [OUT] [--stop_after MINUTES] [--accept_changed_code]
#   bash recipes/domain_adaptation.sh replay --run RUN --root DIR     # one recorded run again, against the records
# OUT (default runs/domain_adaptation) holds data, models and evaluations; what lasts is recorded in RECORDS (default:
# this checkout's results/domain_adaptation, tracked), and the same command resumes from the records on any machine.
# Environment: the budget (python -m hybrid_tevatron.studies.budget: MODEL, STEPS, BATCH, ...), SEEDS [1 2: headline
# cells; the others the first], CELLS, EVAL_SETS [xtd10 m30k-desc m30k-2016 xquad-r], EVAL_IMAGES [all], EVAL_QUESTIONS [all],
# EVAL_LANGUAGES, FLICKR_IMAGES [all], KEEP_MODELS [0], XQUAD_R, MULTI30K, MULTI30K_TASK2, XTD10
# (docs/domain_adaptation.md says what each does).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/_common.sh"
OUT=${OUT:-runs/domain_adaptation}
if [[ $# -gt 0 && $1 != --* ]]; then OUT=$1; shift; fi
XQUAD_R=$(lareqa_dir xquad-r "${XQUAD_R:-}")
DATA=$(dirname "$ROOT")/shared/data  # the caption folders' default: ../shared/data beside the checkout
export XQUAD_R XTD10=${XTD10:-$DATA/xtd10} MULTI30K=${MULTI30K:-$DATA/multi30k}
export MULTI30K_TASK2=${MULTI30K_TASK2:-$DATA/multi30k-task2}
RECORDS=${RECORDS:-$ROOT/results/domain_adaptation}
if [[ $OUT == replay ]]; then exec "$PYTHON" -m hybrid_tevatron.studies.replay --records "$RECORDS" "$@"; fi
"$PYTHON" -m hybrid_tevatron.studies.domain_study run --root "$OUT" --records "$RECORDS" "$@"
[[ -f "$OUT/summary.json" ]] || exit 0  # stopped at the deadline: the line above says what is left
EXPECTED=$ROOT/recipes/expected/domain_adaptation.yaml
CHECK=("$PYTHON" -m hybrid_tevatron.studies.check_expected)
if [[ -f "$EXPECTED" ]] && "${CHECK[@]}" --matches_config "$EXPECTED" < "$OUT/config.json"; then
  "${CHECK[@]}" "$EXPECTED" --results "$OUT/summary.json" || echo "(tolerances: docs/domain_adaptation.md)"
fi
