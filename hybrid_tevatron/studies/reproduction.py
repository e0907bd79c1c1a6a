"""The reproduction of the paper's comparison: run it, aggregate per-seed ``results.json`` files into
``summary.json``, and write the tables of docs/reproduction.md from it (numbers are never typed by hand).

    bash recipes/reproduce.sh [OUT]                 # = python -m hybrid_tevatron.studies.reproduction run --root OUT
    python -m hybrid_tevatron.studies.reproduction summarize --root runs/reproduce      # -> runs/reproduce/summary.json
    python -m hybrid_tevatron.studies.reproduction doc --summary runs/reproduce/summary.json --doc docs/reproduction.md

``run`` reads its settings from the environment: the budget (:mod:`hybrid_tevatron.studies.budget`: MODEL, STEPS,
BATCH, ...), XQUAD_R and MLQA_R (folders), SEEDS [1 2 3], REGIMES [mono cross hybrid], MLQA_SEEDS [the first seed;
empty: none], ZERO_SHOT [1], KEEP_MODELS [0]. On the shared study core (:mod:`hybrid_tevatron.studies.core`: one run
per root, another configuration refused, every step a replayable ``python -m`` line in ``commands.sh``, its time in
``timings.tsv``, ``models/RUN/DONE``, models deleted once evaluated, resumable) it prepares the XQuAD-R training
articles, evaluates the zero-shot model, trains every (regime, seed) at the same budget and evaluates it on the
held-out XQuAD-R articles (and MLQA-R for MLQA_SEEDS), then summarises.

Layout under ``--root``: ``eval/{dataset}/{run}/results/results.json`` (a plain ``{run}/results.json`` is read too)
with ``run`` = ``zero-shot`` or ``{regime}-s{seed}``; ``config.json`` (the settings), ``plan.json`` (the runs it
intends to make), ``timings.tsv`` (stage, seconds) and ``hardware.json``. Per dataset and regime, ``summary.json``
holds for every metric ``{"mean", "std" (sample, 0 for one seed), "n", "values", "seeds"}``. Metric names: the
evaluator's summary keys (``mono.map``, ``cross.recall_1``, ``rank_distance``…) and seen/unseen breakdowns
``mono.map@seen``, ``multi.rank_distance@unseen``, ``cross.map@seen-unseen`` (query group - pool group).
``summarize`` also puts the first seed's runs side by side in ``compare/{dataset}/``
(``hybrid_tevatron.eval.reports.report --compare``).

``doc`` replaces the blocks between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->`` in
the doc (names: config, hardware, status, xquad-r, mlqa-r, seen-unseen, paper, claims) and leaves the prose alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.data.languages import TRAIN_LANGUAGES
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.studies.budget import Budget, xquad_train_files
from hybrid_tevatron.studies.core import StudyError, StudyRoot, env_numbers, env_words
from hybrid_tevatron.studies.records import (
    config_block,
    fmt_stat,
    hardware_block,
    md_table,
    read_doc,
    read_object,
    read_record,
    read_summary,
    read_timings,
    render_blocks,
    results_path,
    seed_stats,
)

log = get_logger(__name__)

REGIMES = ("mono", "cross", "hybrid")
RUN_ORDER = ("zero-shot",) + REGIMES
HEADLINE = ("mono.map", "cross.map", "multi.map", "rank_distance", "mono.recall_1", "cross.recall_1",
            "multi.recall_10")
TITLES = {"mono.map": "mono mAP", "cross.map": "cross mAP", "multi.map": "multi mAP", "rank_distance": "rank dist. ↓",
          "mono.recall_1": "mono R@1", "cross.recall_1": "cross R@1", "multi.recall_10": "multi R@10"}
# Paper anchors: the XLM-R results of arXiv 2408.10536 (its X-X-mono / X-Y / hybrid rows).
PAPER = {
    "xquad-r": {"mono": {"mono.map": 0.792, "cross.map": 0.674, "multi.map": 0.547, "rank_distance": 410.2},
                "cross": {"mono.map": 0.755, "cross.map": 0.700, "multi.map": 0.593, "rank_distance": 295.4},
                "hybrid": {"mono.map": 0.798, "cross.map": 0.705, "multi.map": 0.593, "rank_distance": 286.6}},
    "mlqa-r": {"mono": {"mono.map": 0.648, "cross.map": 0.584, "multi.map": 0.473},
               "cross": {"mono.map": 0.626, "cross.map": 0.620, "multi.map": 0.508},
               "hybrid": {"mono.map": 0.648, "cross.map": 0.623, "multi.map": 0.512}},
}
PAPER_NAMES = {"mono": "X-X-mono", "cross": "X-Y", "hybrid": "hybrid"}
_RUN = re.compile(r"^(?P<regime>[a-z]+)-s(?P<seed>\d+)$")


def _metrics(results: dict) -> dict[str, float]:
    """Flat metric dict of one results.json: summary keys plus seen/unseen breakdowns."""
    out = {k: float(v) for k, v in results.get("summary", {}).items() if isinstance(v, (int, float))}
    su = results.get("seen_unseen") or {}
    for setting in ("mono", "multi"):
        for group, vals in (su.get(setting) or {}).items():
            for k, v in vals.items():
                if isinstance(v, (int, float)) and k != "pairs":
                    out[f"{setting}.{k}@{group}"] = float(v)
    for group, vals in (su.get("cross") or {}).items():
        for k, v in vals.items():
            if isinstance(v, (int, float)) and k != "pairs":
                out[f"cross.{k}@{group.replace('→', '-')}"] = float(v)
    return out


def summarize(root: str) -> dict:
    """Aggregate ``{root}/eval/{dataset}/{run}/results.json`` into the summary dict (see the module doc)."""
    eval_root = os.path.join(root, "eval")
    if not os.path.isdir(eval_root):
        raise StudyError(f"{eval_root}: no evaluation results yet (run recipes/reproduce.sh)")
    summary: dict = {"meta": {
        "config": read_record(os.path.join(root, "config.json"), {}),
        "hardware": read_record(os.path.join(root, "hardware.json"), {}),
        "plan": read_record(os.path.join(root, "plan.json"), {}),
        "timings": read_timings(os.path.join(root, "timings.tsv")),
    }}
    for dataset in sorted(os.listdir(eval_root)):
        groups: dict[str, list] = {}
        for run in sorted(os.listdir(os.path.join(eval_root, dataset))):
            path = results_path(os.path.join(eval_root, dataset, run))
            if path is None:
                continue
            results = read_object(path, fix="evaluate the run again (remove its folder and rerun the study)")
            m = _RUN.match(run)
            regime, seed = (m["regime"], int(m["seed"])) if m else (run, None)
            groups.setdefault(regime, []).append((seed, _metrics(results)))
        if not groups:
            continue
        summary[dataset] = {}
        for regime in sorted(groups, key=lambda r: (RUN_ORDER.index(r) if r in RUN_ORDER else 99, r)):
            runs = sorted(groups[regime], key=lambda x: (x[0] is None, x[0]))
            keys = [k for k in runs[0][1] if all(k in r for _, r in runs)]
            summary[dataset][regime] = {k: {**seed_stats([r[k] for _, r in runs]), "seeds": [s for s, _ in runs]}
                                        for k in keys}
    return summary


def plan(seeds, regimes, mlqa_seeds, zero_shot: bool) -> dict[str, list[str]]:
    """The runs evaluated per dataset (``plan.json``): the zero-shot row, then ``{regime}-s{seed}``."""
    zero = ["zero-shot"] if zero_shot else []
    return {"xquad-r": zero + [f"{r}-s{s}" for s in seeds for r in regimes],
            "mlqa-r": zero + [f"{r}-s{s}" for s in mlqa_seeds for r in regimes]}


def run(root: str, env) -> None:
    """Train and evaluate every planned run (module docstring); finished steps are skipped."""
    budget = Budget.from_env(env)
    for name in ("SEEDS", "MLQA_SEEDS"):
        env_numbers(env, name)  # whole numbers, or one error naming the setting
    seeds = env_words(env, "SEEDS") or ["1", "2", "3"]
    regimes = env_words(env, "REGIMES") or list(REGIMES)
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown:
        raise StudyError(f"REGIMES: unknown {unknown} (choose from {' '.join(REGIMES)})")
    mlqa_seeds = seeds[:1] if env.get("MLQA_SEEDS") is None else (env_words(env, "MLQA_SEEDS") or [])
    zero_shot = env.get("ZERO_SHOT", "1") == "1"
    the_plan = plan(seeds, regimes, mlqa_seeds, zero_shot)
    dirs = {"xquad-r": env.get("XQUAD_R", ""), "mlqa-r": env.get("MLQA_R", "")}
    for dataset, runs in the_plan.items():
        if runs and not os.path.isdir(dirs[dataset]):
            variable = dataset.upper().replace("-", "_")
            raise StudyError(f"{dataset} data folder not found: {dirs[dataset]!r} (set {variable})")
    study = StudyRoot(root, env, "the reproduction")
    with study.running():
        study.start(budget.config(), the_plan)
        data = study.path("data", "xquad-train")
        if not os.path.isfile(os.path.join(data, "stats.json")):
            study.step("data:xquad-train", "hybrid_tevatron.data.xquad_train",
                       ["--xquad_dir", dirs["xquad-r"], "--output_dir", data])

        def evaluate(model: str, dataset: str, name: str) -> None:
            extra = ["--seen_languages", *TRAIN_LANGUAGES]
            if dataset == "xquad-r":  # the held-out articles only; MLQA-R whole
                extra += ["--articles", f"@{os.path.join(data, 'test_articles.txt')}"]
            study.step(f"eval:{dataset}:{name}", "hybrid_tevatron.eval", budget.eval_argv(
                "lareqa", [model, dirs[dataset], study.eval_dir(dataset, name)], name, extra))

        def pending(name: str) -> list[str]:
            return [d for d, runs in the_plan.items() if name in runs and not study.has_results(d, name)]

        for dataset in pending("zero-shot"):
            evaluate(budget.model, dataset, "zero-shot")
        trained = [f"{r}-s{s}" for s in seeds for r in regimes]
        for name in trained:
            todo = pending(name)
            if not todo:
                log.info(f"{name}: done (results exist)")
                continue
            regime, seed = name.rsplit("-s", 1)
            model = study.trained(name, lambda out, regime=regime, seed=seed, name=name: study.step(
                f"train:{name}", "hybrid_tevatron.driver.train",
                budget.train_argv(xquad_train_files(data), TRAIN_LANGUAGES, regime, seed, out)))
            for dataset in todo:
                evaluate(model, dataset, name)
            study.cleanup(n for n in trained if pending(n))


def write_compares(root: str) -> list:
    """The zero-shot row and the first seed's runs of ``plan.json``, side by side per dataset."""
    from hybrid_tevatron.eval.reports.report import write_compare

    written = []
    for dataset, runs in (read_record(os.path.join(root, "plan.json")) or {}).items():
        seeds = [m["seed"] for m in map(_RUN.match, runs) if m]
        first = [r for r in runs if r == "zero-shot" or (seeds and r.endswith(f"-s{seeds[0]}"))]
        found = [(r, results_path(os.path.join(root, "eval", dataset, r))) for r in first]
        found = [(r, p) for r, p in found if p]
        if found:
            write_compare([p for _, p in found], [r for r, _ in found], os.path.join(root, "compare", dataset))
            written.append(dataset)
    return written


# ---------------------------------------------------------------------------------------------------- markdown

def results_table(summary: dict, dataset: str, keys=HEADLINE) -> str:
    runs = summary.get(dataset) or {}
    if not runs:
        return f"_No {dataset} results yet: not run._\n"
    rows = []
    for regime in [r for r in RUN_ORDER if r in runs] + [r for r in runs if r not in RUN_ORDER]:
        body = runs[regime]
        n = max((v["n"] for v in body.values()), default=0)
        rows.append([f"{regime} (n={n})"] + [fmt_stat(body.get(k), k) for k in keys])
    return md_table(["run (seeds)"] + [TITLES.get(k, k) for k in keys], rows)


def seen_unseen_table(summary: dict, dataset: str) -> str:
    runs = summary.get(dataset) or {}
    keys = [k for k in ("mono.map@seen", "mono.map@unseen", "cross.map@seen-seen", "cross.map@seen-unseen",
                        "cross.map@unseen-seen", "cross.map@unseen-unseen", "multi.map@seen", "multi.map@unseen",
                        "multi.rank_distance@seen", "multi.rank_distance@unseen")
            if any(k in body for body in runs.values())]
    if not keys:
        return f"_No {dataset} seen/unseen breakdown yet: not run._\n"
    rows = [[regime] + [fmt_stat(runs[regime].get(k), k) for k in keys] for regime in RUN_ORDER if regime in runs]
    return md_table(["run"] + keys, rows)


def paper_table(summary: dict) -> str:
    """Ours beside the paper's, mAP and rank distance, per dataset and regime."""
    rows = []
    for dataset, paper in PAPER.items():
        for regime in REGIMES:
            ours = (summary.get(dataset) or {}).get(regime, {})
            keys = ("mono.map", "cross.map", "multi.map", "rank_distance")
            rows.append([f"{dataset} {regime} ({PAPER_NAMES[regime]})"] + [
                f"{fmt_stat(ours.get(k), k)} / {paper[regime][k]:.{1 if k == 'rank_distance' else 3}f}"
                if k in paper[regime] else f"{fmt_stat(ours.get(k), k)} / –" for k in keys])
    return md_table(["dataset, regime", "mono mAP ours / paper", "cross mAP ours / paper", "multi mAP ours / paper",
                   "rank dist. ours / paper"], rows)


def claims(summary: dict) -> list[dict]:
    """Every pairwise regime ordering the paper reports, checked on our numbers (better = higher; rank distance:
    lower). ``verdict``: holds / holds (within noise) / reversed (within noise) / reversed, where noise = 2 standard
    errors of the difference of the two seed means; with one seed there is no noise estimate."""
    out = []
    for dataset, paper in PAPER.items():
        ours = summary.get(dataset) or {}
        for key in ("mono.map", "cross.map", "multi.map", "rank_distance"):
            sign = -1.0 if key == "rank_distance" else 1.0
            for a, b in (("hybrid", "mono"), ("hybrid", "cross"), ("mono", "cross")):
                if key not in paper[a]:
                    continue
                p_diff = sign * (paper[a][key] - paper[b][key])
                row = {"dataset": dataset, "metric": key, "a": a, "b": b, "paper_diff": p_diff}
                sa, sb = ours.get(a, {}).get(key), ours.get(b, {}).get(key)
                if not sa or not sb:
                    row["verdict"] = "not run"
                    out.append(row)
                    continue
                d = sign * (sa["mean"] - sb["mean"])
                se = math.sqrt(sa["std"] ** 2 / sa["n"] + sb["std"] ** 2 / sb["n"])
                row.update(ours_diff=d, noise=2 * se, n=min(sa["n"], sb["n"]))
                same = (d > 0) == (p_diff > 0) if p_diff != 0 else None
                if min(sa["n"], sb["n"]) < 2:
                    row["verdict"] = ("same direction" if same else "opposite direction" if same is False
                                      else "paper: tie") + " (1 seed, no noise estimate)"
                elif p_diff == 0:
                    row["verdict"] = "paper: tie; ours " + ("within noise" if abs(d) <= 2 * se else
                                                            f"{a} {'better' if d > 0 else 'worse'} beyond noise")
                elif abs(d) <= 2 * se:
                    row["verdict"] = "holds (within noise)" if same else "reversed (within noise)"
                else:
                    row["verdict"] = "holds" if same else "reversed"
                out.append(row)
    return out


def claims_table(summary: dict) -> str:
    rows = []
    for c in claims(summary):
        digits = 1 if c["metric"] == "rank_distance" else 3
        better = "lower" if c["metric"] == "rank_distance" else "higher"
        ours = "–" if "ours_diff" not in c else f"{c['ours_diff']:+.{digits}f}"
        noise = "–" if "noise" not in c or c.get("n", 0) < 2 else f"±{c['noise']:.{digits}f}"
        rows.append([c["dataset"], f"{c['metric']} ({better} is better)", f"{c['a']} vs {c['b']}",
                     f"{c['paper_diff']:+.{digits}f}", ours, noise, c["verdict"]])
    return md_table(["dataset", "metric", "pair", "paper: a − b (better > 0)", "ours", "2 s.e.", "verdict"], rows)


def status_block(summary: dict) -> str:
    plan = summary["meta"].get("plan") or {}
    if not plan:
        return "_No plan.json: not run._\n"
    rows = []
    for dataset, runs in plan.items():
        done = [r for r in runs if _run_present(summary, dataset, r)]
        missing = [r for r in runs if r not in done]
        rows.append([dataset, f"{len(done)} of {len(runs)}", ", ".join(missing) if missing else "–"])
    return md_table(["dataset", "runs evaluated", "not yet run"], rows)


def _run_present(summary: dict, dataset: str, run: str) -> bool:
    m = _RUN.match(run)
    regime, seed = (m["regime"], int(m["seed"])) if m else (run, None)
    body = (summary.get(dataset) or {}).get(regime)
    if not body:
        return False
    first = next(iter(body.values()))
    return seed in first["seeds"]


BLOCKS = {
    "config": config_block,
    "hardware": hardware_block,
    "status": status_block,
    "xquad-r": lambda s: results_table(s, "xquad-r"),
    "mlqa-r": lambda s: results_table(s, "mlqa-r"),
    "seen-unseen": lambda s: seen_unseen_table(s, "xquad-r") + "\nMLQA-R:\n\n" + seen_unseen_table(s, "mlqa-r"),
    "paper": paper_table,
    "claims": claims_table,
}


def render_doc(text: str, summary: dict, source: str) -> str:
    """``text`` with every generated block of docs/reproduction.md recomputed from ``summary``."""
    return render_blocks(text, summary, source, BLOCKS)


def write_summary(root: str, output: str | None = None) -> None:
    """``summary.json`` and ``summary.md`` (tables) from the root's results, and ``compare/`` (first seed)."""
    summary = summarize(root)
    out = output or os.path.join(root, "summary.json")
    atomic_write_json(out, summary)
    md = os.path.splitext(out)[0] + ".md"
    atomic_write_text(md, "\n".join(
        f"## {ds}\n\n" + results_table(summary, ds) + "\n" + seen_unseen_table(summary, ds)
        for ds in summary if ds != "meta") + "\n## Against the paper\n\n" + paper_table(summary)
        + "\n## The paper's orderings on our numbers\n\n" + claims_table(summary))
    print(open(md, encoding="utf-8").read())
    print(f"summary: {os.path.abspath(out)}\ntables: {os.path.abspath(md)}")
    for dataset in write_compares(root):
        print(f"side by side (first seed): {os.path.join(os.path.abspath(root), 'compare', dataset)}")


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.studies.reproduction",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="train, evaluate and summarise (settings from the environment)").add_argument(
        "--root", required=True)
    st = sub.add_parser("start", help="record config.json (JSON on stdin), plan.json and hardware.json (kept one "
                        "release: run does it)")
    st.add_argument("--root", required=True)
    st.add_argument("--seeds", nargs="*", default=[])
    st.add_argument("--regimes", nargs="+", default=list(REGIMES))
    st.add_argument("--mlqa_seeds", nargs="*", default=[])
    st.add_argument("--zero_shot", type=int, choices=[0, 1], default=1)
    s = sub.add_parser("summarize", help="eval/*/*/results.json -> summary.json (+ summary.md)")
    s.add_argument("--root", required=True)
    s.add_argument("--output", help="default: ROOT/summary.json")
    d = sub.add_parser("doc", help="regenerate the generated blocks of a markdown doc from summary.json")
    d.add_argument("--summary", required=True)
    d.add_argument("--doc", required=True)
    d.add_argument("--source", help="how to name the summary in the doc (default: the --summary path)")
    args = ap.parse_args(argv)
    if args.cmd == "start":
        try:
            config = json.load(sys.stdin)
        except json.JSONDecodeError as err:
            raise StudyError(f"the configuration on stdin:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") \
                from None
        if not isinstance(config, dict):
            raise StudyError("the configuration on stdin: expected a JSON object of setting: value")
        StudyRoot(args.root, os.environ, "the reproduction").start(
            config, plan(args.seeds, args.regimes, args.mlqa_seeds, bool(args.zero_shot)))
        return 0
    if args.cmd == "run":
        run(args.root, os.environ)
    if args.cmd in ("run", "summarize"):
        write_summary(args.root, getattr(args, "output", None))
        return 0
    summary = read_summary(args.summary, "write it with: python -m hybrid_tevatron.studies.reproduction summarize "
                           "--root ROOT")
    atomic_write_text(args.doc, render_doc(read_doc(args.doc), summary, args.source or args.summary))
    print(f"regenerated the tables of {args.doc} from {args.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
