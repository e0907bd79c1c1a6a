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
# heatmaps under OUT/eval/, timings.tsv, hardware.json. Then: check against recipes/expected/reproduce.yaml.
# Environment (defaults in brackets): MODEL [intfloat/multilingual-e5-small], XQUAD_R, MLQA_R (folders; see
# recipes/_common.sh), SEEDS [1 2 3], REGIMES [mono cross hybrid], MLQA_SEEDS [first seed], STEPS [100],
# BATCH [16], GROUP_SIZE [2], QUERY_MAX_LEN [32], PASSAGE_MAX_LEN [64], LR [3e-5], WARMUP_RATIO [0.1],
# TEMPERATURE [0.01], ALPHA [0.5], ZERO_SHOT [1], KEEP_MODELS [0: delete a model once all its evaluations exist].
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/_common.sh"
OUT=${1:-${OUT:-runs/reproduce}}
SEEDS=${SEEDS:-"1 2 3"}
REGIMES=${REGIMES:-"mono cross hybrid"}
MLQA_SEEDS=${MLQA_SEEDS-${SEEDS%% *}}
ZERO_SHOT=${ZERO_SHOT:-1}
KEEP_MODELS=${KEEP_MODELS:-0}

XQUAD_R=$(lareqa_dir xquad-r "${XQUAD_R:-}")
if [[ -n "$MLQA_SEEDS" || "$ZERO_SHOT" == 1 ]]; then MLQA_R=$(lareqa_dir mlqa-r "${MLQA_R:-}"); fi
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
TIMINGS=$OUT/timings.tsv

# config.json (another configuration in OUT is refused), plan.json, hardware.json
config_json | "$PYTHON" -m hybrid_tevatron.studies.reproduction start --root "$OUT" --seeds $SEEDS --regimes $REGIMES \
  --mlqa_seeds $MLQA_SEEDS --zero_shot "$ZERO_SHOT"
runs=(); for seed in $SEEDS; do for regime in $REGIMES; do runs+=("$regime-s$seed"); done; done
mlqa_runs=(); for seed in $MLQA_SEEDS; do for regime in $REGIMES; do mlqa_runs+=("$regime-s$seed"); done; done

# 1. training data: XQuAD-R training articles -> {lang}.jsonl; the held-out titles -> test_articles.txt
DATA=$OUT/data/xquad-train
prepare_xquad_train "$XQUAD_R" "$DATA"

eval_on() {  # MODEL DATASET OUTPUT_DIR: XQuAD-R on the held-out articles only, MLQA-R whole
  if [[ $2 == xquad-r ]]; then eval_model "$1" "$XQUAD_R" "$3" --articles "@$DATA/test_articles.txt"
  else eval_model "$1" "$MLQA_R" "$3"; fi
}
in_list() { local x=$1; shift; for y in "$@"; do [[ $x == "$y" ]] && return 0; done; return 1; }
timed() {  # STAGE CMD...: run CMD, append "STAGE<TAB>seconds" to timings.tsv on success
  local stage=$1 start=$SECONDS; shift
  "$@"
  printf '%s\t%d\n' "$stage" $((SECONDS - start)) >> "$TIMINGS"
}

# 2. zero-shot rows
if [[ "$ZERO_SHOT" == 1 ]]; then
  for dataset in xquad-r mlqa-r; do
    dir=$OUT/eval/$dataset/zero-shot
    has_results "$dir" && continue
    log "evaluate zero-shot $MODEL on $dataset -> $dir"
    timed "eval:$dataset:zero-shot" eval_on "$MODEL" "$dataset" "$dir"
  done
fi

# 3. training + evaluation per seed and regime (identical budgets)
for run in "${runs[@]}"; do
  regime=${run%-s*}; seed=${run##*-s}
  model_dir=$OUT/models/$run
  need_xq=0; need_ml=0
  has_results "$OUT/eval/xquad-r/$run" || need_xq=1
  if in_list "$run" "${mlqa_runs[@]}"; then has_results "$OUT/eval/mlqa-r/$run" || need_ml=1; fi
  (( need_xq || need_ml )) || { log "$run: done (results exist)"; continue; }
  if [[ ! -f "$model_dir/DONE" ]]; then
    log "train $run ($regime, seed $seed, $STEPS steps x $BATCH) -> $model_dir"
    timed "train:$run" train_model "$DATA" "$regime" "$seed" "$model_dir"
    touch "$model_dir/DONE"
  fi
  if (( need_xq )); then
    log "evaluate $run on held-out XQuAD-R -> $OUT/eval/xquad-r/$run"
    timed "eval:xquad-r:$run" eval_on "$model_dir" xquad-r "$OUT/eval/xquad-r/$run"
  fi
  if (( need_ml )); then
    log "evaluate $run on MLQA-R -> $OUT/eval/mlqa-r/$run"
    timed "eval:mlqa-r:$run" eval_on "$model_dir" mlqa-r "$OUT/eval/mlqa-r/$run"
  fi
  if [[ "$KEEP_MODELS" != 1 ]]; then rm -rf "$model_dir"; fi
done

# 4. tables and plots: summary.{json,md}, compare/{xquad-r,mlqa-r}/ (first seed side by side)
"$PYTHON" -m hybrid_tevatron.studies.reproduction summarize --root "$OUT"
echo "per run: $OUT/eval/{xquad-r,mlqa-r}/RUN/results/{results.md,cross_map.png}; timings: $TIMINGS"
EXPECTED=$ROOT/recipes/expected/reproduce.yaml
if [[ -f "$EXPECTED" ]] && "$PYTHON" -m hybrid_tevatron.studies.check_expected --matches_config "$EXPECTED" < "$OUT/config.json"; then
  echo
  "$PYTHON" -m hybrid_tevatron.studies.check_expected "$EXPECTED" --results "$OUT/summary.json" || \
    echo "(rows other than OK/OKish: see the tolerances in docs/reproduction.md)"
fi
