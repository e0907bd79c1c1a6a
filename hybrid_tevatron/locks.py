"""One writer per folder: the exclusive lock that evaluations, trainings and the domain study take on their output,
and the one rule for naming that output (:func:`normalize_path`).

``with FolderLock(path, "training"):`` holds an exclusive ``flock`` on ``.NAME.lock`` beside ``path`` (created in
``path``'s parent) until the block ends — on success, an error, Ctrl-C or SIGTERM alike; a killed process's lock is
released by the kernel. The lock file records its holder (what, pid, host, start time, command line); a second
process asking for the same folder is refused at once with :class:`LockError`, one line naming that holder. The
lock file is removed on release; a process that opened it just before its removal sees that its file is no longer
the one at the path and takes the lock again on the new file, so two holders of one folder cannot both win.

:func:`normalize_path` is applied to every locked path: absolute, without ``.``/``..`` or a trailing slash, and with
symbolic links resolved — a symlinked OUTPUT means the folder it points to (the link stays, its target is written),
so ``ev``, ``ev/`` and a link to ``ev`` are one folder and one lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import shlex
import socket
import sys
import time

from hybrid_tevatron.errors import HybridTevatronError


class LockError(HybridTevatronError):
    """Another process holds the lock of this folder (or the lock file cannot be created)."""


def normalize_path(path: str) -> str:
    """The one name of the folder ``path``: absolute, normalised (no trailing slash) and with symlinks resolved."""
    if not path or not str(path).strip():
        raise LockError("no folder given")
    return os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))


def lock_path(path: str) -> str:
    """The lock file of the folder ``path`` (already normalised): ``.NAME.lock`` beside it."""
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.lock")


def _holder(what: str) -> str:
    started = datetime.datetime.now().isoformat(timespec="seconds")
    return (f"{what}, pid {os.getpid()} on {socket.gethostname()} since {started}: "
            f"{shlex.join([os.path.basename(sys.executable), *sys.argv])}")


def _read_holder(path: str) -> str:
    """The holder line of the lock file ``path`` (it is written right after the lock is taken: wait a moment)."""
    for _ in range(20):
        with contextlib.suppress(OSError):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()
            if text:
                return text.splitlines()[0]
        time.sleep(0.05)
    return "another process"


class FolderLock:
    """``with FolderLock(path, what):`` — see the module docstring. ``what`` names this process's work in the lock
    file and in the refusal ("a training", "an evaluation", "the domain study"); ``.path`` is the normalised folder.
    """

    def __init__(self, path: str, what: str):
        self.path = normalize_path(path)
        self.what = what
        self.lock_path = lock_path(self.path)
        self._file = None

    def acquire(self) -> FolderLock:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as err:
            raise LockError(f"cannot create {os.path.dirname(self.path)}: {err.strerror}") from None
        while True:
            try:
                handle = open(self.lock_path, "a+", encoding="utf-8")
            except OSError as err:
                raise LockError(f"cannot create {self.lock_path}: {err.strerror}") from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise LockError(f"{self.path} is in use by {_read_holder(self.lock_path)} (lock {self.lock_path}); "
                                "wait for it to end or pick another folder") from None
            try:  # the holder before us may have removed the file between our open and our flock
                same = os.path.samestat(os.fstat(handle.fileno()), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(_holder(self.what) + "\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.remove(self.lock_path)
            self._file.close()
            self._file = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
