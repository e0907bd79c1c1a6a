"""trec_eval, the oracle: ``python -m pyserini.eval.trec_eval`` on the runs.

- MIRACL (:func:`trec_eval`): one call per run and argument set; its scores are the results.
- Pool plans (:func:`oracle`, LAReQA and caption pools, whose scores come from the exact ranks): Pyserini's
  bundled trec_eval (``python -m hybrid_tevatron.eval.pipeline.trec_eval``: the wrapper's binary without its pandas pass
  over million-line runs) scores
  (1) the full rankings of the cross-check sample that the ranks stage wrote (``ranks/sample.trec``: every query
  on small pools, a seeded sample on large ones), every measure, which the evaluate stage requires our values to
  equal to 1e-4; and (2) the top-k runs Pyserini wrote, the measures whose cutoff the depth covers (R@1, R@10,
  nDCG@10 at depth 10), reported beside ours. Runs are scored in chunks of whole searches, their query ids
  prefixed ``{search}:`` (trec_eval's time grows with the square of the queries in one call, and each call starts
  a JVM): ``trec_eval/topk.N.{trec,qrels,txt}``, listed in ``trec_eval/oracle.json``.
"""

from __future__ import annotations

import os

from hybrid_tevatron.atomic import atomic_path, atomic_write_json, atomic_write_text
from hybrid_tevatron.eval.pipeline.search_plan import SearchPlan, select
from hybrid_tevatron.eval.runner import CliRunner, StepError
from hybrid_tevatron.eval.trec import MEASURES, measure_args, parse_trec_eval
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


def trec_eval(plan: SearchPlan, runs_dir: str, output_dir: str, runner: CliRunner, only=None) -> dict:
    """``python -m pyserini.eval.trec_eval ARGS QRELS RUN`` per search and argument set -> ``{name}.txt``."""
    os.makedirs(output_dir, exist_ok=True)
    root = plan.root
    searches = select(plan, only)
    summary = {}
    for i, s in enumerate(searches, 1):
        run = os.path.join(runs_dir, s.run_file)
        if not os.path.isfile(run):
            raise StepError(f"trec_eval {s.name}: run not found: {run}")
        qrels = os.path.join(root, s.qrels)
        texts, values = [], {}
        for args in plan.trec_eval_args:
            out = runner.run("pyserini.eval.trec_eval", [*args, runner.rel(qrels), runner.rel(run)], capture=True)
            parsed = parse_trec_eval(out)
            wanted = _expected_measures(args)
            lacking = [m for m in wanted if m not in parsed.get("all", {})]
            if lacking:
                raise StepError(f"trec_eval on {run} printed no {', '.join(lacking)}; output:\n{out[-2000:]}")
            values.update({m: parsed["all"][m] for m in wanted})
            texts.append(out.rstrip("\n") + "\n")
        atomic_write_text(os.path.join(output_dir, s.name + ".txt"), "".join(texts))
        summary[s.name] = values
        log.info(f"trec_eval [{i}/{len(searches)}] {s.name}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    atomic_write_json(os.path.join(output_dir, "summary.json"), summary)
    return summary


ORACLE_FILE = "oracle.json"
SAMPLE_OUTPUT = "sample.txt"
TOPK_CHUNK_QUERIES = 10_000
SEP = ":"  # chunk query ids: {search}:{qid} (as the ranks stage's sample)


def cutoff_measures(depth: int) -> list[str]:
    """The measures of :data:`~hybrid_tevatron.eval.trec.MEASURES` that a run ``depth`` deep decides (a cutoff of
    at most ``depth``)."""
    return [m for m in MEASURES if "." in m and int(m.rsplit(".", 1)[1]) <= depth]


def _run_trec_eval(runner: CliRunner, args: list[str], qrels: str, run: str, output: str) -> None:
    out = runner.run("hybrid_tevatron.eval.pipeline.trec_eval", [*args, runner.rel(qrels), runner.rel(run)],
                     capture=True)
    lacking = [m for m in _expected_measures(args) if m not in parse_trec_eval(out).get("all", {})]
    if lacking:
        raise StepError(f"trec_eval on {run} printed no {', '.join(lacking)}; output:\n{out[-2000:]}")
    atomic_write_text(output, out.rstrip("\n") + "\n")


def oracle(plan: SearchPlan, runs_dir: str, ranks_dir: str, output_dir: str, runner: CliRunner, only=None) -> dict:
    """trec_eval on the cross-check sample and on the top-k runs of a pool plan (module docstring); returns what
    ``oracle.json`` says."""
    from hybrid_tevatron.eval.pipeline.ranks import SAMPLE_QRELS, SAMPLE_RUN

    os.makedirs(output_dir, exist_ok=True)
    root = plan.root
    searches = [s for s in select(plan, only) if s.ranks]
    full_args = ["-c", "-q", *measure_args(MEASURES)]
    out: dict = {"sample": None, "top_k": None}
    sample_run, sample_qrels = os.path.join(ranks_dir, SAMPLE_RUN), os.path.join(ranks_dir, SAMPLE_QRELS)
    if os.path.isfile(sample_run) and os.path.getsize(sample_qrels) > 0:
        _run_trec_eval(runner, full_args, sample_qrels, sample_run, os.path.join(output_dir, SAMPLE_OUTPUT))
        out["sample"] = {"run": sample_run, "qrels": sample_qrels, "output": SAMPLE_OUTPUT, "args": full_args}
        log.info("trec_eval: the full rankings of the cross-check sample")
    depth = min((int(s.hits) for s in searches), default=0)
    measures = cutoff_measures(depth)
    if searches and measures:
        args = ["-c", "-q", *measure_args(measures)]
        chunks, current, queries = [], [], 0
        for s in searches:
            with open(os.path.join(root, s.qrels), encoding="utf-8") as f:
                n = len({line.split(None, 1)[0] for line in f if line.strip()})
            if current and queries + n > TOPK_CHUNK_QUERIES:
                chunks.append(current)
                current, queries = [], 0
            current.append(s)
            queries += n
        chunks.append(current)
        listed = []
        for i, chunk in enumerate(chunks):
            run, qrels = (os.path.join(output_dir, f"topk.{i}.{ext}") for ext in ("trec", "qrels"))
            with atomic_path(run) as run_tmp, atomic_path(qrels) as qrels_tmp, \
                    open(run_tmp, "w", encoding="utf-8") as r, open(qrels_tmp, "w", encoding="utf-8") as q:
                for s in chunk:
                    path = os.path.join(runs_dir, s.run_file)
                    if not os.path.isfile(path):
                        raise StepError(f"trec_eval {s.name}: run not found: {path}")
                    prefix = s.name + SEP
                    with open(path, encoding="utf-8") as f:
                        r.writelines(prefix + line for line in f if line.strip())
                    with open(os.path.join(root, s.qrels), encoding="utf-8") as f:
                        q.writelines(prefix + line for line in f if line.strip())
            _run_trec_eval(runner, args, qrels, run, os.path.join(output_dir, f"topk.{i}.txt"))
            listed.append({"run": f"topk.{i}.trec", "qrels": f"topk.{i}.qrels", "output": f"topk.{i}.txt",
                           "searches": [s.name for s in chunk]})
            log.info(f"trec_eval [{i + 1}/{len(chunks)}] top-{depth} runs of {len(chunk)} searches")
        out["top_k"] = {"depth": depth, "measures": measures, "args": args, "chunks": listed}
    atomic_write_json(os.path.join(output_dir, ORACLE_FILE), out)
    return out
