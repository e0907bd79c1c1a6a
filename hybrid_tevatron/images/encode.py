"""Encode an image corpus with the frozen tower into a Pyserini Faiss index (once; training and evaluation read it).

    python -m hybrid_tevatron.images.encode --tower openai/clip-vit-base-patch32 --corpus data/xtd10-img \\
        --output indexes/xtd10-img [--batch_size 64] [--device cuda]
    torchrun --nproc_per_node N -m hybrid_tevatron.images.encode --tower T --corpus C --output SHARDS
    python -m hybrid_tevatron.pyserini.merge --shards SHARDS --output INDEX

``--corpus`` is an image data set folder (:mod:`hybrid_tevatron.images.data`) or its ``corpus.jsonl`` (Tevatron's
multimodal rows ``docid``/``image``). The index is what the text encoding writes
(:mod:`hybrid_tevatron.pyserini.encode`, whose writer and shard logic this module reuses): ``INDEX/index``, a flat
inner-product Faiss index of L2-normalised image embeddings in corpus order, and ``INDEX/docid``, so
``python -m pyserini.search.faiss --index INDEX`` searches it; written whole or not at all, with
:data:`TOWER_RECORD` beside it (which tower: its absolute path or Hub id and the SHA-256 digests of its config and
weights files, :func:`~hybrid_tevatron.images.tower.tower_record`; the size, the corpus), which training checks
``--image_tower`` against and records in the checkpoint, and the evaluation checks the checkpoint's against.
Sharding is the text encoding's (``--num_shards``/``--shard_id``, or one shard per ``torchrun`` process;
``shard.json`` records the corpus file's and the tower folder's digests, so a rerun skips finished shards and
refuses stale ones; image files changed in place under the same path are not detected). Expected failures are one
``error:`` line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from types import SimpleNamespace

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.images.data import CORPUS
from hybrid_tevatron.jsonfiles import read_json
from hybrid_tevatron.pyserini.encode import (
    EncodeError,
    check_target,
    corpus_digest,
    default_device,
    model_digest,
    shard_finished,
    write_index,
)
from hybrid_tevatron.pyserini.shards import ShardInfo, process_shards, shard_name, shard_range

TOWER_RECORD = "tower.json"  # beside index + docid (unsharded): the tower and its digests, the size, the corpus


class _TowerWriterAdapter:
    """The interface :func:`hybrid_tevatron.pyserini.encode.write_index` encodes with, over an image tower."""

    def __init__(self, tower):
        self.tower, self.dimension = tower, tower.dimension

    def encode(self, paths, titles=None):
        return self.tower.encode(list(paths))


def read_tower_record(index: str) -> dict | None:
    """The :data:`TOWER_RECORD` of the index folder ``index``; None when it has none (a sharded encoding merged by
    ``pyserini.merge``)."""
    path = os.path.join(index, TOWER_RECORD)
    if not os.path.isfile(path):
        return None
    record = read_json(path, EncodeError, "tower record")
    if not isinstance(record, dict):
        raise EncodeError(f"{path}: expected a JSON object")
    return record


def corpus_file(corpus: str) -> str:
    path = os.path.join(corpus, CORPUS) if os.path.isdir(corpus) else corpus
    if not os.path.isfile(path):
        raise EncodeError(f"{path}: no image corpus (write one with python -m hybrid_tevatron.images.data)")
    return path


def read_image_corpus(path: str) -> tuple[list[str], list[str]]:
    """``(docids, image paths)`` of a ``corpus.jsonl``; a bad line is named by file and line."""
    ids, images = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                ids.append(str(row["docid"]))
                images.append(str(row["image"]))
            except (ValueError, KeyError, TypeError):
                raise EncodeError(f"{path}:{lineno}: expected a JSON object with docid and image") from None
    if not ids:
        raise EncodeError(f"{path}: empty image corpus")
    return ids, images


def encode_images(tower: str, corpus: str, output: str, batch_size: int = 32, device=None, overwrite: bool = False,
                  num_shards=None, shard_id=None) -> dict:
    from hybrid_tevatron.images.tower import ImageTower, tower_name, tower_record

    sharding = process_shards(num_shards, shard_id)
    out = os.path.abspath(output)
    if sharding is None:
        check_target(out, overwrite)
    path = corpus_file(corpus)
    ids, images = read_image_corpus(path)
    encoder = _TowerWriterAdapter(ImageTower(tower, device=default_device(device), batch_size=batch_size))
    rows = {"id": ids, "text": images}
    args = SimpleNamespace(sort_window=max(batch_size, 1) * 8, fields=["text"])
    record = {"tower": tower_name(tower), "dimension": encoder.dimension, "corpus": path, "kind": "image"}
    if sharding is None:
        identity = tower_record(tower)  # the config's and weights' digests, before anything is written
        result = write_index(encoder, rows, args, 0, len(ids), out)
        atomic_write_json(os.path.join(out, TOWER_RECORD), {**identity, **record})
        return result
    total, shards = sharding
    settings = {**record, "corpus_digest": corpus_digest(path), "model_digest": model_digest(tower)}
    del settings["dimension"]  # ShardInfo's own field
    done = []
    for k in shards:
        start, stop = shard_range(len(ids), k, total)
        info = ShardInfo(k, total, start, stop, len(ids), encoder.dimension, settings)
        target = os.path.join(out, shard_name(k, total))
        if not shard_finished(target, info, overwrite):
            write_index(encoder, rows, args, start, stop, target, info)
            done.append(k)
    return {"count": len(ids), "shards": shards, "encoded": done, "output": out}


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.images.encode", description=__doc__.split("\n")[0])
    p.add_argument("--tower", required=True, help="CLIP/SigLIP model or vision-tower folder or Hub id")
    p.add_argument("--corpus", required=True, help="image data set folder or its corpus.jsonl")
    p.add_argument("--output", required=True, help="index folder (or the shards' folder when sharded)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", help="default: cuda if available (under torchrun: cuda:LOCAL_RANK), else cpu")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--num_shards", type=int, help="contiguous shards, as python -m hybrid_tevatron.pyserini.encode")
    p.add_argument("--shard_id", type=int, help="encode only this shard of --num_shards")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        raise EncodeError("--batch_size must be >= 1")
    result = encode_images(args.tower, args.corpus, args.output, args.batch_size, args.device, args.overwrite,
                           args.num_shards, args.shard_id)
    print(f"{result['count']} images -> {result['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
