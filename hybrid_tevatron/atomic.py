"""Atomic writes, the one place for them: every file or folder is written under a temporary name in the same folder
and renamed into place only when complete, so a reader never sees a half-written one and a failure leaves none.

What lands in place has the permissions a plain write would have had (:func:`plain_mode`: files ``0666 & ~umask``,
folders ``0777 & ~umask``), not the private 0600 / 0700 of ``tempfile``'s temporary files: whoever could read it
written directly can read it. :func:`plain_mkdtemp` is the temporary folder for others that rename one into place,
and :func:`plain_weights` fixes what safetensors writes through its own private temporary files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile


def current_umask() -> int:
    """This process's umask (from ``/proc/self/status``; elsewhere by setting a private one for an instant)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def plain_mode(folder: bool = False) -> int:
    """The permissions ``open(path, "w")`` (a file) or ``os.mkdir`` (a folder) would give under the umask."""
    return (0o777 if folder else 0o666) & ~current_umask()


def plain_mkdtemp(**kwargs) -> str:
    """``tempfile.mkdtemp`` with a plain folder's permissions (:func:`plain_mode`), for a folder renamed into place."""
    tmp = tempfile.mkdtemp(**kwargs)
    try:
        os.chmod(tmp, plain_mode(folder=True))
    except BaseException:
        os.rmdir(tmp)
        raise
    return tmp


def plain_weights(folder: str) -> None:
    """Give the ``*.safetensors`` files directly in ``folder`` :func:`plain_mode`: safetensors (0.8) writes each one
    through a private temporary file of its own (0600), under ``save_pretrained`` too."""
    mode = plain_mode()
    for name in os.listdir(folder):
        if name.endswith(".safetensors") and os.path.isfile(os.path.join(folder, name)):
            os.chmod(os.path.join(folder, name), mode)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, plain_mode())  # set last: a writer may have replaced the file by a private one of its own
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_dir(path: str):
    """Yield a temporary folder next to ``path``; it replaces ``path`` (a folder or nothing) only if the block
    succeeds, and is removed otherwise."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = plain_mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        yield tmp
        if os.path.isdir(path):
            old = tmp + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)


def atomic_write_text(path: str, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return path


def atomic_write_json(path: str, obj) -> str:
    """Write ``obj`` as indented JSON to ``path`` atomically; return ``path``."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
