"""Backend for Tevatron main (GitHub, package ``tevatron.retriever``), on transformers 5.

Tevatron main is installed from source (``pip install -e .`` in a clone of texttron/tevatron; it reports
version 0.0.1 and is not on PyPI). This module imports it but copies none of it.

* Model: :class:`HybridDenseModel` is ``tevatron.retriever.modeling.DenseModel`` built by its own
  ``EncoderModel.build``; its training ``forward`` is Tevatron's, unchanged: ``--pooling cls|mean``,
  ``--normalize`` and ``--temperature`` are Tevatron main's own flags, the target is derived from the tensor shapes
  (index × passages per query, i.e. × ``--train_group_size`` for our query-major passage batch), and embeddings
  are gathered from every rank **whenever torch.distributed is initialised when the model is built**. So the
  model is built after the process group exists (:func:`build_model` touches ``training_args.device`` first), and
  under ``torchrun`` one plan step (``per_device_train_batch_size × world_size`` examples) is one contrastive
  problem, as the plan assumes. The only change is activation (gradient) checkpointing, which Tevatron main enables on
  ``encoder.model`` (decoder LLMs only; BERT/XLM-R have no such attribute): ours enables it on the encoder itself.
* Attention: Tevatron main defaults ``--attn_implementation`` to ``flash_attention_2`` (flash-attn package, a CUDA
  GPU and half-precision weights). Here the default is ``auto``: ``sdpa`` (``eager`` for an architecture without
  it), which is what BERT/XLM-R-style encoders such as multilingual-e5 should use; weights are loaded in float32 and
  ``--bf16``/``--fp16`` run as mixed precision, as with the PyPI backend. An explicit ``flash_attention_*`` loads the
  weights in bfloat16, as Tevatron main's own driver does, and so needs ``--bf16``.
* Trainer: :class:`HybridTevatronTrainer` = :class:`~hybrid_tevatron.trainer.HybridTrainerMixin` over
  ``tevatron.retriever.trainer.TevatronTrainer``. The collator contract is Tevatron main's,
  ``(query_batch, passage_batch)``; ``TevatronTrainer.training_step`` divides the loss that the model scaled by the
  world size. The mixin's ``_save`` replaces ``TevatronTrainer._save``, which (at Tevatron main dd06310) looks for
  ``Trainer.tokenizer``, gone in transformers 5 (now ``processing_class``), and so saves no tokenizer into any
  checkpoint (Tevatron's own driver saves it into the final folder only), nor ``hybrid_tevatron.json``, and
  expects every state-dict key to start with ``encoder.``; ours writes encoder + tokenizer + ``hybrid_tevatron.json``
  into every ``checkpoint-N`` and the final folder, from the main process only.
* Training flags: transformers 5 has no ``--warmup_ratio`` (Tevatron main's default 0.1 would be silently ignored)
  and no ``--overwrite_output_dir``; both come from
  :class:`~hybrid_tevatron.trainer.HybridTrainingArgumentsMixin`. ``--negatives_x_device`` is accepted for command
  lines shared with ``--backend pypi``: Tevatron main always shares negatives across ranks, and the flag only checks
  that there are ranks to share with.
* Flags: the Tevatron main fields this backend honours are listed in :data:`MODEL_FLAGS` and
  :data:`TRAINING_FLAGS` (``--model_revision`` reaches the config, tokenizer and weights, as in Tevatron's driver);
  every other field Tevatron main declares is removed from the command line and refused with its reason
  (:mod:`hybrid_tevatron.backends.flags`): ``--lora*`` (the checkpoint would be an adapter, not one plain HF
  encoder), ``--dtype`` (JAX), ``--untie_encoder`` (JAX dual encoders), ``--is_bidirectional``/
  ``--pooling_strategy`` (decoder-LM SPLADE), ``--grad_cache``/``--gc_*`` (GradCache's trainer bypasses our plan
  and logging), ``--distil_temperature`` (distillation), and any field a newer Tevatron main adds. Tevatron main's
  ``DataArguments`` is not used: data flags are ours (``--train_group_size``, ``--query_max_len``,
  ``--passage_max_len``, ``--query_prefix``, ``--passage_prefix`` keep its names); our collator applies them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from tevatron.retriever.arguments import ModelArguments as TevatronModelArguments
from tevatron.retriever.arguments import TevatronTrainingArguments
from tevatron.retriever.modeling import DenseModel
from tevatron.retriever.trainer import TevatronTrainer
from transformers import TrainingArguments as HFTrainingArguments

from hybrid_tevatron.backends.flags import offer_only
from hybrid_tevatron.distributed import processes
from hybrid_tevatron.modeling import check_model_options
from hybrid_tevatron.run_folder import SetupError
from hybrid_tevatron.trainer import HybridTrainerMixin, HybridTrainingArgumentsMixin

logger = logging.getLogger(__name__)

AUTO_ATTENTION = "auto"
# Tevatron main fields this backend honours; every other field of its ModelArguments / TevatronTrainingArguments
# (beyond transformers' TrainingArguments) is refused, with these reasons where known
MODEL_FLAGS = ("model_name_or_path", "config_name", "tokenizer_name", "cache_dir", "model_revision", "pooling",
               "normalize", "temperature", "attn_implementation")
TRAINING_FLAGS = ("warmup_ratio",)
_LORA = "LoRA would make the checkpoint an adapter, not one plain Hugging Face encoder"
_SPLADE = "decoder-LM SPLADE only (Tevatron's train_splade driver); this trainer is dense"
_GRAD_CACHE = "GradCache's trainer bypasses the batch plan and the per-mode logging"
REFUSED = {
    "lora": _LORA, "lora_name_or_path": _LORA, "lora_r": _LORA, "lora_alpha": _LORA, "lora_dropout": _LORA,
    "lora_target_modules": _LORA,
    "dtype": "JAX only; use --bf16 or --fp16 for mixed precision",
    "untie_encoder": "separate query and passage encoders (JAX training); this trainer shares one encoder",
    "is_bidirectional": _SPLADE, "pooling_strategy": _SPLADE,
    "grad_cache": _GRAD_CACHE, "gc_q_chunk_size": _GRAD_CACHE, "gc_p_chunk_size": _GRAD_CACHE,
    "distil_temperature": "distillation is not part of this trainer",
}  # fmt: skip


@dataclass
@offer_only(TevatronModelArguments, MODEL_FLAGS, REFUSED)
class ModelArguments(TevatronModelArguments):
    attn_implementation: str | None = field(
        default=AUTO_ATTENTION,
        metadata={
            "help": "Attention kernel: auto (sdpa, or eager for models without it; right for BERT/XLM-R encoders "
            "in float32 with --bf16/--fp16 mixed precision), sdpa, eager, or flash_attention_2 (Tevatron main's "
            "default; needs the flash-attn package, a CUDA GPU and --bf16: weights are then loaded in bfloat16)."
        },
    )

    def __post_init__(self):
        check_model_options(self.pooling, self.temperature)


@dataclass
@offer_only(TevatronTrainingArguments, TRAINING_FLAGS, REFUSED, inherited=HFTrainingArguments)
class TrainingArguments(HybridTrainingArgumentsMixin, TevatronTrainingArguments):
    negatives_x_device: bool = field(
        default=False,
        metadata={
            "help": "Accepted for command lines shared with --backend pypi: Tevatron main always gathers every "
            "rank's embeddings into one contrastive problem per plan step under torchrun. Given here, it only "
            "checks that there is more than one process."
        },
    )


class HybridDenseModel(DenseModel):
    """Tevatron main's ``DenseModel``; activation checkpointing reaches the HF encoder of any architecture."""

    def gradient_checkpointing_enable(self, **kwargs):
        # Tevatron main calls self.encoder.model.gradient_checkpointing_enable(): decoder LLMs only.
        self.encoder.gradient_checkpointing_enable(**kwargs)

    def activation_checkpointing_enable(self, **kwargs):
        # transformers 5 calls this (gradient_checkpointing_enable is its deprecated fallback)
        self.encoder.activation_checkpointing_enable(**kwargs)


class HybridTevatronTrainer(HybridTrainerMixin, TevatronTrainer):
    """Tevatron main's ``TevatronTrainer`` fed by our batch plan, with plain-HF checkpoints (tokenizer included)."""


def resolve_attn_implementation(requested: str | None, config) -> str | None:
    """``--attn_implementation`` -> the value passed to ``from_pretrained``.

    ``auto`` (or empty) gives ``sdpa`` when the architecture supports it, else ``eager``; ``None`` (transformers'
    own default) for an architecture transformers cannot map to a class. Other values pass through unchanged.
    """
    if requested and requested != AUTO_ATTENTION:
        return requested
    try:
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        model_cls = MODEL_MAPPING[type(config)]
    except (KeyError, ValueError, ImportError):
        return None
    return "sdpa" if getattr(model_cls, "_supports_sdpa", False) else "eager"


def model_dtype(attn_implementation: str | None, training_args) -> torch.dtype:
    """float32 weights (mixed precision from ``--bf16``/``--fp16``), or bfloat16 for flash attention."""
    if attn_implementation and attn_implementation.startswith("flash_attention"):
        if not training_args.bf16:
            raise SetupError(
                f"--attn_implementation {attn_implementation} needs half-precision weights: add --bf16 "
                "(or use --attn_implementation auto|sdpa)"
            )
        return torch.bfloat16
    return torch.float32


class MainBackend:
    name = "main"
    model_arguments = ModelArguments
    training_arguments = TrainingArguments
    trainer_class = HybridTevatronTrainer

    def build_model(self, model_args, data_args, training_args) -> HybridDenseModel:
        from transformers import AutoConfig

        # EncoderModel decides at construction whether to gather across ranks (dist.is_initialized()):
        # make sure the process group exists first (transformers sets it up with the device).
        training_args.device  # noqa: B018 (the property sets the process group up)
        if training_args.negatives_x_device and processes() < 2:
            raise SetupError("--negatives_x_device needs distributed training (torchrun with 2+ processes)")
        revision = {"revision": model_args.model_revision} if model_args.model_revision else {}
        config = AutoConfig.from_pretrained(
            model_args.config_name or model_args.model_name_or_path, cache_dir=model_args.cache_dir, **revision
        )
        attn = resolve_attn_implementation(model_args.attn_implementation, config)
        logger.info("Tevatron main DenseModel: attn_implementation=%s", attn)
        model = HybridDenseModel.build(
            model_args,
            training_args,
            config=config,
            cache_dir=model_args.cache_dir,
            attn_implementation=attn,
            dtype=model_dtype(attn, training_args),
            **revision,
        )
        if training_args.world_size > 1 and not model.is_ddp:
            raise SetupError(
                "Tevatron main's model was built before torch.distributed was initialised: it would not share "
                "negatives across ranks"
            )
        return model


BACKEND = MainBackend()
