"""The domain-adaptation study (grid: :mod:`hybrid_tevatron.studies.domain_grid`): run it, summarise it, write its doc.

    bash recipes/domain_adaptation.sh [OUT]      # = python -m hybrid_tevatron.studies.domain_study run --root OUT
    python -m hybrid_tevatron.studies.domain_study summarize --root runs/domain_adaptation
    python -m hybrid_tevatron.studies.domain_study doc --summary runs/domain_adaptation/summary.json \\
        --doc docs/domain_adaptation.md

``run`` reads its settings from the environment: the budget (:mod:`hybrid_tevatron.studies.budget`: MODEL, STEPS,
BATCH, ...), SEEDS, CELLS, EVAL_SETS, EVAL_IMAGES, EVAL_QUESTIONS, EVAL_LANGUAGES, FLICKR_IMAGES, KEEP_MODELS and
the data folders XQUAD_R, MULTI30K, MULTI30K_TASK2, XTD10 (required; the recipe's default: ../shared/data beside the
checkout). On the shared study core (:mod:`hybrid_tevatron.studies.core`: one run per root, held by a lock;
another configuration refused; every step one replayable ``python -m`` subprocess in ``commands.sh``, its time in
``timings.tsv``; ``models/RUN/DONE``; models deleted once evaluated unless KEEP_MODELS=1; Ctrl-C ends with one line
saying what was kept; the same command resumes) it prepares the sources,
trains and evaluates every planned (cell, seed), chooses the aim candidate on the validation sets (``choice.json``)
and writes ``summary.{json,md}``. Layout under the root: ``data/{source}/``, ``models/{cell}-s{seed}/``,
``eval/{set}/{cell}-s{seed}/results/`` (or ``eval/{set}/zero-shot/``), ``choice.json``.

``summary.json``: ``{set: {cell: {metric: {mean, std, n, values, seeds}}}}`` plus ``meta`` and ``cells`` (status
of every cell of the grid, degenerate ones with their reason). Caption metrics: the evaluator's summary keys,
``to_en.recall_10@X`` / ``multi.map@X`` per language, and ``...@group:G`` (mean over the group's languages,
:data:`~hybrid_tevatron.studies.domain_grid.LANGUAGE_GROUPS`). Caption numbers are a caption proxy, not image
retrieval.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from collections.abc import Mapping

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.locks import FolderLock
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.model_files import TRAIN_SUMMARY
from hybrid_tevatron.studies import domain_grid as G
from hybrid_tevatron.studies.budget import Budget
from hybrid_tevatron.studies.check_expected import leaves, snapshot, write_expected
from hybrid_tevatron.studies.core import DONE, StudyError, StudyRoot, env_numbers, env_words
from hybrid_tevatron.studies.domain_plan import added_seeds, estimate, eval_minutes, plan
from hybrid_tevatron.studies.domain_summary import choose, summarize
from hybrid_tevatron.studies.domain_tables import (
    BLOCKS,
    EXPECTED_SELECT,
    FIGURE,
    README_BLOCKS,
    figure,
    markdown,
    progress,
    run_name,
)
from hybrid_tevatron.studies.record_folder import RecordFolder, machine, machine_name, read_or_none
from hybrid_tevatron.studies.records import read_timings, render_blocks, under_home

log = get_logger(__name__)

# The data folders ``run`` needs, each named by its environment variable (the key, upper case); the recipe sets
# them to ../shared/data/FOLDER beside the checkout unless given
DATA_FOLDERS = {"xtd10": "xtd10", "multi30k": "multi30k", "multi30k_task2": "multi30k-task2", "xquad_r": "xquad-r"}


# ------------------------------------------------------------------------------------------------------ running

class Study(StudyRoot):
    """The domain study on the shared core: its data folders, sources, trainings and evaluations. What lasts goes
    into ``records`` (:class:`~hybrid_tevatron.studies.record_folder.RecordFolder`) the moment a step ends; a step
    with a complete record is never redone."""

    def __init__(self, root: str, env: Mapping[str, str], records: str):
        super().__init__(root, env, "the domain study")
        self.budget = Budget.from_env(self.env)
        self.dirs = {k: self.env.get(k.upper(), "") for k in DATA_FOLDERS}
        self.dirs["wiki"] = self.path("data", "wiki")
        variables = {os.path.abspath(self.dirs[k]): k.upper() for k in DATA_FOLDERS if self.dirs[k]}
        variables[self.root] = "OUT"
        if os.path.isabs(self.budget.model):
            variables[self.budget.model] = "MODEL"
        self.records = RecordFolder(records, variables)

    def check_data(self) -> None:
        """Every data folder is set and exists (the recipe's default: ../shared/data/FOLDER beside the checkout)."""
        for k, folder in DATA_FOLDERS.items():
            if not self.dirs[k]:
                raise StudyError(f"{k.upper()} is not set: the {folder} data folder (bash recipes/domain_adaptation.sh "
                                 f"sets it to ../shared/data/{folder} beside the checkout)")
            if not os.path.isdir(self.dirs[k]):
                raise StudyError(f"{k} data folder not found: {self.dirs[k]!r} (set {k.upper()})")

    def prepare(self, source: str) -> str:
        out = self.path("data", source)
        if os.path.isfile(os.path.join(out, "stats.json")):
            return out
        if source == "wiki":
            self.step("data:wiki", "hybrid_tevatron.data.xquad_train", ["--xquad_dir", self.dirs["xquad_r"],
                                                                        "--output_dir", out, "--val_every",
                                                                        G.WIKI_VAL_EVERY])
            return out
        n = self.env.get("FLICKR_IMAGES")
        given = ["--multi30k", self.dirs["multi30k"]] if source == "flickr" else \
            ["--multi30k_task2", self.dirs["multi30k_task2"]]
        self.step(f"data:{source}", "hybrid_tevatron.data.captions",
                  ["train", *given, "--split", "train", "--output_dir", out, "--seed", "0",
                   *(["--max_examples", n] if n else [])])
        return out

    def train(self, cell: G.Cell, seed: int) -> str:
        run = run_name(cell.name, seed)

        def train(out: str) -> None:
            for source in cell.sources:
                self.prepare(source)
            argv = self.train_argv(cell, seed, out)
            seconds = self.step(f"train:{run}", "hybrid_tevatron.driver.train", argv)
            summary = read_or_none(os.path.join(out, TRAIN_SUMMARY))
            if not isinstance(summary, dict):
                raise StudyError(f"{out}/{TRAIN_SUMMARY}: the training left no summary")
            self.records.record_train(run, summary, ["python", "-m", "hybrid_tevatron.driver.train", *argv], seconds)

        return self.trained(run, train)

    def train_argv(self, cell: G.Cell, seed: int, out: str) -> list[str]:
        """The budget's training flags on the cell's sources: the first is ``--train_files``, the others
        ``--extra_sources``; translation sources are cross-only; the cell's step weights."""
        dirs = [self.path("data", s) for s in cell.sources]
        langs = list(dict.fromkeys(x for s in cell.sources for x in G.SOURCES[s].languages))
        sources = ["--extra_sources", *[f"{s}:{d}" for s, d in zip(cell.sources[1:], dirs[1:])]] \
            if len(dirs) > 1 else []
        cross_only = [s for s in cell.sources if G.SOURCES[s].cross_only]
        if cross_only:
            sources += ["--cross_only_sources", ",".join(cross_only)]
        if cell.weights:
            sources += ["--source_weights", ",".join(f"{s}={w}" for s, w in zip(cell.sources, cell.weights))]
        return self.budget.train_argv([dirs[0]], langs, cell.regime, seed, out, sources)

    def eval_argv(self, model: str, eval_set: str, run: str) -> list[str]:
        es = G.EVAL_SET[eval_set]
        out = self.eval_dir(eval_set, run)
        args = [a.format(**self.dirs) for a in es.args]
        positional = [model, *args, out] if es.family == "lareqa" else [model, out, *args]
        extra = []
        langs = [x for x in es.languages if x in (env_words(self.env, "EVAL_LANGUAGES") or es.languages)]
        if langs != list(es.languages):
            extra += ["--languages", *langs]
        images, questions = pool_caps(self.env)
        cap = questions if es.family == "lareqa" else images
        if cap:
            extra += ["--max_questions" if es.family == "lareqa" else "--max_images", str(cap)]
        return self.budget.eval_argv(es.family, positional, run, extra)

    def evaluate(self, model: str, eval_set: str, cell: str, seed: int | None) -> None:
        run = run_name(cell, seed)
        if self.records.has_eval(eval_set, run):
            return
        if G.EVAL_SET[eval_set].family == "lareqa":
            self.prepare("wiki")  # its {test,val}_articles.txt select the articles
        argv = self.eval_argv(model, eval_set, run)
        seconds = self.step(f"eval:{eval_set}:{run}", "hybrid_tevatron.eval", argv)
        self.records.record_eval(eval_set, run, os.path.join(self.eval_dir(eval_set, run), "results"),
                                 ["python", "-m", "hybrid_tevatron.eval", *argv], seconds)

    def todo(self, r: dict) -> list[str]:
        return [s for s in r["evals"] if not self.records.has_eval(s, run_name(r["cell"], r["seed"]))]

    def run(self, the_plan: dict, deadline: float | None = None) -> bool:
        """Every planned step without a record, in the plan's order; with ``deadline`` (a ``time.time()``), no
        (cell, seed) whose estimate would end past it is started: then one line says what is left and False is
        returned."""
        runs = the_plan["runs"]
        clock = Clock(self.records)
        for r in runs:
            cell, seed = G.CELL[r["cell"]], r["seed"]
            todo = self.todo(r)
            if not todo:
                log.info(f"{run_name(cell.name, seed)}: done (recorded in {self.records.folder})")
                continue
            if deadline is not None and time.time() + 60 * self.minutes(r, todo, clock) > deadline:
                self.say_left(the_plan, clock)
                return False
            for s in todo:
                model = self.budget.model if cell.regime == "zero-shot" else self.train(cell, seed)
                self.evaluate(model, s, cell.name, seed)
            self.cleanup(run_name(q["cell"], q["seed"]) for q in runs if self.todo(q))
        if the_plan["candidates"]:
            choose(self.records, the_plan)
        return True

    def minutes(self, r: dict, todo: list[str], clock: Clock) -> float:
        """Estimated minutes of the rest of one (cell, seed): its training (unless its model is here) and ``todo``."""
        run = run_name(r["cell"], r["seed"])
        images, questions = pool_caps(self.env)
        trained = G.CELL[r["cell"]].trained and not os.path.isfile(os.path.join(self.model_dir(run), DONE))
        return (clock.minutes("train", G.MINUTES["train"]) if trained else 0.0) + sum(
            clock.minutes(f"eval:{s}", eval_minutes(s, images, questions)) for s in todo)

    def say_left(self, the_plan: dict, clock: Clock) -> None:
        steps = recorded = trainings = evals = 0
        minutes = 0.0
        for r in the_plan["runs"]:
            todo, trained = self.todo(r), G.CELL[r["cell"]].trained
            steps += len(r["evals"]) + trained
            recorded += len(r["evals"]) - len(todo) + (trained and (not todo or bool(self.records.training(
                run_name(r["cell"], r["seed"])))))
            if todo:
                trainings += trained
                evals += len(todo)
                minutes += self.minutes(r, todo, clock)
        print(f"deadline: {recorded} of {steps} planned steps recorded in {self.records.folder}; left: {trainings} "
              f"trainings and {evals} evaluations, about {_hours(minutes)} on this machine; continue with: bash "
              f"recipes/domain_adaptation.sh {self.root} --stop_after MINUTES", flush=True)


class Clock:
    """Minutes per stage kind: the median of the records' times on this machine when there are any, else the
    grid's estimate for 2 CPU cores."""

    def __init__(self, records: RecordFolder):
        here = machine_name(machine())
        self.times: dict[str, list[float]] = {}
        for t in read_timings(records.path("timings.tsv")):
            if t.get("machine") == here:
                self.times.setdefault(t["stage"].rsplit(":", 1)[0], []).append(t["seconds"] / 60)

    def minutes(self, kind: str, default: float) -> float:
        values = sorted(self.times.get(kind, []))
        return values[len(values) // 2] if values else default


def _hours(minutes: float) -> str:
    return f"{int(minutes // 60)} h {round(minutes % 60):02d} min" if minutes >= 60 else f"{round(minutes)} min"


RECORDS = os.path.join("results", "domain_adaptation")  # the default record folder (the recipe: the checkout's)


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.studies.domain_study",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="record the configuration, train, evaluate, summarize (settings from the "
                           "environment)")
    run_p.add_argument("--root", required=True, help="the study's local folder (data, models, evaluations)")
    run_p.add_argument("--stop_after", type=float, metavar="MINUTES",
                       help="start no (cell, seed) whose estimate would end more than MINUTES after the start; then "
                            "say what is left and exit 0")
    run_p.add_argument("--accept_changed_code", action="store_true",
                       help="take records made by other number-deciding code as they are (recorded in accepted.json)")
    summ = sub.add_parser("summarize", help="the records -> summary.json + summary.md in --out")
    summ.add_argument("--out", required=True)
    for p in (run_p, summ):
        p.add_argument("--records", default=RECORDS, help=f"the record folder (default: {RECORDS})")
    sub.add_parser("plan", help="print the planned runs (SEEDS, CELLS, EVAL_SETS, EVAL_IMAGES, EVAL_QUESTIONS "
                   "from the environment) and their estimated minutes on 2 CPU cores")
    doc = sub.add_parser("doc", help="from the records alone: the generated blocks of --doc and --readme, the "
                         "figure and (once every planned evaluation is recorded) the expected scores")
    doc.add_argument("--records", default=RECORDS, help=f"the record folder (default: {RECORDS})")
    for flag, default in (("--doc", "docs/domain_adaptation.md"), ("--readme", "README.md"), ("--figure", FIGURE),
                          ("--expected", "recipes/expected/domain_adaptation.yaml")):
        doc.add_argument(flag, default=default, help=f"default: {default}")
    args = ap.parse_args(argv)
    if args.cmd == "plan":
        the_plan = plan(_seeds(), env_words(os.environ, "CELLS"), env_words(os.environ, "EVAL_SETS"))
        for r in the_plan["runs"]:
            print(f"{run_name(r['cell'], r['seed'])}: {' '.join(r['evals'])}")
        print(json.dumps({k: round(v, 1) for k, v in estimate(the_plan, *pool_caps(os.environ)).items()}))
        return 0
    if args.cmd in ("run", "summarize"):
        out = args.root if args.cmd == "run" else args.out
        if args.cmd == "run" and not run(args.root, args.records, args.stop_after, args.accept_changed_code):
            return 0
        summary = summarize(RecordFolder(args.records))
        atomic_write_json(os.path.join(out, "summary.json"), summary)
        atomic_write_text(os.path.join(out, "summary.md"), markdown(summary))
        print(markdown(summary))
        print(f"summary: {os.path.abspath(os.path.join(out, 'summary.json'))}\n"
              f"tables: {os.path.abspath(os.path.join(out, 'summary.md'))}")
        return 0
    write_docs(args.records, args.doc, args.readme, args.figure, args.expected)
    return 0


def write_docs(records: str, doc: str, readme: str, figure_path: str, expected: str) -> None:
    """The doc's and the README's generated blocks, the figure and the expected scores, from ``records`` alone."""
    folder = RecordFolder(records)
    if not os.path.isfile(folder.path("plan.json")):
        raise StudyError(f"{records}: no plan.json, so no records (run bash recipes/domain_adaptation.sh first)")
    summary = summarize(folder)
    source = os.path.relpath(folder.folder) if not os.path.isabs(records) else records
    for path, blocks in ((doc, BLOCKS), (readme, README_BLOCKS)):
        if not os.path.isfile(path):
            raise StudyError(f"{path}: not found (--doc and --readme name files with generated blocks)")
        with open(path, encoding="utf-8") as f:
            atomic_write_text(path, render_blocks(f.read(), summary, source, blocks))
        print(f"{path}: generated blocks rewritten from {source}")
    if figure(summary, figure_path):
        print(f"{figure_path}: X→en R@10 per XTD10 language")
    if progress(summary)["complete"]:
        paths = [path for path, _ in leaves({k: v for k, v in summary.items() if k not in ("meta", "cells")})]
        rows = snapshot(summary, [p for p in EXPECTED_SELECT if any(fnmatch.fnmatchcase(x, p) for x in paths)])
        write_expected(expected, rows, "Domain adaptation of hybrid batch training, caption proxy (whole test sets)",
                       "runs/domain_adaptation/summary.json", {"command": "bash recipes/domain_adaptation.sh",
                                                               "records": source,
                                                               "config": run_config(summary["meta"]["config"],
                                                                                    summary["meta"]["plan"])})
        print(f"{expected}: {len(rows)} rows")
    else:
        stale = os.path.isfile(expected)  # the plan grew (added seeds): its scores no longer cover every run
        if stale:
            os.remove(expected)
        print(f"{expected}: {'removed' if stale else 'not written'} ({progress(summary)['recorded']} of "
              f"{progress(summary)['planned']} planned evaluations recorded)")


def pool_caps(env) -> tuple:
    """(images per caption pool, XQuAD-R questions): EVAL_IMAGES / EVAL_QUESTIONS, else the grid's defaults;
    ``all`` (its only spelling; 0 is refused, as the evaluations' ``--max_images 0``) = the whole set, ``None``."""
    caps = []
    for name, default in (("EVAL_IMAGES", G.DEFAULT_IMAGES), ("EVAL_QUESTIONS", G.DEFAULT_QUESTIONS)):
        value = env.get(name) or (str(default) if default else "all")
        if value != "all" and not (value.isdigit() and int(value) >= 1):
            raise StudyError(f"{name} must be a number >= 1 or 'all' (the whole set), got {value!r}")
        caps.append(None if value == "all" else int(value))
    return tuple(caps)


def _seeds() -> list[int]:
    return [int(x) for x in (env_numbers(os.environ, "SEEDS") or G.DEFAULT_SEEDS)]


def settings(study: Study, env: Mapping[str, str]) -> dict:
    """The settings the records' ``config.json`` holds: the budget, the pools, the validation split, the languages
    and Flickr cap; the model path under ``~`` (the same model on another machine of the same layout)."""
    images, questions = pool_caps(env)
    out = dict(study.budget.config(), eval_images=images or "all", eval_questions=questions or "all",
               wiki_validation=f"training article j is validation when j % {G.WIKI_VAL_EVERY} == "
                               f"{G.WIKI_VAL_EVERY - 1} (xquad_train --val_every)",
               **{k.lower(): env.get(k, "") for k in ("EVAL_LANGUAGES", "FLICKR_IMAGES")})
    out["model"] = under_home(out["model"])
    return out


def run_config(recorded: dict, the_plan: dict) -> dict:
    """A study root's ``config.json``: the records' settings and what the plan covers (seeds, cells, test sets); the
    expected scores carry the same, so the recipe checks a run against them only when it ran the whole plan."""
    return dict(recorded, seeds=the_plan["seeds"], cells=the_plan["cells"], eval_sets=the_plan["test_sets"])


def run(root: str, records: str = RECORDS, stop_after: float | None = None, accept_changed_code: bool = False) -> bool:
    """Run the study into ``root``, recording into ``records``; False when ``stop_after`` minutes stopped it."""
    deadline = None if stop_after is None else time.time() + 60 * stop_after
    env = dict(os.environ)
    seeds = _seeds()
    the_plan = plan(seeds, env_words(env, "CELLS"), env_words(env, "EVAL_SETS"))
    study = Study(root, env, records)
    study.check_data()
    recorded = settings(study, env)
    with study.running(), FolderLock(study.records.folder, "the domain study's records"):
        if os.path.isfile(study.path("summary.json")):  # written again when every planned step is recorded
            os.remove(study.path("summary.json"))
        config = run_config(recorded, the_plan)
        base, ran = the_plan, None
        for _ in range(2):  # the plan, then (once it is recorded) with the seeds its within-noise effects add
            added = added_seeds(study.records, base)
            the_plan = plan(seeds, env_words(env, "CELLS"), env_words(env, "EVAL_SETS"), added) if added else base
            if the_plan == ran:
                break
            if ran is not None:
                log.info(f"headline effects within noise with seeds {seeds}: one more seed for {', '.join(added)}")
            study.start(config, the_plan)
            study.records.start(recorded, the_plan, accept_changed_code)  # seeds, cells and sets: the plan's check
            if not study.run(the_plan, deadline):
                return False
            ran = the_plan
        return True


if __name__ == "__main__":
    sys.exit(main())
