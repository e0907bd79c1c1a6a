"""Backend for Tevatron 0.1.0 (PyPI), on transformers 5.

* Model: :class:`HybridDenseModel` subclasses ``tevatron.modeling.DenseModel`` and keeps its training
  ``forward`` (cross-device gathering with ``--negatives_x_device``, ``effective_bsz`` from
  ``per_device_train_batch_size``, target = index × ``train_n_passages``); it adds ``--pooling cls|mean`` and
  ``--normalize`` in ``encode_query``/``encode_passage`` and ``--temperature`` in the cross entropy. Tevatron's
  ``DataArguments`` is built from ours (``train_n_passages`` = ``--train_group_size``).
* Trainer: :class:`HybridDenseTrainer` = :class:`~hybrid_tevatron.trainer.HybridTrainerMixin` over
  ``tevatron.trainer.DenseTrainer``; the mixin supplies the transformers-5 signatures of ``compute_loss`` and
  ``_save`` and our dataloader; ``DenseTrainer.training_step(*args)`` already accepts transformers 5's
  ``(model, inputs, num_items_in_batch)`` and divides the logged loss by the world size it was scaled with.
* Flags: the Tevatron 0.1.0 fields this backend honours are listed in :data:`MODEL_FLAGS` and
  :data:`TRAINING_FLAGS`; every other field it declares is removed from the command line and refused with its
  reason (:mod:`hybrid_tevatron.backends.flags`): ``--untie_encoder``/``--add_pooler``/``--projection_*`` (the
  checkpoint would no longer be one plain HF encoder), ``--target_model_path`` (rerankers), ``--dtype`` (JAX; use
  ``--bf16``/``--fp16``), ``--do_encode``, ``--grad_cache``/``--gc_*`` (GradCache's trainer bypasses our plan and
  logging).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tevatron.arguments import DataArguments as TevatronDataArguments
from tevatron.arguments import DenseTrainingArguments as TevatronTrainingArguments
from tevatron.arguments import ModelArguments as TevatronModelArguments
from tevatron.modeling import DenseModel
from tevatron.trainer import DenseTrainer
from transformers import TrainingArguments as HFTrainingArguments

from hybrid_tevatron.backends.flags import offer_only
from hybrid_tevatron.distributed import processes
from hybrid_tevatron.modeling import check_model_options, pool
from hybrid_tevatron.run_folder import SetupError
from hybrid_tevatron.trainer import HybridTrainerMixin, HybridTrainingArgumentsMixin

# Tevatron 0.1.0 fields this backend honours (--pooling, --normalize, --temperature are ours, declared below); every
# other field of its ModelArguments / DenseTrainingArguments (beyond transformers' TrainingArguments) is refused
MODEL_FLAGS = ("model_name_or_path", "config_name", "tokenizer_name", "cache_dir")
TRAINING_FLAGS = ("warmup_ratio",)
_ONE_ENCODER = "the checkpoint would no longer be one plain Hugging Face encoder"
_GRAD_CACHE = "GradCache's trainer bypasses the batch plan and the per-mode logging"
REFUSED = {
    "target_model_path": "reranker training only", "untie_encoder": _ONE_ENCODER, "add_pooler": _ONE_ENCODER,
    "projection_in_dim": _ONE_ENCODER, "projection_out_dim": _ONE_ENCODER,
    "dtype": "JAX only; use --bf16 or --fp16 for mixed precision", "do_encode": "encoding is not training",
    "grad_cache": _GRAD_CACHE, "gc_q_chunk_size": _GRAD_CACHE, "gc_p_chunk_size": _GRAD_CACHE,
}  # fmt: skip


@dataclass
@offer_only(TevatronModelArguments, MODEL_FLAGS, REFUSED)
class ModelArguments(TevatronModelArguments):
    pooling: str = field(default="cls", metadata={"help": "Pooling of the last hidden states: cls or mean."})
    normalize: bool = field(
        default=False, metadata={"help": "L2-normalise query and passage embeddings (cosine similarity)."}
    )
    temperature: float = field(
        default=1.0,
        metadata={"help": "Softmax temperature: scores are divided by it (e.g. 0.01-0.05 with --normalize)."},
    )

    def __post_init__(self):
        check_model_options(self.pooling, self.temperature)


@dataclass
@offer_only(TevatronTrainingArguments, TRAINING_FLAGS, REFUSED, inherited=HFTrainingArguments)
class TrainingArguments(HybridTrainingArgumentsMixin, TevatronTrainingArguments):
    negatives_x_device: bool = field(
        default=False,
        metadata={
            "help": "Share negatives across devices: gather every rank's embeddings into one contrastive problem "
            "per plan step (needs torchrun with more than one process)."
        },
    )


class _TemperatureCrossEntropy(torch.nn.Module):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(scores / self.temperature, target)


class HybridDenseModel(DenseModel):
    """Tevatron 0.1.0's ``DenseModel`` with cls/mean pooling, optional L2 normalisation and a temperature."""

    def __init__(self, lm_q, lm_p, pooler=None, model_args=None, data_args=None, train_args=None):
        super().__init__(lm_q, lm_p, pooler, model_args=model_args, data_args=data_args, train_args=train_args)
        self.pooling = model_args.pooling
        self.normalize = model_args.normalize
        self.temperature = model_args.temperature
        self.cross_entropy = _TemperatureCrossEntropy(self.temperature)

    @property
    def encoder(self):
        """The shared HF encoder (``lm_q is lm_p``)."""
        return self.lm_q

    def _encode(self, lm, batch):
        if batch is None:
            return None, None
        hidden = lm(**batch, return_dict=True).last_hidden_state
        reps = pool(hidden, batch["attention_mask"], self.pooling)
        return hidden, (F.normalize(reps, p=2, dim=-1) if self.normalize else reps)

    def encode_query(self, qry):
        return self._encode(self.lm_q, qry)

    def encode_passage(self, psg):
        return self._encode(self.lm_p, psg)


class HybridDenseTrainer(HybridTrainerMixin, DenseTrainer):
    """Tevatron 0.1.0's ``DenseTrainer`` fed by our batch plan, with plain-HF checkpoints."""


def tevatron_data_arguments(data_args) -> TevatronDataArguments:
    """The Tevatron 0.1.0 ``DataArguments`` that ``DenseModel`` reads, from our ``HybridDataArguments``."""
    return TevatronDataArguments(
        train_n_passages=data_args.train_group_size,
        q_max_len=data_args.query_max_len,
        p_max_len=data_args.passage_max_len,
        passage_field_separator=data_args.passage_field_separator,
    )


class PypiBackend:
    name = "pypi"
    model_arguments = ModelArguments
    training_arguments = TrainingArguments
    trainer_class = HybridDenseTrainer

    def build_model(self, model_args, data_args, training_args) -> HybridDenseModel:
        from transformers import AutoConfig

        training_args.device  # noqa: B018 (the property sets the process group up)
        if training_args.negatives_x_device and processes() < 2:
            raise SetupError("--negatives_x_device needs distributed training (torchrun with 2+ processes)")
        config = AutoConfig.from_pretrained(
            model_args.config_name or model_args.model_name_or_path, cache_dir=model_args.cache_dir
        )
        # float32 weights whatever the checkpoint's dtype (transformers 5 loads the saved dtype); mixed precision
        # comes from --bf16/--fp16, as in the main backend
        return HybridDenseModel.build(
            model_args, tevatron_data_arguments(data_args), training_args, config=config,
            cache_dir=model_args.cache_dir, dtype=torch.float32,
        )


BACKEND = PypiBackend()
