"""Merge sharded encodings: shard indexes into one Faiss index, or per-shard runs into one exact top-k run.

    python -m hybrid_tevatron.pyserini.merge --shards SHARDS --output INDEX_DIR [--overwrite]
    python -m hybrid_tevatron.pyserini.merge --runs RUN_0 RUN_1 ... --hits K --output RUN [--overwrite]

**Index** (``--shards``): the shard folders that ``python -m hybrid_tevatron.pyserini.encode --num_shards N`` (or
``torchrun``) wrote are checked first — all ``N`` present, one ``--num_shards``, one encoding (``shard.json``:
model, corpus, settings, corpus size, dimension), row ranges that tile the corpus in order, each ``docid`` file as
long as its range and its index as large, no docid in two shards (nor twice in one), whatever wrote them — then
merged by Pyserini's own ``python -m pyserini.encode.merge_faiss_index`` (shard folders in name order = shard order)
into a temporary folder beside ``INDEX_DIR``. The result is checked (vector count, docids = the shards' in order)
and renamed into place: ``INDEX_DIR/index`` + ``INDEX_DIR/docid``, the files a one-process encoding writes.
Pyserini's tool holds every vector in memory (twice, briefly).

**Runs** (``--runs``): for an index too large for one machine's memory, search every shard
(``python -m pyserini.search.faiss --index SHARDS/shard-... --hits K``) and merge the TREC runs: per query, all
shards' lines ordered by score (ties: shard order, then rank), the first ``K`` kept and renumbered. A flat Faiss
search is exact per shard, so the global top ``K`` is among the shards' top ``K`` each: the merged run is the run of
the merged index, up to the order of lines whose written scores are equal. The tag is the first run's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict

from hybrid_tevatron.atomic import atomic_dir, atomic_path
from hybrid_tevatron.errors import HybridTevatronError, first_line, report_errors
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.pyserini.shards import (
    ShardError,
    ShardInfo,
    describe_repeats,
    find_shards,
    part_of,
    repeated_ids,
    shard_glob,
    shard_name,
)

INDEX_FILES = ("index", "docid")
PYSERINI_MERGE = "pyserini.encode.merge_faiss_index"


log = get_logger(__name__)


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _count_vectors(path: str) -> int:
    """The vector count of a Faiss index file, memory-mapped where Faiss can (no copy of the vectors)."""
    import faiss

    return faiss.read_index(path, getattr(faiss, "IO_FLAG_MMAP_IFC", 0)).ntotal


def check_shards(root: str) -> list[tuple[str, ShardInfo]]:
    """The complete, consistent shards of ``root`` in order, as ``(folder, info)``; :class:`ShardError` if not."""
    found = find_shards(root)
    num_shards = next(iter(found.values()))[0]
    missing = [i for i in range(num_shards) if i not in found]
    if missing:
        names = ", ".join(shard_name(i, num_shards) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ShardError(f"{root}: {len(missing)} of {num_shards} shards missing ({names}); encode them first "
                         "(rerun the same encode command: finished shards are skipped)")
    shards = []
    for shard_id in range(num_shards):
        folder = found[shard_id][1]
        for name in INDEX_FILES:
            if not os.path.isfile(os.path.join(folder, name)):
                raise ShardError(f"{folder}: no {name} file")
        info = ShardInfo.load(folder)
        if (info.shard_id, info.num_shards) != (shard_id, num_shards):
            raise ShardError(f"{folder}/shard.json: says shard {info.shard_id} of {info.num_shards}")
        if shards:
            first, previous = shards[0][1], shards[-1][1]
            difference = first.same_encoding(info)
            if difference:
                raise ShardError(f"{folder}: another encoding than {shards[0][0]} ({difference})")
            if info.start != previous.stop:
                raise ShardError(f"{folder}: starts at row {info.start}, the previous shard stops at {previous.stop}")
        elif info.start != 0:
            raise ShardError(f"{folder}: the first shard starts at row {info.start}")
        docids = _count_lines(os.path.join(folder, "docid"))
        vectors = _count_vectors(os.path.join(folder, "index"))
        if not docids == vectors == info.count:
            raise ShardError(f"{folder}: {docids} docids and {vectors} vectors for rows {info.start}..{info.stop - 1}")
        shards.append((folder, info))
    if shards[-1][1].stop != shards[-1][1].corpus_size:
        raise ShardError(f"{shards[-1][0]}: the last shard stops at row {shards[-1][1].stop}, "
                         f"the corpus has {shards[-1][1].corpus_size}")
    check_unique_docids(root, [folder for folder, _ in shards])
    return shards


def check_unique_docids(root: str, folders: list[str]) -> None:
    """:class:`ShardError` naming the first docids that occur twice among the ``docid`` files of ``folders`` (and
    the shards holding them)."""
    ids: list[str] = []
    ends: list[int] = []
    for folder in folders:
        with open(os.path.join(folder, "docid"), encoding="utf-8") as f:
            ids.extend(line.rstrip("\n") for line in f)
        ends.append(len(ids))
    repeats = repeated_ids(ids)
    if repeats:
        def shard(position: int) -> str:
            return os.path.basename(folders[part_of(ends, position)[0]])

        raise ShardError(f"{root}: {describe_repeats(repeats, shard)}; the shards do not come from one corpus, or "
                         "the corpus repeats ids: re-encode them with --overwrite")


def merge_index(root: str, output: str, overwrite: bool = False) -> dict:
    """Check the shards of ``root`` and merge them into the Faiss index folder ``output`` (written whole or not
    at all)."""
    root, output = os.path.abspath(root), os.path.abspath(output)
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)) and not overwrite:
        raise ShardError(f"{output} exists and is not empty (pass --overwrite to replace it)")
    shards = check_shards(root)
    info = shards[0][1]
    t0 = time.perf_counter()
    with atomic_dir(output) as tmp:
        cmd = [sys.executable, "-m", PYSERINI_MERGE, "--dimension", str(info.dimension),
               "--input", shard_glob(root, info.num_shards),
               "--output", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ShardError(f"{PYSERINI_MERGE} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        merged = _count_vectors(os.path.join(tmp, "index"))
        docids = []
        for folder, _ in shards:
            with open(os.path.join(folder, "docid"), encoding="utf-8") as f:
                docids.extend(f)
        with open(os.path.join(tmp, "docid"), encoding="utf-8") as f:
            if merged != info.corpus_size or list(f) != docids:
                raise ShardError(f"{PYSERINI_MERGE} wrote {merged} vectors, not the shards' {info.corpus_size} in "
                                 "order")
    log.info(f"wrote {output}/index + docid: {info.num_shards} shards, {info.corpus_size} x {info.dimension} in "
         f"{time.perf_counter() - t0:.2f}s")
    return {"count": info.corpus_size, "shards": info.num_shards, "output": output}


def read_run(path: str) -> dict[str, list[tuple[float, int, str, str]]]:
    """``{qid: [(score, rank, docid, tag), ...]}`` of a TREC run, in file order; :class:`ShardError` names a bad
    line."""
    run: dict[str, list[tuple[float, int, str, str]]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                qid, _, docid, rank, score, tag = parts
                run[qid].append((float(score), int(rank), docid, tag))
            except ValueError:
                raise ShardError(f"{path}:{lineno}: not a TREC run line (qid Q0 docid rank score tag)") from None
    return run


def merge_runs(paths: list[str], output: str, hits: int, overwrite: bool = False) -> dict:
    """Exact top-``hits`` merge of per-shard runs into the TREC run ``output`` (written atomically)."""
    if hits < 1:
        raise ShardError(f"--hits must be >= 1, got {hits}")
    if os.path.exists(output) and not overwrite:
        raise ShardError(f"{output} exists (pass --overwrite to replace it)")
    lines: dict[str, list[tuple[float, int, int, str]]] = defaultdict(list)
    tag = None
    for shard, path in enumerate(paths):
        for qid, rows in read_run(path).items():
            for score, rank, docid, run_tag in rows:
                tag = tag or run_tag
                lines[qid].append((-score, shard, rank, docid))
    queries = 0
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for qid, rows in lines.items():
            rows.sort()
            seen = set()
            for _, shard, _, docid in rows:
                if docid in seen:
                    raise ShardError(f"{paths[shard]}: query {qid} retrieves {docid} in two runs (overlapping shards)")
                seen.add(docid)
            for new_rank, (neg_score, _, _, docid) in enumerate(rows[:hits], 1):
                f.write(f"{qid} Q0 {docid} {new_rank} {-neg_score:.6f} {tag}\n")
            queries += 1
    log.info(f"wrote {output}: top {hits} of {len(paths)} runs for {queries} queries")
    return {"queries": queries, "output": output}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.pyserini.merge", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--shards", help="folder of shard-IIIII-of-NNNNN indexes -> one Faiss index folder")
    src.add_argument("--runs", nargs="+", help="TREC runs of the shards (any order) -> one run")
    p.add_argument("--output", required=True, help="index folder (--shards) or TREC run file (--runs)")
    p.add_argument("--hits", type=int, help="--runs: hits per query kept (each shard searched with at least as many)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


@report_errors
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.shards:
            merge_index(args.shards, args.output, args.overwrite)
        else:
            if args.hits is None:
                raise ShardError("--runs needs --hits (the depth each shard was searched to)")
            merge_runs(args.runs, args.output, args.hits, args.overwrite)
    except HybridTevatronError:
        raise
    except OSError as err:  # an unreadable or unwritable file: its first line
        raise ShardError(first_line(err)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
