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
