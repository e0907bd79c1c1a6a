"""Text tower + projection head against frozen image embeddings: the loss, the checkpoint, the trainer additions.

* :class:`ProjectionHead`: a trained linear map from the text encoder's pooled output (its hidden size) to the image
  embedding size; saved beside the encoder as :data:`HEAD_FILE` and described in ``hybrid_tevatron.json`` under
  ``image_tower`` (:class:`ImageCheckpointMetadata`).
* :class:`ImageTextModel` wraps the backend's model (``model.encoder`` stays the one shared HF encoder). Text steps
  go to the backend model unchanged. An image step (``passage`` is a ``[B × G, D]`` tensor of image embeddings,
  positive first per group) scores ``cos(head(pool(caption)), image) / temperature`` and its loss is the mean of
  the two directions: text->image cross entropy over every image of the step (target = index × G) and image->text
  cross entropy of each positive image over every caption of the step (target = its caption). With
  ``share_across_ranks`` (``--negatives_x_device``; Tevatron main always shares) the captions and images of every
  rank form one problem, and the loss is scaled by the world size as Tevatron's models do (the trainer divides it
  back for the log).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from transformers.utils import ModelOutput

from hybrid_tevatron.encoding import EncodingError, SideEncoding, side_encoding
from hybrid_tevatron.modeling import CheckpointMetadata, pool
from hybrid_tevatron.pyserini.encoders import TextEncoder, load_model, resolve_device

HEAD_FILE = "image_head.safetensors"


class ProjectionHead(torch.nn.Linear):
    """``[N, text size] -> [N, image size]``; :meth:`save`/:meth:`load` use :data:`HEAD_FILE` in a folder."""

    def save(self, folder: str, state_dict: dict | None = None) -> str:
        from safetensors.torch import save_file

        from hybrid_tevatron.atomic import atomic_path

        path = os.path.join(folder, HEAD_FILE)
        tensors = {k: v.detach().cpu().contiguous() for k, v in (state_dict or self.state_dict()).items()}
        with atomic_path(path) as tmp:
            save_file(tensors, tmp)
        return path

    @classmethod
    def load(cls, folder: str) -> ProjectionHead:
        from safetensors.torch import load_file

        state = load_file(os.path.join(folder, HEAD_FILE))
        out_features, in_features = state["weight"].shape
        head = cls(in_features, out_features)
        head.load_state_dict(state)
        return head


@dataclass
class ImageTextOutput(ModelOutput):
    loss: torch.Tensor | None = None
    q_reps: torch.Tensor | None = None
    p_reps: torch.Tensor | None = None


def image_text_loss(captions: torch.Tensor, images: torch.Tensor, temperature: float) -> torch.Tensor:
    """Bidirectional InfoNCE: ``captions`` ``[B, D]``, ``images`` ``[B × G, D]`` (group of caption i at rows
    ``i × G ...``, its positive first), both L2-normalised."""
    batch = captions.shape[0]
    group = images.shape[0] // batch
    scores = captions @ images.T / temperature
    target = torch.arange(batch, device=scores.device)
    text_to_image = F.cross_entropy(scores, target * group)
    image_to_text = F.cross_entropy(scores[:, target * group].T, target)
    return (text_to_image + image_to_text) / 2


def _gather(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` concatenated in rank order; this rank's part keeps its gradient."""
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    parts[dist.get_rank()] = t
    return torch.cat(parts)


class ImageTextModel(torch.nn.Module):
    """The backend's text model plus the head (see the module docstring)."""

    def __init__(self, text_model: torch.nn.Module, head: ProjectionHead, pooling: str, temperature: float,
                 share_across_ranks: bool = False):
        super().__init__()
        self.text_model, self.head = text_model, head
        self.pooling, self.temperature, self.share_across_ranks = pooling, float(temperature), share_across_ranks

    @property
    def encoder(self):
        return self.text_model.encoder

    def encode_captions(self, batch) -> torch.Tensor:
        """Captions -> L2-normalised vectors in the image space (what evaluation searches the image index with)."""
        hidden = self.encoder(**batch, return_dict=True).last_hidden_state
        return F.normalize(self.head(pool(hidden, batch["attention_mask"], self.pooling)), p=2, dim=-1)

    def forward(self, query=None, passage=None):
        if not isinstance(passage, torch.Tensor):
            return self.text_model(query=query, passage=passage)
        captions = self.encode_captions(query)
        images = F.normalize(passage.to(captions.dtype), p=2, dim=-1)
        scale = 1
        if self.share_across_ranks and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            captions, images, scale = _gather(captions), _gather(images), dist.get_world_size()
        loss = image_text_loss(captions, images, self.temperature) * scale
        return ImageTextOutput(loss=loss, q_reps=captions, p_reps=images)


class ImageTrainerMixin:
    """Saves and restores the head with every checkpoint; first base over the backend's trainer class."""

    def _head(self, model=None) -> ProjectionHead:
        return self.accelerator.unwrap_model(model if model is not None else self.model).head

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            head_state = None if state_dict is None else {
                k[len("head."):]: v for k, v in state_dict.items() if k.startswith("head.")} or None
            self._head().save(output_dir if output_dir is not None else self.args.output_dir, head_state)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        head = self._head(model)
        head.load_state_dict(ProjectionHead.load(resume_from_checkpoint).state_dict())


def image_trainer_class(base: type) -> type:
    return type(f"Image{base.__name__}", (ImageTrainerMixin, base), {})


@dataclass
class ImageCheckpointMetadata(CheckpointMetadata):
    """:class:`~hybrid_tevatron.modeling.CheckpointMetadata` plus ``image_tower``: the tower, its index, the
    embedding size, the head's file and sizes, the image sources."""

    image_tower: dict = field(default_factory=dict)



class CaptionEncoder(TextEncoder):
    """A trained checkpoint's captions -> the image space: its text encoder with its query settings (prefix,
    pooling, max length from ``hybrid_tevatron.json``), the pooled output unnormalised into the head, then L2
    normalisation: what training scores against the image embeddings."""

    def __init__(self, model, tokenizer, settings: SideEncoding, head: ProjectionHead, device=None, batch_size=64):
        super().__init__(model, tokenizer, dataclasses.replace(settings, normalize=False), device, "fp32", batch_size)
        self.head = head.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, folder: str, device: str | None = None, batch_size: int = 64) -> CaptionEncoder:
        if not os.path.isfile(os.path.join(folder, HEAD_FILE)):
            raise EncodingError(f"{folder}: no {HEAD_FILE} "
                                "(not a checkpoint of python -m hybrid_tevatron.images.train)")
        settings, _ = side_encoding(folder, "query")
        dev = resolve_device(device)
        net, tokenizer = load_model(folder, dev)
        return cls(net, tokenizer, settings, ProjectionHead.load(folder), dev, batch_size)

    @property
    def dimension(self) -> int:
        return self.head.out_features

    def _forward(self, batch):
        return F.normalize(self.head(super()._forward(batch)), p=2, dim=-1)
