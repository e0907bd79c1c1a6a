"""The output folder of one evaluation: exclusive, built in a work folder, renamed into place only on success.

:class:`OutputFolder` (a context manager) is the one place for these rules:

- OUTPUT must be absent, an empty folder, or replaced on ``overwrite``; anything else is refused before work starts.
- One evaluation per output folder at a time: an exclusive ``flock`` on ``.NAME.lock`` beside it, held until the
  end; a second evaluation into the same folder is refused with one line, and the check is repeated at the final
  rename (a folder that appeared meanwhile is not replaced without ``overwrite``).
- Every stage works inside the work folder ``.NAME.tmp.XXXXXX`` beside OUTPUT, with paths relative to it (Pyserini
  picks encoder classes from substrings of path arguments, so user folder names stay out of them). On success it is
  renamed onto OUTPUT; on any failure, Ctrl-C or SIGTERM it is removed (``KEEP_WORK=1`` keeps it) and OUTPUT is
  left as it was.
- ``commands.sh`` (every command, replayable from the output folder) and ``timings.tsv`` (seconds per stage) are
  written as the stages run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import time

from hybrid_tevatron.errors import HybridTevatronError
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

COMMANDS_HEADER = ("#!/usr/bin/env bash\n# Commands of this evaluation, replayable from this folder (paths are "
                   "relative to it).\nset -euo pipefail\ncd \"$(dirname \"${BASH_SOURCE[0]}\")\"\n")


class OutputError(HybridTevatronError):
    """The output folder cannot be written (exists, is locked, is a file)."""


class Interrupted(HybridTevatronError):
    """SIGTERM / SIGINT: the evaluation stops; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


class OutputFolder:
    """``with OutputFolder(path, overwrite) as out:`` -> ``out.work`` (absolute), ``out.stage(name)``,
    ``out.record(line)``; see the module docstring for the rules."""

    def __init__(self, path: str, overwrite: bool = False):
        if not path:
            raise OutputError("no output folder given")
        self.path = os.path.join(os.path.abspath(os.path.dirname(path) or "."), os.path.basename(path.rstrip("/")))
        self.overwrite = overwrite
        self.work: str | None = None
        self._lock_file = None
        self._lock_path = os.path.join(os.path.dirname(self.path), f".{os.path.basename(self.path)}.lock")
        self._start = time.time()
        self._old_handlers = {}

    # -------------------------------------------------------------------------------------------- checks

    def _check_target(self, when: str = "") -> None:
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputError(f"{self.path} exists and is not a folder")
        if os.path.isdir(self.path) and os.listdir(self.path) and not self.overwrite:
            raise OutputError(f"{self.path} {when}exists and is not empty (pass --overwrite or OVERWRITE=1 to "
                              "replace it)")

    def __enter__(self) -> "OutputFolder":
        self._check_target()
        parent = os.path.dirname(self.path)
        try:
            os.makedirs(parent, exist_ok=True)
            self._lock_file = open(self._lock_path, "a")
        except OSError as err:
            raise OutputError(f"cannot create {self._lock_path}: {err.strerror}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise OutputError(f"another evaluation is writing {self.path} (lock {self._lock_path} held); wait for "
                              "it or pick another folder") from None
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[signum] = signal.signal(signum, _raise_interrupted)
        self.work = tempfile.mkdtemp(prefix=f".{os.path.basename(self.path)}.tmp.", dir=parent)
        with open(self.commands_path, "w", encoding="utf-8") as f:
            f.write(COMMANDS_HEADER)
        open(self.timings_path, "w").close()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._finish()
            elif self.work and os.path.isdir(self.work):
                if os.environ.get("KEEP_WORK") == "1":
                    log.error("failed; the partial work folder is kept at %s (KEEP_WORK=1)", self.work)
                else:
                    shutil.rmtree(self.work, ignore_errors=True)
                    log.error("failed; nothing was written to %s", self.path)
        finally:
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            self._unlock()
        return False

    def _unlock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                os.remove(self._lock_path)
            self._lock_file.close()
            self._lock_file = None

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
