"""The evaluation program's command line: the options every family shares (encoding, search and output; the pools'
ranks, runs and cross-check) and the ``lareqa``, ``captions`` and ``miracl`` subcommands.

Every option also reads an environment variable (the option name in capitals: ``LANGUAGES``, ``POOLING``,
``ENCODER``, ...; ``--cli``: ``PYSERINI_CLI``); options win. Yes/no variables take ``1 true yes on`` or
``0 false no off``.
"""

from __future__ import annotations

import argparse
import os

from hybrid_tevatron.booleans import parse_bool
from hybrid_tevatron.data.caption_sources import add_source_arguments
from hybrid_tevatron.eval.pipeline.encode import Dtype, Encoder
from hybrid_tevatron.eval.pipeline.ranks import SAMPLE_LINES
from hybrid_tevatron.eval.pipeline.search_plan import RUN_DEPTH
from hybrid_tevatron.eval.runner import Cli, StepError


def env(name: str, default=None):
    """The environment variable ``name``; ``default`` when unset or empty."""
    value = os.environ.get(name)
    return default if value in (None, "") else value


def words(values) -> list[str]:
    """``["ar de", "en,es"]`` -> ``["ar", "de", "en", "es"]``: space- or comma-separated, repeatable."""
    if isinstance(values, str):
        values = [values]
    return [w for v in values or [] for w in v.replace(",", " ").split()]


def choice(enum_cls, flag: str):
    """argparse ``type`` for an enum option, with the one message for a bad value."""
    def parse(value):
        try:
            return enum_cls(value)
        except ValueError:
            names = [m.value for m in enum_cls]
            raise argparse.ArgumentTypeError(f"{flag} must be {', '.join(names[:-1])} or {names[-1]}, got "
                                             f"{value!r}") from None
    return parse


def flag_bool(name: str):
    """The yes/no environment variable ``name`` (:func:`hybrid_tevatron.booleans.parse_bool`); None when unset."""
    value = env(name)
    if value is None:
        return None
    flag = parse_bool(value)
    if flag is None:
        raise StepError(f"{name} must be 1 or 0, got {value!r}")
    return flag



# --------------------------------------------------------------------------------------------------- options


def encoding_options(p: argparse.ArgumentParser) -> None:
    """Every family's encoding, search and output options."""
    g = p.add_argument_group("encoding (default: the model's hybrid_tevatron.json, written by the trainer)")
    g.add_argument("--pooling", choices=["cls", "mean"], default=env("POOLING"))
    g.add_argument("--normalize", dest="normalize", action="store_const", const=True,
                   help="L2-normalise embeddings (env NORMALIZE=1|0)")
    g.add_argument("--no-normalize", "--no_normalize", dest="normalize", action="store_const", const=False)
    g.add_argument("--query_prefix", default=os.environ.get("QUERY_PREFIX"), help="e.g. 'query: '")
    g.add_argument("--passage_prefix", default=os.environ.get("PASSAGE_PREFIX"), help="e.g. 'passage: '")
    g.add_argument("--query_max_len", type=int, default=env("QUERY_MAX_LEN"))
    g.add_argument("--passage_max_len", type=int, default=env("PASSAGE_MAX_LEN"))
    g.add_argument("--encoder", type=choice(Encoder, "--encoder"), default=env("ENCODER", "ours"),
                   help="ours: python -m hybrid_tevatron.pyserini.encode; pyserini: python -m pyserini.encode "
                        "--encoder-class auto + python -m pyserini.encode.query (default ours)")
    g.add_argument("--device", default=env("DEVICE"), help="cpu, cuda, cuda:0 ... (default cuda:0 when "
                   "available, else cpu)")
    g.add_argument("--dtype", type=choice(Dtype, "--dtype"), default=env("DTYPE", "auto"),
                   help="--encoder ours: autocast dtype (auto = bf16 on CUDA, fp32 on CPU); Pyserini's is fp32")
    g.add_argument("--batch_size", type=int, default=int(env("BATCH_SIZE", 64)))
    g.add_argument("--encode_processes", type=int, default=int(env("ENCODE_PROCESSES", 1)),
                   help="--encoder ours: encode each corpus with N processes under torchrun (one shard each, one "
                        "GPU each when there are GPUs), merged into one index (default 1)")
    r = p.add_argument_group("search and output")
    r.add_argument("--threads", type=int, default=int(env("THREADS", 1)), help="Faiss search threads")
    r.add_argument("--cli", type=choice(Cli, "--cli"), default=env("PYSERINI_CLI", "inprocess"),
                   help="run the CLIs in this process (default) or one process each")
    r.add_argument("--name", default=env("NAME"), help="row name in the result tables (default: the output "
                   "folder's name)")
    r.add_argument("--overwrite", action="store_true", default=flag_bool("OVERWRITE") or False,
                   help="replace an existing, non-empty output folder")


def pool_options(p: argparse.ArgumentParser) -> None:
    """The pool families' (LAReQA, captions) ranks, runs and cross-check options."""
    g = p.add_argument_group("whole-pool ranks, runs and the trec_eval cross-check")
    g.add_argument("--run_depth", type=int, default=int(env("RUN_DEPTH", RUN_DEPTH)),
                   help=f"lines per query of the runs Pyserini writes (default {RUN_DEPTH}); the scores come from "
                        "the exact ranks and do not depend on it")
    g.add_argument("--sample_lines", type=int, default=int(env("SAMPLE_LINES", SAMPLE_LINES)),
                   help=f"full-ranking lines that trec_eval checks our metrics on (every query of a small pool, a "
                        f"seeded sample of a large one; default {SAMPLE_LINES})")


def add_lareqa(sub, name: str) -> argparse.ArgumentParser:
    """The LAReQA subcommand (XQuAD-R, MLQA-R)."""
    la = sub.add_parser(name, help="XQuAD-R / MLQA-R: mono X->X, cross X->Y, multilingual; rank distance",
                        description="Evaluate on LAReQA (XQuAD-R or MLQA-R) with Pyserini.")
    la.add_argument("model", help="a Hugging Face model folder (with its tokenizer) or a Hub id")
    la.add_argument("dataset_dir", help="a folder of LAReQA {lang}.json files (xquad-r/ or mlqa-r/)")
    la.add_argument("output_dir")
    d = la.add_argument_group("data selection")
    d.add_argument("--languages", nargs="+", default=env("LANGUAGES"), help="query/pool languages, space- or "
                   "comma-separated (default: all)")
    d.add_argument("--max_questions", type=int, default=env("MAX_QUESTIONS"),
                   help="the first N question ids only, and the sentences of their articles")
    d.add_argument("--full_pool", action="store_true", default=flag_bool("FULL_POOL") or False,
                   help="with --max_questions: keep every sentence in the pools")
    d.add_argument("--articles", action="append", default=words(env("ARTICLES")), metavar="SPEC",
                   help="keep these articles (index, title or @FILE; repeatable)")
    d.add_argument("--exclude_articles", action="append", default=words(env("EXCLUDE_ARTICLES")),
                   metavar="SPEC", help="drop these articles (same forms)")
    return _pool_subcommand(la, d)


def _pool_subcommand(parser: argparse.ArgumentParser, data) -> argparse.ArgumentParser:
    """What every pool subcommand (LAReQA, captions) ends with: --seen_languages in its data group, the pool and
    the encoding options."""
    data.add_argument("--seen_languages", nargs="+", default=env("SEEN_LANGUAGES"),
                      help="training languages, for a seen/unseen breakdown")
    pool_options(parser)
    encoding_options(parser)
    return parser


def add_captions(sub, name: str) -> argparse.ArgumentParser:
    """The caption-pool subcommand (the caption proxy)."""
    ca = sub.add_parser(name, help="caption pools (caption proxy for image retrieval): cross X->Y, X->en, "
                        "multilingual; rank distance",
                        description="Evaluate on multilingual captions of the same images (Multi30K, XTD10, any "
                                    "'one caption file per language' set): a caption in X must retrieve the captions "
                                    "of its image in the other languages. A caption proxy: no images are involved.")
    ca.add_argument("model")
    ca.add_argument("output_dir")
    d = ca.add_argument_group("data (one source)")
    add_source_arguments(d)
    d.add_argument("--languages", nargs="+", default=env("LANGUAGES"), help="default: every caption file")
    d.add_argument("--max_images", type=int, default=env("MAX_IMAGES"), help="the first N images only")
    return _pool_subcommand(ca, d)


def add_miracl(sub, name: str) -> argparse.ArgumentParser:
    """The MIRACL subcommand."""
    mi = sub.add_parser(name, help="MIRACL: nDCG@10 and R@100 per language",
                        description="Evaluate on MIRACL with Pyserini.")
    mi.add_argument("model")
    mi.add_argument("output_dir")
    d = mi.add_argument_group("data")
    d.add_argument("--languages", nargs="+", default=env("LANGUAGES"), help="MIRACL languages (required)")
    d.add_argument("--split", default=env("SPLIT", "dev"))
    d.add_argument("--topics", default=env("TOPICS"), help="Pyserini topics name or TSV file; {lang} and {split} "
                   "are filled in (default miracl-v1.0-{lang}-{split})")
    d.add_argument("--qrels", default=env("QRELS"), help="Pyserini qrels name or TREC qrels file (same default)")
    d.add_argument("--corpus", default=env("CORPUS"), help="hf:REPO, a .jsonl[.gz] file or a folder "
                   "(default hf:miracl/miracl-corpus)")
    d.add_argument("--index", action="append", default=[], metavar="LANG=DIR",
                   help="use this prebuilt Faiss index for LANG instead of encoding its corpus (e.g. one encoded "
                        "and merged on several nodes); repeatable")
    encoding_options(mi)
    return mi




def encoding_overrides(args) -> dict:
    """The encoding settings given on the command line (None: not given), over the model's ``hybrid_tevatron.json``."""
    normalize = args.normalize if args.normalize is not None else flag_bool("NORMALIZE")
    return {"pooling": args.pooling, "normalize": normalize, "query_prefix": args.query_prefix,
            "passage_prefix": args.passage_prefix, "query_max_len": args.query_max_len,
            "passage_max_len": args.passage_max_len}
