#!/usr/bin/env bash
# Evaluate a dense retriever on LAReQA (XQuAD-R or MLQA-R) with Pyserini: mono X->X, cross X->Y, multilingual.
#
#   bash recipes/eval_lareqa.sh MODEL DATASET_DIR OUTPUT_DIR [options]
#
#   MODEL        a Hugging Face model folder (with its tokenizer); its hybrid_tevatron.json (written by the trainer)
#                gives pooling / normalisation / prefixes / max lengths, else pass them (see below)
#   DATASET_DIR  a folder of LAReQA {lang}.json files (xquad-r/ or mlqa-r/; the folder name picks the dataset)
#   OUTPUT_DIR   created (or replaced with --overwrite) only when everything succeeded
#
# Stages: LAReQA -> Pyserini inputs (python -m hybrid_tevatron.eval.lareqa) -> encode each language's sentences
# once into a flat inner-product Faiss index -> merge them into the multilingual index
# (python -m pyserini.encode.merge_faiss_index) -> encode each language's questions once -> one
# python -m pyserini.search.faiss per search, top 500 then the whole pool for queries that need it (every
# relevant passage gets its full-pool rank) ->
# python -m pyserini.eval.trec_eval per run -> python -m hybrid_tevatron.eval.evaluate (tables, heatmap) and a
# check that the in-process metrics equal trec_eval's to 1e-4.
#
# Example (zero-shot multilingual-e5-small on XQuAD-R):
#   bash recipes/eval_lareqa.sh /models/me5-small ../shared/data/xquad-r out/me5-xquad-r \
#     --pooling mean --normalize --query_prefix 'query: ' --passage_prefix 'passage: ' \
#     --query_max_len 64 --passage_max_len 256
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/lib.sh"

usage() {
  cat <<EOF
usage: bash recipes/eval_lareqa.sh MODEL DATASET_DIR OUTPUT_DIR [options]

data selection:
  --languages "ar de en"      query/pool languages, space- or comma-separated (env LANGUAGES; default: all)
  --max_questions N           the first N question ids only, and the sentences of their articles (env MAX_QUESTIONS)
  --full_pool                 with --max_questions: keep every sentence in the pools
  --articles SPEC             keep these articles (index, title or @FILE, repeatable; env ARTICLES, space-separated)
  --exclude_articles SPEC     drop these articles (same forms; env EXCLUDE_ARTICLES)
  --name NAME                 row name in the result tables (default: the output folder's name)
  --seen_languages "en de"    training languages, for a seen/unseen breakdown (env SEEN_LANGUAGES; or en,de)
$ENCODING_FLAGS_HELP
EOF
}

LANGUAGES=${LANGUAGES:-}
MAX_QUESTIONS=${MAX_QUESTIONS:-}
FULL_POOL=${FULL_POOL:-0}
ARTICLES=(${ARTICLES:-})
EXCLUDE_ARTICLES=(${EXCLUDE_ARTICLES:-})
NAME=${NAME:-}
SEEN_LANGUAGES=${SEEN_LANGUAGES:-}
POSITIONAL=()
while [[ $# -gt 0 ]]; do
  common_flag "$@"
  if [[ $NSHIFT -gt 0 ]]; then shift "$NSHIFT"; continue; fi
  case "${1//-/_}" in
    __languages) LANGUAGES=${2:?--languages needs a value}; shift 2 ;;
    __max_questions) MAX_QUESTIONS=${2:?--max_questions needs a value}; shift 2 ;;
    __full_pool) FULL_POOL=1; shift ;;
    __articles) ARTICLES+=("${2:?--articles needs a value}"); shift 2 ;;
    __exclude_articles) EXCLUDE_ARTICLES+=("${2:?--exclude_articles needs a value}"); shift 2 ;;
    __name) NAME=${2:?--name needs a value}; shift 2 ;;
    __seen_languages) SEEN_LANGUAGES=${2:?--seen_languages needs a value}; shift 2 ;;
    _h|__help) usage; exit 0 ;;
    _*) usage >&2; die "unknown option $1" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
[[ ${#POSITIONAL[@]} == 3 ]] || { usage >&2; die "expected MODEL DATASET_DIR OUTPUT_DIR, got ${#POSITIONAL[@]} arguments"; }
MODEL=${POSITIONAL[0]}
DATASET_DIR=${POSITIONAL[1]}
LANGUAGES=${LANGUAGES//,/ }
SEEN_LANGUAGES=${SEEN_LANGUAGES//,/ }
[[ -d "$DATASET_DIR" ]] || die "dataset folder not found: $DATASET_DIR"
DATASET_DIR=$(cd "$DATASET_DIR" && pwd)
ls "$DATASET_DIR"/*.json >/dev/null 2>&1 || die "$DATASET_DIR holds no {lang}.json LAReQA files"
case "$ENCODER" in ours|pyserini) ;; *) die "--encoder must be ours or pyserini, got '$ENCODER'" ;; esac
case "$PYSERINI_CLI" in inprocess|subprocess) ;; *) die "--cli must be inprocess or subprocess" ;; esac
if [[ ! -e "$MODEL" && "$MODEL" == */*/* ]]; then die "model folder not found: $MODEL"; fi

start_output "${POSITIONAL[2]}"
NAME=${NAME:-$(basename "$OUTPUT_DIR")}
log "evaluating $MODEL on $DATASET_DIR -> $OUTPUT_DIR (work folder $WORK)"
resolve_encoding "$MODEL"

# 1. LAReQA -> corpora, topics, qrels, manifest; search plan
build_inputs() {
  local args=(--data_dir "$DATASET_DIR" --output_dir inputs)
  [[ -n "$LANGUAGES" ]] && args+=(--languages $LANGUAGES)
  [[ -n "$MAX_QUESTIONS" ]] && args+=(--max_questions "$MAX_QUESTIONS")
  [[ $FULL_POOL == 1 ]] && args+=(--full_pool)
  [[ ${#ARTICLES[@]} -gt 0 ]] && args+=(--articles "${ARTICLES[@]}")
  [[ ${#EXCLUDE_ARTICLES[@]} -gt 0 ]] && args+=(--exclude_articles "${EXCLUDE_ARTICLES[@]}")
  run_logged "$PYTHON" -m hybrid_tevatron.eval.lareqa "${args[@]}" >&2
  run_logged "$PYTHON" -m hybrid_tevatron.eval.pipeline plan-lareqa --manifest inputs --output inputs/plan.json >/dev/null
}
stage "1/5 LAReQA inputs" build_inputs

# 2. encode: one Faiss index per language, the multilingual index as their union (merged, not re-encoded), and
#    each language's questions once
stage "2/5 encode" encode_plan sentences

# 3. python -m pyserini.search.faiss for every search (mono, cross, multilingual)
stage "3/5 search" search_plan

# 4. python -m pyserini.eval.trec_eval for every run
stage "4/5 trec_eval" trec_eval_plan

# 5. metrics, tables, heatmap; in-process metrics vs trec_eval
report() {
  local args=(--manifest inputs --runs_dir runs --output_dir results --name "$NAME")
  [[ -n "$SEEN_LANGUAGES" ]] && args+=(--seen_languages $SEEN_LANGUAGES)
  run_logged "$PYTHON" -m hybrid_tevatron.eval.evaluate "${args[@]}" > "$WORK/results/summary.txt"
  run_logged "$PYTHON" -m hybrid_tevatron.eval.pipeline crosscheck --manifest inputs --runs_dir runs \
    --trec_eval_dir trec_eval --output results/crosscheck.json
}
mkdir -p "$WORK/results"
stage "5/5 evaluate" report

TOTAL=$(elapsed)
printf 'total\t%s\n' "$(( $(date +%s) - RECIPE_START ))" >> "$WORK/timings.tsv"
finish_output
log "done in $TOTAL"
echo
head -n 1 "$OUTPUT_DIR/results/summary.txt"
cat <<EOF

results:   $OUTPUT_DIR/results/results.json
tables:    $OUTPUT_DIR/results/results.md
heatmap:   $OUTPUT_DIR/results/cross_map.png
check:     $OUTPUT_DIR/results/crosscheck.json (in-process metrics vs trec_eval)
runs:      $OUTPUT_DIR/runs/{search}.trec   trec_eval: $OUTPUT_DIR/trec_eval/{search}.txt
indexes:   $OUTPUT_DIR/index/{lang/X,all}   queries: $OUTPUT_DIR/queries/X/embedding.pkl
commands:  $OUTPUT_DIR/commands.sh   timings: $OUTPUT_DIR/timings.tsv   settings: $OUTPUT_DIR/encoding.json
EOF
