"""Tokenise and pad: training groups -> ``(query_batch, passage_batch)``; texts -> an encode batch.

Padding is dynamic (to the longest text of the batch, rounded up to ``pad_to_multiple_of``), never to the
maximum length. The step's plan metadata travels as the ``meta`` attribute of the returned 2-tuple, beside
the tensors and never inside the model inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from transformers import BatchEncoding, PreTrainedTokenizerBase


class HybridBatch(tuple):
    """``(query_batch, passage_batch)`` plus ``meta`` (plan metadata for logging); unpacks like a 2-tuple."""

    def __new__(cls, query_batch, passage_batch, meta: Optional[Dict[str, Any]] = None):
        obj = super().__new__(cls, (query_batch, passage_batch))
        obj.meta = meta or {}
        return obj

    def __reduce__(self):  # keep ``meta`` through DataLoader worker pickling
        return (HybridBatch, (self[0], self[1], self.meta))


def tokenize(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    pad_to_multiple_of: Optional[int] = 8,
) -> BatchEncoding:
    """Tokenise with the model's special tokens, truncate to ``max_length``, pad to the batch's longest."""
    return tokenizer(
        list(texts),
        max_length=max_length,
        truncation=True,
        padding=True,
        pad_to_multiple_of=pad_to_multiple_of,
        return_token_type_ids=False,
        return_tensors="pt",
    )


@dataclass
class TrainCollator:
    """Items ``{"query": str, "passages": [str] * G, "meta": {...}}`` -> :class:`HybridBatch`.

    Prefixes are applied by the dataset; the passage batch is query-major (G rows per query, positive
    first), which is what Tevatron's loss (target = index × G) expects.
    """

    tokenizer: PreTrainedTokenizerBase
    query_max_len: int = 32
    passage_max_len: int = 128
    pad_to_multiple_of: Optional[int] = 8

    def __call__(self, items: List[Dict[str, Any]]) -> HybridBatch:
        queries = [item["query"] for item in items]
        passages = [p for item in items for p in item["passages"]]
        metas = [item.get("meta", {}) for item in items]
        meta = dict(metas[0]) if metas else {}
        if metas:
            meta["query_langs"] = [m.get("query_lang") for m in metas]
            meta["passage_langs"] = [m.get("passage_lang") for m in metas]
            meta.pop("query_lang", None)
            meta.pop("passage_lang", None)
        return HybridBatch(
            tokenize(self.tokenizer, queries, self.query_max_len, self.pad_to_multiple_of),
            tokenize(self.tokenizer, passages, self.passage_max_len, self.pad_to_multiple_of),
            meta,
        )


@dataclass
class EncodeCollator:
    """``[(id, text)]`` -> ``(ids, batch)``: prefix, tokenise, pad dynamically. Used by our encoders."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int = 128
    prefix: str = ""
    pad_to_multiple_of: Optional[int] = 8

    def __call__(self, items: Sequence[Tuple[str, str]]) -> Tuple[List[str], BatchEncoding]:
        ids = [i for i, _ in items]
        texts = [self.prefix + t for _, t in items]
        return ids, tokenize(self.tokenizer, texts, self.max_length, self.pad_to_multiple_of)
