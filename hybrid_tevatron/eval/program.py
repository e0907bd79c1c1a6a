"""One evaluation program per benchmark family, in one process: inputs, encode, exact ranks, Faiss search,
trec_eval, report.

    python -m hybrid_tevatron.eval FAMILY MODEL ... OUTPUT_DIR [options]

The program knows its families only as registered :class:`Family` records (a subcommand's parser and its
evaluation); ``python -m hybrid_tevatron.eval`` (:mod:`hybrid_tevatron.eval.__main__`) lists them. An expected
failure ends as one ``error:`` line (:func:`hybrid_tevatron.errors.report_errors`), Ctrl-C and SIGTERM as one line
saying what was kept (exit 130 / 143).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hybrid_tevatron.errors import report_errors


@dataclass(frozen=True)
class Family:
    """A benchmark family of the program: ``add_parser(subparsers, name)`` declares its subcommand ``name``,
    ``evaluate(args)`` evaluates the parsed arguments and returns the output folder."""

    name: str
    add_parser: Callable[[argparse._SubParsersAction, str], argparse.ArgumentParser]
    evaluate: Callable[[argparse.Namespace], str]


def build_parser(families: Sequence[Family]) -> argparse.ArgumentParser:
    """The program's parser: one subcommand per family, in the order given."""
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="family", required=True)
    for family in families:
        family.add_parser(sub, family.name)
    return p


@report_errors
def main(families: Sequence[Family], argv=None) -> int:
    """Parse ``argv`` (default: the command line) and evaluate with the family it names."""
    try:
        args = build_parser(families).parse_args(argv)
        {family.name: family.evaluate for family in families}[args.family](args)
    except KeyboardInterrupt:  # before or after the output folder's own signal handling: nothing half-written
        return 130
    return 0
