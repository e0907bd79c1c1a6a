"""Backend-agnostic modelling: pooling, L2 normalisation, the checkpoint metadata and an inference encoder.

Both backends train one shared Hugging Face encoder and score ``sim(q, p) / temperature`` (cosine when
``--normalize``). A checkpoint is the encoder's plain HF folder (``config.json``, ``model.safetensors``), the
tokenizer, and :data:`METADATA_FILE` — a small JSON with what evaluation must repeat (pooling, normalisation,
prefixes, max lengths) — so ``AutoModel.from_pretrained`` and Pyserini's ``--encoder-class auto`` load it as is.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

POOLINGS = ("cls", "mean")
METADATA_FILE = "hybrid_tevatron.json"


def check_model_options(pooling: str, temperature: float) -> None:
    """Raise ``ValueError`` for a pooling or temperature this package cannot train or evaluate with."""
    if pooling not in POOLINGS:
        raise ValueError(f"--pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if not temperature > 0:
        raise ValueError(f"--temperature must be positive, got {temperature}")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """``[B, T, H]`` hidden states -> ``[B, H]``: first token (cls) or mask-weighted mean (mean)."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")


def embed(encoder: torch.nn.Module, batch: Dict[str, torch.Tensor], pooling: str, normalize: bool) -> torch.Tensor:
    """Run ``encoder`` (an HF model) on a tokenised batch and pool (+ L2-normalise) its last hidden state."""
    out = encoder(**batch, return_dict=True)
    reps = pool(out.last_hidden_state, batch["attention_mask"], pooling)
    return F.normalize(reps, p=2, dim=-1) if normalize else reps


@dataclass
class CheckpointMetadata:
    """What a checkpoint needs besides weights and tokenizer; saved as :data:`METADATA_FILE`."""

    pooling: str = "cls"
    normalize: bool = False
    temperature: float = 1.0
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_len: int = 32
    passage_max_len: int = 128
    # provenance (not needed to encode)
    base_model: Optional[str] = None
    backend: Optional[str] = None
    regime: Optional[str] = None
    alpha: Optional[float] = None
    alpha_schedule: Optional[str] = None  # when set, α followed it (and ``alpha`` was not used)
    source_weights: List[str] = field(default_factory=list)
    cross_only_sources: List[str] = field(default_factory=list)
    languages: List[str] = field(default_factory=list)
    train_group_size: Optional[int] = None
    hybrid_tevatron_version: Optional[str] = None

    @classmethod
    def from_args(cls, model_args, data_args, backend: Optional[str] = None) -> "CheckpointMetadata":
        from hybrid_tevatron import __version__

        return cls(
            pooling=model_args.pooling,
            normalize=bool(model_args.normalize),
            temperature=float(model_args.temperature),
            query_prefix=data_args.query_prefix,
            passage_prefix=data_args.passage_prefix,
            query_max_len=data_args.query_max_len,
            passage_max_len=data_args.passage_max_len,
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
        path = os.path.join(output_dir, METADATA_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(self), f, indent=2, ensure_ascii=False)
            f.write("\n")
        return path

    @classmethod
    def load(cls, model_dir: str) -> Optional["CheckpointMetadata"]:
        """The metadata of ``model_dir``, or ``None`` when it has none (e.g. a Hub model)."""
        path = os.path.join(model_dir, METADATA_FILE)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class HybridEncoder:
    """Inference encoder for a trained checkpoint (or any HF model): texts -> embeddings, as in training.

    ``HybridEncoder.from_pretrained(path)`` reads pooling/normalisation/prefixes/max lengths from the
    checkpoint's :data:`METADATA_FILE`; keyword arguments override them (needed for models without one).
    """

    def __init__(self, model, tokenizer, metadata: CheckpointMetadata, device: str | torch.device = "cpu"):
        check_model_options(metadata.pooling, metadata.temperature)
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(cls, model_dir: str, device: str | torch.device = "cpu", **overrides) -> "HybridEncoder":
        from transformers import AutoModel, AutoTokenizer

        metadata = CheckpointMetadata.load(model_dir) or CheckpointMetadata()
        metadata = dataclasses.replace(metadata, **overrides)
        return cls(AutoModel.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir), metadata, device)

    @torch.no_grad()
    def _encode(self, texts: Sequence[str], prefix: str, max_length: int, batch_size: int) -> torch.Tensor:
        from hybrid_tevatron.collator import EncodeCollator

        collate = EncodeCollator(self.tokenizer, max_length=max_length, prefix=prefix)
        out = []
        for start in range(0, len(texts), batch_size):
            chunk = [(str(i), t) for i, t in enumerate(texts[start : start + batch_size], start)]
            _, batch = collate(chunk)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            out.append(embed(self.model, batch, self.metadata.pooling, self.metadata.normalize).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.model.config.hidden_size)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        m = self.metadata
        return self._encode(texts, m.query_prefix, m.query_max_len, batch_size)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        m = self.metadata
        return self._encode(texts, m.passage_prefix, m.passage_max_len, batch_size)
