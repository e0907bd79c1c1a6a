"""The frozen image tower: a CLIP/SigLIP model or vision-tower folder (or Hub id) with its image processor.

Invariants: the tower is loaded in eval mode with gradients off and never trained; :meth:`ImageTower.encode` maps
images (paths or PIL images, converted to RGB) to float32 rows of :attr:`ImageTower.dimension`, L2-normalised
(CLIP and SigLIP score by cosine), in input order. Which embedding: a two-tower model's ``get_image_features``
(the projected image embedding); a vision-only checkpoint's ``image_embeds`` (``CLIPVisionModelWithProjection``)
or else its ``pooler_output``. The class is the one the checkpoint's ``config.json`` names in ``architectures``
(else ``AutoModel``'s for its config), so a ``CLIPVisionModelWithProjection`` folder keeps its projection; a class
whose ``forward`` takes no ``pixel_values`` (a text model, even one with an image processor beside it) is refused
before its weights load.

Which tower: :func:`tower_record` names a tower by its absolute path or Hub id and the SHA-256 digests of its config
(``config.json`` + ``preprocessor_config.json``) and weights files; :func:`tower_differences` compares two records
(the index's ``tower.json``, a checkpoint's ``image_tower``, a ``--tower`` given now).
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


# ------------------------------------------------------------------------------------------------ which tower
# A tower's identity, recorded where its embeddings are used (the index's tower.json, a checkpoint's
# hybrid_tevatron.json) and compared before they meet another tower's: real CLIP ViT-B/32 and ViT-B/16 both embed in
# 512 dimensions, so the size alone cannot tell them apart.
CONFIG_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # transformers' order; each may be sharded (.index.json)
UNSTABLE_CONFIG_KEYS = frozenset({"_name_or_path", "transformers_version", "_commit_hash"})  # not the model's


def tower_name(name_or_path: str) -> str:
    """How records name a tower: a local folder's absolute path, else the Hub id as given (never a relative path)."""
    return os.path.abspath(name_or_path) if os.path.isdir(name_or_path) else name_or_path


def _tower_file(name_or_path: str, filename: str) -> str | None:
    """A file of the tower folder, or of a Hub id's snapshot in the local cache (nothing is downloaded); else None."""
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, filename)
        return path if os.path.isfile(path) else None
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(name_or_path, filename)
    except ValueError:  # not a valid Hub id
        return None
    return path if isinstance(path, str) else None


def _read_json(path: str):
    import json

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise TowerError(f"{path}: unreadable ({str(err).splitlines()[0]})") from None


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in UNSTABLE_CONFIG_KEYS}
    return [_stable(v) for v in value] if isinstance(value, list) else value


def config_sha256(name_or_path: str) -> str | None:
    """SHA-256 of the tower's ``config.json`` and ``preprocessor_config.json`` as JSON with sorted keys, without
    :data:`UNSTABLE_CONFIG_KEYS` (so a copy or a re-save by another transformers version keeps it); None when its
    ``config.json`` cannot be found here."""
    import hashlib
    import json

    parts = {}
    for filename in CONFIG_FILES:
        path = _tower_file(name_or_path, filename)
        if path is None and filename == "config.json":
            return None
        if path is not None:
            parts[filename] = _stable(_read_json(path))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _file_sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_record(name_or_path: str) -> dict | None:
    """``{file: {"size", "sha256"}}`` of the weights files transformers loads (the first of :data:`WEIGHT_FILES`
    found, single or sharded); None when they are not here (a Hub id whose weights are not in the cache)."""
    for single in WEIGHT_FILES:
        if _tower_file(name_or_path, single):
            names = [single]
        else:
            index = _tower_file(name_or_path, single + ".index.json")
            if index is None:
                continue
            shards = _read_json(index)
            names = sorted(set((shards.get("weight_map") or {}).values())) if isinstance(shards, dict) else []
        paths = [_tower_file(name_or_path, n) for n in names]
        if not paths or not all(paths):
            return None
        return {n: {"size": os.path.getsize(p), "sha256": _file_sha256(p)} for n, p in zip(names, paths)}
    return None


def tower_record(name_or_path: str) -> dict:
    """``{"tower": name, "tower_digest": {"config_sha256", "weights"}}``: what :data:`~hybrid_tevatron.images.encode.
    TOWER_RECORD` and a checkpoint's ``image_tower`` entry hold to name a tower (see :func:`tower_name`)."""
    return {"tower": tower_name(name_or_path),
            "tower_digest": {"config_sha256": config_sha256(name_or_path), "weights": weights_record(name_or_path)}}


def _weights_sha256(weights: dict) -> str:
    """One digest of a weights record (its file's own for one file)."""
    import hashlib

    if len(weights) == 1:
        return next(iter(weights.values()))["sha256"]
    lines = "".join(f"{n}\t{w['size']}\t{w['sha256']}\n" for n, w in sorted(weights.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def tower_differences(a: dict, b: dict) -> list[str]:
    """What tells the towers of two records (:func:`tower_record`, maybe with ``dimension``) apart; ``[]`` when they
    are the same as far as the records tell: the embedding size, the config digest and, where both records have
    them, the weights digests; without config digests on both sides, the names."""
    out = []
    if a.get("dimension") and b.get("dimension") and a["dimension"] != b["dimension"]:
        out.append("embedding size")
    da, db = a.get("tower_digest") or {}, b.get("tower_digest") or {}
    if da.get("config_sha256") and db.get("config_sha256"):
        if da["config_sha256"] != db["config_sha256"]:
            out.append("config")
        if da.get("weights") and db.get("weights") and _weights_sha256(da["weights"]) != _weights_sha256(db["weights"]):
            out.append("weights")
    elif a.get("tower") != b.get("tower"):
        out.append("name (no config digest on both sides to compare)")
    return out


def describe_tower(record: dict) -> str:
    """``NAME (512 dimensions, config 1a2b3c4d5e6f, weights 0f1e2d3c4b5a)``: a tower record in one phrase."""
    digest = record.get("tower_digest") or {}
    bits = [f"{record['dimension']} dimensions"] if record.get("dimension") else []
    if digest.get("config_sha256"):
        bits.append(f"config {digest['config_sha256'][:12]}")
    if digest.get("weights"):
        bits.append(f"weights {_weights_sha256(digest['weights'])[:12]}")
    return (record.get("tower") or "an unrecorded tower") + (f" ({', '.join(bits)})" if bits else "")
