"""The base of hybrid_tevatron's expected failures.

An expected failure (bad input, a missing file, an unreachable model hub, a folder another run holds) is reported as
one line naming the cause and the remedy (a report of several problems, such as bad training data, lists them on the
lines after it, at most :data:`MAX_LISTED`); a traceback means a bug. Every command-line ``main`` is decorated with
:func:`report_errors`, the one exit style: a :class:`HybridTevatronError` (every error class of the package derives
from it) becomes ``error: MESSAGE`` on stderr and :class:`ErrorExit`.
A stop by a signal is no error: :class:`Interrupted` derives from ``BaseException``, as ``KeyboardInterrupt`` does,
so that no ``except Exception`` (ours or a library's, around an optional import) can swallow it.

Exit codes, the same for every command: 0 success; :data:`EXIT_ERROR` (2, as argparse's usage errors) an expected
failure with its ``error:`` line; 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM) with one line saying what
was kept; 1 only for a bug (Python's uncaught exception, with its traceback).
"""

import contextlib
import os
import signal
import sys
from typing import NoReturn

EXIT_ERROR = 2


class HybridTevatronError(Exception):
    """An expected failure; its message names what is wrong and where (file, line, id) and what to do."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


MAX_LISTED = 10  # lines of a message's list (after its first line) that are printed


def message_text(message) -> str:
    """What ``error: ...`` prints of a message: an expected failure's (a ``str`` or :class:`HybridTevatronError`)
    first line and the list after it (a data report's ``  - file:line: ...`` entries), at most :data:`MAX_LISTED` of
    them and then ``  ... and N more``; any other exception's first line only."""
    if not isinstance(message, (str, HybridTevatronError)):
        return first_line(message)
    lines = str(message).strip().splitlines() or [type(message).__name__]
    head, rest = lines[0], lines[1:]
    if len(rest) > MAX_LISTED:
        rest = rest[:MAX_LISTED] + [f"  ... and {len(rest) - MAX_LISTED} more"]
    return "\n".join([head, *rest])


class ErrorExit(SystemExit):
    """``SystemExit(EXIT_ERROR)`` after the ``error: MESSAGE`` line (and its list) was printed (see
    :func:`report_errors`); ``str()`` is what was printed, so callers in-process can match it."""

    def __init__(self, message: str):
        super().__init__(EXIT_ERROR)
        self.message = message

    def __str__(self) -> str:
        return f"error: {self.message}"


def _exit_error(message) -> NoReturn:
    """Print ``error: MESSAGE`` (:func:`message_text`: its first line, and its list capped) on stderr and end with
    :data:`EXIT_ERROR`."""
    message = message_text(message)
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise ErrorExit(message) from None


class Interrupted(BaseException):
    """SIGTERM / SIGINT: the run stops; ``exit_code`` is 128 + the signal number.

    Not an ``Exception`` (nor a :class:`HybridTevatronError`): raised by a signal handler at whatever line the
    process was on, it must pass every ``except Exception`` on its way up, a library's included, to the handler
    that says what was kept."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(f"stopped by {signal.Signals(signum).name}" + (f"; {detail}" if detail else ""))
        self.signum = signum
        self.exit_code = 128 + signum


def raise_interrupted(signum, _frame):
    raise Interrupted(signum)


def _interrupt_in(pid: int):
    """A handler raising :class:`Interrupted` in process ``pid`` only; a forked child (a data-loader worker) gets
    the default action instead."""

    def handler(signum, frame):
        if os.getpid() != pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise_interrupted(signum, frame)

    return handler


STEP_ENV = "HYBRID_TEVATRON_STUDY_STEP"  # set for a study's steps: the study says the one line of an interrupt


def catchable(signums) -> tuple:
    """``signums`` less those this process ignores. A signal ignored from the start (a script's background job
    ignores SIGINT, ``nohup`` SIGHUP) stays ignored, as Python leaves an ignored SIGINT: no handler of ours takes it."""
    return tuple(s for s in signums if signal.getsignal(s) is not signal.SIG_IGN)


def quiet_start(what: str) -> None:
    """For a command run as ``python -m``, before its heavy imports: until the command installs its own handling
    (:func:`signals_interrupt`), Ctrl-C or SIGTERM end the process at once with one line (nothing was written yet)
    instead of a KeyboardInterrupt traceback from deep inside an import of torch; a study's step (:data:`STEP_ENV`)
    ends without the line, which its study says."""
    quiet = os.environ.get(STEP_ENV) == "1"

    def handler(signum, _frame):
        if not quiet:
            name = signal.Signals(signum).name
            os.write(2, f"error: stopped by {name} while {what} was starting; nothing was written\n".encode())
        os._exit(128 + signum)

    for signum in catchable((signal.SIGTERM, signal.SIGINT)):
        signal.signal(signum, handler)


@contextlib.contextmanager
def signals_interrupt(signums=(signal.SIGTERM, signal.SIGINT)):
    """Within the block SIGTERM and SIGINT (or ``signums``; those not ignored, :func:`catchable`) raise
    :class:`Interrupted` (so ``finally`` blocks and context managers run, and the caller prints one line instead of
    a traceback); the previous handlers are restored after."""
    old, handler = {}, _interrupt_in(os.getpid())
    try:
        for signum in catchable(signums):
            old[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


_PROPAGATE = []  # non-empty inside errors_propagate()


@contextlib.contextmanager
def errors_propagate():
    """Inside, :func:`report_errors` lets expected failures through: a caller that runs a command-line ``main`` in its
    own process (the evaluation's runner) reports them with the command that failed."""
    _PROPAGATE.append(True)
    try:
        yield
    finally:
        _PROPAGATE.pop()


def report_errors(main):
    """Decorator for a command-line ``main(argv=None) -> int``, the one exit style of the package: an expected
    failure (:class:`HybridTevatronError`) becomes one line ``error: MESSAGE`` (and its list) on stderr and
    :class:`ErrorExit` (exit status :data:`EXIT_ERROR`); :class:`Interrupted` one line and ``SystemExit`` with 128 +
    the signal; anything else (a bug) keeps its traceback. Inside :func:`errors_propagate` it catches nothing."""
    import functools

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        if _PROPAGATE:
            return main(*args, **kwargs)
        try:
            return main(*args, **kwargs)
        except Interrupted as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(err.exit_code) from None
        except HybridTevatronError as err:
            _exit_error(err)

    return wrapper
