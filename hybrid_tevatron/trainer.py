"""The trainer mixin: our data, per-mode logs, plan logs and plain-HF checkpoints on top of a Tevatron trainer, and
the training flags both backends share.

A backend (see :mod:`hybrid_tevatron.backends`) contributes a model with an ``encoder`` attribute (the one shared
HF encoder) whose ``forward(query=, passage=)`` returns Tevatron's output with ``loss``, and a trainer class
``class X(HybridTrainerMixin, <Tevatron trainer>)``. Everything else lives here, once:

* **Data.** :meth:`HybridTrainerMixin.get_train_dataloader` builds a plain ``DataLoader`` over our
  ``HybridBatchSampler``: the plan already gives each rank its disjoint shard of every plan step, so the loader
  is *not* passed through ``accelerator.prepare`` (which would shard it a second time); batches are moved to
  the device in ``_prepare_inputs`` (keeping ``HybridBatch.meta``). HF's epoch loop reaches
  ``set_epoch`` of the sampler every epoch (via :class:`PlanDataLoader`, and via the ``SkipBatchSampler``
  wrapper after a resume), and HF's resume skips the first k batches of the same deterministic stream, so a
  resumed run trains exactly the plan steps an uninterrupted run would.
* **Gradient accumulation.** Every micro-batch is one whole plan step (one contrastive problem of
  ``per_device_train_batch_size × world_size`` examples, with its own mode); an optimizer step accumulates
  ``gradient_accumulation_steps`` plan steps. Accumulation never enlarges the contrastive batch.
* **Logs.** Each training log carries ``loss_mono`` / ``loss_cross`` / ``loss_xx`` (mean InfoNCE of the plan
  steps of that mode in the logging window, averaged over ranks; only modes that occurred) and
  ``mono_fraction`` / ``cross_fraction`` / ``xx_fraction`` (share of the window's plan steps) and ``alpha`` (the
  α in force at the window's last plan step; absent for xx). Every rank writes
  ``plan_log.rank{R}.jsonl`` in ``output_dir``: one line per plan step it trained (global step, epoch, plan
  step, mode, language, source, α in force, its shard's query ids and languages).
* **Checkpoints.** ``_save`` writes the shared encoder with ``save_pretrained`` (a plain HF folder, no
  ``query_model``/``passage_model`` subfolders), the tokenizer and ``hybrid_tevatron.json`` — for the final
  model and every intermediate ``checkpoint-N`` alike; ``_load_from_checkpoint`` reads such a folder back.
  ``_save_checkpoint`` writes ``checkpoint-N`` whole under
  :data:`~hybrid_tevatron.run_folder.CHECKPOINT_STAGING` and then renames it into ``output_dir``
  (:mod:`hybrid_tevatron.run_folder` holds the policy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from hybrid_tevatron.atomic import plain_weights
from hybrid_tevatron.collator import HybridBatch
from hybrid_tevatron.distributed import check_sharded_training
from hybrid_tevatron.mixture import MODES
from hybrid_tevatron.modeling import CheckpointMetadata
from hybrid_tevatron.run_folder import CHECKPOINT_PREFIX, CHECKPOINT_STAGING, PLAN_LOG, TRAINER_STATE, SetupError

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------- arguments
@dataclass
class HybridTrainingArgumentsMixin:
    """Training flags shared by both backends; mix in first: ``class T(HybridTrainingArgumentsMixin, <TA>)``."""

    warmup_ratio: float = field(
        default=0.1,
        metadata={
            "help": "Linear warmup over this fraction of the optimizer steps (Tevatron's flag and default). "
            "transformers 5 dropped --warmup_ratio, so it is passed on as a fractional --warmup_steps; "
            "ignored when --warmup_steps is set (> 0)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start a fresh run in a non-empty --output_dir: its checkpoint-* folders and plan logs are "
            "deleted, other files are overwritten. Without it a non-empty --output_dir is an error unless "
            "--resume_from_checkpoint is given."
        },
    )

    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "Resume from this checkpoint-N folder (weights, optimizer, scheduler, RNG and trainer state; "
            "the batch plan continues at the same step), or 'last' for the newest checkpoint in --output_dir."
        },
    )

    def __post_init__(self):
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not self.warmup_steps and self.warmup_ratio > 0:
            self.warmup_steps = self.warmup_ratio  # transformers 5: a value < 1 is a ratio of the total steps
        if getattr(self, "train_sampling_strategy", "random") != "random":
            raise ValueError(
                "--train_sampling_strategy does not apply: the batch plan (--regime, --seed) orders the examples"
            )
        check_sharded_training(self)  # --fsdp/--deepspeed without GPUs: an error, not a silent plain-DDP run
        super().__post_init__()
        if self.ignore_data_skip:
            logger.warning("--ignore_data_skip: a resumed run replays its epoch's plan from the first step")


# --------------------------------------------------------------------------------------------------- data
class PlanDataLoader(DataLoader):
    """A ``DataLoader`` over a batch sampler with ``set_epoch``, forwarding ``set_epoch`` to it (HF calls it)."""

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)


# --------------------------------------------------------------------------------------------------- logging
class _ModeStats:
    """Per-mode loss sums and plan-step counts of the current logging window (sums stay on device)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss = {m: None for m in MODES}
        self.count = {m: 0 for m in MODES}

    def add(self, mode: str, loss: torch.Tensor):
        if mode not in self.count:
            raise ValueError(f"batch meta has unknown mode {mode!r}")
        value = loss.detach().float()
        self.loss[mode] = value if self.loss[mode] is None else self.loss[mode] + value
        self.count[mode] += 1

    def summary(self, device) -> dict[str, float]:
        """Window metrics, averaged over ranks (every rank has the same modes, hence the same counts)."""
        values = torch.zeros(2 * len(MODES), device=device)
        for i, m in enumerate(MODES):
            if self.loss[m] is not None:
                values[2 * i] = self.loss[m].to(device)
            values[2 * i + 1] = self.count[m]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(values)
        values = values.tolist()
        total = sum(values[1::2])
        out = {}
        for i, m in enumerate(MODES):
            loss_sum, n = values[2 * i], values[2 * i + 1]
            if n:
                out[f"loss_{m}"] = loss_sum / n
            out[f"{m}_fraction"] = n / total if total else 0.0
        return out


# --------------------------------------------------------------------------------------------------- trainer
class HybridTrainerMixin:
    """Our data, per-mode logging, plan logs and plain-HF checkpoints on top of a Tevatron trainer.

    Use as the first base: ``class Trainer(HybridTrainerMixin, DenseTrainer)``. Extra constructor arguments:
    ``plan`` (a ``BatchPlan`` whose step holds ``per_device_train_batch_size × world_size`` examples) and
    ``metadata`` (:class:`CheckpointMetadata`, saved with every checkpoint). The model must expose the shared
    HF encoder as ``model.encoder``. The Tevatron trainer's ``_dist_loss_scale_factor`` (world size when its loss
    is scaled up for cross-device negatives) is honoured when logging losses.
    """

    loss_is_scaled_for_ga = False  # the loss is a per-plan-step mean; HF divides it by the accumulation steps

    def __init__(self, *args, plan, metadata: CheckpointMetadata, **kwargs):
        self.plan = plan
        self.hybrid_metadata = metadata
        self._mode_stats = _ModeStats()
        self._plan_log = None
        self._staging = False  # True while _save_checkpoint writes under CHECKPOINT_STAGING
        self._alpha: float | None = None  # α of the last plan step trained (for the training log)
        super().__init__(*args, **kwargs)

    # ---- data ----
    def get_train_dataloader(self) -> DataLoader:
        from hybrid_tevatron.sampling import HybridBatchSampler

        if self.train_dataset is None:
            raise ValueError("training requires a train_dataset")
        sampler = HybridBatchSampler(self.plan, rank=self.args.process_index, world_size=self.args.world_size)
        workers = self.args.dataloader_num_workers
        return PlanDataLoader(
            self.train_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=workers,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
            persistent_workers=self.args.dataloader_persistent_workers if workers else False,
            prefetch_factor=self.args.dataloader_prefetch_factor if workers else None,
        )

    def _prepare_inputs(self, inputs):
        query, passage = inputs
        return HybridBatch(self._prepare_input(query), self._prepare_input(passage), getattr(inputs, "meta", {}))

    # ---- loss, per-mode logging, plan log ----
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        query, passage = inputs
        outputs = model(query=query, passage=passage)
        loss = outputs.loss
        if model.training:
            meta = getattr(inputs, "meta", {})
            self._mode_stats.add(meta.get("mode"), loss / getattr(self, "_dist_loss_scale_factor", 1))
            self._write_plan_log(meta)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # a training log: add the window's per-mode metrics (called on every rank)
            logs.update(self._mode_stats.summary(self.args.device))
            self._mode_stats.reset()
            if self._alpha is not None:
                logs["alpha"] = self._alpha
        super().log(logs, *args, **kwargs)

    def _write_plan_log(self, meta: dict[str, Any]) -> None:
        if self._plan_log is None:
            self._plan_log = self._open_plan_log()
        query_langs = list(meta.get("query_langs") or [])
        language = meta.get("language")
        if language is None and meta.get("mode") == "mono" and query_langs:
            language = query_langs[0]
        record = {
            "global_step": self.state.global_step,
            "epoch": meta.get("epoch"),
            "plan_step": meta.get("step"),
            "mode": meta.get("mode"),
            "language": language,
            "source": meta.get("source"),
            "alpha": self._alpha_of(meta),
            "rank": self.args.process_index,
            "query_ids": list(meta.get("query_ids") or []),
            "query_langs": query_langs,
            "passage_langs": list(meta.get("passage_langs") or []),
        }
        self._plan_log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._plan_log.flush()

    def _alpha_of(self, meta: dict[str, Any]) -> float | None:
        """α in force at the step of ``meta`` (a pure function of the plan step); kept for the training log."""
        self._alpha = None if meta.get("epoch") is None else self.plan.alpha_at(meta["epoch"], meta["step"])
        return self._alpha

    def _open_plan_log(self):
        """Open this rank's plan log, keeping only lines of steps before the current one (a resume)."""
        os.makedirs(self.args.output_dir, exist_ok=True)
        path = os.path.join(self.args.output_dir, PLAN_LOG.format(rank=self.args.process_index))
        kept = []
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                kept = [line for line in f if line.strip() and json.loads(line)["global_step"] < self.state.global_step]
        handle = open(path, "w", encoding="utf-8")
        handle.writelines(kept)
        return handle

    def train(self, *args, **kwargs):
        self._mode_stats.reset()
        try:
            return super().train(*args, **kwargs)
        finally:
            if self._plan_log is not None:
                self._plan_log.close()
                self._plan_log = None

    # ---- checkpoints ----
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        from transformers.trainer import TRAINING_ARGS_NAME

        if not self.args.should_save:
            return
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model)
        encoder = model.encoder
        if state_dict is not None:  # e.g. gathered by DeepSpeed/FSDP: keys of the whole model -> the encoder's
            prefix = next(name for name, module in model.named_modules() if module is encoder) + "."
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        logger.info("Saving model checkpoint to %s", output_dir)
        encoder.save_pretrained(output_dir, state_dict=state_dict)
        plain_weights(output_dir)  # not safetensors' private 0600
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        self.hybrid_metadata.save(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _get_output_dir(self, trial) -> str:
        run_dir = super()._get_output_dir(trial)
        return os.path.join(run_dir, CHECKPOINT_STAGING) if self._staging else run_dir

    def _save_checkpoint(self, model, trial) -> None:
        """transformers' checkpoint save, written under :data:`CHECKPOINT_STAGING` and renamed into place once
        every rank has written its part: a ``checkpoint-N`` folder in ``output_dir`` is always complete."""
        from transformers.trainer_utils import rotate_checkpoints

        run_dir = self._get_output_dir(trial)
        name = f"{CHECKPOINT_PREFIX}-{self.state.global_step}"
        staging, final = os.path.join(run_dir, CHECKPOINT_STAGING), os.path.join(run_dir, name)
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = False
        self.accelerator.wait_for_everyone()  # every rank wrote its files (e.g. rng_state_R.pth)
        if self.args.should_save:
            if self.state.best_global_step:  # transformers looked for the best checkpoint under the staging folder
                best = os.path.join(run_dir, f"{CHECKPOINT_PREFIX}-{self.state.best_global_step}")
                self.state.best_model_checkpoint = best if best == final or os.path.isdir(best) else None
                self.state.save_to_json(os.path.join(staging, name, TRAINER_STATE))
            if os.path.isdir(final):  # the same step saved again (transformers would overwrite it in place)
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            shutil.rmtree(staging, ignore_errors=True)
            rotate_checkpoints(run_dir, self.args.save_total_limit, self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()  # no rank starts the next save before the staging folder is gone

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        from transformers import AutoModel

        target = self.accelerator.unwrap_model(model if model is not None else self.model).encoder
        if not os.path.isfile(os.path.join(resume_from_checkpoint, "config.json")):
            raise SetupError(f"{resume_from_checkpoint}: no config.json; not a checkpoint of this trainer")
        logger.info("Loading encoder weights from %s", resume_from_checkpoint)
        loaded = AutoModel.from_pretrained(resume_from_checkpoint, dtype=next(target.parameters()).dtype)
        missing, unexpected = target.load_state_dict(loaded.state_dict(), strict=False)
        if missing or unexpected:
            raise SetupError(
                f"{resume_from_checkpoint}: encoder weights do not match the model "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
