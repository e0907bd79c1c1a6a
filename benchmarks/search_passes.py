"""Search stage of the LAReQA recipe: two passes (``--first_pass_hits``) vs one full-pool pass (``0``).

    python benchmarks/search_passes.py --eval_dir runs/eval/xquad-r          # an eval_lareqa.sh output folder

Both modes run ``hybrid_tevatron.eval.search.search`` (Pyserini's ``pyserini.search.faiss`` in this process,
then compaction) on the folder's own index, pre-encoded queries and plan, into temporary run folders, in the same
process and order after an untimed warm-up search (imports, JVM start): one pass first, then two passes. Each search's compacted runs are then scored with our metrics
(which the recipe checks against trec_eval) and compared query by query, so a fast but wrong search cannot win.
Prints the wall time of each mode, hits written, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

from hybrid_tevatron.eval import metrics as M  # noqa: E402
from hybrid_tevatron.eval.plan import load_plan  # noqa: E402
from hybrid_tevatron.eval.runner import CliRunner  # noqa: E402
from hybrid_tevatron.eval.search import FIRST_PASS_HITS, search  # noqa: E402


def run_mode(eval_dir: str, plan: dict, first_pass_hits: int, runs_dir: str, threads: int, only) -> dict:
    start = time.time()
    search(plan, os.path.join(eval_dir, "index"), os.path.join(eval_dir, "queries"), runs_dir,
           CliRunner("inprocess", None, eval_dir), threads=threads, only=only, first_pass_hits=first_pass_hits)
    seconds = time.time() - start
    with open(os.path.join(runs_dir, "compaction.json"), encoding="utf-8") as f:
        stats = json.load(f)["runs"]
    return {"seconds": seconds, "hits_written": sum(s["lines_in"] for s in stats.values()),
            "deep_queries": sum(s["deep_queries"] for s in stats.values()),
            "queries": sum(s["queries"] for s in stats.values())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval_dir", required=True, help="a recipes/eval_lareqa.sh output folder (index/, queries/, inputs/)")
    ap.add_argument("--first_pass_hits", type=int, default=FIRST_PASS_HITS)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "1")))
    ap.add_argument("--only", nargs="+", help="only these searches (default: all of the plan)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    eval_dir = os.path.abspath(args.eval_dir)
    plan = load_plan(os.path.join(eval_dir, "inputs", "plan.json"))
    with open(os.path.join(eval_dir, "inputs", "manifest.json"), encoding="utf-8") as f:
        manifest = {s["name"]: s for s in json.load(f)["searches"]}
    names = args.only or [s["name"] for s in plan["searches"]]
    with tempfile.TemporaryDirectory(prefix="search-passes-") as tmp:
        # untimed warm-up: the first search in this process pays the imports (Pyserini, Faiss, the JVM)
        run_mode(eval_dir, plan, 0, os.path.join(tmp, "warm-up"), args.threads, names[:1])
        modes = {"one pass": 0, "two passes": args.first_pass_hits}
        out = {name: run_mode(eval_dir, plan, hits, os.path.join(tmp, str(hits)), args.threads, args.only)
               for name, hits in modes.items()}
        differing = []
        for name in names:
            qrels = M.read_qrels(os.path.join(eval_dir, "inputs", manifest[name]["qrels"]))
            scored = [M.evaluate_run(os.path.join(tmp, str(hits), manifest[name]["run"]), qrels,
                                     pool_size=manifest[name]["pool_size"], with_rank_distance=True)["per_query"]
                      for hits in modes.values()]
            if scored[0] != scored[1]:
                differing.append(name)
    ratio = out["one pass"]["seconds"] / out["two passes"]["seconds"]
    for name, r in out.items():
        print(f"{name:10s} {r['seconds']:8.1f} s  {r['hits_written'] / 1e6:8.2f} M hits written  "
              f"{r['deep_queries']} of {r['queries']} queries over the whole pool")
    print(f"searches: {len(names)}; per-query metrics identical: {not differing}"
          + (f" (differ: {', '.join(differing[:5])})" if differing else ""))
    print(f"speed-up (one pass / two passes, first pass {args.first_pass_hits} hits): {ratio:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"eval_dir": eval_dir, "first_pass_hits": args.first_pass_hits, "threads": args.threads,
                       "searches": len(names), "modes": out, "identical": not differing, "ratio": ratio}, f, indent=1)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
