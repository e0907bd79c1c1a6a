"""Input data: training sources read and checked into a :class:`ParallelCorpus` (``readers``, ``records``,
``corpus_build``; every refusal a :class:`DataError`), and the converters that write them (XQuAD-R, mMARCO, captions).
"""

from .corpus import ParallelCorpus, csr
from .errors import DataError
from .readers import (
    load_hf_source,
    load_jsonl_source,
    load_sources,
    parse_extra_source,
    parse_train_files,
    restrict_languages,
)

__all__ = [
    "ParallelCorpus",
    "csr",
    "DataError",
    "load_hf_source",
    "load_jsonl_source",
    "load_sources",
    "parse_extra_source",
    "parse_train_files",
    "restrict_languages",
]
