"""A study's committed records: the small files its doc, tables and expected scores are made from, kept in a tracked
folder (``results/domain_adaptation/`` for the domain study) so that one study accumulates across machines.

A study's root (``runs/...``) holds what is large and local (data, models, indexes, rankings); the record folder
holds what must last, each file written atomically the moment its step ends:

- ``config.json`` and ``plan.json``: the settings and the planned runs (with the grid's definition of every cell).
  Another configuration is refused with one line naming the difference; a plan that only adds runs (more seeds,
  more sets) extends the recorded one, one that drops or changes a recorded run is refused.
- ``eval/SET/RUN/results.json`` and ``crosscheck.json``: the evaluator's files (no index, embedding, ranking, run
  or model); ``eval/SET/RUN/step.json``: how the step was made (below).
- ``train/RUN.json``: the training's ``train_summary.json`` (optimizer and plan steps, examples per mode and source,
  seconds, final per-mode losses) and how the step was made.
- ``commands.sh``: every recorded step as one replayable line, with ``$OUT``, ``$MODEL`` and the data folders as
  variables; ``timings.tsv``: ``stage<TAB>seconds<TAB>machine`` of every recorded step.
- ``code/FINGERPRINT.json``: the content digest of every file that decides a step kind's numbers
  (:data:`NUMBER_FILES`), and the commit it was seen at; ``accepted.json``: code changes accepted by
  ``--accept_changed_code``.

"How the step was made" (``step.json``, ``train/RUN.json``'s ``step``): the command, the seconds, the finish time,
the code commit (``+dirty`` when a number-deciding file differed from it), the fingerprint of the number-deciding
files of its kind and the machine (CPU model, cores, GPU, host).

**Resuming.** A step with a complete record is not redone; an unreadable or incomplete record counts as not done
(one line says so, and the step is redone). A record made by other number-deciding code (another fingerprint of its
kind) stops the run with one line naming the changed files, unless the change is accepted (``accepted.json``).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterable, Mapping

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.errors import HybridTevatronError
from hybrid_tevatron.hardware import cpu_model
from hybrid_tevatron.jsonfiles import read_json
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the hybrid_tevatron package folder

# The files (relative to the package folder, globs allowed) whose content decides the numbers of a step kind:
# training (data conversion, sources, the batch plan, the model and the trainer) and evaluation (caption and LAReQA
# inputs, encoding, ranking, search, scoring, metrics). A record made while any of them differed is not taken as
# it is.
NUMBER_FILES = {
    "train": ("arguments.py", "backends/*.py", "booleans.py", "collator.py", "data/caption_files.py",
              "data/caption_sources.py", "data/caption_training.py", "data/captions.py", "data/corpus.py",
              "data/corpus_build.py", "data/descriptions.py", "data/languages.py", "data/pool_ids.py",
              "data/readers.py", "data/records.py", "data/xquad_train.py", "dataset.py", "driver/train.py",
              "encoding.py", "keyed_random.py", "mixture.py", "modeling.py", "sampling.py", "trainer.py",
              "training.py"),
    "eval": ("booleans.py", "data/caption_files.py", "data/caption_sources.py", "data/captions.py",
             "data/descriptions.py", "data/languages.py", "data/pool_ids.py", "encoding.py",
             "eval/benchmarks/captions.py", "eval/benchmarks/lareqa.py", "eval/benchmarks/pool.py", "eval/options.py",
             "eval/pipeline/*.py", "eval/reports/evaluate.py", "eval/reports/metrics.py", "eval/stages.py",
             "eval/trec.py", "modeling.py", "pyserini/encode.py", "pyserini/encoders.py"),
}
COMMANDS_HEADER = ("#!/usr/bin/env bash\n# Every recorded step of this study, in the order it was recorded, "
                   "replayable: set OUT (the study's root), MODEL and the data folders first.\n")


class RecordError(HybridTevatronError):
    """A record folder that cannot take this run (another configuration or grid, changed number-deciding code)."""


# ------------------------------------------------------------------------------------------------- reading

def read_or_none(path: str):
    """The JSON value of ``path``; None when it is absent, unreadable or not JSON (the caller says what it means)."""
    try:
        return read_json(path, ValueError)
    except (OSError, ValueError):
        return None


def complete_results(path: str) -> dict | None:
    """``path``'s evaluation results when they are complete (a JSON object whose ``summary`` maps metrics to numbers,
    or to null where a metric is undefined, e.g. the rank distance of a two-language pool), else None."""
    results = read_or_none(path)
    summary = results.get("summary") if isinstance(results, dict) else None
    if not isinstance(summary, dict) or not any(isinstance(v, (int, float)) for v in summary.values()):
        return None
    if not all(v is None or isinstance(v, (int, float)) for v in summary.values()):
        return None
    return results


# ------------------------------------------------------------------------------------------------- provenance

def host_id() -> str:
    """A short, stable name of this host (a digest of ``/etc/machine-id``), which tells two machines of one CPU model
    apart; ``unknown`` where there is none."""
    try:
        with open("/etc/machine-id", encoding="ascii") as f:
            return hashlib.sha256(f.read().strip().encode()).hexdigest()[:12]
    except OSError:
        return "unknown"


def machine() -> dict:
    """The machine a step ran on: CPU model, cores available, GPU (or none), host (:func:`host_id`)."""
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": cores, "gpu": gpu, "host": host_id()}


def machine_name(m: Mapping) -> str:
    return f"{m.get('cpu')}, {m.get('cores')} cores" + ("" if m.get("gpu") in (None, "none") else f", {m['gpu']}")


def number_files(kind: str, package_dir: str = PACKAGE_DIR) -> dict[str, str]:
    """``{path relative to the package: sha256 of its content}`` of the files that decide ``kind``'s numbers."""
    out = {}
    for pattern in NUMBER_FILES[kind]:
        for path in sorted(glob.glob(os.path.join(package_dir, pattern))):
            with open(path, "rb") as f:
                out[os.path.relpath(path, package_dir)] = hashlib.sha256(f.read()).hexdigest()
    return out


def fingerprint(files: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:16]


def git_commit(package_dir: str = PACKAGE_DIR, files: Iterable[str] = ()) -> str:
    """The commit of the checkout holding the package (``+dirty`` when one of ``files`` differs from it), or
    ``unknown`` outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", package_dir, *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--", *[os.path.join(package_dir, f) for f in files])
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


# ------------------------------------------------------------------------------------------------- the folder

class RecordFolder:
    """One study's record folder (module docstring). ``variables`` maps a path to the variable that stands for it
    in ``commands.sh`` (``{"/abs/runs/da": "OUT", ...}``)."""

    def __init__(self, folder: str, variables: Mapping[str, str] = (), package_dir: str = PACKAGE_DIR):
        self.folder = os.path.abspath(folder)
        self.variables = sorted(dict(variables).items(), key=lambda kv: -len(kv[0]))  # longest path first
        self.package_dir = package_dir
        self._code: dict[str, dict] = {}
        self._said: set[str] = set()

    def path(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts)

    # ---- configuration and plan
    def start(self, config: dict, plan: dict, accept_changed_code: bool = False) -> None:
        """Record ``config.json`` and ``plan.json``, refusing another configuration or a plan that drops or changes a
        recorded run; check the recorded steps' code (:meth:`check_code`)."""
        old = self._read_meta("config.json")
        if old is not None and old != config:
            diff = "; ".join(differences(old, config))
            raise RecordError(f"{self.path('config.json')}: the records are of another configuration ({diff}); "
                              "use another --records folder or the recorded settings")
        old_plan = self._read_meta("plan.json")
        if old_plan is not None:
            problems = plan_conflicts(old_plan, plan)
            if problems:
                raise RecordError(f"{self.path('plan.json')}: the records are of another grid ({'; '.join(problems)});"
                                  " use another --records folder")
        self.check_code(accept_changed_code)
        if old is None:
            atomic_write_json(self.path("config.json"), config)
        if old_plan != plan:
            atomic_write_json(self.path("plan.json"), plan)

    def _read_meta(self, name: str):
        path = self.path(name)
        if not os.path.exists(path):
            return None
        value = read_or_none(path)
        if not isinstance(value, dict):
            raise RecordError(f"{path}: unreadable (not a JSON object); restore it from git (git checkout -- {path}) "
                              "or remove it to start the records over")
        return value

    # ---- code
    def code(self, kind: str) -> dict:
        """This checkout's number-deciding files of ``kind``: ``{"fingerprint", "commit", "files"}`` (computed once)."""
        if kind not in self._code:
            files = number_files(kind, self.package_dir)
            self._code[kind] = {"fingerprint": fingerprint(files), "files": files,
                                "commit": git_commit(self.package_dir, files)}
        return self._code[kind]

    def _steps(self) -> list[tuple[str, str, dict]]:
        """``(kind, record path, step)`` of every readable record."""
        out = []
        for path in sorted(glob.glob(self.path("eval", "*", "*", "step.json"))):
            step = read_or_none(path)
            if isinstance(step, dict):
                out.append(("eval", path, step))
        for path in sorted(glob.glob(self.path("train", "*.json"))):
            record = read_or_none(path)
            if isinstance(record, dict) and isinstance(record.get("step"), dict):
                out.append(("train", path, record["step"]))
        return out

    def check_code(self, accept: bool = False) -> None:
        """Every recorded step must come from this checkout's number-deciding files of its kind, or from code whose
        change was accepted; ``accept`` accepts the differences found now (recorded in ``accepted.json``)."""
        accepted = read_or_none(self.path("accepted.json")) or []
        taken = {(a["kind"], a["recorded"], a["now"]) for a in accepted if isinstance(a, dict)}
        changed: dict[tuple[str, str], dict] = {}
        for kind, _, step in self._steps():
            now = self.code(kind)
            fp = step.get("fingerprint")
            if fp != now["fingerprint"] and (kind, fp, now["fingerprint"]) not in taken:
                changed.setdefault((kind, fp), {"commit": step.get("commit"), "n": 0})["n"] += 1
        if not changed:
            return
        parts = []
        for (kind, fp), info in changed.items():
            recorded = (read_or_none(self.path("code", f"{fp}.json")) or {}).get("files", {})
            now = self.code(kind)["files"]
            files = sorted(f for f in set(recorded) | set(now) if recorded.get(f) != now.get(f)) or ["(unknown)"]
            parts.append(f"{info['n']} {kind} record(s) made at {str(info['commit'])[:12]}: {', '.join(files)}")
        if not accept:
            commits = sorted({str(i["commit"]).split("+")[0][:12] for i in changed.values()})
            raise RecordError(f"{self.folder}: records made by other number-deciding code ({'; '.join(parts)}); "
                              f"continue from a checkout of that commit (git worktree add ../study {commits[0]}), or "
                              "pass --accept_changed_code to take the records as they are (recorded in accepted.json)")
        for (kind, fp), info in changed.items():
            accepted.append({"kind": kind, "recorded": fp, "now": self.code(kind)["fingerprint"],
                             "recorded_commit": info["commit"], "now_commit": self.code(kind)["commit"],
                             "records": info["n"], "at": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
            self._save_code(kind)
        atomic_write_json(self.path("accepted.json"), accepted)
        log.info(f"accepted changed number-deciding code for {'; '.join(parts)} (accepted.json)")

    def _save_code(self, kind: str) -> None:
        code = self.code(kind)
        path = self.path("code", f"{code['fingerprint']}.json")
        if not os.path.isfile(path):
            atomic_write_json(path, {"kind": kind, "commit": code["commit"], "files": code["files"]})

    # ---- evaluations
    def eval_dir(self, eval_set: str, run: str) -> str:
        return self.path("eval", eval_set, run)

    def results(self, eval_set: str, run: str) -> dict | None:
        """The recorded results of ``run`` on ``eval_set`` when its record is complete, else None (an incomplete or
        unreadable record is said once)."""
        folder = self.eval_dir(eval_set, run)
        if not os.path.isdir(folder):
            return None
        results = complete_results(os.path.join(folder, "results.json"))
        step = read_or_none(os.path.join(folder, "step.json"))
        if results is None or not isinstance(step, dict) or "fingerprint" not in step:
            self._say(folder, f"{folder}: incomplete or unreadable record (results.json / step.json); redone")
            return None
        return results

    def has_eval(self, eval_set: str, run: str) -> bool:
        return self.results(eval_set, run) is not None

    def record_eval(self, eval_set: str, run: str, results_dir: str, command: list[str], seconds: float) -> None:
        """Copy ``results.json`` (and ``crosscheck.json``) of a finished evaluation with its ``step.json``."""
        folder = self.eval_dir(eval_set, run)
        results = complete_results(os.path.join(results_dir, "results.json"))
        if results is None:
            raise RecordError(f"{results_dir}/results.json: the evaluation left no complete results")
        check = read_or_none(os.path.join(results_dir, "crosscheck.json"))
        step = self._step("eval", command, seconds)
        if check is not None:
            atomic_write_json(os.path.join(folder, "crosscheck.json"), check)
        atomic_write_json(os.path.join(folder, "results.json"), results)
        atomic_write_json(os.path.join(folder, "step.json"), step)  # last: it marks the record complete
        self._log_step(f"eval:{eval_set}:{run}", step)

    # ---- trainings
    def training(self, run: str) -> dict | None:
        record = read_or_none(self.path("train", f"{run}.json"))
        return record if isinstance(record, dict) and isinstance(record.get("step"), dict) else None

    def record_train(self, run: str, summary: dict, command: list[str], seconds: float) -> None:
        step = self._step("train", command, seconds)
        atomic_write_json(self.path("train", f"{run}.json"), {"run": run, "summary": summary, "step": step})
        self._log_step(f"train:{run}", step)

    # ---- steps
    def _step(self, kind: str, command: list[str], seconds: float) -> dict:
        code = self.code(kind)
        self._save_code(kind)
        return {"command": self.replayable(command), "seconds": round(seconds, 1),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": code["commit"],
                "fingerprint": code["fingerprint"], "machine": machine()}

    def replayable(self, argv: list[str]) -> str:
        """``argv`` as a shell line with the study's paths as variables (``"$OUT"/models/...``)."""
        return " ".join(self._word(word) for word in argv)

    def _word(self, word: str) -> str:
        """One shell word: the first study path in it (whole, or followed by ``/``) as its variable."""
        for path, var in self.variables:
            at = word.find(path)
            end = at + len(path)
            if at >= 0 and (end == len(word) or word[end] == os.sep):
                head, tail = word[:at], word[end:]
                return (shlex.quote(head) if head else "") + f'"${var}"' + (shlex.quote(tail) if tail else "")
        return shlex.quote(word)

    def _log_step(self, stage: str, step: dict) -> None:
        commands = self.path("commands.sh")
        text = open(commands, encoding="utf-8").read() if os.path.isfile(commands) else COMMANDS_HEADER
        atomic_write_text(commands, text + step["command"] + "\n")
        timings = self.path("timings.tsv")
        text = open(timings, encoding="utf-8").read() if os.path.isfile(timings) else ""
        atomic_write_text(timings, text + f"{stage}\t{step['seconds']:.0f}\t{machine_name(step['machine'])}\n")

    def _say(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.info(message)

    def machines(self) -> dict[str, int]:
        """``{machine: number of recorded steps}``."""
        out: dict[str, int] = {}
        for _, _, step in self._steps():
            name = machine_name(step.get("machine") or {})
            out[name] = out.get(name, 0) + 1
        return out


def differences(recorded: Mapping, now: Mapping) -> list[str]:
    """``key: 'recorded value' recorded, 'value' now`` for every setting that differs."""
    return [f"{k}: {recorded.get(k)!r} recorded, {now.get(k)!r} now" for k in sorted(set(recorded) | set(now))
            if recorded.get(k) != now.get(k)]


def plan_conflicts(old: dict, new: dict) -> list[str]:
    """Why ``new`` cannot continue the records of ``old``: a recorded run dropped, or an evaluation dropped from it,
    or a cell defined differently. A plan that only adds runs or evaluations continues them."""
    problems = []
    new_runs = {(r["cell"], r["seed"]): r for r in new.get("runs", [])}
    for r in old.get("runs", []):
        key = (r["cell"], r["seed"])
        if key not in new_runs:
            problems.append(f"run {_run(*key)} is not planned now")
        else:
            dropped = [s for s in r["evals"] if s not in new_runs[key]["evals"]]
            if dropped:
                problems.append(f"run {_run(*key)} no longer evaluates {', '.join(dropped)}")
    for cell, definition in (old.get("grid") or {}).items():
        now = (new.get("grid") or {}).get(cell)
        if now is not None and now != definition:
            problems.append(f"cell {cell} was {definition}, now {now}")
    return problems


def _run(cell: str, seed) -> str:
    return cell if seed is None else f"{cell}-s{seed}"

