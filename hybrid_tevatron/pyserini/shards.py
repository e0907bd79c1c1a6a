"""Corpus shards: which documents a shard holds, where it is written, and what its ``shard.json`` records.

Invariants (what :mod:`hybrid_tevatron.pyserini.encode` writes and :mod:`hybrid_tevatron.pyserini.merge` checks):

* **Split.** Shard ``i`` of ``n`` over ``N`` documents holds the contiguous corpus rows
  ``[i * (N // n), (i + 1) * (N // n))``, the last shard also the remainder: Pyserini's own split
  (``JsonlCollectionIterator(..., shard_id, shard_num)``, ``python -m pyserini.encode --shard-id/--shard-num``).
  So the shards, concatenated in shard order, are the corpus in its order, and shard ``i`` holds what Pyserini's
  shard ``i`` holds.
* **Layout.** Shard ``i`` of ``n`` is the folder ``ROOT/shard-{i:05d}-of-{n:05d}``: a Pyserini Faiss index
  (``index`` + ``docid``, readable by ``python -m pyserini.search.faiss --index``) plus ``shard.json``. Zero-padded
  names sort in shard order, as Pyserini's merge tool (``sorted(glob(...))``) needs.
* **Completeness.** A shard folder exists only complete (written to a temporary folder, renamed at the end);
  ``shard.json`` records what it was made from: its row range, the corpus size, the embedding size and the
  encoding settings, among them ``corpus_digest`` (SHA-256 of the corpus' bytes) and ``model_digest`` (of the model
  folder's files), so a rerun can tell a finished shard of the same encoding of the same corpus (skipped) from any
  other (an error naming the difference), and the merge never mixes two versions of a corpus.
* **Unique docids.** The merge refuses docids that occur in more than one shard (or twice in one), naming them;
  a one-index encoding refuses a corpus that repeats a docid, naming its lines (one check: :func:`repeated_ids`).
"""

from __future__ import annotations

import bisect
import glob
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from hybrid_tevatron.errors import HybridTevatronError

SHARD_INFO = "shard.json"
SHARD_NAME = "shard-{shard_id:05d}-of-{num_shards:05d}"
SHARD_PATTERN = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
MAX_SHARDS = 99999  # five digits in the folder name


class ShardError(HybridTevatronError, ValueError):
    """Shards that cannot be encoded or merged as asked; the message names the shard or folder."""


def shard_range(size: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """``(start, stop)`` corpus rows of shard ``shard_id`` of ``num_shards`` (Pyserini's split, see above)."""
    check_shard_id(shard_id, num_shards)
    if size < num_shards:
        raise ShardError(f"--num_shards {num_shards} is more than the corpus' {size} documents")
    per_shard = size // num_shards
    start = shard_id * per_shard
    return start, size if shard_id == num_shards - 1 else start + per_shard


def check_shard_id(shard_id: int, num_shards: int) -> None:
    if not 1 <= num_shards <= MAX_SHARDS:
        raise ShardError(f"--num_shards must be in 1..{MAX_SHARDS}, got {num_shards}")
    if not 0 <= shard_id < num_shards:
        raise ShardError(f"--shard_id {shard_id} is out of range for --num_shards {num_shards} "
                         f"(0..{num_shards - 1})")


def repeated_ids(ids: Sequence[str]) -> dict[str, list[int]]:
    """The ids that occur more than once in ``ids``, in the order of their first repeat, each with its positions
    (a set pass; the positions only when some id repeats)."""
    seen: set[str] = set()
    repeats: dict[str, list[int]] = {}
    for docid in ids:
        if docid in seen:
            repeats.setdefault(docid, [])
        else:
            seen.add(docid)
    if repeats:
        for position, docid in enumerate(ids):
            if docid in repeats:
                repeats[docid].append(position)
    return repeats


def describe_repeats(repeats: dict[str, list[int]], where: Callable[[int], str], shown: int = 5) -> str:
    """``N docids occur more than once (ID in A and B; ...)`` for :func:`repeated_ids`, ``where(position)`` naming
    a position (a shard, a file and line); the first ``shown`` ids, each at its first three positions."""
    def places(positions: list[int]) -> str:
        more = f" ({len(positions)} times)" if len(positions) > 3 else ""
        return " and ".join(where(p) for p in positions[:3]) + more

    listed = "; ".join(f"{docid} in {places(positions)}" for docid, positions in list(repeats.items())[:shown])
    more = f" and {len(repeats) - shown} more" if len(repeats) > shown else ""
    return f"{len(repeats)} docids occur more than once ({listed}{more})"


def part_of(ends: list[int], position: int) -> tuple[int, int]:
    """``(part, offset)`` of ``position`` in parts that end at the cumulative counts ``ends``."""
    part = bisect.bisect_right(ends, position)
    return part, position - (ends[part - 1] if part else 0)


def shard_name(shard_id: int, num_shards: int) -> str:
    return SHARD_NAME.format(shard_id=shard_id, num_shards=num_shards)


def shard_glob(root: str, num_shards: int) -> str:
    """A glob pattern matching exactly the ``num_shards`` shard folders of ``root`` (temporary folders excluded)."""
    return os.path.join(glob.escape(root), SHARD_NAME.replace("{shard_id:05d}", "?????").format(num_shards=num_shards))


def process_shards(num_shards: int | None, shard_id: int | None,
                   env=None) -> tuple[int, list[int]] | None:
    """``(num_shards, the shard ids this process encodes)``, or ``None`` for an unsharded run.

    * ``--shard_id i --num_shards n``: shard ``i`` only (not under a multi-process ``torchrun``).
    * Under ``torchrun`` (``WORLD_SIZE`` > 1): rank ``r`` of ``W`` takes shards ``r, r + W, ...`` of ``n``
      (``--num_shards``, default ``W``: one shard per process).
    * ``--num_shards n`` in one process: all ``n`` shards, one after the other (each resumable).
    """
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    if shard_id is not None:
        if num_shards is None:
            raise ShardError("--shard_id needs --num_shards")
        if world > 1:
            raise ShardError(f"--shard_id is taken from the rank under torchrun (WORLD_SIZE={world}); drop it, "
                             "and use --num_shards for more shards than processes")
        check_shard_id(shard_id, num_shards)
        return num_shards, [shard_id]
    if world <= 1 and num_shards is None:
        return None
    num_shards = world if num_shards is None else num_shards
    check_shard_id(0, num_shards)
    if num_shards < world:
        raise ShardError(f"--num_shards {num_shards} is fewer than the {world} torchrun processes")
    return num_shards, list(range(rank, num_shards, world))


@dataclass(frozen=True)
class ShardInfo:
    """The content of ``shard.json``."""

    shard_id: int
    num_shards: int
    start: int
    stop: int
    corpus_size: int
    dimension: int
    settings: dict  # everything that decides the vectors: model, corpus, fields, pooling, prefix, ...

    @property
    def count(self) -> int:
        return self.stop - self.start

    def save(self, folder: str) -> None:
        with open(os.path.join(folder, SHARD_INFO), "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=2, ensure_ascii=False)
            f.write("\n")

    @classmethod
    def load(cls, folder: str) -> ShardInfo:
        path = os.path.join(folder, SHARD_INFO)
        try:
            with open(path, encoding="utf-8") as f:
                return cls(**json.load(f))
        except FileNotFoundError:
            raise ShardError(f"{path}: missing (not a shard written by hybrid_tevatron.pyserini.encode)") from None
        except (json.JSONDecodeError, TypeError) as err:
            raise ShardError(f"{path}: unreadable shard record ({err})") from None

    def same_encoding(self, other: ShardInfo) -> str | None:
        """``None`` when both come from one encoding of one corpus, else the first difference, in words."""
        for key in ("num_shards", "corpus_size", "dimension"):
            if getattr(self, key) != getattr(other, key):
                return f"{key} {getattr(self, key)} vs {getattr(other, key)}"
        for key in sorted(set(self.settings) | set(other.settings)):
            a, b = self.settings.get(key), other.settings.get(key)
            if a != b:
                if key.endswith("_digest"):  # content digests: say what changed, with short forms
                    what = key[: -len("_digest")]
                    return f"the {what}'s content differs: {key} {str(a)[:19]}... vs {str(b)[:19]}..."
                return f"{key} {a!r} vs {b!r}"
        return None


def find_shards(root: str) -> dict[int, tuple[int, str]]:
    """``{shard_id: (num_shards, folder)}`` of the shard folders in ``root`` (temporary folders ignored)."""
    if not os.path.isdir(root):
        raise ShardError(f"{root}: no such folder of shards")
    found: dict[int, tuple[int, str]] = {}
    counts = {}
    for name in sorted(os.listdir(root)):
        match = SHARD_PATTERN.match(name)
        if match and os.path.isdir(os.path.join(root, name)):
            shard_id, num_shards = int(match.group(1)), int(match.group(2))
            counts.setdefault(num_shards, name)
            found[shard_id] = (num_shards, os.path.join(root, name))
    if not found:
        raise ShardError(f"{root}: no shard-NNNNN-of-NNNNN folders")
    if len(counts) > 1:
        names = ", ".join(counts.values())
        raise ShardError(f"{root}: shards of different --num_shards ({names}); remove the stale ones")
    return found
