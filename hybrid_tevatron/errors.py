"""The base of hybrid_tevatron's expected failures.

An expected failure (bad input, a missing file, an unreachable model hub) is reported as one line naming the cause
and the remedy, with a non-zero exit status; a traceback means a bug. Command-line entry points catch
:class:`HybridTevatronError` (and the older error classes) and print ``error: MESSAGE``.
"""


class HybridTevatronError(Exception):
    """An expected failure; its message names what is wrong and where (file, line, id) and what to do."""
