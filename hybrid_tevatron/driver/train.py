"""Hybrid batch training with Tevatron: ``python -m hybrid_tevatron.driver.train [FLAGS | CONFIG.json]``.

Flags: the backend's model flags (Tevatron's, plus ``--pooling``/``--normalize``/``--temperature``), our data flags
(:class:`~hybrid_tevatron.arguments.HybridDataArguments`), the backend's training flags (HF ``TrainingArguments``
+ Tevatron's), and ``--backend auto|pypi|main``. A list flag given more than once keeps every occurrence's values,
in order (``--extra_sources a:X --extra_sources b:Y`` is ``--extra_sources a:X b:Y``). A single ``.json`` argument
holds the same flags as keys (``"backend"`` included). Under ``torchrun`` every process runs this same command. A
Tevatron flag the backend does not offer is refused by name (:mod:`hybrid_tevatron.backends.flags`).

Expected failures (bad flags, a malformed ``.json`` config, a missing or incomplete model folder, bad data, an
unusable output dir, an output dir another run holds) end the process with one ``error: ...`` line and exit status 2
(:data:`hybrid_tevatron.errors.EXIT_ERROR`, as every command of the package), before anything heavy is loaded
where possible; Ctrl-C or SIGTERM ends it with one line saying what was kept and how to resume (exit 130 / 143);
a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while they run is one line, not a traceback
    from hybrid_tevatron.errors import quiet_start

    quiet_start("the training")

from transformers import HfArgumentParser  # noqa: E402

from hybrid_tevatron.arguments import HybridDataArguments
from hybrid_tevatron.backends import BACKEND_NAMES, select_backend
from hybrid_tevatron.backends.flags import not_offered, refuse_not_offered
from hybrid_tevatron.errors import HybridTevatronError, Interrupted, first_line, report_errors, signals_interrupt
from hybrid_tevatron.run_folder import SetupError, kept_after_stop
from hybrid_tevatron.training import train

BACKEND_HELP = (
    "Tevatron flavour: main (tevatron.retriever, Tevatron from GitHub), pypi (Tevatron 0.1.0 from PyPI), or "
    "auto (main if installed, else pypi)."
)


def build_parser(backend) -> HfArgumentParser:
    parser = HfArgumentParser(
        (backend.model_arguments, HybridDataArguments, backend.training_arguments),
        description="Hybrid (monolingual + cross-lingual) batch training of a shared bi-encoder with Tevatron.",
    )
    parser.add_argument("--backend", default="auto", choices=BACKEND_NAMES, help=BACKEND_HELP)
    return merge_repeated_lists(parser)


class _ExtendRepeated(argparse._StoreAction):
    """A list flag's store action that adds up repeated occurrences, in order. The first occurrence replaces the
    default: argparse puts the default object itself into the namespace, so identity tells the two apart."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        first = current is None or current is self.default
        setattr(namespace, self.dest, list(values) if first else [*current, *values])


def merge_repeated_lists(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every list flag of ``parser`` (nargs ``+`` or ``*``, of every dataclass) merges its repeated occurrences:
    ``--extra_sources a:X --extra_sources=b:Y`` is ``--extra_sources a:X b:Y`` (argparse's store would silently
    keep only the last). A ``.json`` config gives lists directly and does not pass here."""
    for action in parser._actions:
        if action.nargs in ("+", "*") and type(action) is argparse._StoreAction:
            action.__class__ = _ExtendRepeated
    return parser


def is_config(argv: Sequence[str]) -> bool:
    return len(argv) == 1 and argv[0].endswith(".json")


def read_config(path: str) -> dict:
    """A ``.json`` file of ``flag: value`` (a malformed one is a :class:`SetupError` naming file and line)."""
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as err:
        raise SetupError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SetupError(f"{path}: cannot read the config ({getattr(err, 'strerror', None) or err})") from None
    if not isinstance(config, dict):
        raise SetupError(f"{path}: expected a JSON object of flag: value")
    return config


def parse_config(config: dict):
    """A config's ``flag: value`` dict -> ``(backend, model_args, data_args, training_args)``."""
    config = dict(config)
    backend = select_backend(config.pop("backend", "auto"))
    refuse_not_offered(list(config), not_offered(backend.model_arguments, backend.training_arguments), backend.name)
    model_args, data_args, training_args = build_parser(backend).parse_dict(config)
    return backend, model_args, data_args, training_args


def parse_args(argv: Sequence[str]):
    """``argv`` -> ``(backend, model_args, data_args, training_args)``; a lone ``*.json`` argument is a config."""
    argv = list(argv)
    if is_config(argv):
        return parse_config(read_config(argv[0]))
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--backend", default="auto")
    known, _ = pre.parse_known_args(argv)
    backend = select_backend(known.backend)
    refuse_not_offered([a for a in argv if a.startswith("--")],
                       not_offered(backend.model_arguments, backend.training_arguments), backend.name)
    model_args, data_args, training_args, _ = build_parser(backend).parse_args_into_dataclasses(argv)
    return backend, model_args, data_args, training_args


@report_errors
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        backend, model_args, data_args, training_args = parse_args(argv)
    except HybridTevatronError:
        raise
    except (ValueError, OSError) as err:  # HfArgumentParser's own checks, an unreadable config: their first line
        raise HybridTevatronError(first_line(err)) from None
    run(backend, model_args, data_args, training_args)


def run(backend, model_args, data_args, training_args, build=None) -> None:
    """Train with parsed flags: logging, the one-line stop and exit codes of the module docstring (an expected
    failure is raised, for the caller's :func:`~hybrid_tevatron.errors.report_errors`); ``build`` as
    :func:`hybrid_tevatron.training.train` takes it (another driver's trainer assembly)."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        level=logging.INFO if training_args.process_index == 0 else logging.WARNING,
    )
    try:
        with signals_interrupt():
            trainer = train(backend, model_args, data_args, training_args, build=build)
    except Interrupted as err:
        if training_args.process_index == 0:
            print(f"error: {err}; {kept_after_stop(training_args.output_dir)}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
    if trainer.is_world_process_zero():
        logging.getLogger(__name__).info("model, tokenizer and hybrid_tevatron.json saved to %s",
                                         os.path.abspath(training_args.output_dir))
    end_distributed_run()


def end_distributed_run() -> None:
    """Under torchrun: wait until every rank is done (rank 0's final save included), then end the process at once.

    The gloo process group's teardown is skipped on purpose. Left to interpreter exit it can abort a rank
    ("terminate called without an active exception"), and ``destroy_process_group()`` can deadlock: its destructor
    joins gloo's run-loop thread while holding the GIL, and that thread needs the GIL to free a finished collective's
    tensors (seen with torch 2.13 on CPU). Every output is written and closed by then; logs and stdio are flushed.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
