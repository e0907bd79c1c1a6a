"""Several independent descriptions of each image per language (Multi30K task 2) -> a checked
:class:`DescriptionSet` and Tevatron training JSONL.

    python -m hybrid_tevatron.data.captions train --multi30k_task2 ../shared/data/multi30k-task2 --split train \\
        --output_dir data/flickr-descriptions [--languages en de] [--negatives 7] [--max_examples 816] [--seed 0]

The relation is **description**, not translation (:mod:`hybrid_tevatron.data.caption_files` reads translations): the
captions of one image were written independently, by different people, in each language. Data names, training
statistics and pool manifests say so (``relation: description``, data set ``multi30k-task2-{split}``), so results on
them are never mixed with the translation pools (``multi30k-{split}``, ``relation: translation``). Their evaluation
pools: :mod:`hybrid_tevatron.eval.benchmarks.captions`.

**Input** (``--multi30k_task2 DIR --split S``): ``DIR/raw/{S}.{k}.{lang}.gz`` for k = 1..K (the same K, at least 2,
in every language; Multi30K has K = 5 and en, de) and ``DIR/image_splits/{S}_images.txt``; line i of every file is
the image named on line i of the names file (image id: its file name without extension). Languages default to every
language with files. Refused, each a one-line :class:`~hybrid_tevatron.data.errors.DataError` naming the file
(and line): a missing file, a description number missing in a language, bytes that are not UTF-8, an empty
description line, a file with fewer or more lines than the names file (the first line where they differ), an
empty, blank-containing or duplicate image name.

**Training JSONL** (``train``): one ``{lang}.jsonl`` per language in Tevatron's format, aligned by id. Every
description is a query: query id = docid = ``{image}-{k}``; the positives of ``{image}-{k}`` are the image's other
descriptions ``{image}-{j}``, j != k, and its ``same_item_docids`` list its own docid (plus any description of the
image whose text equals its own in some language, dropped from its positives: that pair would pair a caption with
itself). So a mono step pairs two different descriptions of one image in one language, a cross step a description
in X with a different description in Y, and the batch plan keeps every description of an image out of a step that
already holds the image (:mod:`hybrid_tevatron.sampling`): one image is never twice in a step. The source feeds
mono, cross and hybrid steps (no ``--cross_only_sources``). Negatives: the descriptions of ``--negatives`` other
images, one each (image uniform without replacement, then its description uniform, per (``--seed``, image position,
k)), the same docs in every language, skipping any image that shares a description text with this image in some
language. ``--max_examples N`` keeps N images (the uniform sample of :mod:`~hybrid_tevatron.data.caption_training`),
so K x N queries. Written with ``stats.json``. A step of B examples with groups of G passages holds up to B x G
images, so keep well more images than that (816 images train with B = 32, G = 8). Everything is written to a
temporary folder next to the output folder and renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hybrid_tevatron.atomic import atomic_dir
from hybrid_tevatron.data.caption_files import check_output, pick_languages, read_captions, read_image_names
from hybrid_tevatron.data.caption_training import DEFAULT_NEGATIVES, draw_others, sample_positions
from hybrid_tevatron.data.errors import DataError

RELATION = "description"
TASK2_RAW = os.path.join("raw", "{split}.{k}.{lang}.gz")
TASK2_IMAGES = os.path.join("image_splits", "{split}_images.txt")
_SALT_NEGATIVES = 0x44E5C


@dataclass
class DescriptionSet:
    """``captions[lang][i]``: the K descriptions of image ``image_ids[i]`` (line ``lines[i]`` of the files)."""

    name: str
    languages: list[str]
    image_ids: list[str]
    captions: dict[str, list[list[str]]]
    paths: dict[str, list[str]]  # lang -> the K files, description 1 first
    names_file: str
    lines: list[int]  # 1-based line of each image in the files (stable under --max_examples / --max_images)
    relation: str = RELATION

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def per_image(self) -> int:
        return len(self.paths[self.languages[0]])

    def subset(self, keep: Sequence[int]) -> DescriptionSet:
        return DescriptionSet(self.name, self.languages, [self.image_ids[i] for i in keep],
                              {lang: [c[i] for i in keep] for lang, c in self.captions.items()}, self.paths,
                              self.names_file, [self.lines[i] for i in keep])


# ------------------------------------------------------------------------------------------------ reading
def task2_files(data_dir: str, split: str, languages: Sequence[str] | None = None) -> dict[str, list[str]]:
    """``{lang: [DIR/raw/{split}.1.{lang}.gz, ..., .K.]}``: the same K >= 2 files in every language."""
    raw = os.path.join(data_dir, "raw")
    if not os.path.isdir(raw):
        raise DataError(f"{raw}: Multi30K task 2 folder not found (expected DIR/raw/{{split}}.{{k}}.{{lang}}.gz)")
    pattern = re.compile(re.escape(split) + r"\.([0-9]+)\.([A-Za-z_-]+)\.gz$")
    numbers: dict[str, set] = {}
    for f in os.listdir(raw):
        if m := pattern.match(f):
            numbers.setdefault(m.group(2), set()).add(int(m.group(1)))
    example = os.path.join(data_dir, TASK2_RAW.format(split=split, k="K", lang="LANG"))
    langs = pick_languages(sorted(numbers), languages, example)
    per_image = max((max(numbers.get(lang, {0})) for lang in langs), default=0)
    files = {}
    for lang in langs:
        files[lang] = [os.path.join(data_dir, TASK2_RAW.format(split=split, k=k, lang=lang))
                       for k in range(1, per_image + 1)]
        for k, path in enumerate(files[lang], 1):
            if not os.path.isfile(path):
                have = ", ".join(f"{x}: {sorted(v)}" for x, v in sorted(numbers.items())) or "none"
                raise DataError(f"{path}: no such file (description {k} of language {lang!r}; descriptions "
                                f"present for split {split!r}: {have})")
    if per_image < 2:
        raise DataError(f"{example}: {per_image} description per image; a description pair needs at least two")
    return files


def load_task2(data_dir: str, split: str, languages: Sequence[str] | None = None) -> DescriptionSet:
    """The descriptions of ``split`` (see the module docstring for the checks)."""
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: Multi30K task 2 folder not found")
    files = task2_files(data_dir, split, languages)
    names_file = os.path.join(data_dir, TASK2_IMAGES.format(split=split))
    ids = read_image_names(names_file)
    n = len(ids)
    if not n:
        raise DataError(f"{names_file}: empty file (image names)")
    captions: dict[str, list[list[str]]] = {}
    for lang, paths in files.items():
        columns = []
        for path in paths:
            texts = read_captions(path, lang)
            if len(texts) < n:
                raise DataError(f"{path}:{len(texts) + 1}: missing description: the file ends after {len(texts)} "
                                f"lines, but {names_file} names {n} images (line i of every file is image i)")
            if len(texts) > n:
                raise DataError(f"{path}:{n + 1}: one line too many: {names_file} names {n} images (line i of every "
                                "file is image i)")
            columns.append(texts)
        captions[lang] = [list(row) for row in zip(*columns)]
    return DescriptionSet(f"multi30k-task2-{split}", list(files), ids, captions, files, names_file,
                          list(range(1, n + 1)))


def first_images(descriptions: DescriptionSet, n: int) -> DescriptionSet:
    """The first ``n`` images (file order): a small deterministic pool."""
    if n < 1:
        raise DataError(f"--max_images must be >= 1, got {n}")
    return descriptions.subset(range(min(n, len(descriptions))))


def sample_images(descriptions: DescriptionSet, max_examples: int | None, seed: int) -> DescriptionSet:
    """``max_examples`` images, the seeded uniform sample of the translation converter (all if None)."""
    keep = sample_positions(len(descriptions), max_examples, seed)
    return descriptions if keep is None else descriptions.subset(keep)


# ------------------------------------------------------------------------------------------------ pairs
def pair_plan(texts: dict[str, list[str]]) -> list[tuple[list[int], list[int]]]:
    """Per description k of one image (``texts[lang][k]``): ``(positives, same_item)``, 0-based description
    numbers. Same item = k and every j whose text equals k's in some language; positives = the others."""
    per_image = len(next(iter(texts.values())))
    out = []
    for k in range(per_image):
        same = [j for j in range(per_image) if j == k or any(t[j] == t[k] for t in texts.values())]
        out.append(([j for j in range(per_image) if j not in same], same))
    return out


def shared_text_images(descriptions: DescriptionSet) -> dict[int, set]:
    """Per image that shares a description text with another image in some language, the set of those images."""
    same: dict[int, set] = {}
    for lang in descriptions.languages:
        by_text: dict[str, set] = {}
        for i, row in enumerate(descriptions.captions[lang]):
            for text in row:
                by_text.setdefault(text, set()).add(i)
        for group in by_text.values():
            if len(group) > 1:
                for i in group:
                    same.setdefault(i, set()).update(group - {i})
    return same


def choose_negatives(n: int, per_image: int, count: int, seed: int,
                     excluded: dict[int, set]) -> list[list[list[tuple[int, int]]]]:
    """``[i][k]``: ``count`` (image, description) pairs of distinct other images (fewer only if too few exist),
    never i nor ``excluded[i]``; seeded per (seed, i, k)."""
    out = []
    for i in range(n):
        banned = {i} | excluded.get(i, set())
        row = []
        for k in range(per_image):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT_NEGATIVES, i, k]))
            images = draw_others(rng, n, count, banned)
            row.append(list(zip(images, rng.integers(0, per_image, size=len(images)).tolist())))
        out.append(row)
    return out


def _doc(image: str, k: int) -> str:
    return f"{image}-{k + 1}"


def identical_descriptions(descriptions: DescriptionSet, lang: str) -> int:
    return sum(1 for row in descriptions.captions[lang] if len(set(row)) < len(row))


def write_training(descriptions: DescriptionSet, output_dir: str, negatives: int = DEFAULT_NEGATIVES, seed: int = 0,
                   max_examples: int | None = None, overwrite: bool = False) -> dict:
    """Write ``{lang}.jsonl`` and ``stats.json`` (see the module docstring); return the stats."""
    if negatives < 0:
        raise DataError(f"--negatives must be >= 0, got {negatives}")
    output_dir = check_output(output_dir, overwrite)
    total = len(descriptions)
    kept = sample_images(descriptions, max_examples, seed)
    langs, ids, per_image = kept.languages, kept.image_ids, kept.per_image
    plans = [pair_plan({lang: kept.captions[lang][i] for lang in langs}) for i in range(len(kept))]
    negs = choose_negatives(len(kept), per_image, negatives, seed, shared_text_images(kept))
    queries = sum(1 for p in plans for pos, _ in p if pos)
    with atomic_dir(output_dir) as tmp:
        for lang in langs:
            rows = kept.captions[lang]
            with open(os.path.join(tmp, f"{lang}.jsonl"), "w", encoding="utf-8") as f:
                for i, image in enumerate(ids):
                    for k, (positives, same) in enumerate(plans[i]):
                        if not positives:  # every other description equals this one somewhere: no pair
                            continue
                        record = {
                            "query_id": _doc(image, k),
                            "query": rows[i][k],
                            "positive_passages": [{"docid": _doc(image, j), "title": "", "text": rows[i][j]}
                                                  for j in positives],
                            "negative_passages": [{"docid": _doc(ids[o], c), "title": "", "text": rows[o][c]}
                                                  for o, c in negs[i][k]],
                            "same_item_docids": [_doc(image, j) for j in same],
                        }
                        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        stats = {
            "source": kept.name,
            "relation": RELATION,
            "languages": langs,
            "files": {lang: [os.path.abspath(p) for p in paths] for lang, paths in kept.paths.items()},
            "image_names": os.path.abspath(kept.names_file),
            "descriptions_per_image": per_image,
            "images_in_files": total,
            "images": len(kept),
            "queries": queries,
            "queries_without_positive": len(kept) * per_image - queries,
            "max_examples": max_examples,
            "seed": seed,
            "negatives_per_query": negatives,
            "min_negatives": min((len(x) for row in negs for x in row), default=0),
            "pairs": "query {image}-{k}: positives = the image's other descriptions; same_item_docids = its own "
                     "docid and descriptions of the image with the same text in some language (never paired)",
            "negatives_rule": "one description of each of N other images (image uniform without replacement, then "
                              "description uniform, per (seed, image position, k)); images sharing a description "
                              "text with the query's image in any language skipped",
            "images_with_identical_descriptions": {lang: identical_descriptions(kept, lang) for lang in langs},
            "self_paired": "never: feeds mono, cross and hybrid steps (do not declare --cross_only_sources)",
        }
        with open(os.path.join(tmp, "stats.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    return stats
