"""The small budget every recipe and study trains and evaluates with, and the commands the recipes run: one place.

    python -m hybrid_tevatron.studies.budget config                        # the settings as JSON (config.json)
    python -m hybrid_tevatron.studies.budget train DATA_DIR REGIME SEED OUTPUT_DIR
    python -m hybrid_tevatron.studies.budget eval MODEL DATASET_DIR OUTPUT_DIR [more evaluation flags]
    python -m hybrid_tevatron.studies.budget paper TRAIN_DIR OUTPUT_DIR    # recipes/train_paper.sh's command
    python -m hybrid_tevatron.studies.budget image_text OUT                 # recipes/image_text.sh's training

Each setting is an environment variable with its default in :class:`Budget` (the budget fits a 2-core CPU, see
docs/reproduction.md; the same numbers run on a GPU when one is visible); ``MODEL`` has no default here (the recipes
set it with ``python -m hybrid_tevatron.models.default``). ``train`` runs ``python -m hybrid_tevatron.driver.train``
on the XQuAD-R training folder (``{lang}.jsonl`` of :data:`~hybrid_tevatron.data.languages.TRAIN_LANGUAGES`),
``eval`` runs ``python -m hybrid_tevatron.eval lareqa``; each prints the command it runs first (replayable) and
ends with its exit status. The studies build the same lists with :meth:`Budget.train_argv` and
:meth:`Budget.eval_argv`. ``paper`` and ``image_text`` print the command (after ``python -m``, as shell words) the
other training recipes run; every training flag list is data in :mod:`hybrid_tevatron.studies.train_commands`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

from hybrid_tevatron.data.languages import TRAIN_LANGUAGES
from hybrid_tevatron.errors import HybridTevatronError, report_errors
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.studies.train_commands import BUDGET, PREFIXES, expand, image_text_command, paper_command

log = get_logger(__name__)

XQUAD_R_SPLIT = "test = articles i % 3 == 2 (hybrid_tevatron.data.xquad_train)"


class BudgetError(HybridTevatronError):
    """A setting the recipes need is missing."""


@dataclass(frozen=True)
class Budget:
    """The settings, as the environment gives them (strings). Field ``x`` is the environment variable ``X``."""

    model: str
    steps: str = "100"
    batch: str = "16"
    group_size: str = "2"
    query_max_len: str = "32"
    passage_max_len: str = "64"
    lr: str = "3e-5"
    warmup_ratio: str = "0.1"
    temperature: str = "0.01"
    alpha: str = "0.5"
    eval_query_max_len: str = "64"
    eval_passage_max_len: str = "128"
    eval_extra: str = ""  # more evaluation flags, one word each ("--max_questions 20 --languages en,de")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Budget:
        env = os.environ if env is None else env
        if not env.get("MODEL"):
            raise BudgetError("MODEL is not set (the recipes set it: python -m hybrid_tevatron.models.default)")
        return cls(**{f.name: env[f.name.upper()] for f in fields(cls) if env.get(f.name.upper())})

    def config(self) -> dict[str, str]:
        """The settings a run records in ``config.json``; another configuration in the same output is refused, and
        ``check_expected --matches_config`` compares them with an expected-score file's."""
        return {"model": self.model, "train_languages": " ".join(TRAIN_LANGUAGES), "steps": self.steps,
                "batch": self.batch, "group_size": self.group_size, "query_max_len": self.query_max_len,
                "passage_max_len": self.passage_max_len, "learning_rate": self.lr, "warmup_ratio": self.warmup_ratio,
                "temperature": self.temperature, "alpha": self.alpha, "pooling": "mean",
                "optimizer": "adamw_torch, weight decay 0.01, linear decay",
                "prefixes": f"{PREFIXES[0]}/ {PREFIXES[1]}",
                "eval_max_len": f"{self.eval_query_max_len} / {self.eval_passage_max_len}",
                "xquad_r_split": XQUAD_R_SPLIT, "eval_extra": self.eval_extra}

    def train_argv(self, train_files: Sequence[str], languages: Sequence[str], regime: str, seed: int | str,
                   output_dir: str, sources: Sequence[str] = ()) -> list[str]:
        """``python -m hybrid_tevatron.driver.train`` flags (:data:`~hybrid_tevatron.studies.train_commands.BUDGET`);
        ``sources``: the mixture's flags (``--extra_sources``, ``--cross_only_sources``, ``--source_weights``)."""
        return expand(BUDGET, dict(asdict(self), query_prefix=PREFIXES[0], passage_prefix=PREFIXES[1],
                                   train_files=train_files, sources=sources, languages=languages, regime=regime,
                                   seed=seed, output_dir=output_dir))

    def eval_argv(self, family: str, positional: Sequence[str], name: str, extra: Sequence[str] = ()) -> list[str]:
        """``python -m hybrid_tevatron.eval`` arguments: every model (zero-shot included) is encoded with the same
        settings; ``EVAL_EXTRA`` and then ``extra`` go last."""
        return [family, *positional, "--name", name, "--pooling", "mean", "--normalize",
                "--query_prefix", PREFIXES[0], "--passage_prefix", PREFIXES[1],
                "--query_max_len", self.eval_query_max_len, "--passage_max_len", self.eval_passage_max_len,
                "--threads", str(len(os.sched_getaffinity(0))), "--overwrite", *self.eval_extra.split(), *extra]


def xquad_train_files(data_dir: str) -> list[str]:
    """``LANG=DATA_DIR/LANG.jsonl`` for the training languages (the layout of ``python -m
    hybrid_tevatron.data.xquad_train``)."""
    return [f"{lang}={os.path.join(data_dir, lang + '.jsonl')}" for lang in TRAIN_LANGUAGES]


def _exec(module: str, argv: list[str]) -> None:
    """Replace this process by ``python -m module argv`` (its exit status is the command's), said first."""
    log.info(shlex.join(["python", "-m", module, *argv]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.studies.budget",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("config", help="print the settings as JSON")
    tr = sub.add_parser("train", help="train on an XQuAD-R training folder (python -m hybrid_tevatron.driver.train)")
    for name in ("data_dir", "regime", "seed", "output_dir"):
        tr.add_argument(name)
    ev = sub.add_parser("eval", help="evaluate on a LAReQA folder (python -m hybrid_tevatron.eval lareqa)")
    for name in ("model", "dataset_dir", "output_dir"):
        ev.add_argument(name)
    pa = sub.add_parser("paper", help="print recipes/train_paper.sh's command (the driver, or torchrun over it)")
    for name in ("train_dir", "output_dir"):
        pa.add_argument(name)
    sub.add_parser("image_text", help="print recipes/image_text.sh's training command").add_argument("out")
    args, extra = ap.parse_known_args(argv)
    if extra and args.cmd != "eval":
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.cmd in ("paper", "image_text"):
        print(shlex.join(_paper(args) if args.cmd == "paper" else image_text_command(args.out, os.environ)))
        return 0
    budget = Budget.from_env()
    if args.cmd == "config":
        print(json.dumps(budget.config(), indent=1))
        return 0
    if args.cmd == "train":
        _exec("hybrid_tevatron.driver.train", budget.train_argv(
            xquad_train_files(args.data_dir), TRAIN_LANGUAGES, args.regime, args.seed, args.output_dir))
    name = os.path.basename(os.path.normpath(args.output_dir))
    _exec("hybrid_tevatron.eval", budget.eval_argv("lareqa", [args.model, args.dataset_dir, args.output_dir], name,
                                                   ["--seen_languages", *TRAIN_LANGUAGES, *extra]))
    return 0  # not reached


def _paper(args) -> list[str]:
    import torch

    return paper_command(args.train_dir, args.output_dir, os.environ, torch.cuda.device_count(),
                         torch.cuda.is_bf16_supported)


if __name__ == "__main__":
    sys.exit(main())
