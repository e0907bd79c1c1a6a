"""Replay one recorded run of the domain study on this machine and compare its numbers with the records.

``bash recipes/domain_adaptation.sh replay --run wiki-hybrid-s1 --root /tmp/replay`` (= ``python -m
hybrid_tevatron.studies.replay ...`` with the recipe's defaults; settings from the environment,
as the study's: ``MODEL``, the data folders, ``PYTHON``):

1. prepares the run's training data the way the study does, into ``ROOT/data``;
2. runs the run's recorded training line and the recorded lines of its evaluations on ``--sets`` (default: the
   XTD10 and XQuAD-R ones it has), exactly as ``commands.sh`` holds them, with ``OUT=ROOT`` and this machine's
   model and data folders (each line must be in ``commands.sh``: the replay is of what the records say was run);
3. compares every number of each replayed evaluation's summary with its record: scores to :data:`TOLERANCE`
   (absolute), the rank distance to :data:`TOLERANCE` of its value (relative).

The outcome goes into the records as ``replay/RUN.json``, written atomically: this machine, commit and code
fingerprints beside the recording steps' machines, commits and fingerprints, the largest difference per set, the
difference of the training's final losses (for information) and whether the replay equals the records. A difference
beyond the tolerance is an error (exit 2) that names the set, the metric and both values; the record is written
either way, so the doc reports what was measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.model_files import TRAIN_SUMMARY
from hybrid_tevatron.studies import domain_grid as G
from hybrid_tevatron.studies.core import StudyError
from hybrid_tevatron.studies.domain_study import RECORDS, Study, settings
from hybrid_tevatron.studies.record_folder import (
    complete_results,
    differences,
    machine,
    machine_name,
    read_or_none,
)

log = get_logger(__name__)

TOLERANCE = 1e-3  # issue 26: a replayed headline cell equals its records to 1e-3
DEFAULT_SETS = ("xtd10", "xquad-r")
RELATIVE = ("rank_distance",)  # compared relative to their value; every other summary number absolutely


def split_run(run: str) -> tuple[G.Cell, int]:
    cell, _, seed = run.rpartition("-s")
    if cell not in G.CELL or not seed.isdigit() or not G.CELL[cell].trained:
        raise StudyError(f"--run {run!r}: not a trained run of the grid (CELL-sSEED, e.g. wiki-hybrid-s1; cells: "
                         f"{', '.join(c.name for c in G.CELLS if c.trained)})")
    return G.CELL[cell], int(seed)


def compare(recorded: dict, replayed: dict, tolerance: float = TOLERANCE) -> dict:
    """Every number of ``recorded``'s summary against ``replayed``'s: ``{"max_diff", "worst", "differs"}``, where
    ``differs`` lists ``[metric, recorded, replayed]`` beyond the tolerance (a metric missing from the replay
    differs)."""
    worst, max_diff, differs = None, 0.0, []
    for key, old in sorted(recorded.items()):
        if not isinstance(old, (int, float)):
            continue
        new = replayed.get(key)
        if not isinstance(new, (int, float)):
            differs.append([key, old, new])
            continue
        diff = abs(new - old) / max(abs(old), 1.0) if key in RELATIVE else abs(new - old)
        if diff > max_diff or worst is None:
            worst, max_diff = [key, old, new], max(diff, max_diff)
        if diff > tolerance:
            differs.append([key, old, new])
    return {"max_diff": max_diff, "worst": worst, "differs": differs}


class Replay:
    """One replay of ``run`` into ``root`` against the records of ``study``."""

    def __init__(self, study: Study, run: str, sets: list[str] | None = None, tolerance: float = TOLERANCE):
        self.study, self.run, self.tolerance = study, run, tolerance
        self.cell, self.seed = split_run(run)
        records = study.records
        self.training = records.training(run)
        if self.training is None:
            raise StudyError(f"{records.folder}: no training record of {run} (train/{run}.json), so nothing to replay")
        recorded = [s for s in G.EVAL_SET if records.results(s, run) is not None]
        self.sets = list(sets) if sets else [s for s in DEFAULT_SETS if s in recorded]
        missing = [s for s in self.sets if s not in recorded]
        if missing or not self.sets:
            wanted = ", ".join(missing) or " or ".join(DEFAULT_SETS)
            raise StudyError(f"{records.folder}: {run} has no recorded evaluation on {wanted} (recorded: "
                             f"{', '.join(recorded) or 'none'})")
        config, now = read_or_none(records.path("config.json")) or {}, settings(study, study.env)
        differ = differences(config, now)
        if differ:
            raise StudyError(f"{records.path('config.json')}: this replay's settings are not the records' "
                             f"({'; '.join(differ)}); set them as recorded")

    def lines(self) -> list[tuple[str, str]]:
        """``(stage, recorded line)`` of the training and the evaluations to replay, each checked against
        ``commands.sh``."""
        records = self.study.records
        steps = [(f"train:{self.run}", self.training["step"])]
        steps += [(f"eval:{s}:{self.run}", read_or_none(os.path.join(records.eval_dir(s, self.run), "step.json")))
                  for s in self.sets]
        with open(records.path("commands.sh"), encoding="utf-8") as f:
            commands = set(f.read().splitlines())
        out = []
        for stage, step in steps:
            if step["command"] not in commands:
                raise StudyError(f"{records.path('commands.sh')}: the recorded line of {stage} is not in it (records "
                                 "edited by hand?); restore them from git")
            out.append((stage, step["command"]))
        return out

    def argv(self, line: str) -> list[str]:
        """The words of a recorded line as bash expands them with this replay's variables (``OUT`` the replay's
        root, ``MODEL`` and the data folders this machine's settings)."""
        study = self.study
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OUT": study.root, "MODEL": study.budget.model,
               **{k.upper(): os.path.abspath(v) for k, v in study.dirs.items() if k != "wiki" and v}}
        proc = subprocess.run(["bash", "-c", "set -euo pipefail; printf '%s\\0' " + line], env=env,
                              capture_output=True, text=True, timeout=60)
        words = proc.stdout.split("\0")[:-1]
        if proc.returncode != 0 or words[:2] != ["python", "-m"]:
            raise StudyError(f"cannot expand the recorded line ({proc.stderr.strip() or 'not python -m'}): {line}")
        return words

    def replay(self) -> dict:
        """Run the recorded lines, compare, write ``replay/RUN.json``; the record (a dict)."""
        study = self.study
        for source in self.cell.sources:
            study.prepare(source)
        if any(G.EVAL_SET[s].family == "lareqa" for s in self.sets):
            study.prepare("wiki")
        t0 = time.time()
        for stage, line in self.lines():
            words = self.argv(line)
            study.step(f"replay:{stage}", words[2], words[3:])
        sets = {}
        for s in self.sets:
            replayed = complete_results(os.path.join(study.eval_dir(s, self.run), "results", "results.json"))
            if replayed is None:
                raise StudyError(f"{study.eval_dir(s, self.run)}/results: the replayed evaluation left no results")
            sets[s] = compare(study.records.results(s, self.run)["summary"], replayed["summary"], self.tolerance)
        return self.write(sets, time.time() - t0)

    def write(self, sets: dict, seconds: float) -> dict:
        records = self.study.records
        train_now = read_or_none(os.path.join(self.study.model_dir(self.run), TRAIN_SUMMARY)) or {}
        train_then = self.training["summary"]
        losses = {k: [train_then.get(k), train_now.get(k)] for k in ("train_loss",)}
        losses.update({f"final_loss@{m}": [v, (train_now.get("final_loss_by_mode") or {}).get(m)]
                       for m, v in (train_then.get("final_loss_by_mode") or {}).items()})
        steps = [self.training["step"]] + [read_or_none(os.path.join(records.eval_dir(s, self.run), "step.json"))
                                           for s in self.sets]
        record = {
            "run": self.run, "sets": self.sets, "tolerance": self.tolerance,
            "equal": all(not v["differs"] for v in sets.values()), "by_set": sets, "train_losses": losses,
            "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine(),
            "commit": {k: records.code(k)["commit"] for k in ("train", "eval")},
            "fingerprint": {k: records.code(k)["fingerprint"] for k in ("train", "eval")},
            "recorded": {"machines": sorted({machine_name(s["machine"]) for s in steps}),
                         "hosts": sorted({s["machine"].get("host", "unknown") for s in steps}),
                         "commits": sorted({s["commit"] for s in steps}),
                         "fingerprints": sorted({s["fingerprint"] for s in steps})},
        }
        atomic_write_json(records.path("replay", f"{self.run}.json"), record)
        return record


def outcome(record: dict) -> str:
    """The replay in one line."""
    parts = "; ".join(f"{s} largest difference {v['max_diff']:.1e} ({v['worst'][0]})" for s, v in
                      record["by_set"].items())
    if record["equal"]:
        return (f"replay of {record['run']} equals the records to {record['tolerance']:g} on "
                f"{machine_name(record['machine'])}: {parts}")
    beyond = "; ".join(f"{s} {k}: {old!r} recorded, {new!r} replayed" for s, v in record["by_set"].items()
                       for k, old, new in v["differs"])
    return f"replay of {record['run']} differs from the records beyond {record['tolerance']:g}: {beyond}"


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.studies.replay", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a recorded trained run, e.g. wiki-hybrid-s1")
    ap.add_argument("--root", required=True, help="a folder for the replay's data, model and evaluations (not the "
                                                  "study's root)")
    ap.add_argument("--records", default=RECORDS, help=f"the record folder (default: {RECORDS})")
    ap.add_argument("--sets", nargs="+", choices=list(G.EVAL_SET), help=f"default: {' '.join(DEFAULT_SETS)}, "
                                                                        "those recorded for the run")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"default: {TOLERANCE:g}")
    args = ap.parse_args(argv)
    study = Study(args.root, dict(os.environ), args.records)
    study.check_data()
    replay = Replay(study, args.run, args.sets, args.tolerance)
    with study.running():
        record = replay.replay()
    line = outcome(record)
    print(f"{line}\nrecord: {study.records.path('replay', args.run + '.json')}", flush=True)
    if not record["equal"]:
        raise StudyError(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
