#!/usr/bin/env bash
# Full-scale hybrid batch training with the paper's settings (Elmahdy, Lin & Ahmad 2024, arXiv:2408.10536):
# AdamW, learning rate 3e-5, weight decay 0.01, batch 100 (the global batch of one optimizer step, i.e. of one
# contrastive problem), alpha 0.5, on the parallel mMARCO data of recipes/prepare_mmarco.sh (7 languages).
#   bash recipes/prepare_mmarco.sh data/mmarco                      # once (needs Hub access)
#   bash recipes/train_paper.sh [TRAIN_DIR] [OUTPUT_DIR]             # defaults data/mmarco/train, runs/paper-xlmr
#   MODEL=sentence-transformers/LaBSE POOLING=cls bash recipes/train_paper.sh data/mmarco/train runs/paper-labse
# Uses every visible GPU (torchrun, one process per GPU; NGPUS=N to choose); BATCH must be divisible by the number
# of processes, NNODES x NGPUS (the paper's 100: 1, 2, 4, 5, 10, 20 or 25 of them; on 8 GPUs NGPUS=4 or BATCH=96).
# No gradient accumulation: it would shrink the contrastive batch. Settings the paper leaves open are marked (⚑)
# and are environment variables: REGIME (hybrid|mono|cross), ALPHA, EPOCHS (⚑ 1), MAX_STEPS, WARMUP_RATIO (⚑ 0.1),
# GROUP_SIZE (⚑ 2: the query, its positive and one hard negative, as in mMARCO's triples), QUERY_MAX_LEN (⚑ 64),
# PASSAGE_MAX_LEN (⚑ 256), POOLING (⚑ mean for XLM-R, cls for LaBSE), TEMPERATURE (⚑ 0.05), SEED, LANGS,
# PRECISION (bf16|fp16|fp32; default bf16 on GPUs that support it), RESUME (last or a checkpoint folder: continue
# an interrupted run in OUTPUT_DIR), EXTRA (more flags for the driver).
# Sharded optimizer states (pip install deepspeed; GPUs only):
#   EXTRA="--deepspeed recipes/configs/ds_zero3_xlmr_large.json" bash recipes/train_paper.sh ...
#   EXTRA="--fsdp full_shard --fsdp_config recipes/configs/fsdp_xlmr.json" bash recipes/train_paper.sh ...
# Several nodes (OUTPUT_DIR and TRAIN_DIR on a shared filesystem): run this script on every node with NNODES=M
# RDZV_ENDPOINT=NODE0:29500 [RDZV_ID=run-1] (torchrun's c10d rendezvous; docs/training.md, "Several GPUs and nodes").
# Time ~ floor(query ids / BATCH) steps x step time (per-GPU figures pending: docs/performance.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/recipes/python.sh"
OUTPUT_DIR=${2:-runs/paper-xlmr}
# the data checked, the GPUs counted, what it trains said; its flags: hybrid_tevatron/studies/train_commands.py
COMMAND=$("$PYTHON" -m hybrid_tevatron.studies.budget paper "${1:-data/mmarco/train}" "$OUTPUT_DIR") || exit 1
eval "COMMAND=($COMMAND)"
"$PYTHON" -m "${COMMAND[@]}"
echo "model: $OUTPUT_DIR (evaluate: bash recipes/eval_lareqa.sh $OUTPUT_DIR ../shared/data/xquad-r $OUTPUT_DIR/eval-xquad-r)"
