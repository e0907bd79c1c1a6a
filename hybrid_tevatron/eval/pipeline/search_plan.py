"""Search plans: which corpora to encode into which index, which query sets, which searches and trec_eval measures.

A plan (``inputs/plan.json``, format ``PLAN_FORMAT``) is built from a pool manifest (:func:`plan_from_manifest`:
LAReQA, caption pools; MIRACL's ``prepare`` writes its own) and read by the encode, ranks, search and trec_eval
stages.
Paths in it are relative to its folder. Keys: ``corpora`` ({key: {path, size}}, one index ``index/KEY`` each),
``merged`` ({key: [corpus keys]}, indexes built as the union of others, not re-encoded), ``queries`` ({key: topics
path}, encoded once into ``queries/KEY``), ``trec_eval_args`` (one trec_eval call per argument list), ``searches``
(list of {name, index, queries, topics, qrels, hits, run}; a pool plan's also {setting, pool_size, exclude,
ranks: true}: exact whole-pool ranks, and top-``hits`` runs).
"""

from __future__ import annotations

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.eval.runner import StepError
from hybrid_tevatron.jsonfiles import read_format

PLAN_FORMAT = "hybrid_tevatron.search_plan/1"
LAREQA_TREC_EVAL_ARGS = ["-c", "-q", "-m", "map", "-m", "recall.1,10", "-m", "ndcg_cut.10"]
RUN_DEPTH = 10  # pool plans: lines per query of the runs Pyserini writes (R@1, R@10 and nDCG@10 need 10)


def load_plan(path: str) -> dict:
    """Read ``plan.json`` (``path`` may be its folder); adds ``root``."""
    return read_format(path, "plan.json", PLAN_FORMAT, StepError, "plan")


def plan_from_manifest(manifest: dict, depth: int = RUN_DEPTH) -> dict:
    """A search plan for a LAReQA manifest or a caption pool's: one index per language + the merged ``all``;
    exact whole-pool ranks for every search and runs ``depth`` deep (a caption pool's multi searches drop each
    query's own caption: ``exclude``)."""
    if depth < 1:
        raise StepError(f"--run_depth must be >= 1, got {depth}")
    langs = manifest["languages"]
    corpora = {f"lang/{lang}": manifest["corpora"][lang] for lang in langs}
    searches = []
    for s in manifest["searches"]:
        searches.append({
            "name": s["name"], "setting": s["setting"],
            "index": "all" if s["pool"] == "all" else f"lang/{s['pool']}",
            "queries": s["query_lang"], "topics": s["topics"], "qrels": s["qrels"],
            "hits": min(depth, s["pool_size"]), "pool_size": s["pool_size"], "ranks": True, "run": s["run"],
            "exclude": s.get("exclude"),
        })
    return {
        "format": PLAN_FORMAT, "kind": manifest["format"], "dataset": manifest["dataset"],
        "corpora": corpora,
        "merged": {"all": sorted(corpora)},
        "queries": {lang: manifest["topics"][lang]["path"] for lang in langs},
        "trec_eval_args": [LAREQA_TREC_EVAL_ARGS],
        "searches": searches,
    }


def write_plan(plan: dict, path: str) -> str:
    plan = {k: v for k, v in plan.items() if k != "root"}
    return atomic_write_json(path, plan)


def select(plan: dict, only) -> list[dict]:
    if not only:
        return plan["searches"]
    unknown = sorted(set(only) - {s["name"] for s in plan["searches"]})
    if unknown:
        raise StepError(f"--only names searches the plan does not have: {', '.join(unknown)}")
    return [s for s in plan["searches"] if s["name"] in only]
