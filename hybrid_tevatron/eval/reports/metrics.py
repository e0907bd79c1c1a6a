"""Retrieval metrics from the whole-pool ranks of the relevant docids, the language-bias rank distance, and the
comparison of our values with trec_eval's (the oracle; its files are read by :mod:`hybrid_tevatron.eval.trec`).

Conventions (the same as ``trec_eval -c``):

- **Order**: trec_eval's (:func:`hybrid_tevatron.eval.trec.trec_order`).
- **Queries**: every query of the qrels counts; one with no ranking, or no relevant docid, scores 0 on every
  measure (``-c``). Queries without qrels are ignored.
- **mAP** is over the full ranking of the pool (:mod:`hybrid_tevatron.eval.pipeline.ranks` gives every relevant
  docid its rank there).

**Rank distance** (KD-SPD, arXiv 2305.09025): per query, the largest minus the smallest rank among its relevant
passages (queries with fewer than 2 relevant passages are left out); the mean over queries, then over query
languages.
"""

from __future__ import annotations

from hybrid_tevatron.eval.trec import KEYS, MEASURES, EvalError


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
