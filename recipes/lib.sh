# Shared by recipes/eval_lareqa.sh and recipes/eval_miracl.sh (sourced, not run).
#
# Conventions: every stage works inside $WORK, a temporary folder next to the output folder, with paths relative
# to it (Pyserini picks encoder classes from substrings of path arguments, so user folder names stay out of
# them); $WORK is renamed onto the output folder only when everything succeeded, and removed on failure.
# Every Pyserini / hybrid_tevatron command is appended to $WORK/commands.sh, which replays from the output folder.

source "$ROOT/recipes/python.sh"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

# ------------------------------------------------------------------------------------------------ flags
# Encoding flags shared by both recipes; env vars give the same settings (flags win).
POOLING=${POOLING:-}
NORMALIZE=${NORMALIZE:-}          # 1 / 0; empty = from the model's hybrid_tevatron.json
QUERY_PREFIX=${QUERY_PREFIX-__unset__}
PASSAGE_PREFIX=${PASSAGE_PREFIX-__unset__}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-}
ENCODER=${ENCODER:-ours}          # ours | pyserini
DEVICE=${DEVICE:-}
DTYPE=${DTYPE:-auto}              # ours only: auto | fp32 | bf16 | fp16
BATCH_SIZE=${BATCH_SIZE:-64}
THREADS=${THREADS:-1}
PYSERINI_CLI=${PYSERINI_CLI:-inprocess}   # inprocess | subprocess
OVERWRITE=${OVERWRITE:-0}

ENCODING_FLAGS_HELP="encoding (default: the model's hybrid_tevatron.json, written by the trainer):
  --pooling cls|mean          (env POOLING)
  --normalize | --no-normalize  L2-normalise embeddings (env NORMALIZE=1|0)
  --query_prefix STR          e.g. 'query: ' (env QUERY_PREFIX)
  --passage_prefix STR        e.g. 'passage: ' (env PASSAGE_PREFIX)
  --query_max_len N           (env QUERY_MAX_LEN; default 32, the trainer's)
  --passage_max_len N         (env PASSAGE_MAX_LEN; default 128)
  --encoder ours|pyserini     ours: python -m hybrid_tevatron.pyserini.encode; pyserini: python -m pyserini.encode
                              --encoder-class auto + python -m pyserini.encode.query (env ENCODER; default ours)
  --device DEV                cpu, cuda, cuda:0 ... (env DEVICE; default cuda:0 when available, else cpu)
  --dtype auto|fp32|bf16|fp16 --encoder ours: autocast dtype (env DTYPE; auto = bf16 on CUDA, fp32 on CPU;
                              bf16 also on CPUs with bf16 instructions). Pyserini's encoder is always fp32
  --batch_size N              encoding batch size (env BATCH_SIZE; default 64)
  --threads N                 Faiss search threads (env THREADS; default 1)
  --cli inprocess|subprocess  run the Pyserini CLIs in one Python process or one process each (env PYSERINI_CLI)
  --overwrite                 replace an existing, non-empty output folder (env OVERWRITE=1)"

# common_flag "$@": consume one shared flag (and its value); sets NSHIFT to the number of words used, 0 if none.
common_flag() {
  NSHIFT=2
  local flag=${1//-/_} value=${2-}
  case "$flag" in
    __pooling) POOLING=$value ;;
    __normalize) NORMALIZE=1; NSHIFT=1 ;;
    __no_normalize) NORMALIZE=0; NSHIFT=1 ;;
    __query_prefix) QUERY_PREFIX=$value ;;
    __passage_prefix) PASSAGE_PREFIX=$value ;;
    __query_max_len) QUERY_MAX_LEN=$value ;;
    __passage_max_len) PASSAGE_MAX_LEN=$value ;;
    __encoder) ENCODER=$value ;;
    __device) DEVICE=$value ;;
    __dtype) DTYPE=$value ;;
    __batch_size) BATCH_SIZE=$value ;;
    __threads) THREADS=$value ;;
    __cli) PYSERINI_CLI=$value ;;
    __overwrite) OVERWRITE=1; NSHIFT=1 ;;
    *) NSHIFT=0; return 0 ;;
  esac
  if [[ $NSHIFT == 2 && $# -lt 2 ]]; then die "$1 needs a value"; fi
}

# ------------------------------------------------------------------------------------------------ output folder
# start_output OUTPUT_DIR: check it, create $WORK beside it, remove $WORK on any failure.
start_output() {
  OUTPUT_DIR=$1
  [[ -n "$OUTPUT_DIR" ]] || die "no output folder given"
  if [[ -e "$OUTPUT_DIR" && ! -d "$OUTPUT_DIR" ]]; then die "$OUTPUT_DIR exists and is not a folder"; fi
  if [[ -d "$OUTPUT_DIR" && -n "$(ls -A "$OUTPUT_DIR")" && $OVERWRITE != 1 ]]; then
    die "$OUTPUT_DIR exists and is not empty (pass --overwrite or OVERWRITE=1 to replace it)"
  fi
  local parent
  parent=$(dirname "$OUTPUT_DIR")
  mkdir -p "$parent" || die "cannot create $parent"
  OUTPUT_DIR=$(cd "$parent" && pwd)/$(basename "$OUTPUT_DIR")
  # one evaluation per output folder at a time: the lock lives as long as this shell (released on any exit)
  LOCK_FILE="$parent/.$(basename "$OUTPUT_DIR").lock"
  exec 9>>"$LOCK_FILE" || die "cannot create the lock $LOCK_FILE"
  flock -n 9 || die "another evaluation is writing $OUTPUT_DIR (lock $LOCK_FILE held); wait for it or pick another folder"
  WORK=$(mktemp -d "$parent/.$(basename "$OUTPUT_DIR").tmp.XXXXXX") || die "cannot create a work folder in $parent"
  WORK=$(cd "$WORK" && pwd)
  trap '_cleanup_work $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  printf '#!/usr/bin/env bash\n# Commands of this evaluation, replayable from this folder (paths are relative to it).\nset -euo pipefail\ncd "$(dirname "${BASH_SOURCE[0]}")"\n' \
    > "$WORK/commands.sh"
  : > "$WORK/timings.tsv"
  RECIPE_START=$(date +%s)
}

_cleanup_work() {
  local rc=$1
  if [[ -n "${WORK:-}" && -d "$WORK" ]]; then
    if [[ $rc != 0 ]]; then
      if [[ ${KEEP_WORK:-0} == 1 ]]; then
        echo "error: failed (exit $rc); the partial work folder is kept at $WORK (KEEP_WORK=1)" >&2
      else
        rm -rf "$WORK"
        echo "error: failed (exit $rc); nothing was written to $OUTPUT_DIR" >&2
      fi
    fi
    rm -f "$LOCK_FILE"
  fi
}

# finish_output: rename $WORK onto $OUTPUT_DIR (replacing an old one only now, when everything succeeded).
# Files under results/ that name the work folder are rewritten to name the output folder.
finish_output() {
  local f
  while IFS= read -r -d '' f; do
    if grep -qF "$WORK" "$f"; then
      WORK_PATH=$WORK OUT_PATH=$OUTPUT_DIR "$PYTHON" - "$f" <<'PYEOF'
import os, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read().replace(os.environ["WORK_PATH"], os.environ["OUT_PATH"])
open(path + ".tmp", "w", encoding="utf-8").write(text)
os.replace(path + ".tmp", path)
PYEOF
    fi
  done < <(find "$WORK/results" -type f \( -name '*.json' -o -name '*.md' -o -name '*.txt' \) -print0 2>/dev/null)
  if [[ -d "$OUTPUT_DIR" && -n "$(ls -A "$OUTPUT_DIR")" && $OVERWRITE != 1 ]]; then
    die "$OUTPUT_DIR appeared while this evaluation ran and is not empty (pass --overwrite or OVERWRITE=1 to replace it)"
  fi
  if [[ -d "$OUTPUT_DIR" ]]; then
    local old="$WORK.old"
    mv "$OUTPUT_DIR" "$old" && mv "$WORK" "$OUTPUT_DIR" && rm -rf "$old"
  else
    mv "$WORK" "$OUTPUT_DIR"
  fi
  WORK=
  rm -f "$LOCK_FILE"
  trap - EXIT
}

# ------------------------------------------------------------------------------------------------ running
# run_logged CMD...: append CMD (shell-quoted) to commands.sh, run it in $WORK.
run_logged() {
  local q
  printf -v q '%q ' "$@"
  echo "${q% }" >> "$WORK/commands.sh"
  (cd "$WORK" && "$@")
}

# queue python -m MODULE ARGS...: add a Pyserini / hybrid_tevatron command to the job list of the current stage.
# run_queued LABEL: run the queued commands (in one Python process unless --cli subprocess), logging each one.
JOBS_FILE=
queue() {
  [[ -n "$JOBS_FILE" ]] || { JOBS_FILE=$(mktemp "$WORK/.jobs.XXXXXX"); }
  local q
  printf -v q '%q ' "$@"
  echo "${q% }" >> "$JOBS_FILE"
}
run_queued() {
  local label=$1
  [[ -n "$JOBS_FILE" ]] || return 0
  "$PYTHON" -m hybrid_tevatron.eval.pipeline run "$JOBS_FILE" --label "$label" --cwd "$WORK" \
    --cli "$PYSERINI_CLI" --commands "$WORK/commands.sh"
  rm -f "$JOBS_FILE"
  JOBS_FILE=
}

# stage NAME CMD...: run CMD, log start/end, append "NAME<TAB>seconds" to timings.tsv.
stage() {
  local name=$1 start end
  shift
  log "== $name"
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$name" 'BEGIN { printf "%s\t%.1f\n", n, e - s }' >> "$WORK/timings.tsv"
  log "   $name done ($(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')s)"
}

# ------------------------------------------------------------------------------------------------ encoding
# resolve_encoding MODEL: check the model, read its settings -> ENC_* variables, $WORK/encoding.json,
# and a link $WORK/model -> MODEL (Pyserini then sees the neutral path "model").
resolve_encoding() {
  local model=$1 out
  [[ -n "$model" ]] || die "no model given"
  case "$DTYPE" in auto|fp32|bf16|fp16) ;; *) die "--dtype must be auto, fp32, bf16 or fp16, got '$DTYPE'" ;; esac
  if [[ $ENCODER == pyserini && $DTYPE != auto && $DTYPE != fp32 ]]; then
    die "--dtype $DTYPE needs --encoder ours (Pyserini's auto encoder runs in fp32)"
  fi
  local args=(--model "$model" --encoder "$ENCODER" --output "$WORK/encoding.json")
  [[ -n "$POOLING" ]] && args+=(--pooling "$POOLING")
  case "$NORMALIZE" in
    1|true|yes) args+=(--normalize) ;;
    0|false|no) args+=(--no-normalize) ;;
    "") ;;
    *) die "NORMALIZE must be 1 or 0, got '$NORMALIZE'" ;;
  esac
  [[ "$QUERY_PREFIX" != __unset__ ]] && args+=(--query_prefix "$QUERY_PREFIX")
  [[ "$PASSAGE_PREFIX" != __unset__ ]] && args+=(--passage_prefix "$PASSAGE_PREFIX")
  [[ -n "$QUERY_MAX_LEN" ]] && args+=(--query_max_len "$QUERY_MAX_LEN")
  [[ -n "$PASSAGE_MAX_LEN" ]] && args+=(--passage_max_len "$PASSAGE_MAX_LEN")
  out=$("$PYTHON" -m hybrid_tevatron.eval.pipeline encoding "${args[@]}") || exit 2
  local line key value
  while IFS= read -r line; do
    key=${line%%=*}
    value=${line#*=}
    eval "ENC_$key=$value"
  done <<< "$out"
  if [[ -d "$model" ]]; then
    ln -s "$(cd "$model" && pwd)" "$WORK/model"
    MODEL_ARG=model
  else
    MODEL_ARG=$model   # a Hub id
  fi
  if [[ -z "$DEVICE" ]]; then
    DEVICE=$("$PYTHON" -c "import torch; print('cuda:0' if torch.cuda.is_available() else 'cpu')")
  fi
  if [[ $ENCODER == ours ]] && ! "$PYTHON" -c "import hybrid_tevatron.pyserini.encode" 2>/dev/null; then
    die "ENCODER=ours needs hybrid_tevatron.pyserini.encode, which is not importable here; use --encoder pyserini"
  fi
  log "model $model: $ENC_MODEL_TYPE, dim $ENC_HIDDEN_SIZE, pooling $ENC_POOLING, normalize $ENC_NORMALIZE," \
      "query prefix '$ENC_QUERY_PREFIX' (max $ENC_QUERY_MAX_LEN), passage prefix '$ENC_PASSAGE_PREFIX'" \
      "(max $ENC_PASSAGE_MAX_LEN); encoder $ENCODER on $DEVICE"
}

# encode_corpus CORPUS_JSONL INDEX_DIR (both relative to $WORK): queue the job writing a flat inner-product Faiss
# index (INDEX_DIR/index + INDEX_DIR/docid); check_index INDEX_DIR after run_queued.
encode_corpus() {
  local corpus=$1 index=$2
  if [[ $ENCODER == pyserini ]]; then
    local enc=(--encoder "$MODEL_ARG" --encoder-class auto --fields text --dimension "$ENC_HIDDEN_SIZE"
               --device "$DEVICE" --pooling "$ENC_POOLING" --max-length "$ENC_PASSAGE_MAX_LEN"
               --batch-size "$BATCH_SIZE")
    [[ $ENC_NORMALIZE == 1 ]] && enc+=(--l2-norm)
    [[ -n "$ENC_PYSERINI_PASSAGE_PREFIX" ]] && enc+=(--prefix "$ENC_PYSERINI_PASSAGE_PREFIX")
    queue python -m pyserini.encode input --corpus "$corpus" --fields text \
      output --embeddings "$index" --to-faiss encoder "${enc[@]}"
  else
    local enc=(--model "$MODEL_ARG" --corpus "$corpus" --output "$index" --pooling "$ENC_POOLING"
               --prefix "$ENC_PASSAGE_PREFIX" --max_len "$ENC_PASSAGE_MAX_LEN" --device "$DEVICE"
               --batch_size "$BATCH_SIZE" --dimension "$ENC_HIDDEN_SIZE" --dtype "$DTYPE")
    if [[ $ENC_NORMALIZE == 1 ]]; then enc+=(--normalize); else enc+=(--no-normalize); fi
    queue python -m hybrid_tevatron.pyserini.encode "${enc[@]}"
  fi
}

# encode_queries TOPICS_TSV OUT_DIR (relative to $WORK): queue the job writing OUT_DIR/embedding.pkl (Pyserini's
# pre-encoded queries, for pyserini.search.faiss --encoded-queries); check_queries OUT_DIR after run_queued.
encode_queries() {
  local topics=$1 out=$2
  mkdir -p "$WORK/$out"
  if [[ $ENCODER == pyserini ]]; then
    local enc=(--topics "$topics" --encoder "$MODEL_ARG" --output "$out/embedding.pkl" --device "$DEVICE"
               --pooling "$ENC_POOLING" --max-length "$ENC_QUERY_MAX_LEN")
    [[ $ENC_NORMALIZE == 1 ]] && enc+=(--l2-norm)
    [[ -n "$ENC_PYSERINI_QUERY_PREFIX" ]] && enc+=(--prefx "$ENC_PYSERINI_QUERY_PREFIX")
    queue python -m pyserini.encode.query "${enc[@]}"
  else
    local enc=(--model "$MODEL_ARG" --topics "$topics" --output "$out" --pooling "$ENC_POOLING"
               --prefix "$ENC_QUERY_PREFIX" --max_len "$ENC_QUERY_MAX_LEN" --device "$DEVICE"
               --batch_size "$BATCH_SIZE" --dimension "$ENC_HIDDEN_SIZE" --dtype "$DTYPE" --queries)
    if [[ $ENC_NORMALIZE == 1 ]]; then enc+=(--normalize); else enc+=(--no-normalize); fi
    queue python -m hybrid_tevatron.pyserini.encode "${enc[@]}"
  fi
}

check_index() {
  [[ -s "$WORK/$1/index" && -s "$WORK/$1/docid" ]] || die "encoding wrote no Faiss index in $1"
}
check_queries() {
  [[ -s "$WORK/$1/embedding.pkl" ]] || die "query encoding wrote no $1/embedding.pkl"
}

# merge_indexes OUT_DIR PART_DIR...: queue Pyserini's merge_faiss_index over the parts, which must be all the
# folders of one parent (merge_faiss_index takes a glob pattern).
merge_indexes() {
  local out=$1 parts_parent
  shift
  parts_parent=$(dirname "$1")
  local p
  for p in "$@"; do [[ $(dirname "$p") == "$parts_parent" ]] || die "merge parts must share a folder: $*"; done
  queue python -m pyserini.encode.merge_faiss_index --dimension "$ENC_HIDDEN_SIZE" \
    --input "$parts_parent/*" --output "$out"
}

# elapsed: "12m34s" since start_output
elapsed() {
  local s=$(( $(date +%s) - RECIPE_START ))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# ------------------------------------------------------------------------------------------------ plan stages
# encode_plan UNIT: list the plan of $WORK/inputs/plan.json once; encode every corpus into index/KEY, build each
# merged index as the union of its parts (not re-encoded), encode each query set once into queries/KEY (reused by
# every search through --encoded-queries); all jobs in one Python process (--cli subprocess: one each). Then check
# that every index holds its corpus (a merged one: all corpora) and every query file exists. UNIT: what the log
# calls the corpus items (sentences, documents).
encode_plan() {
  local unit=$1 line key path size parts total=0 corpora merged queries
  local plan=(--plan "$WORK/inputs/plan.json")
  mapfile -t corpora < <("$PYTHON" -m hybrid_tevatron.eval.pipeline list "${plan[@]}" corpora)
  mapfile -t merged < <("$PYTHON" -m hybrid_tevatron.eval.pipeline list "${plan[@]}" merged)
  mapfile -t queries < <("$PYTHON" -m hybrid_tevatron.eval.pipeline list "${plan[@]}" queries)
  (( ${#corpora[@]} && ${#queries[@]} )) || die "the search plan lists no corpora or no queries"
  for line in "${corpora[@]}"; do
    IFS=$'\t' read -r key path size <<< "$line"
    log "   corpus $key: $size $unit"
    encode_corpus "inputs/$path" "index/$key"
  done
  for line in "${merged[@]}"; do
    IFS=$'\t' read -r key parts <<< "$line"
    local dirs=()
    for p in $parts; do dirs+=("index/$p"); done
    merge_indexes "index/$key" "${dirs[@]}"
  done
  for line in "${queries[@]}"; do
    IFS=$'\t' read -r key path <<< "$line"
    encode_queries "inputs/$path" "queries/$key"
  done
  run_queued encode
  for line in "${corpora[@]}"; do
    IFS=$'\t' read -r key path size <<< "$line"
    check_index "index/$key"
    [[ $(wc -l < "$WORK/index/$key/docid") == "$size" ]] || die "index/$key holds not the $size $unit of $path"
    total=$((total + size))
  done
  for line in "${merged[@]}"; do
    IFS=$'\t' read -r key parts <<< "$line"
    check_index "index/$key"
    [[ $(wc -l < "$WORK/index/$key/docid") == "$total" ]] || die "merged index/$key does not hold all $total $unit"
  done
  for line in "${queries[@]}"; do
    IFS=$'\t' read -r key path <<< "$line"
    check_queries "queries/$key"
  done
}

# search_plan: python -m pyserini.search.faiss for every search of the plan (runs/)
search_plan() {
  "$PYTHON" -m hybrid_tevatron.eval.pipeline search --plan "$WORK/inputs/plan.json" \
    --index_root "$WORK/index" --queries_root "$WORK/queries" --runs_dir "$WORK/runs" --cwd "$WORK" \
    --threads "$THREADS" --cli "$PYSERINI_CLI" --commands "$WORK/commands.sh"
}

# trec_eval_plan: python -m pyserini.eval.trec_eval for every run, with the plan's trec_eval flags (trec_eval/)
trec_eval_plan() {
  "$PYTHON" -m hybrid_tevatron.eval.pipeline trec-eval --plan "$WORK/inputs/plan.json" \
    --runs_dir "$WORK/runs" --output_dir "$WORK/trec_eval" --cwd "$WORK" --cli "$PYSERINI_CLI" \
    --commands "$WORK/commands.sh"
}
