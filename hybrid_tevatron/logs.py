"""One logging setup for hybrid_tevatron's programs: ``[HH:MM:SS] message`` lines on stderr.

    from hybrid_tevatron.logs import get_logger
    log = get_logger(__name__)

Every logger lives under the ``hybrid_tevatron`` logger, which has its own stderr handler and does not propagate,
so the Hugging Face Trainer's own logging setup neither duplicates nor swallows these lines.
"""

from __future__ import annotations

import logging
import sys

ROOT = "hybrid_tevatron"
FORMAT = "[%(asctime)s] %(message)s"
DATEFMT = "%H:%M:%S"


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (so redirections and pytest's capture see the lines)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def setup_logging(level: int | None = None) -> logging.Logger:
    """Configure the ``hybrid_tevatron`` logger once (idempotent: INFO on first use); ``level`` sets its level."""
    root = logging.getLogger(ROOT)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        root.addHandler(handler)
        root.propagate = False
        root.setLevel(logging.INFO)
    if level is not None:
        root.setLevel(level)
    return root


def get_logger(name: str) -> logging.Logger:
    """A logger under ``hybrid_tevatron`` (``name`` is usually ``__name__``), with the setup done."""
    setup_logging()
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    return logging.getLogger(name)
