"""Readers: per-language Tevatron training data (JSONL files or a Hugging Face dataset) -> :class:`ParallelCorpus`.

**Input format** — one record per query and language, Tevatron's training format::

    {"query_id": "q1", "query": "...", "positive_passages": [{"docid": "d1", "title": "", "text": "..."}],
     "negative_passages": [{"docid": "d7", "title": "", "text": "..."}, ...]}

``negative_passages`` may be absent (no negatives; only valid with ``group_size == 1``); ``title`` is optional.
``same_item_docids`` (optional, our extension; a list of docids) names passages that describe the same item as the
query but are not its positives: its own text when the query is also a passage (a pool of several descriptions per
image, :mod:`hybrid_tevatron.data.descriptions`) and texts identical to it; never its positive nor its negative.
A source with them is an *item source* (:class:`~hybrid_tevatron.data.corpus.ParallelCorpus`): the batch plan keeps
each item (the docs its queries list together: one image) in one example of a step.
Ids (``query_id``, ``docid``) are non-empty strings, as in Tevatron's format: an integer id is a type error, not
quietly turned into a string (``7`` and ``"07"`` would then be one id in one file and two in another). A
passage's text is ``title + separator + text`` when the title is non-empty, else ``text``. Files are UTF-8.

**Alignment** — the files of one source hold the same query ids (``query_id``) and the same passages
(``docid``) in different languages. Query order = order of the first language's file. A query's positives are
the union of its positive docids over the languages (first-seen order, first language first); its negatives are
the union of its negative docids over the languages, in first-seen order. A passage's text in a language may
come from any record of that language; a negative without text in some language is simply unavailable there.

**Validation** (:class:`DataError`, naming file:line or dataset row, and the id), all before training starts:
a line that is not UTF-8; malformed JSON; a missing or wrongly typed key; an empty file; an empty query or passage
text; a query id twice in one file (both lines); a query id present in one language but missing in another (both
files; not reported for a file that has a failed record whose query id is unknown); a query without positives
(first language); a positive without text in some language; a docid that is positive and negative for the same
query (over the union of languages), or a same-item docid that is also one of its positives or negatives; a
docid whose text differs within one language (both lines; an error, not "first wins": the data is not consistent
and we do not guess which text is right); a query with no negative in some language when ``group_size > 1``. A bad
record is skipped and reading goes on, so one :class:`DataError` lists up to ``max_errors`` problems (a single
problem is raised as its own message); cross-language checks run only once every record parsed.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from hybrid_tevatron.errors import HybridTevatronError

from .corpus import ParallelCorpus

__all__ = [
    "DataError",
    "load_jsonl_source",
    "load_hf_source",
    "load_sources",
    "parse_train_files",
    "parse_extra_source",
    "restrict_languages",
]

# A language's records: a factory giving fresh iterators of (index, record-or-None, parse error message), and a
# locator turning an index into "file:line" / "dataset row i" (built only for error messages). A record that comes
# with a parse error is a best-effort reading of the bad line, used only to name its query id.
Records = Callable[[], Iterator[tuple[int, dict | None, str | None]]]
Locator = Callable[[int], str]

MAX_ERRORS = 20


class DataError(HybridTevatronError, ValueError):
    """Invalid or inconsistent training data; the message names the file/line (or dataset row) and the id."""


class _BadRecord(Exception):
    def __init__(self, message: str, qid: str | None = None):
        super().__init__(message)
        self.qid = qid


class _Errors:
    """Collects up to ``limit`` error messages of one source; one error is raised as is, several together."""

    def __init__(self, source: str, limit: int):
        self.source, self.limit = source, max(1, int(limit))
        self.messages: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < self.limit:
            self.messages.append(message)

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    def raise_if_any(self) -> None:
        if self.count == 1:
            raise DataError(self.messages[0])
        if self.count:
            head = (f"source {self.source!r}: stopped at {self.count} data errors (max_errors)" if self.full
                    else f"source {self.source!r}: {self.count} data errors")
            raise DataError(head + ":\n  - " + "\n  - ".join(self.messages))


# ------------------------------------------------------------------------------------------------ record sources
def _jsonl_records(path: str) -> tuple[Records, Locator]:
    def it():
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    try:  # which query the line is about, so that it is not also reported missing
                        guess = json.loads(raw.decode("utf-8", errors="replace"))
                    except json.JSONDecodeError:
                        guess = None
                    yield lineno, guess, f"not UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line)"
                    continue
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line), None
                except json.JSONDecodeError as e:
                    yield lineno, None, f"malformed JSON ({e.msg} at column {e.colno})"

    return it, lambda lineno: f"{path}:{lineno}"


def _dataset_records(rows: Iterable[dict], label: str) -> tuple[Records, Locator]:
    def it():
        for i, row in enumerate(rows):
            yield i, row, None

    return it, lambda i: f"{label} row {i}"


# ------------------------------------------------------------------------------------------------ record parsing
def _id(record: dict, key: str, what: str = "") -> str:
    if key not in record:
        raise _BadRecord(f"{what}missing key {key!r}")
    value = record[key]
    if type(value) is str and value:
        return value
    kind = "an empty string" if value == "" else f"{_json_type(value)} {json.dumps(value, ensure_ascii=False)}"
    raise _BadRecord(f"{what}{key!r} must be a non-empty string, got {kind}")


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list", type(None): "null"}.get(type(value), type(value).__name__)


def _passages(record: dict, key: str, qid: str, sep: str, required: bool) -> list[tuple[str, str]]:
    """``[(docid, text)]`` of ``record[key]``; text = title + sep + text when the title is non-empty."""
    items = record.get(key)
    if items is None:
        if required:
            raise _BadRecord(f"missing key {key!r} (query id {qid!r})", qid)
        return []
    if not isinstance(items, list):
        raise _BadRecord(f"{key!r} must be a list (query id {qid!r})", qid)
    out = []
    for n, p in enumerate(items):
        if not isinstance(p, dict):
            raise _BadRecord(f"{key}[{n}] of query id {qid!r}: must be an object with 'docid' and 'text'", qid)
        docid = p.get("docid")
        if type(docid) is not str or not docid:
            try:
                docid = _id(p, "docid")
            except _BadRecord as e:
                raise _BadRecord(f"{key}[{n}] of query id {qid!r}: {e}", qid) from None
        text, title = p.get("text"), p.get("title") or ""
        if type(text) is not str or type(title) is not str:
            problem = "missing key 'text'" if "text" not in p else "'text'/'title' must be strings"
            raise _BadRecord(f"{key}[{n}] of query id {qid!r}: {problem} (docid {docid!r})", qid)
        if not text or text.isspace():
            raise _BadRecord(f"{key}[{n}] of query id {qid!r}: empty passage text (docid {docid!r})", qid)
        out.append((docid, title + sep + text if title and not title.isspace() else text))
    return out


def _same_item(record: dict, qid: str) -> list[str]:
    """The record's ``same_item_docids`` (absent: none)."""
    items = record.get("same_item_docids")
    if items is None:
        return []
    if not isinstance(items, list) or not all(type(d) is str and d for d in items):
        raise _BadRecord(f"'same_item_docids' must be a list of non-empty strings (query id {qid!r})", qid)
    return items


def _parse(record, sep: str) -> tuple[str, str, list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """``(query id, query, positives, negatives, same-item docids)`` of one record, or :class:`_BadRecord`."""
    if not isinstance(record, dict):
        raise _BadRecord(f"a record must be a JSON object, got {type(record).__name__}")
    qid = _id(record, "query_id")
    if "query" not in record:
        raise _BadRecord(f"missing key 'query' (query id {qid!r})", qid)
    query = record["query"]
    if type(query) is not str or not query or query.isspace():
        raise _BadRecord(f"empty query text (query id {qid!r})", qid)
    positives = _passages(record, "positive_passages", qid, sep, required=True)
    negatives = _passages(record, "negative_passages", qid, sep, required=False)
    return qid, query, positives, negatives, _same_item(record, qid)


def _merge_extras(offsets: array, flat: array, extras: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """CSR arrays of the first language's lists with each query's extra docs (later languages) appended."""
    offsets_np = np.frombuffer(offsets, dtype=np.int64).copy() if len(offsets) else np.zeros(1, np.int64)
    flat_np = np.frombuffer(flat, dtype=np.int64).copy() if len(flat) else np.zeros(0, np.int64)
    if not extras:
        return offsets_np, flat_np
    added = np.zeros(len(offsets_np) - 1, np.int64)
    for q, docs in extras.items():
        added[q] = len(docs)
    new_offsets = offsets_np + np.concatenate([[0], np.cumsum(added)])
    lengths = np.diff(offsets_np)
    out = np.empty(int(new_offsets[-1]), np.int64)
    out[np.arange(len(flat_np)) + np.repeat(new_offsets[:-1] - offsets_np[:-1], lengths)] = flat_np
    for q, docs in extras.items():
        out[new_offsets[q] + lengths[q] : new_offsets[q + 1]] = docs
    return new_offsets, out


def _positive_negative_conflicts(pos_off, pos_docs, neg_off, neg_docs) -> list[tuple[int, int]]:
    """``(query, doc)`` pairs where ``doc`` is both a positive and a negative of ``query`` (vectorised for the
    usual one-positive queries, a set check for queries with several positives)."""
    counts = np.diff(neg_off)
    first_positive = pos_docs[pos_off[:-1]] if len(pos_docs) else np.zeros(len(counts), np.int64)
    clash = np.flatnonzero(neg_docs == np.repeat(first_positive, counts))
    query_of_neg = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    found = {(int(query_of_neg[k]), int(neg_docs[k])) for k in clash}
    for q in np.flatnonzero(np.diff(pos_off) > 1):
        positives = set(pos_docs[pos_off[q] : pos_off[q + 1]].tolist())
        for d in positives & set(neg_docs[neg_off[q] : neg_off[q + 1]].tolist()):
            found.add((int(q), d))
    return sorted(found)


def _unique(docs: list[int]) -> list[int]:
    return docs if len(docs) < 2 or len(set(docs)) == len(docs) else list(dict.fromkeys(docs))


# ------------------------------------------------------------------------------------------------ core builder
def build_corpus(name: str, languages: Sequence[str], records: dict[str, tuple[Records, Locator]],
                 labels: dict[str, str], passage_field_separator: str = " ", group_size: int = 1,
                 max_errors: int = MAX_ERRORS) -> ParallelCorpus:
    """The parallel corpus of one source from each language's ``(records, locator)``; ``labels`` names each
    language's file/dataset. Raises :class:`DataError` listing up to ``max_errors`` problems.

    Memory: ids are interned; the first language's positive/negative docids go to flat int arrays, docids that
    only a later language lists go to a sparse per-query overflow, merged into CSR arrays at the end.
    """
    languages = list(languages)
    if not languages:
        raise DataError(f"source {name!r}: no languages")
    if len(set(languages)) != len(languages):
        raise DataError(f"source {name!r}: duplicate languages {languages}")
    builder = _CorpusBuilder(name, languages, records, labels, passage_field_separator, max_errors)
    for lang in languages:
        builder.read_language(lang)
    builder.errors.raise_if_any()
    return builder.finish(group_size)


class _DocLists:
    """Per-query docid lists: the first language's in flat arrays (``offsets``, ``flat``), docids only a later
    language lists in a sparse per-query overflow (``extra``), merged into CSR arrays by :meth:`merge`."""

    def __init__(self):
        self.offsets, self.flat, self.extra = array("q", [0]), array("q"), {}

    def append(self, docs: list[int]) -> None:
        """The next query's list (first language)."""
        self.flat.extend(docs)
        self.offsets.append(len(self.flat))

    def add(self, q: int, docs: list[int]) -> None:
        """Docids a later language lists for query ``q`` that the first did not."""
        known = self.flat[self.offsets[q] : self.offsets[q + 1]].tolist()
        if docs == known:
            return
        seen = set(known) | set(self.extra.get(q, ()))
        new = [d for d in docs if d not in seen]
        if new:
            self.extra.setdefault(q, []).extend(new)

    def __bool__(self) -> bool:
        return bool(len(self.flat) or self.extra)

    def merge(self) -> tuple[np.ndarray, np.ndarray]:
        return _merge_extras(self.offsets, self.flat, self.extra)


class _CorpusBuilder:
    """The state of :func:`build_corpus`: interned query and doc ids, each language's query and passage texts and
    where each was read (for messages), the positive / negative / same-item lists, the errors so far."""

    def __init__(self, name: str, languages: list[str], records: dict[str, tuple[Records, Locator]],
                 labels: dict[str, str], sep: str, max_errors: int):
        self.name, self.languages, self.records, self.labels, self.sep = name, languages, records, labels, sep
        self.first_lang = languages[0]
        self.errors = _Errors(name, max_errors)
        self.bad_qids: set = set()  # ids of records that failed (no cascading "missing" errors for them)
        self.unnamed_failures = {lang: 0 for lang in languages}  # failed records whose query id is unknown
        self.qindex: dict[str, int] = {}
        self.query_ids: list[str] = []
        self.dindex: dict[str, int] = {}
        self.doc_ids: list[str] = []
        self.pos, self.neg, self.same = _DocLists(), _DocLists(), _DocLists()  # same: same_item_docids
        self.queries: dict[str, list[str | None]] = {}
        self.passages: dict[str, list[str | None]] = {}
        self.query_line: dict[str, array] = {}  # lang -> record index of each query (for messages)

    # ---- reading, one language at a time
    def read_language(self, lang: str) -> None:
        records_of, where = self.records[lang]
        self.qtext: list[str | None] = [None] * len(self.query_ids)
        self.qline = array("q", [-1]) * len(self.query_ids)
        self.ptext: list[str | None] = self.passages.setdefault(lang, [None] * len(self.doc_ids))
        self.dline = array("q", [-1]) * len(self.ptext)  # record index where each doc's text was first seen
        seen_any = False
        for i, record, parse_error in records_of():
            seen_any = True
            if self.errors.full:
                break
            parsed = self._fields(lang, i, where, record, parse_error)
            if parsed is not None:
                self._add_record(lang, i, where, *parsed)
        if not seen_any:
            self.errors.add(f"{self.labels[lang]}: empty (no records) for language {lang!r} of source {self.name!r}")
        self._check_missing(lang)
        self.queries[lang] = self.qtext
        self.query_line[lang] = self.qline
        self.dline = array("q")  # freed before the next language

    def _fields(self, lang: str, i: int, where: Locator, record, parse_error) -> tuple | None:
        """The record's fields, or None after reporting why it failed."""
        if parse_error:
            self.errors.add(f"{where(i)}: {parse_error}")
            qid = record.get("query_id") if isinstance(record, dict) else None
            if type(qid) is str and qid:
                self.bad_qids.add(qid)
            else:
                self.unnamed_failures[lang] += 1
            return None
        try:
            return _parse(record, self.sep)
        except _BadRecord as e:
            self.errors.add(f"{where(i)}: {e}")
            if e.qid is not None:
                self.bad_qids.add(e.qid)
            else:
                self.unnamed_failures[lang] += 1
            return None

    def _add_record(self, lang: str, i: int, where: Locator, qid: str, query: str, positives, negatives,
                    same_item) -> None:
        first = lang == self.first_lang
        q = self.qindex.get(qid)
        if q is None:
            if not first:
                if qid not in self.bad_qids and not self.unnamed_failures[self.first_lang]:
                    self.errors.add(f"{where(i)}: query id {qid!r} is in language {lang!r} but missing in language "
                                    f"{self.first_lang!r} ({self.labels[self.first_lang]})")
                return
            if not positives:
                self.errors.add(f"{where(i)}: no positive passage for query id {qid!r}")
                self.bad_qids.add(qid)
                return
            q = self.qindex[qid] = len(self.query_ids)
            self.query_ids.append(qid)
            self.qtext.append(None)
            self.qline.append(-1)
        elif self.qtext[q] is not None:
            self.errors.add(f"{where(i)}: duplicate query id {qid!r} (first at {where(self.qline[q])})")
            return
        self.qtext[q] = query
        self.qline[q] = i
        pos_docs, neg_docs = [], []
        for docs, items in ((pos_docs, positives), (neg_docs, negatives)):
            for docid, text in items:
                d = self._doc(docid)
                old = self.ptext[d]
                if old is None:
                    self.ptext[d] = text
                    self.dline[d] = i
                elif old != text:
                    self.errors.add(f"{where(i)}: docid {docid!r} has a different text in language {lang!r} than "
                                    f"at {where(self.dline[d])} (query id {qid!r})")
                docs.append(d)
        # no text: a same-item doc gets its text from the records that list it as a passage
        same_docs = [self._doc(docid) for docid in same_item]
        for lists, docs in ((self.pos, pos_docs), (self.neg, neg_docs), (self.same, same_docs)):
            if first:
                lists.append(_unique(docs))
            else:
                lists.add(q, _unique(docs))

    def _doc(self, docid: str) -> int:
        """The interned index of ``docid``; a new doc grows this language's text list (others padded later)."""
        d = self.dindex.get(docid)
        if d is None:
            d = self.dindex[docid] = len(self.doc_ids)
            self.doc_ids.append(docid)
            self.ptext.append(None)
            self.dline.append(-1)
        return d

    def _check_missing(self, lang: str) -> None:
        """A query of the first language that this language lacks (one error, with examples)."""
        missing = [q for q, t in enumerate(self.qtext) if t is None and self.query_ids[q] not in self.bad_qids]
        if missing and not self.errors.full and not self.unnamed_failures[lang]:
            first_where = self.records[self.first_lang][1](self.query_line[self.first_lang][missing[0]])
            examples = [self.query_ids[q] for q in missing[1:6]]
            more = f" (and {len(missing) - 1} more, e.g. {examples})" if len(missing) > 1 else ""
            self.errors.add(f"{self.labels[lang]}: query id {self.query_ids[missing[0]]!r} (at {first_where}) is "
                            f"missing in language {lang!r}{more}")

    # ---- the union over languages
    def finish(self, group_size: int) -> ParallelCorpus:
        """CSR arrays of the union over languages, checked (conflicts, missing texts, empty negative groups)."""
        for lang in self.languages:
            self.passages[lang].extend([None] * (len(self.doc_ids) - len(self.passages[lang])))
        pos_off, pos_docs = self.pos.merge()
        neg_off, neg_docs = self.neg.merge()
        same_off, same_docs = self.same.merge() if self.same else (None, None)
        self.pos = self.neg = self.same = None  # the flat arrays and overflows, freed
        self._check_union(pos_off, pos_docs, neg_off, neg_docs, same_off, same_docs, group_size)
        self.errors.raise_if_any()
        return ParallelCorpus(
            name=self.name, languages=self.languages, query_ids=self.query_ids, doc_ids=self.doc_ids,
            queries=self.queries,  # type: ignore[arg-type]
            passages=self.passages, pos_offsets=pos_off, pos_docs=pos_docs, neg_offsets=neg_off, neg_docs=neg_docs,
            same_offsets=same_off, same_docs=same_docs,
        )

    def _at(self, lang: str, q: int) -> str:
        return self.records[lang][1](self.query_line[lang][q])

    def _check_union(self, pos_off, pos_docs, neg_off, neg_docs, same_off, same_docs, group_size: int) -> None:
        errors, doc_ids, query_ids, first_lang = self.errors, self.doc_ids, self.query_ids, self.first_lang
        num_q, num_d = len(query_ids), len(doc_ids)
        query_of_pos = np.repeat(np.arange(num_q, dtype=np.int64), np.diff(pos_off))
        for q, d in _positive_negative_conflicts(pos_off, pos_docs, neg_off, neg_docs)[: errors.limit]:
            errors.add(f"{self._at(first_lang, q)}: docid {doc_ids[d]!r} is both positive and negative for query id "
                       f"{query_ids[q]!r} (in the union over languages)")
        if same_off is not None:
            for q in np.flatnonzero(np.diff(same_off) > 0):
                same = set(same_docs[same_off[q] : same_off[q + 1]].tolist())
                for kind, off, docs in (("positive", pos_off, pos_docs), ("negative", neg_off, neg_docs)):
                    for d in sorted(same & set(docs[off[q] : off[q + 1]].tolist()))[:1]:
                        errors.add(f"{self._at(first_lang, int(q))}: docid {doc_ids[d]!r} is both a {kind} and a "
                                   f"same-item docid of query id {query_ids[q]!r} (in the union over languages)")
                if errors.full:
                    break
        has_text = {lang: np.fromiter((t is not None for t in self.passages[lang]), bool, num_d)
                    for lang in self.languages}
        for lang in self.languages:
            for k in np.flatnonzero(~has_text[lang][pos_docs])[: errors.limit]:
                q = int(query_of_pos[k])
                errors.add(f"{self._at(lang, q)}: positive docid {doc_ids[int(pos_docs[k])]!r} of query id "
                           f"{query_ids[q]!r} has no text in language {lang!r}")
        if group_size > 1:
            for lang in self.languages:
                kept_before = np.concatenate([[0], np.cumsum(has_text[lang][neg_docs], dtype=np.int64)])
                empty = np.flatnonzero(kept_before[neg_off[1:]] == kept_before[neg_off[:-1]])
                for q in empty[: errors.limit]:
                    errors.add(f"{self._at(lang, int(q))}: query id {query_ids[int(q)]!r} has no negative passage "
                               f"with text in language {lang!r}, but train_group_size is {group_size}")


# ------------------------------------------------------------------------------------------------ public readers
def load_jsonl_source(name: str, files: dict[str, str], passage_field_separator: str = " ",
                      group_size: int = 1, max_errors: int = MAX_ERRORS) -> ParallelCorpus:
    """Parallel corpus from per-language Tevatron JSONL files ``{lang: path}`` (first language sets query order)."""
    if not files:
        raise DataError(f"source {name!r}: no files")
    for lang, path in files.items():
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file (language {lang!r} of source {name!r})")
    return build_corpus(name, list(files), {lang: _jsonl_records(p) for lang, p in files.items()},
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
        records[lang] = _dataset_records(ds, label)
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
