"""Tiny image fixtures for tests and smoke runs (nothing downloaded): a random CLIP, coloured images, captions.

``build_tiny_clip(dir)`` saves a randomly initialised ``CLIPModel`` (small text and vision towers) and a
``CLIPImageProcessor`` as a normal Hugging Face folder. ``write_tiny_images(dir, n)`` writes ``n`` PNG images of a
few pixels, each a distinct colour, plus caption files in three languages (line i = image i) and the name list.
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence

LANGS = ("en", "de", "es")
_COLOURS = {"en": ["red", "green", "blue", "black", "white", "grey", "pink", "brown", "gold", "teal"],
            "de": ["rot", "gruen", "blau", "schwarz", "weiss", "grau", "rosa", "braun", "golden", "tuerkis"],
            "es": ["rojo", "verde", "azul", "negro", "blanco", "gris", "rosa", "marron", "dorado", "turquesa"]}
_THINGS = {"en": ["square", "box", "tile"], "de": ["quadrat", "kiste", "fliese"], "es": ["cuadrado", "caja", "baldosa"]}


def build_tiny_clip(output_dir: str, image_size: int = 8, projection_dim: int = 12, seed: int = 0) -> str:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, eos_token_id=2, bos_token_id=1,
                         pad_token_id=0),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=image_size // 2),
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(output_dir)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(output_dir)
    return output_dir


def colour(i: int) -> tuple:
    """A distinct RGB colour per index (well apart for the first few dozen)."""
    return ((i * 97) % 256, (i * 57 + 80) % 256, (i * 151 + 160) % 256)


def caption(lang: str, i: int) -> str:
    return f"{_COLOURS[lang][i % 10]} {_THINGS[lang][(i // 10) % 3]} {i}"


def write_tiny_images(output_dir: str, n: int = 12, languages: Sequence[str] = LANGS, size=(5, 4)) -> Dict[str, str]:
    """Images ``img{i}.png`` under ``output_dir/images``, ``names.txt`` and ``captions.{lang}.txt``; return the paths
    (``images``, ``names`` and one key per language)."""
    from PIL import Image

    images = os.path.join(output_dir, "images")
    os.makedirs(images, exist_ok=True)
    names: List[str] = []
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
