#!/usr/bin/env bash
# Evaluate a dense retriever on MIRACL with Pyserini: nDCG@10 and R@100 per language.
#
#   bash recipes/eval_miracl.sh MODEL OUTPUT_DIR --languages "de yo sw" [options]
#
# Per language: topics + qrels (Pyserini names miracl-v1.0-{lang}-{split} by default, downloaded by Pyserini on
# first use into ~/.cache/pyserini/topics-and-qrels; or local files), the corpus (Hugging Face dataset
# miracl/miracl-corpus by default; or a local copy) -> Pyserini JSONL (python -m hybrid_tevatron.eval.miracl prepare)
# -> encode the corpus into a flat inner-product Faiss index and the queries once -> python -m pyserini.search.faiss
# (top 100) -> python -m pyserini.eval.trec_eval -c -M 100 -m ndcg_cut.10 and -c -m recall.100 -> a table.
#
# Offline / local sources ({lang} and {split} are filled in per language):
#   --topics /data/miracl/topics.miracl-v1.0-{lang}-dev.tsv --qrels /data/miracl/qrels.miracl-v1.0-{lang}-dev.tsv
#   --corpus /data/miracl-corpus          (a local copy of the HF repo, holding miracl-corpus-v1.0-{lang}/)
#
# This recipe encodes each corpus in one process. For the large languages (English: 33 M passages), encode the
# Pyserini JSONL that step 1 writes (OUTPUT_DIR/inputs/corpus/{lang}.jsonl) on N GPUs, one shard per process,
# merge, and search it (docs/evaluation.md, "Beyond one machine"):
#   torchrun --standalone --nproc_per_node 8 -m hybrid_tevatron.pyserini.encode --model MODEL \
#     --corpus OUTPUT_DIR/inputs/corpus/en.jsonl --output en.shards --batch_size 256
#   python -m hybrid_tevatron.pyserini.merge --shards en.shards --output en.index
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/lib.sh"

usage() {
  cat <<EOF
usage: bash recipes/eval_miracl.sh MODEL OUTPUT_DIR --languages "de yo" [options]

data:
  --languages "de yo"   MIRACL languages, space- or comma-separated (env LANGUAGES; required)
  --split dev           (env SPLIT; default dev)
  --topics PATTERN      Pyserini topics name or TSV file (env TOPICS; default miracl-v1.0-{lang}-{split})
  --qrels PATTERN       Pyserini qrels name or TREC qrels file (env QRELS; default miracl-v1.0-{lang}-{split})
  --corpus SOURCE       hf:REPO, a .jsonl[.gz] file or a folder (env CORPUS; default hf:miracl/miracl-corpus)
  --name NAME           row name in the table (default: the output folder's name)
$ENCODING_FLAGS_HELP
EOF
}

LANGUAGES=${LANGUAGES:-}
SPLIT=${SPLIT:-dev}
TOPICS=${TOPICS:-}
QRELS=${QRELS:-}
CORPUS=${CORPUS:-}
NAME=${NAME:-}
POSITIONAL=()
while [[ $# -gt 0 ]]; do
  common_flag "$@"
  if [[ $NSHIFT -gt 0 ]]; then shift "$NSHIFT"; continue; fi
  case "${1//-/_}" in
    __languages) LANGUAGES=${2:?--languages needs a value}; shift 2 ;;
    __split) SPLIT=${2:?--split needs a value}; shift 2 ;;
    __topics) TOPICS=${2:?--topics needs a value}; shift 2 ;;
    __qrels) QRELS=${2:?--qrels needs a value}; shift 2 ;;
    __corpus) CORPUS=${2:?--corpus needs a value}; shift 2 ;;
    __name) NAME=${2:?--name needs a value}; shift 2 ;;
    _h|__help) usage; exit 0 ;;
    _*) usage >&2; die "unknown option $1" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
[[ ${#POSITIONAL[@]} == 2 ]] || { usage >&2; die "expected MODEL OUTPUT_DIR, got ${#POSITIONAL[@]} arguments"; }
[[ -n "$LANGUAGES" ]] || { usage >&2; die "--languages is required (e.g. --languages \"de yo\")"; }
MODEL=${POSITIONAL[0]}
LANGUAGES=${LANGUAGES//,/ }
case "$ENCODER" in ours|pyserini) ;; *) die "--encoder must be ours or pyserini, got '$ENCODER'" ;; esac
case "$PYSERINI_CLI" in inprocess|subprocess) ;; *) die "--cli must be inprocess or subprocess" ;; esac
if [[ ! -e "$MODEL" && "$MODEL" == */*/* ]]; then die "model folder not found: $MODEL"; fi
# local sources are read from the work folder: make their paths absolute
# (a topics/qrels value is a file when it exists, holds a / or ends in .tsv/.txt; else a Pyserini name)
abs_if_file() {
  if [[ -e "$1" || "$1" == */* || "$1" == *.tsv || "$1" == *.txt ]]; then realpath -m "$1"; else echo "$1"; fi
}
[[ -n "$TOPICS" ]] && TOPICS=$(abs_if_file "$TOPICS")
[[ -n "$QRELS" ]] && QRELS=$(abs_if_file "$QRELS")
[[ -n "$CORPUS" && "$CORPUS" != hf:* ]] && CORPUS=$(realpath -m "$CORPUS")

start_output "${POSITIONAL[1]}"
NAME=${NAME:-$(basename "$OUTPUT_DIR")}
log "evaluating $MODEL on MIRACL ($LANGUAGES, $SPLIT) -> $OUTPUT_DIR (work folder $WORK)"
resolve_encoding "$MODEL"

# 1. topics, qrels, corpus -> Pyserini inputs + search plan
prepare() {
  local args=(prepare --languages $LANGUAGES --output_dir inputs --split "$SPLIT")
  [[ -n "$TOPICS" ]] && args+=(--topics "$TOPICS")
  [[ -n "$QRELS" ]] && args+=(--qrels "$QRELS")
  [[ -n "$CORPUS" ]] && args+=(--corpus "$CORPUS")
  run_logged "$PYTHON" -m hybrid_tevatron.eval.miracl "${args[@]}" >&2
}
stage "1/5 MIRACL inputs" prepare

# 2. one Faiss index per language; queries encoded once
stage "2/5 encode" encode_plan documents

# 3. python -m pyserini.search.faiss --hits 100 per language
stage "3/5 search" search_plan

# 4. python -m pyserini.eval.trec_eval -c -M 100 -m ndcg_cut.10 / -c -m recall.100
stage "4/5 trec_eval" trec_eval_plan

# 5. table
mkdir -p "$WORK/results"
stage "5/5 report" run_logged "$PYTHON" -m hybrid_tevatron.eval.miracl report --inputs inputs \
  --trec_eval_dir trec_eval --output_dir results --name "$NAME"

printf 'total\t%s\n' "$(( $(date +%s) - RECIPE_START ))" >> "$WORK/timings.tsv"
TOTAL=$(elapsed)
finish_output
log "done in $TOTAL"
echo
cat "$OUTPUT_DIR/results/results.md"
cat <<EOF

results:   $OUTPUT_DIR/results/results.json
table:     $OUTPUT_DIR/results/results.md
runs:      $OUTPUT_DIR/runs/{lang}.trec   trec_eval: $OUTPUT_DIR/trec_eval/{lang}.txt
indexes:   $OUTPUT_DIR/index/{lang}   queries: $OUTPUT_DIR/queries/{lang}/embedding.pkl
commands:  $OUTPUT_DIR/commands.sh   timings: $OUTPUT_DIR/timings.tsv   settings: $OUTPUT_DIR/encoding.json
EOF
