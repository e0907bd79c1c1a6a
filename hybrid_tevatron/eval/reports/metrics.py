"""Retrieval metrics from the whole-pool ranks of the relevant docids, the language-bias rank distance, and the
readers for what trec_eval (the oracle) reads and prints: qrels, runs, ``trec_eval -q`` output.

Conventions (the same as ``trec_eval -c``):

- **Order**: documents are ranked by score descending, ties by docid descending (trec_eval compares docnos with
  ``strcmp``; Python's ``str`` order is the same for UTF-8). The rank column of a run file is ignored.
- **Queries**: every query of the qrels counts; one with no ranking, or no relevant docid, scores 0 on every
  measure (``-c``). Queries without qrels are ignored.
- **mAP** is over the full ranking of the pool (:mod:`hybrid_tevatron.eval.pipeline.ranks` gives every relevant
  docid its rank there).

**Rank distance** (KD-SPD, arXiv 2305.09025): per query, the largest minus the smallest rank among its relevant
passages (queries with fewer than 2 relevant passages are left out); the mean over queries, then over query
languages.
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


def _open(path: str):
    try:
        return gzip.open(path, "rt", encoding="utf-8-sig") if path.endswith(".gz") else open(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise EvalError(f"{path}: file not found") from None


def read_qrels(path: str) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid 0 docid rel`` -> ``{qid: {docid: rel}}``."""
    qrels: dict[str, dict[str, int]] = {}
    with _open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise EvalError(f"{path}:{n}: expected 'qid iter docid rel', got {line.rstrip()!r}")
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
    with _open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise EvalError(f"{path}:{n}: expected 'qid Q0 docid rank score tag', got {line.rstrip()!r}")
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


def _cutoff(measure: str) -> int | None:
    return int(measure.rsplit(".", 1)[1]) if "." in measure else None


def query_metrics(found, judged_gains, measures=MEASURES, with_rank_distance: bool = False) -> dict:
    """One query's metrics from the whole-pool ranks of its relevant docids, as ``trec_eval -c`` computes them on
    the full ranking.

    ``found``: ``(rank, gain)`` of each relevant docid the pool holds (ranks 1-based, distinct); ``judged_gains``:
    the relevance of every docid the qrels call relevant (``rel > 0``), found or not. mAP: the mean over the
    relevant docids of the precision at each one's rank (0 for one the pool lacks); R@k: the share of relevant
    docids ranked within k; nDCG@k: DCG with the relevance as gain and ``log2(rank + 1)`` discount over the ideal
    ordering of ``judged_gains``. A query with no relevant docid scores 0 everywhere. Rank distance: the largest
    minus the smallest rank over the relevant docids (None with fewer than 2 found).
    """
    import math

    found = sorted(found)
    num_rel = len(judged_gains)
    out = {}
    for m in measures:
        key, k = KEYS.get(m, m.replace(".", "_")), _cutoff(m)
        if num_rel == 0:
            out[key] = 0.0
        elif m == "map":
            out[key] = sum((j + 1) / r for j, (r, _g) in enumerate(found)) / num_rel
        elif m.startswith("recall."):
            out[key] = sum(1 for r, _g in found if r <= k) / num_rel
        elif m.startswith("ndcg_cut."):
            dcg = sum(g / math.log2(r + 1) for r, g in found if r <= k)
            ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(judged_gains, reverse=True)[:k]))
            out[key] = dcg / ideal if ideal > 0 else 0.0
        else:
            raise EvalError(f"measure {m!r} is not computed from ranks (known: {', '.join(MEASURES)})")
    if with_rank_distance:
        out["rank_distance"] = float(found[-1][0] - found[0][0]) if len(found) >= 2 else None
    return out


def mean(per_query: dict[str, dict], key: str) -> float | None:
    """Mean of ``key`` over the queries that have a value for it (None when none do)."""
    values = [v[key] for v in per_query.values() if v.get(key) is not None]
    return sum(values) / len(values) if values else None


def macro(values) -> float | None:
    """Unweighted mean, skipping None (the macro average over languages)."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


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


def compare_with_trec_eval(per_query: dict[str, dict], trec_eval: dict[str, dict[str, float]], keys=None,
                           tol: float = 1e-4) -> list[str]:
    """Differences larger than ``tol`` between our per-query values and parsed trec_eval output (and the ``all``
    means, over our queries); an empty list means agreement."""
    measured = {k for values in trec_eval.values() for k in values}
    keys = [k for k in (keys or [KEYS[m] for m in MEASURES]) if k in measured]
    if not keys:
        return ["trec_eval output holds none of the measures compared"]
    problems = []
    for qid, values in per_query.items():
        theirs = trec_eval.get(qid)
        for key in keys:
            if theirs is None or key not in theirs:
                # trec_eval -q prints no per-query line for a query absent from the run; ours must then be 0
                if values[key] != 0.0:
                    problems.append(f"{qid} {key}: ours {values[key]:.6f}, trec_eval has no value")
                continue
            if abs(values[key] - theirs[key]) > tol:
                problems.append(f"{qid} {key}: ours {values[key]:.6f}, trec_eval {theirs[key]:.6f}")
    for key in keys:
        if "all" in trec_eval and key in trec_eval["all"]:
            ours = mean(per_query, key)
            if abs(ours - trec_eval["all"][key]) > tol:
                problems.append(f"all {key}: ours {ours:.6f}, trec_eval {trec_eval['all'][key]:.6f}")
    return problems
