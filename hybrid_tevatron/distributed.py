"""Sharded training (FSDP, DeepSpeed ZeRO) through Hugging Face Trainer: what runs where.

``--fsdp`` / ``--fsdp_config`` and ``--deepspeed CONFIG`` are transformers' own ``TrainingArguments`` flags; both
backends inherit them and hand them to the Trainer unchanged (``recipes/configs/`` ships an FSDP config and a ZeRO-3
config). The checkpoints stay plain Hugging Face folders: the Trainer gathers the full weights
(``state_dict_type`` ``FULL_STATE_DICT``; ZeRO-3 ``stage3_gather_16bit_weights_on_model_save``) and passes them to
:meth:`hybrid_tevatron.trainer.HybridTrainerMixin._save`, which keeps the shared encoder's keys.

Without a GPU neither runs, and neither says so itself: accelerate enables FSDP only for multi-accelerator runs (on
CPU the Trainer trains plain DDP, every process holding the whole optimizer state), and with ``--use_cpu`` the
Trainer never starts DeepSpeed's distributed engine (ZeRO then sees one process and stops on a batch-size
assertion). :func:`check_sharded_training` turns both into one clear error before anything is loaded.
"""

from __future__ import annotations

import importlib.util


def processes() -> int:
    """Processes of this run: torch.distributed's world (HF's ``world_size`` says 1 for CPU processes under
    torchrun, where the Trainer does not use DDP)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def accelerator_available() -> bool:
    """Whether torch sees an accelerator (CUDA or another device type that FSDP/DeepSpeed can shard over)."""
    import torch

    return torch.accelerator.is_available()


def check_sharded_training(args) -> None:
    """``ValueError`` when ``--fsdp`` or ``--deepspeed`` cannot take effect (no GPU, ``--use_cpu``, no
    deepspeed package); a no-op otherwise. ``args``: HF ``TrainingArguments`` before its ``__post_init__``."""
    reasons = {"--fsdp": "accelerate leaves FSDP off on CPU and the Trainer would train plain DDP",
               "--deepspeed": "on CPU the Trainer does not start DeepSpeed's distributed engine"}
    flags = [flag for flag, value in (("--fsdp", args.fsdp), ("--deepspeed", args.deepspeed)) if value]
    if not flags:
        return
    if args.deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise ValueError("--deepspeed needs the deepspeed package: pip install deepspeed (on the GPU machines)")
    if args.use_cpu or not accelerator_available():
        where = "--use_cpu" if args.use_cpu else "no GPU here"
        raise ValueError(f"{flags[0]} needs GPUs ({where}): {reasons[flags[0]]}; drop it to train without "
                         "sharding")
