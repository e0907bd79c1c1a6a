"""Tokenise and pad: training groups -> ``(query_batch, passage_batch)``; texts -> an encode batch.

Padding is dynamic (to the longest text of the batch, rounded up to ``pad_to_multiple_of`` but never past the
maximum length), never to the maximum length. The training collator tokenises each distinct text once and keeps
its token ids (:class:`TokenIdCache`); later steps only pad. The step's plan metadata travels as the ``meta``
attribute of the returned 2-tuple, beside the tensors and never inside the model inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase


class HybridBatch(tuple):
    """``(query_batch, passage_batch)`` plus ``meta`` (plan metadata for logging); unpacks like a 2-tuple."""

    def __new__(cls, query_batch, passage_batch, meta: dict[str, Any] | None = None):
        obj = super().__new__(cls, (query_batch, passage_batch))
        obj.meta = meta or {}
        return obj

    def __reduce__(self):  # keep ``meta`` through DataLoader worker pickling
        return (HybridBatch, (self[0], self[1], self.meta))


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, multiple: int | None = None,
              left: bool = False, cap: int | None = None) -> dict[str, torch.Tensor]:
    """Token id lists -> ``input_ids``/``attention_mask`` padded to the longest, rounded up to ``multiple``
    but not beyond ``cap`` (the max length) when the rounding would pass it."""
    longest = max(len(x) for x in ids)
    width = longest
    if multiple:
        width = -(-longest // multiple) * multiple
        if cap is not None and width > max(cap, longest):
            width = max(cap, longest)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        if left:
            input_ids[row, width - len(x):] = x
            mask[row, width - len(x):] = 1
        else:
            input_ids[row, : len(x)] = x
            mask[row, : len(x)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}


def pad_for(tokenizer: PreTrainedTokenizerBase, ids: Sequence[Sequence[int]], multiple: int | None,
            max_length: int) -> BatchEncoding:
    """:func:`pad_batch` with the tokenizer's pad token and padding side."""
    left = getattr(tokenizer, "padding_side", "right") == "left"
    return BatchEncoding(pad_batch(ids, tokenizer.pad_token_id, multiple, left, cap=max_length))


class TokenIdCache:
    """Text -> token ids with the model's special tokens, truncated to ``max_length``; each text tokenised once.

    Invariant: ``cache(texts)[i]`` equals ``tokenizer(texts[i], max_length=max_length, truncation=True)
    ["input_ids"]``. Misses of a call are tokenised together in one call. At most ``capacity`` texts are kept
    (first come; later ones are tokenised every time they occur); ``capacity=0`` keeps none. Each process
    (each DataLoader worker) has its own cache.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, capacity: int = 1_000_000):
        if capacity < 0:
            raise ValueError(f"token cache capacity must be >= 0, got {capacity}")
        self.tokenizer, self.max_length, self.capacity = tokenizer, max_length, capacity
        self._ids: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [self._ids.get(t) for t in texts]
        missing = [i for i, ids in enumerate(out) if ids is None]
        if missing:
            fresh = self.tokenizer([texts[i] for i in missing], max_length=self.max_length, truncation=True,
                                   padding=False, return_attention_mask=False,
                                   return_token_type_ids=False)["input_ids"]
            for i, ids in zip(missing, fresh):
                out[i] = ids = np.asarray(ids, dtype=np.int64)
                if len(self._ids) < self.capacity:
                    self._ids[texts[i]] = ids
        return out


@dataclass
class TrainCollator:
    """Items ``{"query": str, "passages": [str] * G, "meta": {...}}`` -> :class:`HybridBatch`.

    Prefixes are applied by the dataset; the passage batch is query-major (G rows per query, positive
    first), which is what Tevatron's loss (target = index × G) expects. Token ids come from two
    :class:`TokenIdCache` (queries, passages) of ``token_cache_size`` texts each: the batches equal the
    tokenizer's own (``padding=True``, truncation, ``pad_to_multiple_of``) while each text is tokenised once.
    ``meta`` holds the step's plan fields plus ``query_ids``, ``query_langs`` and ``passage_langs`` per example.
    """

    tokenizer: PreTrainedTokenizerBase
    query_max_len: int = 32
    passage_max_len: int = 128
    pad_to_multiple_of: int | None = 8
    token_cache_size: int = 1_000_000
    _caches: tuple[TokenIdCache, TokenIdCache] = field(init=False, repr=False)

    def __post_init__(self):
        self._caches = (TokenIdCache(self.tokenizer, self.query_max_len, self.token_cache_size),
                        TokenIdCache(self.tokenizer, self.passage_max_len, self.token_cache_size))

    def __call__(self, items: list[dict[str, Any]]) -> HybridBatch:
        if not items:
            raise ValueError("TrainCollator got an empty batch")
        queries = [item["query"] for item in items]
        passages = [p for item in items for p in item["passages"]]
        query_cache, passage_cache = self._caches
        return HybridBatch(
            pad_for(self.tokenizer, query_cache(queries), self.pad_to_multiple_of, self.query_max_len),
            pad_for(self.tokenizer, passage_cache(passages), self.pad_to_multiple_of, self.passage_max_len),
            self.plan_meta(items),
        )

    @staticmethod
    def plan_meta(items: list[dict[str, Any]]) -> dict[str, Any]:
        """The step's plan fields (from the first item) plus ``query_ids``, ``query_langs``, ``passage_langs``."""
        metas = [item.get("meta", {}) for item in items]
        meta = {k: v for k, v in metas[0].items() if k not in ("query_lang", "passage_lang", "query_id")}
        meta["query_ids"] = [m.get("query_id") for m in metas]
        meta["query_langs"] = [m.get("query_lang") for m in metas]
        meta["passage_langs"] = [m.get("passage_lang") for m in metas]
        return meta


@dataclass
class EncodeCollator:
    """``[(id, text)]`` -> ``(ids, batch)``: prefix, tokenise, pad dynamically. Used by our encoders."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int = 128
    prefix: str = ""
    pad_to_multiple_of: int | None = 8

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Unpadded token ids of ``texts`` (prefix added, special tokens, truncated), as batches hold them."""
        return TokenIdCache(self.tokenizer, self.max_length, capacity=0)([self.prefix + t for t in texts])

    def pad(self, ids: Sequence[Sequence[int]]) -> BatchEncoding:
        return pad_for(self.tokenizer, ids, self.pad_to_multiple_of, self.max_length)

    def __call__(self, items: Sequence[tuple[str, str]]) -> tuple[list[str], BatchEncoding]:
        return [i for i, _ in items], self.pad(self.token_ids([t for _, t in items]))
