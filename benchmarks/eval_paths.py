"""The evaluation after encoding: the two-pass path (baseline) vs exact ranks from the vectors, on the same encoded
pools, in one run.

    python benchmarks/eval_paths.py --output runs/bench-eval [--model DIR] [--pools xtd10 xquad-r] [--json out.json]

For each pool (default: whole XTD10, 11 languages x 1,000 captions, and all of XQuAD-R, 11 languages x 1,190
questions over 13,014 sentences) it

1. runs the evaluation program as users run it (``python -m hybrid_tevatron.eval captions|lareqa``, with the
   settings of ``recipes/expected/me5_small_xquad_r.yaml`` for XQuAD-R): encode, then the new stages (exact ranks,
   top-k runs, trec_eval oracle, evaluate), each timed in its ``timings.tsv``;
2. runs the baseline's stages on that folder's own inputs, index and encoded queries: the two-pass compacted search
   (top 500, then the whole pool for the queries it leaves open), ``trec_eval`` per run, and the in-process
   metrics with their cross-check, exactly as the code of ``--baseline`` (a commit, default ``BASELINE``) runs them,
   imported from that commit's tree in a separate process;
3. times the floor of the new path: one float32 matrix product of every query of the pool against the whole pool
   (``numpy``, this machine's BLAS threads).

It prints each stage's seconds, (stages after encoding) / (encoding) for both paths, the new path's time over the
floor, the speed-up, and the largest difference between the two paths' summary metrics (Pyserini's float32 search
and the float64 ranks order near-ties differently; nothing else may differ). The model defaults to the embedded
multilingual-e5-small (``python -m hybrid_tevatron.models.default``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BASELINE = "6f3c034"  # the two-pass compacted search, per-run trec_eval, pytrec_eval metrics
SHARED = os.path.join(ROOT, "..", "shared", "data")
ME5 = ["--pooling", "mean", "--normalize", "--query_prefix", "query: ", "--passage_prefix", "passage: "]
POOLS = {
    "xtd10": ["captions", "{model}", "{out}", "--xtd10", os.path.join(SHARED, "xtd10"), *ME5],
    "xquad-r": ["lareqa", "{model}", os.path.join(SHARED, "xquad-r"), "{out}", *ME5, "--query_max_len", "64",
                "--passage_max_len", "256"],
}

BASELINE_SCRIPT = r"""
import json, os, sys, time
# the baseline commit's own module and function names (its eval/ was one flat package)
from hybrid_tevatron.eval.evaluate import evaluate_lareqa, load_pool_manifest, write_reports
from hybrid_tevatron.eval.plan import plan_from_manifest
from hybrid_tevatron.eval.runner import CliRunner
from hybrid_tevatron.eval.scoring import trec_eval
from hybrid_tevatron.eval.search import search
folder, out = sys.argv[1:]
os.makedirs(out)
runner = CliRunner("inprocess", None, folder)
plan = plan_from_manifest(load_pool_manifest(os.path.join(folder, "inputs")))
plan["root"] = os.path.join(folder, "inputs")
times = {}
t = time.time()
search(plan, os.path.join(folder, "index"), os.path.join(folder, "queries"), os.path.join(out, "runs"), runner)
times["search"] = time.time() - t
t = time.time()
trec_eval(plan, os.path.join(out, "runs"), os.path.join(out, "trec_eval"), runner)
times["trec_eval"] = time.time() - t
t = time.time()
res = evaluate_lareqa(os.path.join(folder, "inputs"), os.path.join(out, "runs"),
                      trec_eval_dir=os.path.join(out, "trec_eval"))
assert res["crosscheck"]["agrees"], res["crosscheck"]["problems"][:5]
write_reports(res, os.path.join(out, "results"))
times["evaluate"] = time.time() - t
print(json.dumps({"times": times, "summary": res["summary"]}))
"""


def _timings(folder: str) -> dict[str, float]:
    out = {}
    with open(os.path.join(folder, "timings.tsv"), encoding="utf-8") as f:
        for line in f:
            stage, seconds = line.rstrip("\n").split("\t")
            out[stage.split(" ")[-1]] = float(seconds)  # "3/6 ranks" -> ranks
    return out


def _floor(folder: str) -> dict:
    """One float32 product of every query of the pool against the whole pool (``index/all``)."""
    import numpy as np

    from hybrid_tevatron.eval.pipeline.ranks import read_index, read_queries

    pool = read_index(os.path.join(folder, "index", "all")).matrix
    keys = [k for k in sorted(os.listdir(os.path.join(folder, "queries"))) if k != "combined"]
    queries = np.concatenate([read_queries(os.path.join(folder, "queries", k)).matrix for k in keys])
    (queries[:64] @ pool.T).sum()  # warm-up
    t = time.time()
    scores = queries @ pool.T
    seconds = time.time() - t
    return {"seconds": seconds, "queries": int(queries.shape[0]), "pool": int(pool.shape[0]),
            "dim": int(pool.shape[1]), "checksum": float(scores[:, :1].sum())}


def _baseline_tree(commit: str, where: str) -> str:
    """The package as of ``commit``, extracted into ``where`` (importable first on PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "hybrid_tevatron"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
    return where


def bench_pool(name: str, model: str, out: str, baseline_tree: str) -> dict:
    folder = os.path.join(out, name, "new")
    argv = [a.format(model=model, out=folder) for a in POOLS[name]]
    print(f"[{name}] python -m hybrid_tevatron.eval {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, "-m", "hybrid_tevatron.eval", *argv], check=True)
    new = _timings(folder)
    with open(os.path.join(folder, "results", "results.json"), encoding="utf-8") as f:
        new_summary = json.load(f)["summary"]
    env = dict(os.environ, PYTHONPATH=baseline_tree + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"[{name}] baseline {BASELINE} stages on the same encoded pools", flush=True)
    proc = subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, folder, os.path.join(out, name, "baseline")],
                          env=env, check=True, stdout=subprocess.PIPE, text=True)
    base = json.loads(proc.stdout.strip().splitlines()[-1])
    floor = _floor(folder)
    new_after = new["ranks"] + new["search"] + new["trec_eval"] + new["evaluate"]
    base_after = sum(base["times"].values())
    diff = max((abs(new_summary[k] - v) for k, v in base["summary"].items()
                if v is not None and new_summary.get(k) is not None), default=0.0)
    return {"pool": name, "folder": folder, "encode": new["encode"], "new": {k: new[k] for k in
                                                                             ("ranks", "search", "trec_eval",
                                                                              "evaluate")},
            "baseline": base["times"], "new_after": new_after, "baseline_after": base_after, "floor": floor,
            "new_ratio": new_after / new["encode"], "baseline_ratio": base_after / new["encode"],
            "over_floor": new_after / floor["seconds"], "speedup": base_after / new_after,
            "max_summary_diff": diff}


def report(r: dict) -> str:
    f = r["floor"]
    rows = [("encode (shared)", r["encode"], r["encode"]), ("ranks", None, r["new"]["ranks"]),
            ("search", r["baseline"]["search"], r["new"]["search"]),
            ("trec_eval", r["baseline"]["trec_eval"], r["new"]["trec_eval"]),
            ("evaluate", r["baseline"]["evaluate"], r["new"]["evaluate"]),
            ("after encoding", r["baseline_after"], r["new_after"])]
    lines = [f"== {r['pool']}: {f['queries']} queries, pool {f['pool']} x {f['dim']}",
             f"{'stage':<18}{'baseline (s)':>14}{'new (s)':>10}"]
    for stage, b, n in rows:
        lines.append(f"{stage:<18}{'-' if b is None else f'{b:.1f}':>14}{n:>10.1f}")
    lines += [f"(after encoding) / (encoding): baseline {r['baseline_ratio']:.2f}x, new {r['new_ratio']:.3f}x",
              f"floor (one float32 product {f['queries']} x {f['pool']} x {f['dim']}): {f['seconds']:.2f} s; "
              f"new after encoding / floor: {r['over_floor']:.1f}x",
              f"speed-up after encoding (baseline / new): {r['speedup']:.1f}x; largest summary difference "
              f"{r['max_summary_diff']:.4f}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--output", required=True, help="folder for the evaluation folders (must not exist)")
    p.add_argument("--model", help="model folder (default: python -m hybrid_tevatron.models.default)")
    p.add_argument("--pools", nargs="+", choices=sorted(POOLS), default=["xtd10", "xquad-r"])
    p.add_argument("--baseline", default=BASELINE, help=f"commit of the baseline path (default {BASELINE})")
    p.add_argument("--json", help="write the figures here too")
    args = p.parse_args(argv)
    if os.path.exists(args.output):
        sys.exit(f"error: {args.output} exists")
    model = args.model
    if not model:
        from hybrid_tevatron.models.default import default_model

        model = default_model()
    from hybrid_tevatron.hardware import hardware

    print(f"model {model}; {json.dumps(hardware())}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = _baseline_tree(args.baseline, tmp)
        for name in args.pools:
            results.append(bench_pool(name, model, args.output, tree))
            print(report(results[-1]), flush=True)
    print("\n" + "\n\n".join(report(r) for r in results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"model": model, "baseline": args.baseline, "pools": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
