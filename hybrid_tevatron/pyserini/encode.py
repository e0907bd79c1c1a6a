"""Encode a corpus into a Pyserini Faiss index, or topics into Pyserini's pre-encoded queries, with our encoders.

    python -m hybrid_tevatron.pyserini.encode --model M --corpus CORPUS.jsonl --output INDEX_DIR [options]
    python -m hybrid_tevatron.pyserini.encode --model M --topics TOPICS.tsv --output QUERY_DIR [options]

Corpus mode writes exactly what ``python -m pyserini.encode input --corpus C output --embeddings D --to-faiss``
writes — ``D/index`` (a flat inner-product Faiss index, through Pyserini's own ``FaissRepresentationWriter``) and
``D/docid`` (one id per line, corpus order) — so ``python -m pyserini.search.faiss --index D`` reads it unchanged.
The corpus is read by Pyserini's ``JsonlCollectionIterator`` (a JSONL file or a folder of them; ``{"id",
"contents"}`` or one key per ``--fields``), so the texts are Pyserini's. Topics mode writes ``QUERY_DIR/embedding.pkl``
(or ``--output X.pkl``), the DataFrame ``id/text/embedding`` of ``python -m pyserini.encode.query``, read by
``pyserini.search.faiss --encoded-queries QUERY_DIR``; topics are read by Pyserini's ``DefaultQueryIterator``, so
the text keys match the ones the search looks up.

Settings default to the model's ``hybrid_tevatron.json`` (passage settings for a corpus, query settings for
topics); flags override (:func:`hybrid_tevatron.encoding.read_encoding`); a model without that file needs
``--pooling`` and ``--normalize``/``--no-normalize``. ``--prefix`` is prepended literally (``'query: '``, with its
space, as in training).
Outputs appear only when complete: a temporary folder/file beside the target, renamed at the end.

**Sharded corpus encoding** (``--num_shards``, or a multi-process ``torchrun``)::

    torchrun --nproc_per_node N -m hybrid_tevatron.pyserini.encode --model M --corpus C --output SHARDS
    python -m hybrid_tevatron.pyserini.merge --shards SHARDS --output INDEX_DIR

Each process encodes its own contiguous shards (rank ``r`` of ``W``: shards ``r, r + W, ...``; on GPUs, on
``cuda:LOCAL_RANK``) into ``SHARDS/shard-IIIII-of-NNNNN`` (index + docid + ``shard.json``,
:mod:`hybrid_tevatron.pyserini.shards`), with no communication between processes, so ``torchrun --nnodes M`` over
a shared folder works the same. Each shard's ``shard.json`` records what it was made from: the corpus' content
digest, the model folder's digest, the encoding settings and the shard's rows. A complete shard of the same record
is skipped on a rerun (an interrupted run's temporary folders are removed), so rerunning the same command finishes
only what is missing; a shard whose record differs (the corpus was rewritten, the model retrained, another setting)
is refused by name, and ``--overwrite`` re-encodes it.

Before anything is encoded the model folder passes the check training and evaluation run
(:func:`hybrid_tevatron.model_files.check_model_loads`: config, weights, a tokenizer that loads and knows words),
and the corpus must exist and parse: a malformed line is named by file and line (so must topics: a file, or a
Pyserini topics name; a TSV holds ``qid<TAB>text`` on every line); a one-index encoding refuses a corpus that
repeats a docid (naming the ids and their lines), as the merge refuses such shards. Expected failures end with one
``error:`` line and exit status 2. The merged index equals the one-process index: same docids in the same order,
the same vectors up to fp32 rounding.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import shutil
import sys
import time

from hybrid_tevatron._pyserini_env import configure
from hybrid_tevatron.atomic import atomic_dir, atomic_path
from hybrid_tevatron.errors import HybridTevatronError, first_line, report_errors
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.model_files import TRAIN_SUMMARY
from hybrid_tevatron.pyserini.shards import (
    ShardError,
    ShardInfo,
    describe_repeats,
    part_of,
    process_shards,
    repeated_ids,
    shard_name,
    shard_range,
)

log = get_logger(__name__)

# files of a model folder that do not decide its vectors (left out of its digest): the trainer's state and logs
MODEL_FILES_NOT_HASHED = ("training_args.bin", "trainer_state.json", TRAIN_SUMMARY, "DONE", "README.md")
TSV_TOPICS = (".tsv", ".tsv.gz", ".txt", ".txt.gz")  # read by Anserini's TSV topic reader (see topics_are_tsv)
JAVA_BLANK = "".join(map(chr, range(33)))  # what Java's String.trim() strips


class EncodeError(HybridTevatronError):
    """A corpus, topics or output that cannot be encoded as asked; the message names the file (and line)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.pyserini.encode",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", "--encoder", dest="model", required=True, help="HF model folder or Hub id")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", help="Pyserini JSONL corpus (file or folder) -> Faiss index")
    src.add_argument("--topics", help="topics (TSV 'qid<TAB>text', or any Pyserini topics file) -> embedding.pkl")
    p.add_argument("--output", required=True, help="index folder (corpus) or folder / .pkl file (topics)")
    p.add_argument("--pooling", choices=["cls", "mean"],
                   help="default: the checkpoint's (required for a model without hybrid_tevatron.json)")
    p.add_argument("--normalize", "--l2-norm", dest="normalize", action="store_const", const=True,
                   help="L2-normalise (default: the checkpoint's; a model without hybrid_tevatron.json needs "
                   "--normalize or --no-normalize)")
    p.add_argument("--no-normalize", "--no_normalize", dest="normalize", action="store_const", const=False)
    p.add_argument("--prefix", help="literal text prefix (default: the checkpoint's passage/query prefix)")
    p.add_argument("--max_len", "--max-length", dest="max_len", type=int,
                   help="max tokens (default: the checkpoint's passage/query max length, else 128/32)")
    p.add_argument("--device", help="cpu, cuda, cuda:0 ... (default cuda:0 when available, else cpu)")
    p.add_argument("--batch_size", "--batch-size", dest="batch_size", type=int, default=64)
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 (fp16 without bf16 support) autocast on CUDA, fp32 on CPU; bf16 also works on "
                   "CPUs with bf16 instructions")
    p.add_argument("--sort_window", type=int, default=65536,
                   help="texts length-sorted together (bounds memory: window x dim x 4 bytes of embeddings)")
    p.add_argument("--fields", nargs="+", default=["text"], help="corpus fields, as pyserini.encode's --fields")
    p.add_argument("--docid_field", "--docid-field", dest="docid_field", help="as pyserini.encode's --docid-field")
    p.add_argument("--delimiter", default="\n", help="field delimiter in 'contents', as pyserini.encode's")
    p.add_argument("--dimension", type=int, help="check the model's embedding size against this")
    p.add_argument("--limit", type=int, help="encode only the first N documents/queries (benchmarks, smoke runs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output (sharded: re-encode "
                   "this process's shards even when complete)")
    p.add_argument("--num_shards", "--num-shards", "--shard-num", dest="num_shards", type=int,
                   help="corpus mode: split the corpus into this many contiguous shards (Pyserini's split), written "
                   "to OUTPUT/shard-IIIII-of-NNNNN; under torchrun default WORLD_SIZE, rank r encoding shards r, "
                   "r + WORLD_SIZE, ...; in one process without --shard_id, all shards in turn. Finished shards "
                   "are skipped; merge with python -m hybrid_tevatron.pyserini.merge")
    p.add_argument("--shard_id", "--shard-id", dest="shard_id", type=int,
                   help="encode only this shard (0-based) of --num_shards (not under a multi-process torchrun)")
    return p


def check_target(path: str, overwrite: bool) -> None:
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise EncodeError(f"{path} exists and is not empty (pass --overwrite to replace it)")
    if os.path.exists(path) and not os.path.isdir(path) and not overwrite:
        raise EncodeError(f"{path} exists (pass --overwrite to replace it)")


def corpus_files(corpus: str) -> list[str]:
    """The files of a Pyserini JSONL corpus in the order Pyserini reads them (a file, or a folder's files in
    ``os.listdir`` order, as ``JsonlCollectionIterator``)."""
    if os.path.isfile(corpus):
        return [corpus]
    if os.path.isdir(corpus):
        files = [os.path.join(corpus, name) for name in os.listdir(corpus)]
        if not files:
            raise EncodeError(f"corpus folder {corpus} holds no files")
        return files
    raise EncodeError(f"corpus not found: {corpus}")


def _sha256(paths: list[str], root: str = "") -> str:
    digest = hashlib.sha256()
    for path in paths:
        name = os.path.relpath(path, root) if root else ""
        digest.update(name.encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def corpus_digest(corpus: str) -> str:
    """The SHA-256 of the corpus' bytes (a folder: its files' names and bytes, in reading order)."""
    files = corpus_files(corpus)
    return _sha256(files, corpus if os.path.isdir(corpus) else "")


def model_digest(model: str) -> str:
    """A local model folder: the SHA-256 of its top-level files (names and bytes) but
    :data:`MODEL_FILES_NOT_HASHED`, plan logs and hidden files; a Hub id: the id itself."""
    if not os.path.isdir(model):
        return model
    names = sorted(n for n in os.listdir(model) if os.path.isfile(os.path.join(model, n))
                   and not n.startswith(".") and n not in MODEL_FILES_NOT_HASHED and not n.startswith("plan_log."))
    return _sha256([os.path.join(model, n) for n in names], model)


def read_corpus(corpus: str, fields, docid_field, delimiter: str):
    """Pyserini's ``JsonlCollectionIterator`` over ``corpus``; a line it cannot parse is named by file and line."""
    from pyserini.encode import JsonlCollectionIterator

    files = corpus_files(corpus)
    try:
        return JsonlCollectionIterator(corpus, fields, docid_field, delimiter)
    except (ValueError, KeyError, TypeError, AttributeError, AssertionError, UnicodeDecodeError) as err:
        for path in files:
            lineno = 0
            with open(path, encoding="utf-8", errors="strict") as f:
                try:
                    for lineno, line in enumerate(f, 1):
                        try:
                            record = json.loads(line)
                        except ValueError as bad:
                            raise EncodeError(f"{path}:{lineno}: not a JSON object ({bad.msg})") from None
                        if not isinstance(record, dict):
                            raise EncodeError(f"{path}:{lineno}: not a JSON object")
                        key = docid_field or next((k for k in ("id", "_id", "docid") if k in record), None)
                        if key is None or key not in record:
                            raise EncodeError(f"{path}:{lineno}: no document id ({docid_field or 'id, _id or docid'})")
                        if not all(f in record for f in fields) and not isinstance(record.get("contents"), str):
                            raise EncodeError(f"{path}:{lineno}: neither the fields {', '.join(fields)} nor "
                                              "'contents'")
                except UnicodeDecodeError as bad:
                    raise EncodeError(f"{path}:{lineno + 1}: not UTF-8 ({bad.reason})") from None
        raise EncodeError(f"{corpus}: cannot be read as a Pyserini corpus ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})") from None


def check_unique_docids(corpus: str, docids: list[str]) -> None:
    """:class:`EncodeError` naming the first docids the corpus rows ``docids`` repeat, by file and line (Pyserini
    reads one row per line, the files in :func:`corpus_files` order; the lines are counted only then)."""
    repeats = repeated_ids(docids)
    if not repeats:
        return
    files, ends = corpus_files(corpus), []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            ends.append((ends[-1] if ends else 0) + sum(1 for _ in f))

    def line(row: int) -> str:
        part, offset = part_of(ends, row)
        name = os.path.relpath(files[part], corpus) if os.path.isdir(corpus) else os.path.basename(files[part])
        return f"{name}:{offset + 1}"

    raise EncodeError(f"{corpus}: {describe_repeats(repeats, line)}; a docid must name one document")


def default_device(device: str | None, env=None) -> str | None:
    """``--device``, or under ``torchrun`` on a GPU machine the process's own GPU (``cuda:LOCAL_RANK``)."""
    env = os.environ if env is None else env
    if device or "LOCAL_RANK" not in env:
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(env['LOCAL_RANK']) % torch.cuda.device_count()}"


def encode_corpus(args) -> dict:
    from hybrid_tevatron.model_files import check_model_loads
    from hybrid_tevatron.pyserini.encoders import HybridDocumentEncoder

    sharding = process_shards(args.num_shards, args.shard_id)  # checked before anything is loaded
    out = os.path.abspath(args.output)
    if sharding is None:
        check_target(out, args.overwrite)
    corpus_files(args.corpus)
    check_model_loads(args.model)
    encoder = HybridDocumentEncoder(args.model, device=default_device(args.device), pooling=args.pooling,
                                    l2_norm=args.normalize, prefix=args.prefix, max_length=args.max_len,
                                    batch_size=args.batch_size, dtype=args.dtype)
    dim = encoder.dimension
    if args.dimension is not None and args.dimension != dim:
        raise EncodeError(f"--dimension {args.dimension} but {args.model} embeds in {dim} dimensions")
    delimiter = args.delimiter.replace("\\n", "\n")
    collection = read_corpus(args.corpus, args.fields, args.docid_field, delimiter)
    n = collection.size if args.limit is None else min(args.limit, collection.size)
    log.info(f"{n} documents of {args.corpus}: pooling {encoder.pooling}, normalize {encoder.l2_norm}, "
         f"prefix {encoder.prefix!r}, max_len {encoder.max_length}, device {encoder.device}, "
         f"dtype {encoder.engine.autocast_dtype or 'fp32'}, batch {args.batch_size}")
    if sharding is None:  # sharded, the merge checks the docids of all shards together
        check_unique_docids(args.corpus, collection.all_info["id"][:n])
        return write_index(encoder, collection.all_info, args, 0, n, out)
    num_shards, shards = sharding
    settings = {
        "model": os.path.abspath(args.model) if os.path.isdir(args.model) else args.model,
        "corpus": os.path.abspath(args.corpus), "fields": list(args.fields), "docid_field": args.docid_field,
        "delimiter": delimiter, "pooling": encoder.pooling, "normalize": encoder.l2_norm,
        "prefix": encoder.prefix, "max_len": encoder.max_length,
        "dtype": str(encoder.engine.autocast_dtype or "fp32"),
        "corpus_digest": corpus_digest(args.corpus), "model_digest": model_digest(args.model),
    }
    done = []
    for shard_id in shards:
        start, stop = shard_range(n, shard_id, num_shards)
        info = ShardInfo(shard_id, num_shards, start, stop, n, dim, settings)
        target = os.path.join(out, shard_name(shard_id, num_shards))
        if shard_finished(target, info, args.overwrite):
            log.info(f"{shard_name(shard_id, num_shards)}: complete, skipped (rows {start}..{stop - 1})")
            continue
        write_index(encoder, collection.all_info, args, start, stop, target, info)
        done.append(shard_id)
    return {"count": n, "shards": shards, "encoded": done, "output": out}


def shard_finished(target: str, info: ShardInfo, overwrite: bool) -> bool:
    """Whether ``target`` already holds this shard of this encoding; removes a killed run's temporary folders."""
    parent, name = os.path.split(target)
    for stale in glob.glob(os.path.join(glob.escape(parent), f".{name}.*.tmp")):
        log.info(f"removing {stale} (left by an interrupted run)")
        shutil.rmtree(stale, ignore_errors=True)
    if overwrite or not os.path.exists(target):
        return False
    old = ShardInfo.load(target)
    difference = info.same_encoding(old)
    if difference is None and (old.shard_id, old.start, old.stop) == (info.shard_id, info.start, info.stop):
        return True
    raise ShardError(f"{target} holds a shard of another encoding ({difference or 'rows differ'}); "
                     "pass --overwrite to re-encode it")  # the record decides; a changed corpus is never skipped


def write_index(encoder, corpus: dict, args, start: int, stop: int, out: str,
                 shard: ShardInfo | None = None) -> dict:
    """Encode corpus rows ``[start, stop)`` into the Faiss index folder ``out`` (written whole, or not at all)."""
    from pyserini.encode.optional import FaissRepresentationWriter

    what = f"{os.path.basename(out)} (rows {start}..{stop - 1})" if shard else out
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        writer = FaissRepresentationWriter(tmp, dimension=encoder.dimension)
        with writer:  # its __enter__ returns None
            for lo in range(start, stop, args.sort_window):
                hi = min(lo + args.sort_window, stop)
                texts = [t or "" for t in corpus["text"][lo:hi]]
                titles = corpus["title"][lo:hi] if "title" in args.fields else None  # as pyserini.encode
                vectors = encoder.encode(texts, titles=titles)
                writer.write({"id": corpus["id"][lo:hi], "vector": vectors}, args.fields)
                log.info(f"{what}: {hi - start}/{stop - start} encoded "
                     f"({(hi - start) / max(time.perf_counter() - t0, 1e-9):.1f}/s)")
        if shard is not None:
            shard.save(tmp)
        seconds = time.perf_counter() - t0
    count = stop - start
    log.info(f"wrote {out}/index + docid: {count} x {encoder.dimension} in {seconds:.2f}s "
         f"({count / max(seconds, 1e-9):.1f} docs/s)")
    return {"count": count, "seconds": seconds, "output": out}


def topics_are_tsv(path: str) -> bool:
    """Whether Pyserini's ``DefaultQueryIterator.from_topics`` reads the file ``path`` as ``qid<TAB>text`` lines
    (its own choice of reader, in its order)."""
    if path.endswith(".json"):
        return False
    return "beir" in path or ("cacm" not in path and path.endswith(TSV_TOPICS))


def check_topics(path: str) -> None:
    """:class:`EncodeError` unless ``path`` is a topics file (or a Pyserini topics name) and, read as TSV, holds
    ``qid<TAB>text`` on every line: Anserini's reader fails on an empty line or a line without a tab, and takes
    ``qid<TAB><TAB>text`` for an empty query. Names the file and line."""
    if os.path.isdir(path):
        raise EncodeError(f"{path}: a folder, not a topics file")
    if not os.path.exists(path):
        from pyserini.search import _base

        if path not in _base.topics_mapping:
            raise EncodeError(f"topics file not found: {path} (nor a Pyserini topics name)")
        return
    if not topics_are_tsv(path):
        return
    lineno = 0
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                trimmed = line.strip(JAVA_BLANK)  # as Anserini, which then reads the first two tab-separated fields
                _, tab, rest = trimmed.partition("\t")
                problem = ("an empty line" if not trimmed else "no tab" if "\t" not in line
                           else "an empty query id or text" if not tab or not rest.split("\t")[0].strip(JAVA_BLANK)
                           else None)
                if problem:
                    raise EncodeError(f"{path}:{lineno}: {problem} (every line is qid<TAB>text)")
    except UnicodeDecodeError as bad:
        raise EncodeError(f"{path}:{lineno + 1}: not UTF-8 ({bad.reason})") from None
    except (OSError, EOFError) as bad:  # unreadable, a broken .gz
        raise EncodeError(f"{path}: cannot read the topics ({first_line(bad)})") from None


def read_topics(path: str, limit: int | None) -> tuple[list, list[str]]:
    """``(ids, texts)`` of the topics, as Pyserini's ``DefaultQueryIterator`` reads them (checked first)."""
    from pyserini.query_iterator import DefaultQueryIterator

    check_topics(path)
    ids, texts = [], []
    try:
        for qid, text in DefaultQueryIterator.from_topics(path):
            ids.append(qid)
            texts.append(text)
            if limit is not None and len(ids) >= limit:
                break
    except (ValueError, NotImplementedError) as err:  # a format Pyserini does not know, a file its reader refuses
        raise EncodeError(f"{path}: Pyserini cannot read these topics ({first_line(err)})") from None
    return ids, texts


def encode_topics(args) -> dict:
    import pandas as pd

    from hybrid_tevatron.model_files import check_model_loads
    from hybrid_tevatron.pyserini.encoders import HybridQueryEncoder

    out = os.path.abspath(args.output)
    target = out if out.endswith(".pkl") else os.path.join(out, "embedding.pkl")
    check_target(target, args.overwrite)
    ids, texts = read_topics(args.topics, args.limit)  # before the model loads
    check_model_loads(args.model)
    encoder = HybridQueryEncoder(args.model, device=args.device, pooling=args.pooling, l2_norm=args.normalize,
                                 prefix=args.prefix, max_length=args.max_len, batch_size=args.batch_size,
                                 dtype=args.dtype)
    if args.dimension is not None and args.dimension != encoder.dimension:
        raise EncodeError(f"--dimension {args.dimension} but {args.model} embeds in {encoder.dimension}")
    t0 = time.perf_counter()
    vectors = encoder.encode_batch(texts)
    seconds = time.perf_counter() - t0
    with atomic_path(target) as tmp:
        pd.DataFrame({"id": ids, "text": texts, "embedding": list(vectors)}).to_pickle(tmp)
    log.info(f"wrote {target}: {len(ids)} queries (pooling {encoder.pooling}, normalize {encoder.l2_norm}, prefix "
         f"{encoder.prefix!r}, max_len {encoder.max_length}) in {seconds:.2f}s")
    return {"count": len(ids), "seconds": seconds, "output": target}


@report_errors
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.sort_window < 1:
        raise EncodeError("--batch_size and --sort_window must be >= 1")
    if "text" not in args.fields:
        raise EncodeError("--fields must include text (as pyserini.encode's Auto encoders need)")
    if args.topics and (args.num_shards is not None or args.shard_id is not None
                        or int(os.environ.get("WORLD_SIZE", "1")) > 1):
        raise EncodeError("topics are encoded by one process, unsharded (no --num_shards/--shard_id/torchrun)")
    configure()
    (encode_topics if args.topics else encode_corpus)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
