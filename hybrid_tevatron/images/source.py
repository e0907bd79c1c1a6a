"""The image source of the batch plan: captions are the queries, images the passages (precomputed embeddings).

**The source** (:class:`ImageCaptionSource`, a :class:`~hybrid_tevatron.data.corpus.ParallelCorpus`): query i is
image i's caption, one per language; doc i is image i, the same in every language (an image has no language: its
"text" is its docid, which never reaches a tokenizer); query i's positive is doc i, its negatives ``negatives``
other images drawn as caption negatives are (:func:`hybrid_tevatron.data.caption_training.choose_negatives`,
deterministic per seed and image). Images that share a caption in some language (a duplicate caption would be a
false negative, and its image a second right answer) are never each other's negatives and are one *item* for the
plan, so they never meet in a step. ``embeddings[d]`` is image d's vector from the frozen tower's index, matched
by docid.

**The plan** (:class:`ImageBatchPlan`, the text plan plus two rules for image sources; a plan without image
sources is the text plan, step for step):

* a **mono** step has every caption in the step's one language (drawn per step, as for text);
* a step that is not mono is **mixed** (LAReQA's X-X, logged as mode ``xx``): each caption's language is drawn per
  example by weight and, in a step of two or more examples, not all are the same (else the last slot takes another
  language, by weight among the others); an image source never gives ``cross`` steps (the passage has no language);
* so ``--regime hybrid`` = mono with probability α, else mixed; ``mono`` = mono only; ``xx`` and ``cross`` = mixed
  only. The mode, language and source stay a pure function of (seed, epoch, step): every rank agrees.
* no image occurs twice in a step (the plan's doc rule: an image is a doc), and no image twice in one example's
  group unless the image has too few negatives (the plan's repeat rule).

**Dataset and collator**: an image example is ``{"query": caption, "images": [G embedding rows], "meta"}``; its
batch is ``(tokenised captions, [B × G, D] float32 image embeddings)``, positive first per group, which is what
:class:`~hybrid_tevatron.images.model.ImageTextModel` takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from hybrid_tevatron.collator import HybridBatch, TrainCollator, pad_for
from hybrid_tevatron.data.caption_training import DEFAULT_NEGATIVES, choose_negatives, duplicate_groups
from hybrid_tevatron.data.corpus import ParallelCorpus, csr
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.dataset import HybridTrainDataset
from hybrid_tevatron.keyed_random import draw_indices
from hybrid_tevatron.sampling import CROSS, XX, BatchPlan

DEFAULT_SOURCE_NAME = "images"


@dataclass
class ImageCaptionSource(ParallelCorpus):
    embeddings: np.ndarray | None = None  # [num_docs, D] float32, row d = doc d's image embedding

    @property
    def dimension(self) -> int:
        return int(self.embeddings.shape[1])


def image_source(data, index, name: str = DEFAULT_SOURCE_NAME, negatives: int = DEFAULT_NEGATIVES,
                 seed: int = 0, languages: Sequence[str] | None = None) -> ImageCaptionSource:
    """The source of an :class:`~hybrid_tevatron.images.data.ImageData` and the tower's index
    (:class:`~hybrid_tevatron.eval.pipeline.ranks.Vectors`); every image of the data must be in the index."""
    langs = [lang for lang in (languages or data.languages) if lang in data.languages]
    if not langs:
        raise DataError(f"{data.folder}: none of the languages {list(languages or [])} (it has {data.languages})")
    rows = index.rows()
    missing = [d for d in data.image_ids if d not in rows]
    if missing:
        raise DataError(f"{data.folder}: image {missing[0]!r} (and {len(missing) - 1} more) is not in the image index; "
                        "encode this data set's corpus.jsonl with python -m hybrid_tevatron.images.encode")
    n = len(data)
    ids = list(data.image_ids)
    same = duplicate_groups(SimpleNamespace(languages=langs, captions=data.captions))
    pos_offsets, pos_docs = csr([[i] for i in range(n)])
    neg_offsets, neg_docs = csr(choose_negatives(n, negatives, seed, same))
    same_offsets, same_docs = csr([sorted(same.get(i, ())) for i in range(n)]) if same else (None, None)
    return ImageCaptionSource(
        name=name, languages=langs, query_ids=ids, doc_ids=ids,
        queries={lang: data.captions[lang] for lang in langs}, passages={lang: ids for lang in langs},
        pos_offsets=pos_offsets, pos_docs=pos_docs, neg_offsets=neg_offsets, neg_docs=neg_docs,
        same_offsets=same_offsets, same_docs=same_docs,
        embeddings=np.ascontiguousarray(index.matrix[[rows[d] for d in ids]], dtype=np.float32),
    )


def is_image_source(source) -> bool:
    return isinstance(source, ImageCaptionSource)


class ImageBatchPlan(BatchPlan):
    """:class:`~hybrid_tevatron.sampling.BatchPlan` with the image rules of the module docstring."""

    def mode(self, epoch: int, step: int):
        source, mode, language = super().mode(epoch, step)
        if mode == CROSS and is_image_source(self.sources[source]):
            return source, XX, None
        return source, mode, language

    def _slot_languages(self, rng, mode, language, source):
        slots = super()._slot_languages(rng, mode, language, source)
        langs = self.languages[source]
        if mode != XX or not is_image_source(self.sources[source]) or len(slots) < 2 or len(langs) < 2:
            return slots
        if len({q for q, _ in slots}) == 1:  # a mixed step in one language would be a mono step in disguise
            weights = self.weights[source] * np.array([lang != slots[0][0] for lang in langs])
            other = langs[int(draw_indices(rng, np.cumsum(weights / weights.sum()), 1)[0])]
            slots = slots[:-1] + [(other, other)]
        return slots

    def describe(self) -> str:
        images = [s.name for s in self.sources if is_image_source(s)]
        return super().describe() + (f"; image sources {images}: mono or mixed (xx) steps" if images else "")


class ImageTrainDataset(HybridTrainDataset):
    """The text dataset; an image source's item carries ``images`` (embedding rows) instead of passage texts."""

    def __getitem__(self, entry) -> dict[str, Any]:
        item = super().__getitem__(entry)
        if is_image_source(self.sources[entry.source]):
            del item["passages"]
            item["images"] = list(entry.passages)
        return item


@dataclass
class ImageTrainCollator(TrainCollator):
    """:class:`~hybrid_tevatron.collator.TrainCollator`; a batch of image items (one source per step) becomes
    ``(query batch, [B × G, D] embeddings)`` of ``embeddings[source name]``."""

    embeddings: dict[str, np.ndarray] | None = None

    def __call__(self, items: list[dict[str, Any]]) -> HybridBatch:
        import torch

        if not items or "images" not in items[0]:
            return super().__call__(items)
        meta = self.plan_meta(items)
        rows = np.fromiter((r for item in items for r in item["images"]), dtype=np.int64)
        queries = self._caches[0]([item["query"] for item in items])
        return HybridBatch(pad_for(self.tokenizer, queries, self.pad_to_multiple_of, self.query_max_len),
                           torch.from_numpy(self.embeddings[meta["source"]][rows]), meta)
