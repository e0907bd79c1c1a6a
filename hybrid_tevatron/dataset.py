"""Map-style training dataset indexed by plan entries: :class:`PlanEntry` -> a Tevatron-shaped item.

The batch plan (``sampling.py``) decides everything (source, query, languages, the G doc indices, positive
first); the dataset only looks texts up, adds the prefixes and never substitutes another language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from .data.corpus import ParallelCorpus
from .sampling import PlanEntry


class HybridTrainDataset(Dataset):
    """``dataset[entry]`` -> ``{"query": str, "passages": [str] * G, "meta": {...}}`` for a :class:`PlanEntry`.

    ``len(dataset)`` is the number of query ids over all sources (the examples of one epoch).
    """

    def __init__(self, sources: Sequence[ParallelCorpus], query_prefix: str = "", passage_prefix: str = ""):
        if not sources:
            raise ValueError("HybridTrainDataset needs at least one source")
        self.sources: list[ParallelCorpus] = list(sources)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, entry: PlanEntry) -> dict[str, Any]:
        if not isinstance(entry, PlanEntry):
            raise TypeError("HybridTrainDataset is indexed by PlanEntry (from the batch plan), got "
                            f"{type(entry).__name__}")
        if not 0 <= entry.source < len(self.sources):
            raise IndexError(f"plan entry source {entry.source} out of range ({len(self.sources)} sources)")
        corpus = self.sources[entry.source]
        if not 0 <= entry.query < len(corpus):
            raise IndexError(f"plan entry query {entry.query} out of range (source {corpus.name!r}: {len(corpus)})")
        for lang in (entry.query_lang, entry.passage_lang):
            if lang not in corpus.queries:
                raise KeyError(f"source {corpus.name!r} has no language {lang!r} (it has {corpus.languages})")
        qid = corpus.query_ids[entry.query]
        passages = []
        for d in entry.passages:
            text = corpus.passage_text(entry.passage_lang, d)
            if text is None:
                raise KeyError(
                    f"source {corpus.name!r}: docid {corpus.doc_ids[d]!r} (in the group of query id {qid!r}) has no "
                    f"text in language {entry.passage_lang!r}"
                )
            passages.append(self.passage_prefix + text)
        return {
            "query": self.query_prefix + corpus.query_text(entry.query_lang, entry.query),
            "passages": passages,
            "meta": {
                "epoch": entry.epoch,
                "step": entry.step,
                "mode": entry.mode,
                "source": corpus.name,
                "query_lang": entry.query_lang,
                "passage_lang": entry.passage_lang,
                "query_id": qid,
            },
        }
