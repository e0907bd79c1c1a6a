"""Readers: per-language Tevatron training data (JSONL files or a Hugging Face dataset) -> :class:`ParallelCorpus`.

**Input format** — one record per query and language, Tevatron's training format::

    {"query_id": "q1", "query": "...", "positive_passages": [{"docid": "d1", "title": "", "text": "..."}],
     "negative_passages": [{"docid": "d7", "title": "", "text": "..."}, ...]}

``negative_passages`` may be absent (no negatives; only valid with ``group_size == 1``); ``title`` is optional.
Ids may be strings or integers (compared as strings). A passage's text is ``title + separator + text`` when the
title is non-empty, else ``text``.

**Alignment** — the files of one source hold the same query ids (``query_id``) and the same passages
(``docid``) in different languages. Query order = order of the first language's file. A query's positives are
the union of its positive docids over the languages (first-seen order, first language first); its negatives are
the union of its negative docids over the languages, in first-seen order. A passage's text in a language may
come from any record of that language; a negative without text in some language is simply unavailable there.

**Validation** (:class:`DataError`, naming file:line or dataset row, and the id):
malformed JSON; a missing or wrongly typed key; an empty file; an empty query or passage text; a query id twice
in one file (both lines); a query id present in one language but missing in another; a query without
positives; a positive without text in some language; a docid that is positive and negative for the same query;
a docid whose text differs within one language (both lines: the data is not parallel-consistent; we do not
guess which text is right); a query with no negative in some language when ``group_size > 1``.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .corpus import ParallelCorpus, csr

__all__ = [
    "DataError",
    "load_jsonl_source",
    "load_hf_source",
    "load_sources",
    "parse_train_files",
    "parse_extra_source",
    "restrict_languages",
]

# A language's records: a factory giving fresh iterators of (location, record-or-None, parse error message).
Records = Callable[[], Iterator[Tuple[str, Optional[dict], Optional[str]]]]


class DataError(ValueError):
    """Invalid or inconsistent training data; the message names the file/line (or dataset row) and the id."""


# ------------------------------------------------------------------------------------------------ record sources
def _jsonl_records(path: str) -> Records:
    def it():
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{lineno}", json.loads(line), None
                except json.JSONDecodeError as e:
                    yield f"{path}:{lineno}", None, f"malformed JSON ({e.msg} at column {e.colno})"

    return it


def _dataset_records(rows: Iterable[dict], label: str) -> Records:
    def it():
        for i, row in enumerate(rows):
            yield f"{label} row {i}", row, None

    return it


# ------------------------------------------------------------------------------------------------ record parsing
def _id(record: dict, key: str, where: str) -> str:
    if key not in record:
        raise DataError(f"{where}: missing key {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise DataError(f"{where}: {key!r} must be a non-empty string or integer, got {value!r}")
    return str(value)


def _passages(record: dict, key: str, where: str, qid: str, sep: str, required: bool) -> List[Tuple[str, str]]:
    if key not in record:
        if required:
            raise DataError(f"{where}: missing key {key!r} (query id {qid!r})")
        return []
    items = record[key]
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise DataError(f"{where}: {key!r} must be a list (query id {qid!r})")
    out = []
    for n, p in enumerate(items):
        pwhere = f"{where}: {key}[{n}] of query id {qid!r}"
        if not isinstance(p, dict):
            raise DataError(f"{pwhere}: must be an object with 'docid' and 'text'")
        docid = _id(p, "docid", pwhere)
        if "text" not in p:
            raise DataError(f"{pwhere}: missing key 'text' (docid {docid!r})")
        text, title = p["text"], p.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise DataError(f"{pwhere}: 'text'/'title' must be strings (docid {docid!r})")
        if not text.strip():
            raise DataError(f"{pwhere}: empty passage text (docid {docid!r})")
        out.append((docid, title + sep + text if title.strip() else text))
    return out


def _find_first(records: Records, match: Callable[[dict], bool]) -> str:
    """Location of the first record satisfying ``match`` (only used to build error messages)."""
    for where, record, _ in records():
        if isinstance(record, dict):
            try:
                if match(record):
                    return where
            except Exception:  # noqa: BLE001 - a malformed record elsewhere is not this error
                continue
    return "<unknown location>"


def _has_doc_text(record: dict, docid: str, text: str, sep: str) -> bool:
    for key in ("positive_passages", "negative_passages"):
        for p in record.get(key) or []:
            if isinstance(p, dict) and str(p.get("docid")) == docid:
                title = p.get("title") or ""
                if (title + sep + p.get("text", "") if title.strip() else p.get("text")) == text:
                    return True
    return False


# ------------------------------------------------------------------------------------------------ core builder
def build_corpus(name: str, languages: Sequence[str], records: Dict[str, Records], labels: Dict[str, str],
                 passage_field_separator: str = " ", group_size: int = 1) -> ParallelCorpus:
    """The parallel corpus of one source from each language's records (``labels``: file/dataset per language)."""
    languages = list(languages)
    if not languages:
        raise DataError(f"source {name!r}: no languages")
    if len(set(languages)) != len(languages):
        raise DataError(f"source {name!r}: duplicate languages {languages}")
    sep = passage_field_separator
    qindex: Dict[str, int] = {}
    query_ids: List[str] = []
    dindex: Dict[str, int] = {}
    doc_ids: List[str] = []
    pos: List[List[int]] = []
    neg: List[List[int]] = []
    queries: Dict[str, List[Optional[str]]] = {}
    passages: Dict[str, List[Optional[str]]] = {}

    def doc(docid: str) -> int:
        d = dindex.get(docid)
        if d is None:
            d = dindex[docid] = len(doc_ids)
            doc_ids.append(docid)
        return d

    for li, lang in enumerate(languages):
        first = li == 0
        qtext: List[Optional[str]] = [None] * len(query_ids)
        ptext: List[Optional[str]] = passages.setdefault(lang, [])
        seen_any = False
        for where, record, parse_error in records[lang]():
            if parse_error:
                raise DataError(f"{where}: {parse_error}")
            if not isinstance(record, dict):
                raise DataError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
            seen_any = True
            qid = _id(record, "query_id", where)
            if "query" not in record:
                raise DataError(f"{where}: missing key 'query' (query id {qid!r})")
            query = record["query"]
            if not isinstance(query, str) or not query.strip():
                raise DataError(f"{where}: empty query text (query id {qid!r})")
            positives = _passages(record, "positive_passages", where, qid, sep, required=True)
            negatives = _passages(record, "negative_passages", where, qid, sep, required=False)
            q = qindex.get(qid)
            if q is None:
                if not first:
                    raise DataError(
                        f"{where}: query id {qid!r} is in language {lang!r} but missing in language "
                        f"{languages[0]!r} ({labels[languages[0]]})"
                    )
                q = qindex[qid] = len(query_ids)
                query_ids.append(qid)
                qtext.append(None)
                pos.append([])
                neg.append([])
            elif qtext[q] is not None:
                other = _find_first(records[lang], lambda r: str(r.get("query_id")) == qid)
                raise DataError(f"{where}: duplicate query id {qid!r} (first at {other})")
            qtext[q] = query
            if first and not positives:
                raise DataError(f"{where}: no positive passage for query id {qid!r}")
            for docid, text in positives + negatives:
                d = doc(docid)
                if d >= len(ptext):
                    ptext.extend([None] * (d + 1 - len(ptext)))
                old = ptext[d]
                if old is None:
                    ptext[d] = text
                elif old != text:
                    other = _find_first(records[lang], lambda r: _has_doc_text(r, docid, old, sep))
                    raise DataError(
                        f"{where}: docid {docid!r} has a different text in language {lang!r} than at {other} "
                        f"(query id {qid!r})"
                    )
            qpos, qneg = pos[q], neg[q]
            for docid, _ in positives:
                d = dindex[docid]
                if d not in qpos:
                    qpos.append(d)
            for docid, _ in negatives:
                d = dindex[docid]
                if d not in qneg:
                    qneg.append(d)
        if not seen_any:
            raise DataError(f"{labels[lang]}: empty (no records) for language {lang!r} of source {name!r}")
        missing = [i for i, t in enumerate(qtext) if t is None]
        if missing:
            qid = query_ids[missing[0]]
            raise DataError(
                f"{labels[lang]}: query id {qid!r} (of {languages[0]!r}, {labels[languages[0]]}) is missing in "
                f"language {lang!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        queries[lang] = qtext

    for lang in languages:
        passages[lang].extend([None] * (len(doc_ids) - len(passages[lang])))
    for q, (qpos, qneg) in enumerate(zip(pos, neg)):
        both = set(qpos) & set(qneg)
        if both:
            raise DataError(
                f"source {name!r}: docid {doc_ids[min(both)]!r} is both positive and negative for query id "
                f"{query_ids[q]!r}"
            )
        for d in qpos:
            for lang in languages:
                if passages[lang][d] is None:
                    raise DataError(
                        f"{labels[lang]}: positive docid {doc_ids[d]!r} of query id {query_ids[q]!r} has no text "
                        f"in language {lang!r}"
                    )
    pos_offsets, pos_docs = csr(pos)
    neg_offsets, neg_docs = csr(neg)
    del pos, neg
    corpus = ParallelCorpus(
        name=name, languages=languages, query_ids=query_ids, doc_ids=doc_ids, queries=queries,  # type: ignore[arg-type]
        passages=passages, pos_offsets=pos_offsets, pos_docs=pos_docs, neg_offsets=neg_offsets, neg_docs=neg_docs,
    )
    if group_size > 1:
        for lang in languages:
            has_text = np.fromiter((t is not None for t in passages[lang]), bool, len(doc_ids))
            cum = np.concatenate([[0], np.cumsum(has_text[neg_docs])]) if len(neg_docs) else np.zeros(1, np.int64)
            empty = cum[neg_offsets[1:]] == cum[neg_offsets[:-1]]
            if empty.any():
                q = int(empty.argmax())
                raise DataError(
                    f"{labels[lang]}: query id {query_ids[q]!r} has no negative passage with text in language "
                    f"{lang!r} ({int(empty.sum())} such queries), but train_group_size is {group_size}"
                )
    return corpus


# ------------------------------------------------------------------------------------------------ public readers
def load_jsonl_source(name: str, files: Dict[str, str], passage_field_separator: str = " ",
                      group_size: int = 1) -> ParallelCorpus:
    """Parallel corpus from per-language Tevatron JSONL files ``{lang: path}`` (first language sets query order)."""
    if not files:
        raise DataError(f"source {name!r}: no files")
    for lang, path in files.items():
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file (language {lang!r} of source {name!r})")
    return build_corpus(name, list(files), {lang: _jsonl_records(p) for lang, p in files.items()},
                        dict(files), passage_field_separator, group_size)


def load_hf_source(name: str, dataset_name: str, languages: Sequence[str], split: str = "train",
                   passage_field_separator: str = " ", group_size: int = 1,
                   cache_dir: Optional[str] = None) -> ParallelCorpus:
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
        records[lang] = _dataset_records(ds, label)
        labels[lang] = label
    return build_corpus(name, list(languages), records, labels, passage_field_separator, group_size)


# ------------------------------------------------------------------------------------------------ CLI specs
def _dir_files(directory: str) -> Dict[str, str]:
    names = sorted(f for f in os.listdir(directory) if f.endswith(".jsonl") and not f.startswith("."))
    if not names:
        raise DataError(f"{directory}: no {{lang}}.jsonl files")
    return {f[: -len(".jsonl")]: os.path.join(directory, f) for f in names}


def _lang_paths(items: Sequence[str], what: str) -> Dict[str, str]:
    files: Dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            lang, eq, path = part.partition("=")
            lang, path = lang.strip(), path.strip()
            if not eq or not lang or not path or "/" in lang:
                raise DataError(f"{what}: expected LANG=PATH, got {part!r}")
            if lang in files:
                raise DataError(f"{what}: language {lang!r} given twice")
            if not os.path.isfile(path):
                raise DataError(f"{what}: {path}: no such file (language {lang!r})")
            files[lang] = path
    return files


def parse_train_files(specs: Sequence[str]) -> Dict[str, str]:
    """``--train_files`` -> ``{lang: path}``: LANG=PATH items (commas also separate), or one directory of
    ``{lang}.jsonl`` files (languages in sorted file-name order)."""
    specs = [s for s in specs if s.strip()]
    if not specs:
        raise DataError("--train_files: nothing given")
    if len(specs) == 1 and os.path.isdir(specs[0]):
        return _dir_files(specs[0])
    return _lang_paths(specs, "--train_files")


def parse_extra_source(spec: str) -> Tuple[str, Dict[str, str]]:
    """``NAME:LANG=PATH,LANG=PATH`` or ``NAME:DIR`` -> ``(name, {lang: path})``."""
    name, colon, rest = spec.partition(":")
    name, rest = name.strip(), rest.strip()
    if not colon or not name or not rest or "=" in name or "/" in name:
        raise DataError(f"--extra_sources: expected NAME:LANG=PATH,LANG=PATH or NAME:DIR, got {spec!r}")
    if "=" not in rest:
        if not os.path.isdir(rest):
            raise DataError(f"--extra_sources {spec!r}: {rest}: no such directory")
        return name, _dir_files(rest)
    return name, _lang_paths([rest], f"--extra_sources {name}")


def restrict_languages(files: Dict[str, str], languages: Sequence[str]) -> Dict[str, str]:
    """The entries of ``files`` whose language is in ``languages`` (all when empty), in ``files`` order."""
    return dict(files) if not languages else {k: v for k, v in files.items() if k in set(languages)}


def load_sources(data_args, group_size: Optional[int] = None) -> List[ParallelCorpus]:
    """All training sources of ``HybridDataArguments``: --train_files (named after its directory, else
    ``main``), then --extra_sources, then --dataset_name; each restricted to --languages when given."""
    group_size = data_args.train_group_size if group_size is None else group_size
    sep = data_args.passage_field_separator
    wanted = list(data_args.languages)
    specs: List[Tuple[str, Dict[str, str]]] = []
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
