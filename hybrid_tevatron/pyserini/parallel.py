"""Encode one corpus with N local processes: ``torchrun`` one shard per process, then merge into one Faiss index.

    from hybrid_tevatron.pyserini.parallel import encode_corpus_processes
    encode_corpus_processes(["--model", M, "--corpus", "corpus.jsonl"], "index", nproc=8, record=print)

runs, and passes to ``record`` as replayable command lines (relative to ``cwd``)::

    torchrun --standalone --nproc_per_node 8 -m hybrid_tevatron.pyserini.encode --model M --corpus corpus.jsonl \\
      --output index.shards
    python -m hybrid_tevatron.pyserini.merge --shards index.shards --output index

``torchrun`` is this interpreter's (``python -m torch.distributed.run``), so the virtual environment's torch runs it.
Each process encodes its own contiguous shard into ``OUTPUT.shards`` (:mod:`hybrid_tevatron.pyserini.encode`; on
GPUs on ``cuda:LOCAL_RANK``, for which a ``--device cuda...`` in the arguments is dropped; else on CPU); the merge
checks the shards and writes ``OUTPUT`` whole or not at all (:mod:`hybrid_tevatron.pyserini.merge`), then
``OUTPUT.shards`` is removed. The index equals the one-process index
(same docids in order, vectors to fp32 rounding).

A failed process or merge raises :class:`EncodeProcessesError` naming the command and its exit status; nothing is
written at ``OUTPUT``. The complete shards stay in ``OUTPUT.shards``, so calling again with the same arguments
encodes only the missing shards. ``nproc`` 1 falls back to one process: ``python -m hybrid_tevatron.pyserini.encode
ARGS --output OUTPUT`` (no shards, no merge), as a subprocess, recorded the same way.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from hybrid_tevatron.errors import HybridTevatronError
from hybrid_tevatron.logs import get_logger

ENCODE = "hybrid_tevatron.pyserini.encode"
MERGE = "hybrid_tevatron.pyserini.merge"
SHARDS_SUFFIX = ".shards"

log = get_logger(__name__)


class EncodeProcessesError(HybridTevatronError):
    """A multi-process encoding that could not run or did not finish; the message names the command."""


def quote(words: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def shards_folder(output: str) -> str:
    """Where the shards of ``output`` are written before the merge: ``OUTPUT.shards``."""
    return output.rstrip("/" + os.sep) + SHARDS_SUFFIX


def torchrun_command(encode_args: Sequence[str], output: str, nproc: int) -> list[str]:
    """The replayable ``torchrun`` line (as words) that encodes into ``OUTPUT.shards`` with ``nproc`` processes."""
    return ["torchrun", "--standalone", "--nproc_per_node", str(nproc), "-m", ENCODE, *map(str, encode_args),
            "--output", shards_folder(output)]


def merge_command(output: str) -> list[str]:
    return ["python", "-m", MERGE, "--shards", shards_folder(output), "--output", output]


def process_args(encode_args: Sequence[str]) -> list[str]:
    """``encode_args`` for every process: ``--output`` refused (this function sets it), a ``--device cuda...``
    dropped (one device for every process would stack them on one GPU; without ``--device`` each process takes
    ``cuda:LOCAL_RANK``, or the CPU where there is no GPU); ``--device cpu`` kept."""
    args, out, skip = [str(a) for a in encode_args], [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        name, eq, value = arg.partition("=")
        if name == "--output":
            raise EncodeProcessesError("encode arguments: leave --output out (the shards go to OUTPUT.shards)")
        if name == "--device":
            value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            if value.startswith("cuda"):
                log.info("--device %s dropped: each of the processes takes its own GPU (cuda:LOCAL_RANK)", value)
                skip = not eq
                continue
        out.append(arg)
    return out


def _run(argv: list[str], line: str, cwd: str | None, env: dict | None) -> None:
    log.info("running %s", line)
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env)
    except OSError as err:
        raise EncodeProcessesError(f"could not start {line}: {err}") from None
    if proc.returncode != 0:
        raise EncodeProcessesError(f"command failed with exit code {proc.returncode}: {line}")


def encode_corpus_processes(encode_args: Sequence[str], output: str, nproc: int, *,
                            record: Callable[[str], None] | None = None, cwd: str | None = None,
                            overwrite: bool = False, env: dict | None = None) -> None:
    """Encode a corpus into the Faiss index folder ``output`` with ``nproc`` local processes (see the module
    docstring).

    ``encode_args`` are :mod:`hybrid_tevatron.pyserini.encode`'s corpus-mode flags without ``--output``
    (``--model``, ``--corpus``, encoding settings; ``--num_shards K`` >= ``nproc`` for smaller units to redo). With
    ``nproc`` > 1 a ``--device cuda...`` among them is dropped, so that each process takes ``cuda:LOCAL_RANK``
    (``--device cpu`` stays).
    Relative paths, in the arguments and ``output``, are relative to ``cwd`` (default: the current folder), and so
    are the command lines passed to ``record``. ``overwrite`` replaces an existing non-empty ``output``; without it
    that is an error before anything runs. ``env``: the processes' environment (default: this one's).
    """
    if nproc < 1:
        raise EncodeProcessesError(f"the number of encoding processes must be >= 1, got {nproc}")
    where = os.path.abspath(os.path.join(cwd or os.getcwd(), output))
    if os.path.exists(where) and (not os.path.isdir(where) or os.listdir(where)) and not overwrite:
        raise EncodeProcessesError(f"{where} exists and is not empty (pass --overwrite to replace it)")

    if nproc == 1:
        words = ["python", "-m", ENCODE, *map(str, encode_args), "--output", output,
                 *(["--overwrite"] if overwrite else [])]
        line = quote(words)
        if record:
            record(line)
        _run([sys.executable, *words[1:]], line, cwd, env)
        return

    words = torchrun_command(process_args(encode_args), output, nproc)
    line = quote(words)
    if record:
        record(line)
    _run([sys.executable, "-m", "torch.distributed.run", *words[1:]], line, cwd, env)

    words = merge_command(output) + (["--overwrite"] if overwrite else [])
    line = quote(words)
    if record:
        record(line)
    from hybrid_tevatron.pyserini.merge import merge_index
    from hybrid_tevatron.pyserini.shards import ShardError

    shards = os.path.abspath(os.path.join(cwd or os.getcwd(), shards_folder(output)))
    log.info("running %s", line)
    try:
        merge_index(shards, where, overwrite=overwrite)
    except (ShardError, OSError) as err:
        raise EncodeProcessesError(f"command failed ({err}): {line}") from None
    shutil.rmtree(shards)
    log.info("removed %s (merged into %s)", shards, where)
