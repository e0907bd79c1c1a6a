"""TREC files as trec_eval reads and prints them: qrels, runs, ``trec_eval -q`` output, and the measures the pool
evaluations compute; the bottom of ``eval/`` (it imports nothing of ``pipeline``, ``reports`` or ``benchmarks``).

- **qrels**: ``qid iter docid rel`` lines; **runs**: ``qid Q0 docid rank score tag`` lines (``.gz`` too).
- **Order**: documents are ranked by score descending, ties by docid descending (trec_eval compares docnos with
  ``strcmp``; Python's ``str`` order is the same for UTF-8). The rank column of a run file is ignored.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

from hybrid_tevatron.errors import HybridTevatronError

MEASURES = ("map", "recall.1", "recall.10", "ndcg_cut.10")
# trec_eval's output name of each measure
KEYS = {"map": "map", "recall.1": "recall_1", "recall.10": "recall_10", "ndcg_cut.10": "ndcg_cut_10"}


class EvalError(HybridTevatronError, ValueError):
    """A problem with a run, qrels or trec_eval output; the message names the file and line."""


def measure_args(measures) -> list[str]:
    """trec_eval's ``-m`` arguments for ``measures``, one per family in first-seen order (``recall.1``,
    ``recall.10`` -> ``-m recall.1,10``)."""
    families: dict[str, list[str]] = {}
    for m in measures:
        family, _, cut = m.partition(".")
        families.setdefault(family, []).append(cut)
    return [a for family, cuts in families.items() for a in ("-m", f"{family}.{','.join(c for c in cuts if c)}"
                                                             if any(cuts) else family)]


def _open(path: str):
    try:
        return gzip.open(path, "rt", encoding="utf-8-sig") if path.endswith(".gz") else open(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise EvalError(f"{path}: file not found") from None


def _records(path: str, fields: str) -> Iterator[tuple[int, list[str], str]]:
    """``(line number, fields, line)`` of every non-blank line of a whitespace-separated TREC file (``.gz`` too),
    each with exactly the named ``fields``."""
    want = len(fields.split())
    with _open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != want:
                raise EvalError(f"{path}:{n}: expected '{fields}', got {line.rstrip()!r}")
            yield n, parts, line


def read_qrels(path: str) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid 0 docid rel`` -> ``{qid: {docid: rel}}``."""
    qrels: dict[str, dict[str, int]] = {}
    for n, parts, _ in _records(path, "qid iter docid rel"):
        try:
            rel = int(parts[3])
        except ValueError:
            raise EvalError(f"{path}:{n}: relevance {parts[3]!r} is not an integer") from None
        qrels.setdefault(parts[0], {})[parts[2]] = rel
    if not qrels:
        raise EvalError(f"{path}: empty qrels")
    return qrels


def run_lines(path: str) -> Iterator[tuple[int, str, str, float, str]]:
    """``(line number, qid, docid, score, line)`` for every line of a TREC run (``.gz`` too), format-checked."""
    for n, parts, line in _records(path, "qid Q0 docid rank score tag"):
        try:
            score = float(parts[4])
        except ValueError:
            raise EvalError(f"{path}:{n}: score {parts[4]!r} is not a number") from None
        yield n, parts[0], parts[2], score, line


def iter_run(path: str) -> Iterator[tuple[str, dict[str, float]]]:
    """Stream a TREC run (``.gz`` too) as ``(qid, {docid: score})``, one query at a time.

    The run must list each query's lines together (Pyserini does); a query seen again later is an error.
    """
    done: set[str] = set()
    qid, scores = None, {}
    for n, q, d, s, _line in run_lines(path):
        if q != qid:
            if qid is not None:
                yield qid, scores
                done.add(qid)
            if q in done:
                raise EvalError(f"{path}:{n}: query {q} appears again after other queries "
                                "(a run must list each query's lines together)")
            qid, scores = q, {}
        if d in scores:
            raise EvalError(f"{path}:{n}: docid {d} listed twice for query {q}")
        scores[d] = s
    if qid is not None:
        yield qid, scores


def read_run(path: str) -> dict[str, dict[str, float]]:
    """A whole TREC run as ``{qid: {docid: score}}``."""
    return dict(iter_run(path))


def trec_order(scores: dict[str, float]) -> list[str]:
    """Docids in trec_eval's order: score descending, then docid descending."""
    return sorted(scores, key=lambda d: (scores[d], d), reverse=True)


_TREC_EVAL_LINE = re.compile(r"^(\S+)\s+(\S+)\s+(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")


def parse_trec_eval(text: str) -> dict[str, dict[str, float]]:
    """Parse ``trec_eval -q`` output (``measure  qid  value`` lines) into ``{qid: {measure: value}}``.

    The ``all`` row holds the averages; non-numeric lines (``runid``) are skipped.
    """
    out: dict[str, dict[str, float]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.split()[0] == "runid":
            continue
        m = _TREC_EVAL_LINE.match(line)
        if not m:
            raise EvalError(f"trec_eval output line {n}: cannot parse {line!r}")
        measure, qid, value = m.groups()
        out.setdefault(qid, {})[measure] = float(value)
    return out
