"""Readers: per-language Tevatron training data (JSONL files or a Hugging Face dataset) -> :class:`ParallelCorpus`,
and the training flags that name them (``--train_files``, ``--extra_sources``, ``--dataset_name``).

The record format and what is refused per record: :mod:`hybrid_tevatron.data.records`; the alignment over languages
and the checks across records: :mod:`hybrid_tevatron.data.corpus_build`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .corpus import ParallelCorpus
from .corpus_build import MAX_ERRORS, build_corpus
from .errors import DataError
from .records import dataset_records, jsonl_records

__all__ = [
    "load_jsonl_source",
    "load_hf_source",
    "load_sources",
    "parse_train_files",
    "parse_extra_source",
    "restrict_languages",
]


# ------------------------------------------------------------------------------------------------ public readers
def load_jsonl_source(name: str, files: dict[str, str], passage_field_separator: str = " ",
                      group_size: int = 1, max_errors: int = MAX_ERRORS) -> ParallelCorpus:
    """Parallel corpus from per-language Tevatron JSONL files ``{lang: path}`` (first language sets query order)."""
    if not files:
        raise DataError(f"source {name!r}: no files")
    for lang, path in files.items():
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file (language {lang!r} of source {name!r})")
    return build_corpus(name, list(files), {lang: jsonl_records(p) for lang, p in files.items()},
                        dict(files), passage_field_separator, group_size, max_errors)


def load_hf_source(name: str, dataset_name: str, languages: Sequence[str], split: str = "train",
                   passage_field_separator: str = " ", group_size: int = 1,
                   cache_dir: str | None = None, max_errors: int = MAX_ERRORS) -> ParallelCorpus:
    """Parallel corpus from a Hugging Face dataset with one config per language, each in Tevatron's format.

    Loads ``datasets.load_dataset(dataset_name, lang, split=split)`` for each language (a hub name or a local
    dataset directory/script).
    """
    import datasets

    if not languages:
        raise DataError(f"--dataset_name {dataset_name}: give the languages (configs) with --languages")
    records, labels = {}, {}
    for lang in languages:
        label = f"{dataset_name} [config {lang}, split {split}]"
        try:
            ds = datasets.load_dataset(dataset_name, lang, split=split, cache_dir=cache_dir)
        except Exception as e:  # noqa: BLE001 - re-raised with the dataset/config named
            raise DataError(f"{label}: cannot load ({type(e).__name__}: {e})") from e
        records[lang] = dataset_records(ds, label)
        labels[lang] = label
    return build_corpus(name, list(languages), records, labels, passage_field_separator, group_size, max_errors)


# ------------------------------------------------------------------------------------------------ CLI specs
def _dir_files(directory: str) -> dict[str, str]:
    names = sorted(f for f in os.listdir(directory) if f.endswith(".jsonl") and not f.startswith("."))
    if not names:
        raise DataError(f"{directory}: no {{lang}}.jsonl files")
    return {f[: -len(".jsonl")]: os.path.join(directory, f) for f in names}


def _lang_paths(items: Sequence[str], what: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            lang, eq, path = part.partition("=")
            lang, path = lang.strip(), path.strip()
            if not eq or not lang or not path or "/" in lang:
                raise DataError(f"{what}: expected LANG=PATH, got {part!r}")
            if lang in files:
                raise DataError(f"{what}: language {lang!r} given twice")
            if not os.path.isfile(path):
                raise DataError(f"{what}: file not found: {path} (language {lang!r})")
            files[lang] = path
    return files


def parse_train_files(specs: Sequence[str]) -> dict[str, str]:
    """``--train_files`` -> ``{lang: path}``: LANG=PATH items (commas also separate), or one directory of
    ``{lang}.jsonl`` files (languages in sorted file-name order)."""
    specs = [s for s in specs if s.strip()]
    if not specs:
        raise DataError("--train_files: nothing given")
    if len(specs) == 1 and "=" not in specs[0]:
        folder = specs[0]
        if os.path.isdir(folder):
            return _dir_files(folder)
        if os.path.isfile(folder):
            raise DataError(f"--train_files: {folder} is a file; give LANG={folder} (one per language) or a "
                            "folder of {lang}.jsonl files")
        raise DataError(f"--train_files: folder not found: {folder}")
    return _lang_paths(specs, "--train_files")


def parse_extra_source(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME:LANG=PATH,LANG=PATH`` or ``NAME:DIR`` -> ``(name, {lang: path})``."""
    name, colon, rest = spec.partition(":")
    name, rest = name.strip(), rest.strip()
    if not colon or not name or not rest or "=" in name or "/" in name:
        raise DataError(f"--extra_sources: expected NAME:LANG=PATH,LANG=PATH or NAME:DIR, got {spec!r}")
    if "=" not in rest:
        if not os.path.isdir(rest):
            raise DataError(f"--extra_sources {spec!r}: folder not found: {rest}")
        return name, _dir_files(rest)
    return name, _lang_paths([rest], f"--extra_sources {name}")


def restrict_languages(files: dict[str, str], languages: Sequence[str]) -> dict[str, str]:
    """The entries of ``files`` whose language is in ``languages`` (all when empty), in ``files`` order."""
    return dict(files) if not languages else {k: v for k, v in files.items() if k in set(languages)}


def load_sources(data_args, group_size: int | None = None) -> list[ParallelCorpus]:
    """All training sources of ``HybridDataArguments``: --train_files (named after its directory, else
    ``main``), then --extra_sources, then --dataset_name; each restricted to --languages when given."""
    group_size = data_args.train_group_size if group_size is None else group_size
    sep = data_args.passage_field_separator
    wanted = list(data_args.languages)
    specs: list[tuple[str, dict[str, str]]] = []
    if data_args.train_files:
        files = parse_train_files(data_args.train_files)
        one = [s for s in data_args.train_files if s.strip()]
        name = os.path.basename(os.path.normpath(one[0])) if len(one) == 1 and os.path.isdir(one[0]) else "main"
        specs.append((name, files))
    for spec in data_args.extra_sources:
        specs.append(parse_extra_source(spec))
    if data_args.dataset_name and data_args.train_files:
        raise DataError("give --dataset_name or --train_files, not both (use --extra_sources for more sources)")
    if not specs and not data_args.dataset_name:
        raise DataError("no training data: give --train_files, --extra_sources or --dataset_name")
    names = [n for n, _ in specs] + ([data_args.dataset_name] if data_args.dataset_name else [])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"source names must be unique, got {dup} more than once (name them with NAME:...)")
    available = {lang for _, files in specs for lang in files}
    if data_args.dataset_name:
        available |= set(wanted)
    absent = [lang for lang in wanted if lang not in available]
    if absent:
        raise DataError(f"--languages {absent} are in no training source (available: {sorted(available)})")
    sources = []
    for name, files in specs:
        kept = restrict_languages(files, wanted)
        if not kept:
            raise DataError(f"source {name!r} has none of --languages {wanted} (it has {list(files)})")
        sources.append(load_jsonl_source(name, kept, sep, group_size))
    if data_args.dataset_name:
        sources.append(load_hf_source(data_args.dataset_name, data_args.dataset_name, wanted,
                                      data_args.dataset_split, sep, group_size))
    return sources
