"""The output folder of one evaluation: exclusive, built in a work folder, renamed into place only on success.

:class:`OutputFolder` (a context manager) is the one place for these rules:

- OUTPUT is named once, by :func:`hybrid_tevatron.locks.normalize_path`: ``ev``, ``ev/`` and ``./ev`` are one
  folder, and a symlink means the folder it points to (the results replace that folder; the link stays).
- OUTPUT must be absent, an empty folder, or replaced on ``overwrite``; anything else is refused before work starts.
- One writer per output folder at a time: :class:`hybrid_tevatron.locks.FolderLock` (``.NAME.lock`` beside it, the
  lock trainings and the domain study take too), held until the end; a second evaluation into the same folder is
  refused with one line naming the holder, and the target check is repeated at the final rename (a folder that
  appeared meanwhile is not replaced without ``overwrite``; the work folder is removed then too).
- Every stage works inside the work folder ``.NAME.tmp.XXXXXX`` beside OUTPUT, with paths relative to it (Pyserini
  picks encoder classes from substrings of path arguments, so user folder names stay out of them). On success it is
  renamed onto OUTPUT; on any failure, Ctrl-C or SIGTERM it is removed (``KEEP_WORK=1`` keeps it) and OUTPUT is
  left as it was. Ctrl-C and SIGTERM end the evaluation with one line saying so and that the same command starts it
  again (exit 130 / 143).
- ``commands.sh`` (every command, replayable from the output folder) and ``timings.tsv`` (seconds per stage) are
  written as the stages run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from typing import NoReturn

from hybrid_tevatron.atomic import plain_mkdtemp
from hybrid_tevatron.errors import HybridTevatronError, Interrupted, catchable, raise_interrupted
from hybrid_tevatron.locks import FolderLock, LockError, normalize_path
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

COMMANDS_HEADER = ("#!/usr/bin/env bash\n# Commands of this evaluation, replayable from this folder (paths are "
                   "relative to it).\nset -euo pipefail\ncd \"$(dirname \"${BASH_SOURCE[0]}\")\"\n")


class OutputError(HybridTevatronError):
    """The output folder cannot be written (exists, is locked, is a file)."""


class OutputFolder:
    """``with OutputFolder(path, overwrite) as out:`` -> ``out.work`` (absolute), ``out.stage(name)``,
    ``out.record(line)``; see the module docstring for the rules."""

    def __init__(self, path: str, overwrite: bool = False):
        if not path or not str(path).strip("/"):
            raise OutputError(f"no usable output folder given ({path!r})")
        self.path = normalize_path(path)
        self.overwrite = overwrite
        self.work: str | None = None
        self._lock = FolderLock(self.path, "an evaluation")
        self._start = time.time()
        self._old_handlers = {}

    # -------------------------------------------------------------------------------------------- checks

    def _check_target(self, when: str = "") -> None:
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputError(f"{self.path} exists and is not a folder")
        if os.path.isdir(self.path) and os.listdir(self.path) and not self.overwrite:
            raise OutputError(f"{self.path} {when}exists and is not empty (pass --overwrite or OVERWRITE=1 to "
                              "replace it)")

    def __enter__(self) -> OutputFolder:
        self._check_target()
        parent = os.path.dirname(self.path)
        try:
            self._lock.acquire()
        except LockError as err:
            raise OutputError(str(err)) from None
        for signum in catchable((signal.SIGTERM, signal.SIGINT)):
            self._old_handlers[signum] = signal.signal(signum, raise_interrupted)
        self.work = plain_mkdtemp(prefix=f".{os.path.basename(self.path)}.tmp.", dir=parent)  # OUTPUT-to-be
        with open(self.commands_path, "w", encoding="utf-8") as f:
            f.write(COMMANDS_HEADER)
        open(self.timings_path, "w").close()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                try:
                    self._finish()
                except BaseException:
                    self._discard()
                    raise
            elif issubclass(exc_type, Interrupted):
                self._stopped(exc)
            else:
                self._discard()
        finally:
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            self._lock.release()
        return False

    def _discard(self, log_it: bool = True) -> str | None:
        """Remove the work folder (``KEEP_WORK=1`` keeps it: returns its path); OUTPUT stays as it was."""
        if not (self.work and os.path.isdir(self.work)):
            return None
        if os.environ.get("KEEP_WORK") == "1":
            if log_it:
                log.error("failed; the partial work folder is kept at %s (KEEP_WORK=1)", self.work)
            return self.work
        shutil.rmtree(self.work, ignore_errors=True)
        if log_it:
            log.error("failed; nothing was written to %s", self.path)
        return None

    def _stopped(self, err: Interrupted) -> NoReturn:
        """Ctrl-C / SIGTERM: the work folder goes, and the one line says so."""
        kept = self._discard(log_it=False)
        raise Interrupted(err.signum, f"nothing was written to {self.path}" + (
            f" (the partial work folder is kept at {kept}, KEEP_WORK=1)" if kept else "")
            + "; rerun the same command to evaluate again") from None

    def _finish(self) -> None:
        with open(self.timings_path, "a", encoding="utf-8") as f:
            f.write(f"total\t{time.time() - self._start:.0f}\n")
        self._check_target(when="appeared while this evaluation ran and ")
        if os.path.isdir(self.path):
            old = self.work + ".old"
            os.rename(self.path, old)
            os.rename(self.work, self.path)
            shutil.rmtree(old)
        else:
            os.rename(self.work, self.path)
        self.work = None
        log.info("done in %s", self.elapsed())

    # -------------------------------------------------------------------------------------------- while working

    @property
    def commands_path(self) -> str:
        return os.path.join(self.work, "commands.sh")

    @property
    def timings_path(self) -> str:
        return os.path.join(self.work, "timings.tsv")

    def record(self, line: str) -> None:
        """Append one command line to ``commands.sh``."""
        with open(self.commands_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def elapsed(self) -> str:
        s = int(time.time() - self._start)
        return f"{s // 60}m{s % 60:02d}s"

    @contextlib.contextmanager
    def stage(self, name: str):
        """Log the stage's start and end; append ``name<TAB>seconds`` to ``timings.tsv`` when it succeeds."""
        log.info("== %s", name)
        start = time.time()
        yield
        seconds = time.time() - start
        with open(self.timings_path, "a", encoding="utf-8") as f:
            f.write(f"{name}\t{seconds:.1f}\n")
        log.info("   %s done (%.1fs)", name, seconds)
