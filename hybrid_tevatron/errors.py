"""The base of hybrid_tevatron's expected failures.

An expected failure (bad input, a missing file, an unreachable model hub) is reported as one line naming the cause
and the remedy, with a non-zero exit status; a traceback means a bug. Command-line entry points catch
:class:`HybridTevatronError` (and the older error classes) and print ``error: MESSAGE``.
"""


class HybridTevatronError(Exception):
    """An expected failure; its message names what is wrong and where (file, line, id) and what to do."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def report_errors(main):
    """Decorator for a command-line ``main(argv=None) -> int``: an expected failure (:class:`HybridTevatronError`)
    becomes one line ``error: MESSAGE`` on stderr and exit status 2; anything else (a bug) keeps its traceback."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except HybridTevatronError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return wrapper
