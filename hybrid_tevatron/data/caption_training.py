"""Translated captions (:class:`~hybrid_tevatron.data.caption_files.CaptionSet`) -> Tevatron training JSONL, and the
seeded draws every caption converter shares (the image sample, the negatives).

**Training JSONL**: one ``{lang}.jsonl`` per language in Tevatron's format, aligned by id: query id = docid = image
id; query = positive = the image's caption in that language (so every mono pair pairs a caption with itself: train
it with ``--cross_only_sources NAME``, which the batch plan requires); negatives = the captions (same language) of
``--negatives`` other images, the same images in every language, drawn uniformly without replacement per
(``--seed``, image position) — deterministic — among the kept images, skipping any image whose caption equals this
image's caption in some language (a duplicate caption would be a false negative). ``--max_examples N`` keeps N
images, a uniform sample without replacement drawn from ``--seed`` (kept in file order). Written with
``stats.json`` (counts, the choices above, duplicate captions per language), to a temporary folder next to the
output folder and renamed into place at the end.
"""

from __future__ import annotations

import json
import os

import numpy as np

from hybrid_tevatron.atomic import atomic_dir
from hybrid_tevatron.data.caption_files import CaptionSet, check_output, duplicate_count
from hybrid_tevatron.data.errors import DataError

DEFAULT_NEGATIVES = 7  # = Tevatron's default group of 8 minus the positive
_SALT_SAMPLE, _SALT_NEGATIVES = 0x5A3D1, 0x4E6E7


# ------------------------------------------------------------------------------------------------ selection
def sample_positions(n: int, max_examples: int | None, seed: int) -> list[int] | None:
    """``max_examples`` of ``range(n)`` drawn uniformly without replacement from ``seed``, sorted (None: all)."""
    if max_examples is None or max_examples >= n:
        return None
    if max_examples < 1:
        raise DataError(f"--max_examples must be >= 1, got {max_examples}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT_SAMPLE]))
    return np.sort(rng.choice(n, size=max_examples, replace=False)).tolist()


def sample_images(captions: CaptionSet, max_examples: int | None, seed: int) -> CaptionSet:
    """``max_examples`` images drawn uniformly without replacement from ``seed``, in file order (all if None)."""
    keep = sample_positions(len(captions), max_examples, seed)
    if keep is None:
        return captions
    return CaptionSet(captions.name, captions.languages, [captions.image_ids[i] for i in keep],
                      {lang: [c[i] for i in keep] for lang, c in captions.captions.items()}, captions.paths,
                      [captions.lines[i] for i in keep], captions.relation, captions.relation_note)


def duplicate_groups(captions: CaptionSet) -> dict[int, set]:
    """Per image that shares its caption with another image in some language, the set of those other images."""
    same: dict[int, set] = {}
    for lang in captions.languages:
        by_text: dict[str, list[int]] = {}
        for i, text in enumerate(captions.captions[lang]):
            by_text.setdefault(text, []).append(i)
        for group in by_text.values():
            if len(group) > 1:
                for i in group:
                    same.setdefault(i, set()).update(j for j in group if j != i)
    return same


def choose_negatives(n: int, k: int, seed: int, excluded: dict[int, set]) -> list[list[int]]:
    """Per image i: ``k`` distinct other images (fewer only if too few exist), uniform without replacement from
    a generator seeded by (seed, i); never i itself nor ``excluded[i]``."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT_NEGATIVES, i]))
        out.append(draw_others(rng, n, k, {i} | excluded.get(i, set())))
    return out


def draw_others(rng: np.random.Generator, n: int, k: int, banned: set) -> list[int]:
    """``k`` distinct members of ``range(n)`` outside ``banned`` (fewer only if too few exist), uniform without
    replacement from ``rng``."""
    want = min(k, n - len(banned))
    chosen: list[int] = []
    seen = set(banned)
    if want > (n - len(banned)) // 2:  # dense: a permutation is cheaper than rejection
        chosen = [int(j) for j in rng.permutation(n) if int(j) not in banned][:want]
    while len(chosen) < want:
        for j in rng.integers(0, n, size=2 * (want - len(chosen)) + 4).tolist():
            if j not in seen:
                seen.add(j)
                chosen.append(j)
                if len(chosen) == want:
                    break
    return chosen


# ------------------------------------------------------------------------------------------------ training JSONL
def write_training(captions: CaptionSet, output_dir: str, negatives: int = DEFAULT_NEGATIVES, seed: int = 0,
                   max_examples: int | None = None, overwrite: bool = False) -> dict:
    """Write ``{lang}.jsonl`` and ``stats.json`` (see the module docstring); return the stats."""
    if negatives < 0:
        raise DataError(f"--negatives must be >= 0, got {negatives}")
    if len(captions.languages) < 2:
        raise DataError(f"{captions.name}: translated captions need at least two languages for a training pair "
                        f"(one language pairs each caption with itself), got {captions.languages}")
    output_dir = check_output(output_dir, overwrite)
    total = len(captions)
    kept = sample_images(captions, max_examples, seed)
    dups = duplicate_groups(kept)
    negs = choose_negatives(len(kept), negatives, seed, dups)
    ids = kept.image_ids
    with atomic_dir(output_dir) as tmp:
        for lang in kept.languages:
            texts = kept.captions[lang]
            with open(os.path.join(tmp, f"{lang}.jsonl"), "w", encoding="utf-8") as f:
                for i, image in enumerate(ids):
                    record = {
                        "query_id": image,
                        "query": texts[i],
                        "positive_passages": [{"docid": image, "title": "", "text": texts[i]}],
                        "negative_passages": [{"docid": ids[j], "title": "", "text": texts[j]} for j in negs[i]],
                    }
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        stats = {
            "source": kept.name,
            "relation": kept.relation,
            **({"relation_note": kept.relation_note} if kept.relation_note else {}),
            "languages": kept.languages,
            "files": {lang: os.path.abspath(p) for lang, p in kept.paths.items()},
            "images_in_files": total,
            "queries": len(kept),
            "max_examples": max_examples,
            "seed": seed,
            "negatives_per_query": negatives,
            "min_negatives": min((len(x) for x in negs), default=0),
            "negatives_rule": "other images' captions (same language), uniform without replacement per (seed, "
                              "image position); images sharing a caption with the query in any language skipped",
            "images_with_duplicate_caption": {lang: duplicate_count(kept.captions[lang]) for lang in kept.languages},
            "self_paired": "query == positive in every language: train with --cross_only_sources",
        }
        with open(os.path.join(tmp, "stats.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    return stats
