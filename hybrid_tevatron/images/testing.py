"""Tiny image fixtures for tests and smoke runs (nothing downloaded): a random CLIP, coloured images, captions.

``build_tiny_tower(dir, kind)`` saves a randomly initialised ``CLIPModel``, ``SiglipModel`` or
``CLIPVisionModelWithProjection`` (small towers) with its image processor as a normal Hugging Face folder.
``write_tiny_images(dir, n)`` writes ``n`` PNG images of a few pixels, each a distinct colour, plus caption files in
three languages (line i = image i) and the name list.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

LANGS = ("en", "de", "es")
_COLOURS = {"en": ["red", "green", "blue", "black", "white", "grey", "pink", "brown", "gold", "teal"],
            "de": ["rot", "gruen", "blau", "schwarz", "weiss", "grau", "rosa", "braun", "golden", "tuerkis"],
            "es": ["rojo", "verde", "azul", "negro", "blanco", "gris", "rosa", "marron", "dorado", "turquesa"]}
_THINGS = {"en": ["square", "box", "tile"], "de": ["quadrat", "kiste", "fliese"], "es": ["cuadrado", "caja", "baldosa"]}


TOWER_KINDS = ("clip", "siglip", "clip-vision")  # CLIPModel, SiglipModel, CLIPVisionModelWithProjection


def build_tiny_tower(output_dir: str, kind: str = "clip", image_size: int = 8, projection_dim: int = 12,
                     seed: int = 0) -> str:
    """A random image tower folder of ``kind`` (:data:`TOWER_KINDS`) with its image processor; return the folder.
    ``clip`` and ``clip-vision`` embed in ``projection_dim`` dimensions, ``siglip`` in its hidden size (16)."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    text = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16, eos_token_id=2, bos_token_id=1, pad_token_id=0)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  image_size=image_size, patch_size=image_size // 2)
    clip_processor = tf.CLIPImageProcessor(size={"shortest_edge": image_size},
                                           crop_size={"height": image_size, "width": image_size})
    if kind == "clip":
        model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim))
        processor = clip_processor
    elif kind == "clip-vision":
        model = tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(**vision, projection_dim=projection_dim))
        processor = clip_processor
    elif kind == "siglip":
        model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
        processor = tf.SiglipImageProcessor(size={"height": image_size, "width": image_size})
    else:
        raise ValueError(f"kind must be one of {TOWER_KINDS}, got {kind!r}")
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


def build_tiny_clip(output_dir: str, **kwargs) -> str:
    return build_tiny_tower(output_dir, "clip", **kwargs)


def colour(i: int) -> tuple:
    """A distinct RGB colour per index (well apart for the first few dozen)."""
    return ((i * 97) % 256, (i * 57 + 80) % 256, (i * 151 + 160) % 256)


def caption(lang: str, i: int) -> str:
    return f"{_COLOURS[lang][i % 10]} {_THINGS[lang][(i // 10) % 3]} {i}"


def write_tiny_images(output_dir: str, n: int = 12, languages: Sequence[str] = LANGS, size=(5, 4)) -> dict[str, str]:
    """Images ``img{i}.png`` under ``output_dir/images``, ``names.txt`` and ``captions.{lang}.txt``; return the paths
    (``images``, ``names`` and one key per language)."""
    from PIL import Image

    images = os.path.join(output_dir, "images")
    os.makedirs(images, exist_ok=True)
    names: list[str] = []
    for i in range(n):
        name = f"img{i}.png"
        Image.new("RGB", size, colour(i)).save(os.path.join(images, name))
        names.append(name)
    paths = {"images": images, "names": os.path.join(output_dir, "names.txt")}
    with open(paths["names"], "w", encoding="utf-8") as f:
        f.writelines(name + "\n" for name in names)
    for lang in languages:
        paths[lang] = os.path.join(output_dir, f"captions.{lang}.txt")
        with open(paths[lang], "w", encoding="utf-8") as f:
            f.writelines(caption(lang, i) + "\n" for i in range(n))
    return paths
