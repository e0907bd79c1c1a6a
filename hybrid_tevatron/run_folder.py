"""The run folder and its checkpoints: what ``--output_dir`` may hold when a training starts, which checkpoint a
resume takes, and what a stopped run left.

* **Output dir** (:func:`prepare_output_dir`): a folder or absent; a fresh run needs it empty, or
  ``--overwrite_output_dir`` (which deletes an earlier run's ``checkpoint-*`` folders and plan logs);
  ``--resume_from_checkpoint PATH|last`` continues from a complete checkpoint.
* **Checkpoints** are written whole under :data:`CHECKPOINT_STAGING` and renamed into ``output_dir`` (by
  :class:`~hybrid_tevatron.trainer.HybridTrainerMixin`), so a ``checkpoint-N`` folder is always complete; a run
  killed while saving leaves only the staging folder, which the next start removes. ``--resume_from_checkpoint
  last`` takes the newest *complete* checkpoint (:func:`last_checkpoint`; an incomplete one, e.g. from an older
  version, is skipped with a warning).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil

from hybrid_tevatron.errors import HybridTevatronError
from hybrid_tevatron.model_files import missing_model_files

logger = logging.getLogger(__name__)

PLAN_LOG = "plan_log.rank{rank}.jsonl"
CHECKPOINT_PREFIX = "checkpoint"  # transformers' PREFIX_CHECKPOINT_DIR: checkpoint-N
CHECKPOINT_STAGING = ".checkpoint-saving"  # in output_dir: a checkpoint-N being written, renamed when complete
TRAINER_STATE = "trainer_state.json"  # written last into a checkpoint by transformers


class SetupError(HybridTevatronError, ValueError):
    """A run that cannot start as configured (output dir, resume checkpoint, batch size vs data...)."""


def missing_checkpoint_files(folder: str) -> list[str]:
    """What keeps ``folder`` from being a complete training checkpoint (empty when it is one)."""
    if not os.path.isdir(folder):
        return ["such folder"]
    missing = missing_model_files(folder)
    if not os.path.isfile(os.path.join(folder, TRAINER_STATE)):
        missing.append(TRAINER_STATE)
    return missing


def last_checkpoint(output_dir: str) -> str | None:
    """The newest complete ``checkpoint-N`` folder of ``output_dir`` (``None`` if none); newer incomplete ones
    (a run killed while saving, before checkpoints were written atomically) are skipped with a warning."""
    found = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(re.escape(CHECKPOINT_PREFIX) + r"-(\d+)", name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            found.append((int(match.group(1)), os.path.join(output_dir, name)))
    for _, path in sorted(found, reverse=True):
        missing = missing_checkpoint_files(path)
        if not missing:
            return path
        logger.warning("--resume_from_checkpoint last: skipping the incomplete checkpoint %s (no %s; the run was "
                       "interrupted while saving it)", path, ", ".join(missing))
    return None


def prepare_output_dir(training_args) -> str | None:
    """Apply the output-dir policy; return the checkpoint to resume from (``None`` for a fresh run).

    * ``--output_dir`` must be a folder or not exist yet.
    * ``--resume_from_checkpoint PATH`` resumes from ``PATH``; ``--resume_from_checkpoint last`` from the newest
      complete ``checkpoint-N`` in ``--output_dir`` (an error if there is none).
    * Otherwise ``--output_dir`` must be empty or absent, or ``--overwrite_output_dir`` given (which deletes
      the earlier run's ``checkpoint-*`` folders and plan logs, so they cannot be taken for this run's).
    * A :data:`CHECKPOINT_STAGING` folder left by a run killed while saving is removed (main process).
    """
    out = training_args.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise SetupError(f"--output_dir {out} is a file; give a folder (new or empty) for the run")
    resume = training_args.resume_from_checkpoint
    if resume:
        if resume == "last":
            resume = last_checkpoint(out) if os.path.isdir(out) else None
            if resume is None:
                raise SetupError(f"--resume_from_checkpoint last: no complete checkpoint-N folder in {out}")
        missing = missing_checkpoint_files(resume)
        if missing:
            raise SetupError(f"--resume_from_checkpoint {resume}: not a complete training checkpoint (no "
                             f"{', '.join(missing)})")
        _remove_staging(training_args)
        return resume
    if os.path.isdir(out) and os.listdir(out):
        if not training_args.overwrite_output_dir:
            raise SetupError(
                f"--output_dir {out} is not empty. Use a new directory, resume with --resume_from_checkpoint "
                "PATH|last, or start over with --overwrite_output_dir."
            )
        if training_args.should_save:  # only the main process deletes
            for path in glob.glob(os.path.join(out, "checkpoint-*")):
                shutil.rmtree(path, ignore_errors=True)
            for path in glob.glob(os.path.join(out, PLAN_LOG.format(rank="*"))):
                os.remove(path)
        _remove_staging(training_args)
    return None


def _remove_staging(training_args) -> None:
    staging = os.path.join(training_args.output_dir, CHECKPOINT_STAGING)
    if training_args.should_save and os.path.isdir(staging):
        logger.warning("removing %s: an unfinished checkpoint save (the run was interrupted while saving)", staging)
        shutil.rmtree(staging)


def kept_after_stop(output_dir: str) -> str:
    """What a stopped run left in ``output_dir`` and how to go on, in words (for the one line a Ctrl-C prints)."""
    if not os.path.isdir(output_dir) or not os.listdir(output_dir):
        return f"nothing was written to {output_dir}; rerun the same command"
    last = last_checkpoint(output_dir)
    if last:
        return (f"kept {last} (the newest complete checkpoint); rerun the same command with "
                "--resume_from_checkpoint last to continue from it")
    return (f"no checkpoint was saved in {output_dir}; rerun the same command with --overwrite_output_dir to start "
            "over")
