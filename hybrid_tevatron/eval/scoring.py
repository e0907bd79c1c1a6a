"""Score runs: ``python -m pyserini.eval.trec_eval`` per search (the oracle), and the check that our in-process
metrics (:mod:`hybrid_tevatron.eval.metrics`, which also give the rank distance) equal its per-query values."""

from __future__ import annotations

import os

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.eval.plan import select
from hybrid_tevatron.eval.runner import CliRunner, StepError
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)


def _expected_measures(args: list[str]) -> list[str]:
    """trec_eval's output names of the ``-m`` measures in ``args`` (``recall.1,10`` -> recall_1, recall_10)."""
    names = []
    for i, a in enumerate(args):
        if a == "-m" and i + 1 < len(args):
            family, _, cutoffs = args[i + 1].partition(".")
            names += [f"{family}_{c}" for c in cutoffs.split(",")] if cutoffs else [family]
    return names


def trec_eval(plan: dict, runs_dir: str, output_dir: str, runner: CliRunner, only=None) -> dict:
    """``python -m pyserini.eval.trec_eval ARGS QRELS RUN`` per search and argument set -> ``{name}.txt``."""
    from hybrid_tevatron.eval.metrics import parse_trec_eval

    os.makedirs(output_dir, exist_ok=True)
    root = plan["root"]
    searches = select(plan, only)
    summary = {}
    for i, s in enumerate(searches, 1):
        run = os.path.join(runs_dir, s.get("run", s["name"] + ".trec"))
        if not os.path.isfile(run):
            raise StepError(f"trec_eval {s['name']}: run not found: {run}")
        qrels = os.path.join(root, s["qrels"])
        texts, values = [], {}
        for args in plan["trec_eval_args"]:
            out = runner.run("pyserini.eval.trec_eval", [*args, runner.rel(qrels), runner.rel(run)], capture=True)
            parsed = parse_trec_eval(out)
            wanted = _expected_measures(args)
            lacking = [m for m in wanted if m not in parsed.get("all", {})]
            if lacking:
                raise StepError(f"trec_eval on {run} printed no {', '.join(lacking)}; output:\n{out[-2000:]}")
            values.update({m: parsed["all"][m] for m in wanted})
            texts.append(out.rstrip("\n") + "\n")
        atomic_write_text(os.path.join(output_dir, s["name"] + ".txt"), "".join(texts))
        summary[s["name"]] = values
        log.info(f"trec_eval [{i}/{len(searches)}] {s['name']}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    atomic_write_json(os.path.join(output_dir, "summary.json"), summary)
    return summary


def crosscheck(manifest_path: str, runs_dir: str, trec_eval_dir: str, tol: float = 1e-4) -> dict:
    """Our in-process metrics (``eval.metrics``) vs the saved trec_eval ``-q`` output, per query and overall."""
    from hybrid_tevatron.eval.lareqa import load_manifest
    from hybrid_tevatron.eval.metrics import compare_with_trec_eval, evaluate_run, parse_trec_eval, read_qrels

    manifest = load_manifest(manifest_path)
    out = {"tolerance": tol, "searches": {}, "problems": []}
    worst = 0.0
    for s in manifest["searches"]:
        run = os.path.join(runs_dir, s["run"])
        te_path = os.path.join(trec_eval_dir, s["name"] + ".txt")
        if not os.path.isfile(te_path):
            raise StepError(f"crosscheck: trec_eval output not found: {te_path}")
        with open(te_path, encoding="utf-8") as f:
            theirs = parse_trec_eval(f.read())
        ours = evaluate_run(run, read_qrels(os.path.join(manifest["root"], s["qrels"])),
                            pool_size=s["pool_size"])["per_query"]
        problems = compare_with_trec_eval(ours, theirs)
        diff = max((abs(v - theirs[q][k]) for q, vals in ours.items() for k, v in vals.items()
                    if q in theirs and k in theirs[q]), default=0.0)
        worst = max(worst, diff)
        out["searches"][s["name"]] = {"queries": len(ours), "max_abs_diff": diff, "agrees": not problems}
        out["problems"] += [f"{s['name']}: {p}" for p in problems[:5]]
    out["max_abs_diff"] = worst
    out["agrees"] = not out["problems"]
    return out
