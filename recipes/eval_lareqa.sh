#!/usr/bin/env bash
# Evaluate a dense retriever on LAReQA (XQuAD-R or MLQA-R) with Pyserini: mono X->X, cross X->Y, multilingual,
# rank distance; encode, Faiss search, trec_eval and the report in one process (hybrid_tevatron.eval.program).
#   bash recipes/eval_lareqa.sh MODEL DATASET_DIR OUTPUT_DIR [options]      # --help lists them
#   bash recipes/eval_lareqa.sh /models/me5-small ../shared/data/xquad-r out/me5-xquad-r \
#     --pooling mean --normalize --query_prefix 'query: ' --passage_prefix 'passage: ' --passage_max_len 256
# Outputs: OUTPUT_DIR/results/{results.json,results.md,cross_map.png,crosscheck.json}, runs/, trec_eval/,
# index/, queries/, commands.sh (every step, replayable), timings.tsv, encoding.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/python.sh"
exec "$PYTHON" -m hybrid_tevatron.eval lareqa "$@"
