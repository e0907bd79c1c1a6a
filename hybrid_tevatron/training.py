"""Trainer assembly and the whole run: sources -> plan -> dataset -> model -> the backend's trainer
(:func:`build_trainer`), and :func:`train` (checks, output-dir policy, seed, build, train or resume, final save,
``train_summary.json``).

* **Before anything is loaded** (:func:`train`): the output dir must be a folder (or absent), the model, tokenizer
  and config folders complete, their config and tokenizer loadable (:mod:`hybrid_tevatron.model_files`), so a bad
  path is one error line, not a traceback after minutes of loading.
* **One run per output dir** (:func:`train`): the main process holds :class:`hybrid_tevatron.locks.FolderLock` on
  ``--output_dir`` (the lock evaluations take) from before the output-dir check to the end of the run, on any exit;
  a second training (or evaluation) into the same folder is refused with one line naming the holder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

import torch.distributed as dist

from hybrid_tevatron.mixture import MODES
from hybrid_tevatron.model_files import (
    TRAIN_SUMMARY,
    ModelFolderError,
    check_model,
    check_tokenizer_loads,
    load_model_config,
    looks_like_hub_id,
)
from hybrid_tevatron.modeling import CheckpointMetadata
from hybrid_tevatron.run_folder import PLAN_LOG, SetupError, prepare_output_dir

logger = logging.getLogger(__name__)


def load_tokenizer(model_args):
    from transformers import AutoTokenizer

    revision = getattr(model_args, "model_revision", None)  # a Tevatron main flag
    return AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path, cache_dir=model_args.cache_dir,
        **({"revision": revision} if revision else {}),
    )


def check_model_args(model_args) -> None:
    """Before anything is loaded: ``--model_name_or_path`` (and ``--tokenizer_name``/``--config_name`` when given)
    is a complete local folder or a reachable Hub id; :class:`ModelFolderError` names the flag, path and remedy."""
    where = {"cache_dir": model_args.cache_dir, "revision": getattr(model_args, "model_revision", None)}
    checks = [("--model_name_or_path", model_args.model_name_or_path,
               {"config": not model_args.config_name, "tokenizer": not model_args.tokenizer_name})]
    if model_args.tokenizer_name:
        checks.append(("--tokenizer_name", model_args.tokenizer_name, {"config": False, "weights": False}))
    if model_args.config_name:
        checks.append(("--config_name", model_args.config_name, {"weights": False, "tokenizer": False}))
    for flag, name, needs in checks:
        try:
            check_model(name, **needs, **where)
        except ModelFolderError as err:
            hint = flag == "--model_name_or_path" and "no tokenizer vocabulary" in str(err)
            raise ModelFolderError(f"{flag}: {err}{', or give --tokenizer_name' if hint else ''}") from None
    # a local config and tokenizer must load (a truncated tokenizer.json: one line, not a traceback)
    config_source = model_args.config_name or model_args.model_name_or_path
    tokenizer_source = model_args.tokenizer_name or model_args.model_name_or_path
    vocab_size = None
    if not looks_like_hub_id(config_source):
        vocab_size = getattr(load_model_config(config_source), "vocab_size", None)
    if not looks_like_hub_id(tokenizer_source):
        flag = "--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path"
        try:
            check_tokenizer_loads(tokenizer_source, vocab_size)
        except ModelFolderError as err:
            raise ModelFolderError(f"{flag}: {err}") from None


def build_plan(plan_class, sources, data_args, training_args):
    """``plan_class.from_args`` over ``sources`` with the global step size; a plan the data cannot fill (or of no
    complete step) is a :class:`SetupError`. Logs the plan's description."""
    try:
        plan = plan_class.from_args(
            sources,
            data_args,
            batch_size=training_args.per_device_train_batch_size * training_args.world_size,
            seed=training_args.seed,
        )
    except ValueError as err:  # the data cannot fill the plan as configured
        raise SetupError(f"batch plan: {err}") from err
    logger.info(plan.describe())
    if len(plan) == 0:
        raise SetupError(
            f"the data gives no complete plan step of {training_args.per_device_train_batch_size} x "
            f"{training_args.world_size} examples; lower --per_device_train_batch_size"
        )
    return plan


def collator_options(data_args) -> dict[str, Any]:
    """The :class:`~hybrid_tevatron.collator.TrainCollator` keyword arguments of the data flags."""
    return dict(
        query_max_len=data_args.query_max_len,
        passage_max_len=data_args.passage_max_len,
        pad_to_multiple_of=data_args.pad_to_multiple_of,
        token_cache_size=data_args.token_cache_size,
    )


def build_trainer(backend, model_args, data_args, training_args, callbacks: list | None = None):
    """Sources -> plan -> dataset -> model -> ``backend.trainer_class`` (ready to ``train()``)."""
    from hybrid_tevatron.collator import TrainCollator
    from hybrid_tevatron.data.readers import load_sources
    from hybrid_tevatron.dataset import HybridTrainDataset
    from hybrid_tevatron.sampling import BatchPlan

    tokenizer = load_tokenizer(model_args)
    sources = load_sources(data_args)
    plan = build_plan(BatchPlan, sources, data_args, training_args)
    dataset = HybridTrainDataset(sources, data_args.query_prefix, data_args.passage_prefix)
    model = backend.build_model(model_args, data_args, training_args)
    return backend.trainer_class(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=TrainCollator(tokenizer, **collator_options(data_args)),
        processing_class=tokenizer,
        callbacks=callbacks,
        plan=plan,
        metadata=CheckpointMetadata.from_args(model_args, data_args, backend=backend.name),
    )


def train(backend, model_args, data_args, training_args, callbacks: list | None = None, build=None):
    """Run a whole training (output-dir policy, seed, build, train/resume, final save); return the trainer.
    ``build`` (default :func:`build_trainer`, same arguments) assembles the trainer (the image driver passes its
    own)."""
    from transformers import set_seed

    from hybrid_tevatron.locks import FolderLock

    training_args.device  # noqa: B018 (the property sets the process group up under torchrun)
    check_model_args(model_args)
    main_process = training_args.process_index == 0
    with FolderLock(training_args.output_dir, "a training") if main_process else contextlib.nullcontext():
        resume = prepare_output_dir(training_args)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank checked the output dir before any rank writes to it
        set_seed(training_args.seed)
        trainer = (build or build_trainer)(backend, model_args, data_args, training_args, callbacks)
        trainer.train(resume_from_checkpoint=resume)
        trainer.save_model()
        if trainer.is_world_process_zero():
            write_train_summary(trainer, training_args.output_dir)
    return trainer


def write_train_summary(trainer, output_dir: str) -> str:
    """``output_dir/train_summary.json`` (atomically): optimizer steps, plan steps and examples per mode and per
    source (from the plan log), the seconds of ``trainer.train``, the final training loss and the last logged loss
    of each mode. Small on purpose: a study keeps it as the record of the training."""
    from hybrid_tevatron.atomic import atomic_write_json

    history = trainer.state.log_history
    end = next((h for h in reversed(history) if "train_runtime" in h), {})
    losses = {m: next((h[f"loss_{m}"] for h in reversed(history) if f"loss_{m}" in h), None) for m in MODES}
    steps: dict[str, dict[str, int]] = {"mode": {}, "source": {}}
    log_path = os.path.join(output_dir, PLAN_LOG.format(rank=0))
    if os.path.isfile(log_path):
        with open(log_path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    for key in steps:
                        value = str(entry.get(key))
                        steps[key][value] = steps[key].get(value, 0) + 1
    examples = sum(steps["mode"].values()) * trainer.args.per_device_train_batch_size * trainer.args.world_size
    return atomic_write_json(os.path.join(output_dir, TRAIN_SUMMARY), {
        "global_step": trainer.state.global_step, "plan_steps": sum(steps["mode"].values()), "examples": examples,
        "plan_steps_by_mode": steps["mode"], "plan_steps_by_source": steps["source"],
        "seconds": end.get("train_runtime"), "train_loss": end.get("train_loss"),
        "final_loss_by_mode": {m: v for m, v in losses.items() if v is not None}})
