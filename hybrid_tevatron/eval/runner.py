"""Run ``python -m MODULE ARGS`` command lines (Pyserini's CLIs and ours) and record each one, replayable.

``Cli.INPROCESS`` (the default) executes the module's ``__main__`` with ``runpy`` in this process, exactly as
``python -m`` would (for our own modules it calls their ``main(argv)``), so Pyserini's ~8 s import and the JVM start
are paid once per evaluation instead of once per command (XQuAD-R has 132 searches); ``Cli.SUBPROCESS`` starts one
``python -m`` process per command. Either way the command is recorded shell-quoted (``record``), so the evaluation
folder's ``commands.sh`` replays every step.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import io
import os
import runpy
import shlex
import subprocess
import sys
from collections.abc import Callable

from hybrid_tevatron.errors import HybridTevatronError, errors_propagate


class StepError(HybridTevatronError, RuntimeError):
    """A failed step; the message says what and where."""


class Cli(str, enum.Enum):
    INPROCESS = "inprocess"
    SUBPROCESS = "subprocess"


def command_line(module: str, argv) -> str:
    """``python -m MODULE ARGS``, shell-quoted."""
    return " ".join(shlex.quote(str(a)) for a in ["python", "-m", module, *argv])


class CliRunner:
    """Run ``python -m MODULE ARGS`` in ``cwd`` (in this process or as a subprocess); pass each command line to
    ``record``. Paths given to :meth:`rel` come out relative to ``cwd``."""

    def __init__(self, mode: Cli | str = Cli.INPROCESS, record: Callable[[str], None] | None = None,
                 cwd: str | None = None):
        try:
            self.mode = Cli(mode)
        except ValueError:
            raise StepError(f"--cli must be inprocess or subprocess, got {mode!r}") from None
        self.record, self.cwd = record, cwd

    def rel(self, path: str) -> str:
        """``path`` relative to the runner's folder: Pyserini picks encoder classes from substrings of its path
        arguments ("bpr" in --encoded-queries selects the BPR encoder), so user folder names stay out of them."""
        return os.path.relpath(path, self.cwd) if self.cwd else path

    def run(self, module: str, argv, capture: bool = False) -> str:
        argv = [str(a) for a in argv]
        line = command_line(module, argv)
        if self.record:
            self.record(line)
        if self.mode is Cli.SUBPROCESS:
            proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=self.cwd, text=True,
                                  stdout=subprocess.PIPE if capture else None)
            if proc.returncode != 0:
                raise StepError(f"command failed with exit code {proc.returncode}: {line}")
            return proc.stdout or ""
        from hybrid_tevatron._pyserini_env import configure

        configure()
        old_argv, old_cwd = sys.argv, os.getcwd()
        buf = io.StringIO()
        try:
            if self.cwd:
                os.chdir(self.cwd)
            sys.argv = [module, *argv]
            with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
                if module.startswith("hybrid_tevatron."):
                    # ours: call main(), its expected failure raised to keep its own one-line message
                    with errors_propagate():
                        code = importlib.import_module(module).main(argv)
                    if code not in (None, 0):
                        raise SystemExit(code)
                else:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as err:
            if err.code not in (None, 0):
                raise StepError(f"command failed with exit code {err.code}: {line}") from None
        except HybridTevatronError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure of the CLI with its command
            raise StepError(f"command failed ({type(err).__name__}: {err}): {line}") from err
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
        return buf.getvalue()
