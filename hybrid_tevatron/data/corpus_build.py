"""Corpus building: each language's records of one source -> one aligned, checked :class:`ParallelCorpus`.

**Alignment**: the files of one source hold the same query ids (``query_id``) and the same passages
(``docid``) in different languages. Query order = order of the first language's file. A query's positives are
the union of its positive docids over the languages (first-seen order, first language first); its negatives are
the union of its negative docids over the languages, in first-seen order. A passage's text in a language may
come from any record of that language; a negative without text in some language is simply unavailable there.

**Validation** (:class:`~hybrid_tevatron.data.errors.DataError`, naming file:line or dataset row, and the id), all
before training starts: every record refused by :mod:`hybrid_tevatron.data.records`; an empty file; a query id twice
in one file (both lines); a query id present in one language but missing in another (both files; not reported for a
file that has a failed record whose query id is unknown); a query without positives (first language); a positive
without text in some language; a docid that is positive and negative for the same query (over the union of
languages), or a same-item docid that is also one of its positives or negatives; a docid whose text differs within
one language (both lines; an error, not "first wins": the data is not consistent and we do not guess which text is
right); a query with no negative in some language when ``group_size > 1``. A bad record is skipped and reading goes
on, so one :class:`~hybrid_tevatron.data.errors.DataError` lists up to ``max_errors`` problems (a single problem is
raised as its own message); cross-language checks run only once every record parsed.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

from .corpus import ParallelCorpus
from .errors import DataError
from .records import BadRecord, Locator, Records, parse_record

MAX_ERRORS = 20


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
            return parse_record(record, self.sep)
        except BadRecord as e:
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


