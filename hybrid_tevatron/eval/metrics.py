"""Retrieval metrics from a TREC run + qrels (pytrec_eval, in process) and the language-bias rank distance.

Conventions (the same as ``trec_eval -c``):

- **Order**: documents are ranked by score descending, ties by docid descending (trec_eval compares docnos with
  ``strcmp``; Python's ``str`` order is the same for UTF-8). The rank column of the run file is ignored.
- **Queries**: every query of the qrels counts; one absent from the run scores 0 on every measure (``-c``). Run
  queries without qrels are ignored.
- **mAP** is over the ranking as retrieved: for the paper's full-ranking mAP, retrieve ``--hits`` = pool size.

**Rank distance** (KD-SPD, arXiv 2305.09025): per query, the largest minus the smallest rank among its relevant
passages (queries with fewer than 2 relevant passages are left out); the mean over queries, then over query
languages. *Unretrieved relevant passages* (a run cut at k < pool size N) take their expected ranks as if the
N - k unretrieved passages were in random order: the j-th of m missing ones gets rank k + j (N - k + 1) / (m + 1)
(one missing: (k + N + 1) / 2). They are counted and reported; with full-pool retrieval there are none.
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


def unretrieved_ranks(retrieved: int, missing: int, pool_size: int) -> list[float]:
    """Expected ranks of ``missing`` relevant passages placed at random among the pool's unretrieved ones."""
    if missing == 0:
        return []
    if pool_size - retrieved < missing:
        raise EvalError(f"pool size {pool_size} leaves {pool_size - retrieved} unretrieved positions "
                        f"for {missing} unretrieved relevant passages ({retrieved} retrieved)")
    step = (pool_size - retrieved + 1) / (missing + 1)
    return [retrieved + j * step for j in range(1, missing + 1)]


def relevant_ranks(scores: dict[str, float], relevant, pool_size: int | None = None) -> tuple[list[float], int]:
    """Ranks (1-based, trec_eval order) of the ``relevant`` docids; returns (ranks, number unretrieved)."""
    order = {d: i + 1 for i, d in enumerate(trec_order(scores))}
    found = [float(order[d]) for d in relevant if d in order]
    missing = len(relevant) - len(found)
    if missing and pool_size is None:
        raise EvalError(f"{missing} relevant passages not retrieved and no pool size given")
    return found + unretrieved_ranks(len(scores), missing, pool_size or 0), missing


def rank_distance(scores: dict[str, float], relevant, pool_size: int | None = None) -> tuple[float | None, int]:
    """(max rank - min rank over the relevant passages, number unretrieved); None with fewer than 2 relevant."""
    relevant = list(relevant)
    if len(relevant) < 2:
        return None, 0
    ranks, missing = relevant_ranks(scores, relevant, pool_size)
    return max(ranks) - min(ranks), missing


def evaluate_run(run_path: str, qrels: dict[str, dict[str, int]], measures=MEASURES, pool_size: int | None = None,
                 with_rank_distance: bool = False, chunk_lines: int = 1_000_000) -> dict:
    """Per-query metrics of a run against ``qrels`` with pytrec_eval, streamed in chunks (full-pool runs fit).

    Returns ``{"per_query": {qid: {key: value}}, "stats": {...}}``; keys are trec_eval's names (``KEYS``) plus
    ``rank_distance`` when asked (``None`` for a query with < 2 relevant). Stats: ``queries`` (qrels queries),
    ``queries_missing`` (absent from the run), ``extra_queries`` (run only), ``retrieved_min``/``_max`` (hits per
    query), ``unretrieved_relevant`` (relevant passages outside the run, over all queries).
    """
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(measures))
    keys = [KEYS.get(m, m.replace(".", "_")) for m in measures]
    per_query: dict[str, dict] = {}
    stats = {"queries": len(qrels), "queries_missing": 0, "extra_queries": 0, "retrieved_min": None,
             "retrieved_max": None, "unretrieved_relevant": 0}
    chunk: dict[str, dict[str, float]] = {}
    size = 0

    def flush():
        nonlocal chunk, size
        for qid, values in evaluator.evaluate(chunk).items():
            per_query[qid].update({k: values[k] for k in keys})
        chunk, size = {}, 0

    for qid, scores in iter_run(run_path):
        if qid not in qrels:
            stats["extra_queries"] += 1
            continue
        n = len(scores)
        stats["retrieved_min"] = n if stats["retrieved_min"] is None else min(stats["retrieved_min"], n)
        stats["retrieved_max"] = n if stats["retrieved_max"] is None else max(stats["retrieved_max"], n)
        relevant = [d for d, rel in qrels[qid].items() if rel > 0]
        entry = per_query[qid] = {}
        if with_rank_distance:
            try:
                entry["rank_distance"], missing = rank_distance(scores, relevant, pool_size)
            except EvalError as err:
                raise EvalError(f"{run_path}: query {qid}: {err}") from None
            stats["unretrieved_relevant"] += missing
        else:
            stats["unretrieved_relevant"] += sum(d not in scores for d in relevant)
        chunk[qid] = scores
        size += n
        if size >= chunk_lines:
            flush()
    if chunk:
        flush()
    for qid, judged in qrels.items():
        if qid in per_query:
            continue
        stats["queries_missing"] += 1
        entry = per_query[qid] = {k: 0.0 for k in keys}
        relevant = [d for d, rel in judged.items() if rel > 0]
        stats["unretrieved_relevant"] += len(relevant)
        if with_rank_distance:
            if pool_size is None and len(relevant) >= 2:
                raise EvalError(f"{run_path}: query {qid} has no results and no pool size was given")
            entry["rank_distance"] = rank_distance({}, relevant, pool_size)[0]
    return {"per_query": per_query, "stats": stats}


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
