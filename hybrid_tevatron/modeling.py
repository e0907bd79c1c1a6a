"""Backend-agnostic modelling: pooling, L2 normalisation and the checkpoint metadata.

Both backends train one shared Hugging Face encoder and score ``sim(q, p) / temperature`` (cosine when
``--normalize``). A checkpoint is the encoder's plain HF folder (``config.json``, ``model.safetensors``), the
tokenizer, and ``hybrid_tevatron.json`` (:mod:`hybrid_tevatron.encoding`) — what evaluation must repeat (pooling,
normalisation, prefixes, max lengths) and where the model came from — so ``AutoModel.from_pretrained`` and
Pyserini's ``--encoder-class auto`` load it as is. Inference: :class:`hybrid_tevatron.pyserini.encoders.TextEncoder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from hybrid_tevatron.encoding import Encoding, EncodingError, Pooling, write_encoding


def check_model_options(pooling: str, temperature: float) -> None:
    """Raise :class:`EncodingError` (a ``ValueError``) for a pooling or temperature this package cannot train or
    evaluate with."""
    try:
        Pooling(pooling)
    except ValueError:
        choices = ", ".join(p.value for p in Pooling)
        raise EncodingError(f"--pooling must be one of {choices}, got {pooling!r}") from None
    if not temperature > 0:
        raise EncodingError(f"--temperature must be positive, got {temperature}")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """``[B, T, H]`` hidden states -> ``[B, H]``: first token (cls) or mask-weighted mean (mean)."""
    pooling = Pooling(pooling)
    if pooling is Pooling.CLS:
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def embed(encoder: torch.nn.Module, batch: dict[str, torch.Tensor], pooling: str, normalize: bool) -> torch.Tensor:
    """Run ``encoder`` (an HF model) on a tokenised batch and pool (+ L2-normalise) its last hidden state."""
    out = encoder(**batch, return_dict=True)
    reps = pool(out.last_hidden_state, batch["attention_mask"], pooling)
    return F.normalize(reps, p=2, dim=-1) if normalize else reps


@dataclass
class CheckpointMetadata:
    """What a checkpoint needs besides weights and tokenizer: how it encodes (:class:`Encoding`) and, not needed to
    encode, how it was trained; saved by :func:`hybrid_tevatron.encoding.write_encoding` as ``hybrid_tevatron.json``."""

    encoding: Encoding
    temperature: float = 1.0
    base_model: str | None = None
    backend: str | None = None
    regime: str | None = None
    alpha: float | None = None
    alpha_schedule: str | None = None  # when set, α followed it (and ``alpha`` was not used)
    source_weights: list[str] = field(default_factory=list)
    cross_only_sources: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    train_group_size: int | None = None
    hybrid_tevatron_version: str | None = None

    @classmethod
    def from_args(cls, model_args, data_args, backend: str | None = None) -> CheckpointMetadata:
        from hybrid_tevatron import __version__

        return cls(
            encoding=Encoding(
                pooling=model_args.pooling,
                normalize=bool(model_args.normalize),
                query_prefix=data_args.query_prefix,
                passage_prefix=data_args.passage_prefix,
                query_max_len=data_args.query_max_len,
                passage_max_len=data_args.passage_max_len,
            ),
            temperature=float(model_args.temperature),
            base_model=model_args.model_name_or_path,
            backend=backend,
            regime=data_args.regime,
            alpha=data_args.mono_probability if data_args.regime != "xx" and not data_args.alpha_schedule else None,
            alpha_schedule=data_args.alpha_schedule or None,
            source_weights=list(data_args.source_weights),
            cross_only_sources=list(data_args.cross_only_sources),
            languages=list(data_args.languages),
            train_group_size=data_args.train_group_size,
            hybrid_tevatron_version=__version__,
        )

    def save(self, output_dir: str) -> str:
        """Write ``{output_dir}/hybrid_tevatron.json`` (atomically); return its path."""
        provenance = {k: v for k, v in self.__dict__.items() if k != "encoding"}
        return write_encoding(output_dir, self.encoding, **provenance)
