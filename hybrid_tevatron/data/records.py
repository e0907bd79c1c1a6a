"""Records: Tevatron training records read one at a time from a JSONL file or a dataset's rows, each parsed or refused.

**Input format**: one record per query and language, Tevatron's training format::

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

**Refused here**, one record at a time (:class:`BadRecord`; :mod:`hybrid_tevatron.data.corpus_build` reports it as
a :class:`~hybrid_tevatron.data.errors.DataError` naming file:line or dataset row): a line that is not UTF-8;
malformed JSON; a missing or wrongly typed key; an empty query or passage text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

# A language's records: a factory giving fresh iterators of (index, record-or-None, parse error message), and a
# locator turning an index into "file:line" / "dataset row i" (built only for error messages). A record that comes
# with a parse error is a best-effort reading of the bad line, used only to name its query id.
Records = Callable[[], Iterator[tuple[int, dict | None, str | None]]]
Locator = Callable[[int], str]


class BadRecord(Exception):
    """One record that cannot be read; ``qid`` is its query id where known."""

    def __init__(self, message: str, qid: str | None = None):
        super().__init__(message)
        self.qid = qid


# ------------------------------------------------------------------------------------------------ record sources
def jsonl_records(path: str) -> tuple[Records, Locator]:
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


def dataset_records(rows: Iterable[dict], label: str) -> tuple[Records, Locator]:
    def it():
        for i, row in enumerate(rows):
            yield i, row, None

    return it, lambda i: f"{label} row {i}"


# ------------------------------------------------------------------------------------------------ record parsing
def _id(record: dict, key: str, what: str = "") -> str:
    if key not in record:
        raise BadRecord(f"{what}missing key {key!r}")
    value = record[key]
    if type(value) is str and value:
        return value
    kind = "an empty string" if value == "" else f"{_json_type(value)} {json.dumps(value, ensure_ascii=False)}"
    raise BadRecord(f"{what}{key!r} must be a non-empty string, got {kind}")


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
            raise BadRecord(f"missing key {key!r} (query id {qid!r})", qid)
        return []
    if not isinstance(items, list):
        raise BadRecord(f"{key!r} must be a list (query id {qid!r})", qid)
    out = []
    for n, p in enumerate(items):
        if not isinstance(p, dict):
            raise BadRecord(f"{key}[{n}] of query id {qid!r}: must be an object with 'docid' and 'text'", qid)
        docid = p.get("docid")
        if type(docid) is not str or not docid:
            try:
                docid = _id(p, "docid")
            except BadRecord as e:
                raise BadRecord(f"{key}[{n}] of query id {qid!r}: {e}", qid) from None
        text, title = p.get("text"), p.get("title") or ""
        if type(text) is not str or type(title) is not str:
            problem = "missing key 'text'" if "text" not in p else "'text'/'title' must be strings"
            raise BadRecord(f"{key}[{n}] of query id {qid!r}: {problem} (docid {docid!r})", qid)
        if not text or text.isspace():
            raise BadRecord(f"{key}[{n}] of query id {qid!r}: empty passage text (docid {docid!r})", qid)
        out.append((docid, title + sep + text if title and not title.isspace() else text))
    return out


def _same_item(record: dict, qid: str) -> list[str]:
    """The record's ``same_item_docids`` (absent: none)."""
    items = record.get("same_item_docids")
    if items is None:
        return []
    if not isinstance(items, list) or not all(type(d) is str and d for d in items):
        raise BadRecord(f"'same_item_docids' must be a list of non-empty strings (query id {qid!r})", qid)
    return items


def parse_record(record, sep: str) -> tuple[str, str, list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """``(query id, query, positives, negatives, same-item docids)`` of one record, or :class:`BadRecord`."""
    if not isinstance(record, dict):
        raise BadRecord(f"a record must be a JSON object, got {type(record).__name__}")
    qid = _id(record, "query_id")
    if "query" not in record:
        raise BadRecord(f"missing key 'query' (query id {qid!r})", qid)
    query = record["query"]
    if type(query) is not str or not query or query.isspace():
        raise BadRecord(f"empty query text (query id {qid!r})", qid)
    positives = _passages(record, "positive_passages", qid, sep, required=True)
    negatives = _passages(record, "negative_passages", qid, sep, required=False)
    return qid, query, positives, negatives, _same_item(record, qid)
