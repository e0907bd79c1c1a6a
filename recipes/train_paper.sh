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
# RDZV_ENDPOINT=NODE0:29500 [RDZV_ID=run-1] (torchrun's c10d rendezvous; docs/evaluation.md, "Beyond one machine").
# Time ~ floor(query ids / BATCH) steps x step time (per-GPU figures pending: docs/performance.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRAIN_DIR=${1:-data/mmarco/train}
OUTPUT_DIR=${2:-runs/paper-xlmr}
MODEL=${MODEL:-FacebookAI/xlm-roberta-base}
LANGS=${LANGS:-"ar de en es hi ru zh"}
REGIME=${REGIME:-hybrid}
ALPHA=${ALPHA:-0.5}
BATCH=${BATCH:-100}
LR=${LR:-3e-5}
WEIGHT_DECAY=${WEIGHT_DECAY:-0.01}
EPOCHS=${EPOCHS:-1}
MAX_STEPS=${MAX_STEPS:--1}
WARMUP_RATIO=${WARMUP_RATIO:-0.1}
GROUP_SIZE=${GROUP_SIZE:-2}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-64}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-256}
TEMPERATURE=${TEMPERATURE:-0.05}
SEED=${SEED:-42}
source "$ROOT/recipes/python.sh"
case "$MODEL" in *LaBSE*|*labse*) POOLING=${POOLING:-cls} ;; *) POOLING=${POOLING:-mean} ;; esac

for lang in $LANGS; do
  [[ -s "$TRAIN_DIR/$lang.jsonl" ]] || { echo "error: $TRAIN_DIR/$lang.jsonl missing (run recipes/prepare_mmarco.sh)" >&2; exit 1; }
done
CUDA_COUNT=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')
NGPUS=${NGPUS:-$CUDA_COUNT}
NNODES=${NNODES:-1}
WORLD=$(( NNODES * (NGPUS > 0 ? NGPUS : 1) ))
(( BATCH % WORLD == 0 )) || { echo "error: BATCH=$BATCH is not divisible by NNODES x NGPUS = $WORLD" >&2; exit 1; }
PER_DEVICE=$(( BATCH / WORLD ))
if (( NGPUS > 0 )); then
  if [[ -z "${PRECISION:-}" ]]; then
    PRECISION=$("$PYTHON" -c 'import torch; print("bf16" if torch.cuda.is_bf16_supported() else "fp16")')
  fi
else
  PRECISION=${PRECISION:-fp32}
  echo "warning: no GPU found; training on CPU (full-scale mMARCO training is not practical there)" >&2
fi
files=(); for lang in $LANGS; do files+=("$lang=$TRAIN_DIR/$lang.jsonl"); done
args=(
  --model_name_or_path "$MODEL" --pooling "$POOLING" --normalize --temperature "$TEMPERATURE"
  --train_files "${files[@]}" --languages $LANGS --regime "$REGIME" --alpha "$ALPHA"
  --train_group_size "$GROUP_SIZE" --query_max_len "$QUERY_MAX_LEN" --passage_max_len "$PASSAGE_MAX_LEN"
  --output_dir "$OUTPUT_DIR" --per_device_train_batch_size "$PER_DEVICE" --gradient_accumulation_steps 1
  --optim adamw_torch --learning_rate "$LR" --weight_decay "$WEIGHT_DECAY" --warmup_ratio "$WARMUP_RATIO"
  --num_train_epochs "$EPOCHS" --max_steps "$MAX_STEPS" --seed "$SEED" --dataloader_drop_last
  --logging_steps 50 --save_steps 2000 --save_total_limit 2 --report_to none
)
[[ -n "${RESUME:-}" ]] && args+=(--resume_from_checkpoint "$RESUME")
(( CUDA_COUNT > 0 )) || args+=(--use_cpu)
[[ "$PRECISION" == bf16 ]] && args+=(--bf16)
[[ "$PRECISION" == fp16 ]] && args+=(--fp16)
case "$MODEL" in *e5*) args+=(--query_prefix "query: " --passage_prefix "passage: ") ;; esac
# shellcheck disable=SC2206
args+=(${EXTRA:-})
echo "training $MODEL ($REGIME, alpha $ALPHA) on $LANGS: $NNODES node(s) x $NGPUS GPU(s), $PER_DEVICE per process, batch $BATCH" >&2
if (( WORLD > 1 )); then
  args+=(--negatives_x_device)  # one contrastive problem over all processes: the batch of BATCH examples
  (( CUDA_COUNT > 0 )) || args+=(--ddp_backend gloo)
  launch=(--standalone); (( NNODES > 1 )) && launch=(--nnodes "$NNODES" --rdzv_backend c10d --rdzv_id "${RDZV_ID:-hybrid}" \
    --rdzv_endpoint "${RDZV_ENDPOINT:?NNODES > 1 needs RDZV_ENDPOINT=HOST:PORT of the first node}")
  "$PYTHON" -m torch.distributed.run "${launch[@]}" --nproc_per_node "$(( NGPUS > 0 ? NGPUS : 1 ))" \
    -m hybrid_tevatron.driver.train "${args[@]}"
else
  "$PYTHON" -m hybrid_tevatron.driver.train "${args[@]}"
fi
echo "model: $OUTPUT_DIR (evaluate: bash recipes/eval_lareqa.sh $OUTPUT_DIR ../shared/data/xquad-r $OUTPUT_DIR/eval-xquad-r)"
