"""The frozen image tower: a CLIP/SigLIP model or vision-tower folder (or Hub id) with its image processor.

Invariants: the tower is loaded in eval mode with gradients off and never trained; :meth:`ImageTower.encode` maps
images (paths or PIL images, converted to RGB) to float32 rows of :attr:`ImageTower.dimension`, L2-normalised
(CLIP and SigLIP score by cosine), in input order. Which embedding: a two-tower model's ``get_image_features``
(the projected image embedding); a vision-only checkpoint's ``image_embeds`` (``CLIPVisionModelWithProjection``)
or else its ``pooler_output``. The class is the one the checkpoint's ``config.json`` names in ``architectures``
(else ``AutoModel``'s for its config), so a ``CLIPVisionModelWithProjection`` folder keeps its projection; a class
whose ``forward`` takes no ``pixel_values`` (a text model, even one with an image processor beside it) is refused
before its weights load.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence

import numpy as np

from hybrid_tevatron.errors import HybridTevatronError


class TowerError(HybridTevatronError, ValueError):
    """An image tower that cannot be loaded or used; the message names the folder (or image)."""


class ImageTower:
    """Load once, embed many: ``ImageTower(path).encode([image paths]) -> [N, dimension]`` float32."""

    def __init__(self, name_or_path: str, device: str | None = None, batch_size: int = 32):
        import torch
        import transformers
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        self.name_or_path, self.batch_size = name_or_path, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if os.path.isdir(name_or_path) and not os.path.isfile(os.path.join(name_or_path, "config.json")):
            raise TowerError(f"{name_or_path}: no config.json (not an image tower folder)")
        try:
            config = AutoConfig.from_pretrained(name_or_path)
            self.processor = AutoImageProcessor.from_pretrained(name_or_path)
        except (OSError, ValueError, KeyError) as err:
            raise TowerError(f"{name_or_path}: cannot load the tower's config or image processor "
                             f"({str(err).splitlines()[0]})") from None
        arch = next((a for a in (config.architectures or []) if hasattr(transformers, a)), None)
        cls = getattr(transformers, arch) if arch else _auto_class(config, AutoModel)
        if cls is not AutoModel and "pixel_values" not in inspect.signature(cls.forward).parameters:
            raise TowerError(f"{name_or_path}: its {cls.__name__} ({config.model_type}) has no vision part, so it "
                             "cannot embed images; an image tower is a CLIP/SigLIP model with a vision part "
                             "(CLIPModel, SiglipModel) or a vision-only CLIP (CLIPVisionModelWithProjection)")
        try:
            self.model = cls.from_pretrained(name_or_path, dtype=torch.float32).to(self.device).eval()
        except (OSError, ValueError, RuntimeError) as err:
            raise TowerError(f"{name_or_path}: cannot load the tower's weights ({str(err).splitlines()[0]})") from None
        self.model.requires_grad_(False)
        self.model_type = config.model_type
        self.dimension = int(self._embed(np.zeros((1, 8, 8, 3), dtype=np.uint8)).shape[1])

    def _embed(self, pixels) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        batch = self.processor(images=list(pixels), return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            if hasattr(self.model, "get_image_features"):
                out = self.model.get_image_features(pixel_values=batch)
                reps = out if isinstance(out, torch.Tensor) else out.pooler_output
            else:
                out = self.model(pixel_values=batch)
                reps = out.image_embeds if getattr(out, "image_embeds", None) is not None else out.pooler_output
        return F.normalize(reps.float(), p=2, dim=-1).cpu().numpy()

    def encode(self, images: Sequence[str | PIL.Image.Image]) -> np.ndarray:  # noqa: F821
        """L2-normalised embeddings of ``images`` (file paths or PIL images), ``[len(images), dimension]``."""
        out: list[np.ndarray] = []
        for lo in range(0, len(images), self.batch_size):
            out.append(self._embed([load_rgb(x) for x in images[lo : lo + self.batch_size]]))
        return np.concatenate(out) if out else np.zeros((0, self.dimension), dtype=np.float32)


def _auto_class(config, default):
    """The class ``AutoModel`` would build for ``config`` (``default`` when it knows none: it fails on loading)."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        return MODEL_MAPPING[type(config)]
    except (KeyError, ValueError):
        return default


def load_rgb(image):
    """A path or PIL image -> an RGB PIL image (a bad file is one :class:`TowerError` naming it)."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(image, str):
        return image.convert("RGB")
    try:
        with Image.open(image) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise TowerError(f"{image}: not a readable image ({str(err).splitlines()[0]})") from None
