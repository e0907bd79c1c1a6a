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
topics); flags override. ``--prefix`` is prepended literally (``'query: '``, with its space, as in training).
Outputs appear only when complete: a temporary folder/file beside the target, renamed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from hybrid_tevatron._pyserini_env import configure


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] hybrid_tevatron.pyserini.encode: {msg}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.pyserini.encode",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", "--encoder", dest="model", required=True, help="HF model folder or Hub id")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", help="Pyserini JSONL corpus (file or folder) -> Faiss index")
    src.add_argument("--topics", help="topics (TSV 'qid<TAB>text', or any Pyserini topics file) -> embedding.pkl")
    p.add_argument("--queries", action="store_true",
                   help="query mode (implied by --topics; accepted for explicitness, needs --topics)")
    p.add_argument("--output", required=True, help="index folder (corpus) or folder / .pkl file (topics)")
    p.add_argument("--pooling", choices=["cls", "mean"], help="default: the checkpoint's, else cls")
    p.add_argument("--normalize", "--l2-norm", dest="normalize", action="store_const", const=True,
                   help="L2-normalise (default: the checkpoint's, else off)")
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
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output")
    return p


def _check_target(path: str, overwrite: bool) -> None:
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise SystemExit(f"error: {path} exists and is not empty (pass --overwrite to replace it)")
    if os.path.exists(path) and not os.path.isdir(path) and not overwrite:
        raise SystemExit(f"error: {path} exists (pass --overwrite to replace it)")


def encode_corpus(args) -> dict:
    from pyserini.encode import JsonlCollectionIterator
    from pyserini.encode.optional import FaissRepresentationWriter

    from hybrid_tevatron.pyserini.encoders import HybridDocumentEncoder

    out = os.path.abspath(args.output)
    _check_target(out, args.overwrite)
    encoder = HybridDocumentEncoder(args.model, device=args.device, pooling=args.pooling, l2_norm=args.normalize,
                                    prefix=args.prefix, max_length=args.max_len, batch_size=args.batch_size,
                                    dtype=args.dtype)
    dim = encoder.dimension
    if args.dimension is not None and args.dimension != dim:
        raise SystemExit(f"error: --dimension {args.dimension} but {args.model} embeds in {dim} dimensions")
    delimiter = args.delimiter.replace("\\n", "\n")
    collection = JsonlCollectionIterator(args.corpus, args.fields, args.docid_field, delimiter)
    n = collection.size if args.limit is None else min(args.limit, collection.size)
    info = collection.all_info
    _log(f"{n} documents of {args.corpus}: pooling {encoder.pooling}, normalize {encoder.l2_norm}, "
         f"prefix {encoder.prefix!r}, max_len {encoder.max_length}, device {encoder.device}, "
         f"dtype {encoder.engine.autocast_dtype or 'fp32'}, batch {args.batch_size}")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp.", dir=parent)
    t0 = time.perf_counter()
    try:
        writer = FaissRepresentationWriter(tmp, dimension=dim)
        with writer:
            for start in range(0, n, args.sort_window):
                stop = min(start + args.sort_window, n)
                texts = [t or "" for t in info["text"][start:stop]]
                titles = info["title"][start:stop] if "title" in args.fields else None  # as pyserini.encode
                vectors = encoder.encode(texts, titles=titles)
                writer.write({"id": info["id"][start:stop], "vector": vectors}, args.fields)
                _log(f"{stop}/{n} encoded ({stop / max(time.perf_counter() - t0, 1e-9):.1f}/s)")
        seconds = time.perf_counter() - t0
        if os.path.isdir(out):
            shutil.rmtree(out)
        elif os.path.exists(out):
            os.remove(out)
        os.rename(tmp, out)
        os.chmod(out, 0o755)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log(f"wrote {out}/index + docid: {n} x {dim} in {seconds:.2f}s ({n / max(seconds, 1e-9):.1f} docs/s)")
    return {"count": n, "seconds": seconds, "output": out}


def encode_topics(args) -> dict:
    import pandas as pd
    from pyserini.query_iterator import DefaultQueryIterator

    from hybrid_tevatron.pyserini.encoders import HybridQueryEncoder

    out = os.path.abspath(args.output)
    target = out if out.endswith(".pkl") else os.path.join(out, "embedding.pkl")
    _check_target(target, args.overwrite)
    encoder = HybridQueryEncoder(args.model, device=args.device, pooling=args.pooling, l2_norm=args.normalize,
                                 prefix=args.prefix, max_length=args.max_len, batch_size=args.batch_size,
                                 dtype=args.dtype)
    if args.dimension is not None and args.dimension != encoder.dimension:
        raise SystemExit(f"error: --dimension {args.dimension} but {args.model} embeds in {encoder.dimension}")
    ids, texts = [], []
    for qid, text in DefaultQueryIterator.from_topics(args.topics):
        ids.append(qid)
        texts.append(text)
        if args.limit is not None and len(ids) >= args.limit:
            break
    t0 = time.perf_counter()
    vectors = encoder.encode_batch(texts)
    seconds = time.perf_counter() - t0
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".embedding.", suffix=".pkl.tmp", dir=os.path.dirname(target))
    os.close(fd)
    try:
        pd.DataFrame({"id": ids, "text": texts, "embedding": list(vectors)}).to_pickle(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _log(f"wrote {target}: {len(ids)} queries (pooling {encoder.pooling}, normalize {encoder.l2_norm}, prefix "
         f"{encoder.prefix!r}, max_len {encoder.max_length}) in {seconds:.2f}s")
    return {"count": len(ids), "seconds": seconds, "output": target}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.queries and not args.topics:
        raise SystemExit("error: --queries needs --topics")
    if args.batch_size < 1 or args.sort_window < 1:
        raise SystemExit("error: --batch_size and --sort_window must be >= 1")
    if "text" not in args.fields:
        raise SystemExit("error: --fields must include text (as pyserini.encode's Auto encoders need)")
    configure()
    (encode_topics if args.topics else encode_corpus)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
