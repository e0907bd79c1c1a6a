"""The parallel corpus: one training source whose queries and passages exist in several languages.

Ids are interned to integer indices and id lists are stored as CSR arrays, so memory stays linear in the
number of query ids and the batch plan can work on integers only.

Alignment: a query index ``q`` is the same question in every language; ``positives(q)`` / ``negatives(q)``
are passage (doc) indices shared by all languages; ``passage_text(lang, d)`` is ``d``'s text in ``lang``
(``None`` where the corpus has no translation). Every positive has text in every language (checked by the
readers); a negative may lack a language, and is then unavailable in that language. ``same_item(q)``: docs that
describe the same item as ``q`` without being its positives (its own text in a pool of several descriptions per
image). Most sources have none (``same_offsets`` None). A source that has them is an *item source*:
``doc_items()`` labels every doc with its item, the connected component of the docs that some query lists together
(its positives and same-item docs; one image in a description pool), and the batch plan keeps items, not only
docs, apart within a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ParallelCorpus:
    name: str
    languages: list[str]
    query_ids: list[str]  # index -> external query id
    doc_ids: list[str]  # index -> external docid
    queries: dict[str, list[str]]  # lang -> query text per query index
    passages: dict[str, list[str | None]]  # lang -> passage text per doc index (None: no text in lang)
    pos_offsets: np.ndarray  # CSR: positives of q are pos_docs[pos_offsets[q]:pos_offsets[q+1]]
    pos_docs: np.ndarray
    neg_offsets: np.ndarray
    neg_docs: np.ndarray
    same_offsets: np.ndarray | None = None  # CSR of same_item_docids; None: the source has none
    same_docs: np.ndarray | None = None
    _neg_by_lang: dict[str, tuple] = field(default_factory=dict, repr=False)
    _items: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.query_ids)

    @property
    def num_docs(self) -> int:
        return len(self.doc_ids)

    def positives(self, q: int) -> np.ndarray:
        return self.pos_docs[self.pos_offsets[q] : self.pos_offsets[q + 1]]

    def same_item(self, q: int) -> np.ndarray:
        """Docs of the same item as ``q`` that are not its positives (empty for most sources)."""
        if self.same_offsets is None:
            return np.zeros(0, dtype=np.int64)
        return self.same_docs[self.same_offsets[q] : self.same_offsets[q + 1]]

    def doc_items(self) -> np.ndarray | None:
        """Per doc, the smallest doc index of its item (see the module docstring); None unless an item source."""
        if self.same_offsets is None:
            return None
        if self._items is None:
            # edges: each query's first positive to each of its positives and same-item docs
            first = self.pos_docs[self.pos_offsets[:-1]]  # every query has a positive (the readers check)
            a = np.concatenate([np.repeat(first, np.diff(self.pos_offsets)),
                                np.repeat(first, np.diff(self.same_offsets))])
            b = np.concatenate([self.pos_docs, self.same_docs])
            labels = np.arange(self.num_docs, dtype=np.int64)
            while True:  # label propagation with pointer jumping: every doc ends on its component's smallest doc
                before = labels.copy()
                low = np.minimum(labels[a], labels[b])
                np.minimum.at(labels, a, low)
                np.minimum.at(labels, b, low)
                labels = labels[labels]
                if np.array_equal(labels, before):
                    break
            self._items = labels
        return self._items

    def negatives(self, q: int, lang: str | None = None) -> np.ndarray:
        """Negatives of ``q``; with ``lang``, only those that have text in ``lang``."""
        if lang is None:
            return self.neg_docs[self.neg_offsets[q] : self.neg_offsets[q + 1]]
        offsets, docs = self._negatives_in(lang)
        return docs[offsets[q] : offsets[q + 1]]

    def _negatives_in(self, lang: str) -> tuple:
        if lang not in self._neg_by_lang:
            has_text = np.fromiter((t is not None for t in self.passages[lang]), bool, self.num_docs)
            keep = has_text[self.neg_docs] if len(self.neg_docs) else np.zeros(0, bool)
            kept_before = np.concatenate([[0], np.cumsum(keep)])
            self._neg_by_lang[lang] = (kept_before[self.neg_offsets].astype(np.int64), self.neg_docs[keep])
        return self._neg_by_lang[lang]

    def query_text(self, lang: str, q: int) -> str:
        return self.queries[lang][q]

    def passage_text(self, lang: str, d: int) -> str | None:
        return self.passages[lang][d]


def csr(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) int64 CSR arrays of a list of integer lists."""
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=offsets[1:])
    values = np.fromiter((v for x in lists for v in x), dtype=np.int64, count=int(offsets[-1]))
    return offsets, values
