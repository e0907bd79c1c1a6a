"""What both studies do the same way: one output root, held by one run at a time, that records its configuration
and refuses another, runs every step as a replayable ``python -m`` subprocess, marks finished trainings, deletes
models whose evaluations all exist, and on Ctrl-C says what was kept and that the same command resumes.

A step runs in its own session, so the terminal's Ctrl-C (and its hangup and Ctrl-Z) reach only the study: a step
still importing torch would print a KeyboardInterrupt traceback. The study stops it (SIGTERM to its process group: a
step still importing ends silently, one past its imports prints its own line and exits 143), pauses and continues it
with itself on Ctrl-Z / ``fg``, and ends with its one line (exit 128 + N).

Layout of a root: ``config.json`` (the settings; another configuration is refused), ``plan.json`` (what the study
runs), ``hardware.json``, ``commands.sh`` (every step, appended before it runs), ``timings.tsv`` (``stage<TAB>
seconds`` of every step that succeeded), ``models/RUN/`` (``DONE`` once trained), ``eval/SET/RUN/results/``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.errors import STEP_ENV, HybridTevatronError, Interrupted, signals_interrupt
from hybrid_tevatron.locks import FolderLock
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.studies.records import read_object, results_path

log = get_logger(__name__)

DONE = "DONE"  # in a model folder: its training finished


class StudyError(HybridTevatronError):
    """A study root that cannot take this run (another configuration, a missing setting or data folder)."""


class StudyRoot:
    """One study's output folder (module docstring). ``env`` is the environment every step runs with."""

    def __init__(self, root: str, env: Mapping[str, str], what: str):
        self.root, self.env, self.what = os.path.abspath(root), dict(env), what
        self.python = self.env.get("PYTHON") or sys.executable

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @contextlib.contextmanager
    def running(self) -> Iterator[StudyRoot]:
        """Hold the root for this run; Ctrl-C, SIGTERM and the terminal's hangup (each unless ignored from the start:
        ``nohup``, a script's background job) stop the running step and end with one line saying what was kept."""
        os.makedirs(self.root, exist_ok=True)
        signums = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # the step, in its own session, gets no hangup
        with FolderLock(self.root, self.what), signals_interrupt(signums):  # those not ignored (nohup: SIGHUP)
            try:
                yield self
            except Interrupted as err:
                raise Interrupted(err.signum, f"kept in {self.root}: the finished trainings (models/*/{DONE}) and "
                                  "evaluations (eval/*/*/results); rerun the same command to resume") from None

    def start(self, config: dict, plan: dict | list) -> None:
        """Record ``config.json`` (refusing another configuration), ``plan.json`` and ``hardware.json``."""
        from hybrid_tevatron.hardware import hardware

        path = self.path("config.json")
        old = read_object(path, fix="restore it, or choose another OUT")
        if old is not None and old != config:
            diff = [f"  {k}: {old.get(k)!r} there, {config.get(k)!r} now" for k in sorted(set(old) | set(config))
                    if old.get(k) != config.get(k)]
            raise StudyError(f"{self.root} holds results of another configuration (see {path}); choose another "
                             "OUT\n" + "\n".join(diff))
        os.makedirs(self.root, exist_ok=True)
        if old is None:
            atomic_write_json(path, config)
        atomic_write_json(self.path("plan.json"), plan)
        atomic_write_json(self.path("hardware.json"), hardware())

    def step(self, stage: str, module: str, argv: Iterable) -> float:
        """``python -m module argv`` as a logged, replayable step: commands.sh first, timings.tsv on success;
        returns its seconds."""
        argv = [str(a) for a in argv]
        with open(self.path("commands.sh"), "a", encoding="utf-8") as f:
            f.write(shlex.join(["python", "-m", module, *argv]) + "\n")
        log.info(f"{stage}: {shlex.join(['python', '-m', module, *argv])}")
        t0 = time.time()
        proc = subprocess.Popen([self.python, "-m", module, *argv], env={**self.env, STEP_ENV: "1"},
                                start_new_session=True)
        try:
            with _paused_with_this_process(proc):
                proc.wait()
        except Interrupted:
            _stop(proc)
            raise
        if proc.returncode != 0:
            raise StudyError(f"{stage} failed (exit {proc.returncode}): python -m {module} {shlex.join(argv)}")
        seconds = time.time() - t0
        with open(self.path("timings.tsv"), "a", encoding="utf-8") as f:
            f.write(f"{stage}\t{seconds:.0f}\n")
        return seconds

    def model_dir(self, run: str) -> str:
        return self.path("models", run)

    def eval_dir(self, eval_set: str, run: str) -> str:
        return self.path("eval", eval_set, run)

    def has_results(self, eval_set: str, run: str) -> bool:
        return results_path(self.eval_dir(eval_set, run)) is not None

    def trained(self, run: str, train: Callable[[str], None]) -> str:
        """The model folder of ``run``, trained by ``train(folder)`` unless it has ``DONE``."""
        out = self.model_dir(run)
        if not os.path.isfile(os.path.join(out, DONE)):
            train(out)
            atomic_write_text(os.path.join(out, DONE), "")
        return out

    def cleanup(self, needed: Iterable[str]) -> None:
        """Delete every model not in ``needed`` (the runs with an evaluation still to do); KEEP_MODELS=1 keeps
        them."""
        models = self.path("models")
        if self.env.get("KEEP_MODELS") == "1" or not os.path.isdir(models):
            return
        needed = set(needed)
        for name in os.listdir(models):
            if name not in needed:
                shutil.rmtree(os.path.join(models, name))


def env_words(env: Mapping[str, str], name: str) -> list[str] | None:
    """The words of an environment variable (space- or comma-separated); None when unset or empty."""
    value = env.get(name, "").replace(",", " ").split()
    return value or None


def env_numbers(env: Mapping[str, str], name: str) -> list[int] | None:
    """The whole numbers of an environment variable (:func:`env_words`: SEEDS); None when unset or empty; another
    word is a :class:`StudyError` naming the variable."""
    words = env_words(env, name)
    try:
        return None if words is None else [int(w) for w in words]
    except ValueError:
        raise StudyError(f"{name} must be whole numbers, space- or comma-separated (e.g. {name}=\"1 2 3\"), got "
                         f"{env[name]!r}") from None


def _signal_step(proc: subprocess.Popen, signum: int) -> None:
    """``signum`` to the step's process group (it leads one: its own session), its data-loader workers included."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a step after this process got a signal (the step, in its own session, did not): SIGTERM, then SIGKILL if
    it still runs a minute later or on another signal."""
    _signal_step(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except (subprocess.TimeoutExpired, Interrupted):
        _signal_step(proc, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def _paused_with_this_process(proc: subprocess.Popen) -> Iterator[None]:
    """Ctrl-Z (SIGTSTP) stops the step with this process and ``fg`` / ``bg`` (SIGCONT) continues both: the terminal's
    job control reaches only this process."""

    def handler(signum, _frame):
        _signal_step(proc, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until SIGCONT
        signal.signal(signal.SIGTSTP, handler)
        _signal_step(proc, signal.SIGCONT)

    if signal.getsignal(signal.SIGTSTP) is signal.SIG_IGN:
        yield
        return
    old = signal.signal(signal.SIGTSTP, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTSTP, old)
