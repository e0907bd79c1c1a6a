#!/usr/bin/env bash
# The paper's comparison on real data, at a budget that fits a 2-core CPU (about 2 h 20 min on 2 cores, or about
# 1 h 50 min with MLQA_SEEDS="" (MLQA-R for the zero-shot row only); stage times in docs/reproduction.md; a GPU,
# used automatically when present, shortens training and encoding, while Pyserini's search stays on the CPU):
#   multilingual-e5-small fine-tuned on the XQuAD-R training articles (9 languages; el and vi held out as unseen)
#   with mono (X-X-mono), cross (X-Y) and hybrid (alpha 0.5) batches, identical budgets, SEEDS seeds each, plus the
#   zero-shot model; evaluated on the held-out XQuAD-R articles and zero-shot on MLQA-R (MLQA_SEEDS seeds).
#   bash recipes/reproduce.sh [OUT]                        # default runs/reproduce
# Resumable: a finished training run (OUT/models/RUN/DONE) or evaluation (OUT/eval/DATASET/RUN/results/) is
# skipped; a different configuration in an existing OUT is refused. Outputs: OUT/summary.{json,md} (mean ± std per
# regime), OUT/compare/{xquad-r,mlqa-r}/compare.{md,png} (first seed, side by side), per-run reports and X->Y
# heatmaps under OUT/eval/, commands.sh, timings.tsv, hardware.json. Then: check against recipes/expected/reproduce.yaml.
# Environment: the budget (python -m hybrid_tevatron.studies.budget: MODEL, STEPS [100], BATCH [16], ...), XQUAD_R,
# MLQA_R (folders; see recipes/_common.sh), SEEDS [1 2 3], REGIMES [mono cross hybrid], MLQA_SEEDS [first seed],
# ZERO_SHOT [1], KEEP_MODELS [0: delete a model once all its evaluations exist] (hybrid_tevatron.studies.reproduction).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/_common.sh"
OUT=${1:-${OUT:-runs/reproduce}}
XQUAD_R=$(lareqa_dir xquad-r "${XQUAD_R:-}")
if [[ "${MLQA_SEEDS-x}" != "" || "${ZERO_SHOT:-1}" == 1 ]]; then MLQA_R=$(lareqa_dir mlqa-r "${MLQA_R:-}"); fi
export XQUAD_R MLQA_R
"$PYTHON" -m hybrid_tevatron.studies.reproduction run --root "$OUT"
EXPECTED=$ROOT/recipes/expected/reproduce.yaml
CHECK=("$PYTHON" -m hybrid_tevatron.studies.check_expected)
if [[ -f "$EXPECTED" ]] && "${CHECK[@]}" --matches_config "$EXPECTED" < "$OUT/config.json"; then
  echo
  "${CHECK[@]}" "$EXPECTED" --results "$OUT/summary.json" || echo "(rows other than OK/OKish: see the tolerances in docs/reproduction.md)"
fi
