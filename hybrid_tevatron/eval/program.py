"""One evaluation program per benchmark family, in one process: inputs, encode, exact ranks, Faiss search,
trec_eval, report.

    python -m hybrid_tevatron.eval lareqa MODEL DATASET_DIR OUTPUT_DIR [options]   # XQuAD-R, MLQA-R
    python -m hybrid_tevatron.eval captions MODEL OUTPUT_DIR --xtd10 DIR | --multi30k DIR --split S \
        | --multi30k_task2 DIR --split S | --files LANG=PATH ... [options]        # caption proxy
    python -m hybrid_tevatron.eval miracl MODEL OUTPUT_DIR --languages "de yo" [options]
    python -m hybrid_tevatron.eval images MODEL OUTPUT_DIR --image_data DIR --image_index DIR   # image-text
                                                                        # (hybrid_tevatron.images.evaluate)

(``bash recipes/eval_lareqa.sh`` and ``bash recipes/eval_miracl.sh`` run exactly these.) Stages, each logged with
its time (``timings.tsv``):

1. inputs: LAReQA -> corpora, topics, qrels and a manifest
   (``python -m hybrid_tevatron.eval.benchmarks.lareqa``), caption files -> the same for a caption pool
   (``python -m hybrid_tevatron.data.captions pool``: cross X->Y and multilingual; each multi query's own caption
   is excluded from its pool), or MIRACL's topics, qrels and corpus
   (``python -m hybrid_tevatron.eval.benchmarks.miracl prepare``); the search plan.
2. encode: each corpus once into a flat inner-product Faiss index (LAReQA and captions: one per language, and the
   multilingual index merged from them with ``python -m pyserini.encode.merge_faiss_index``), each query set once.
3. ranks (LAReQA, captions): the exact rank of every relevant item in its search's whole pool, from the vectors
   (``python -m hybrid_tevatron.eval.pipeline.ranks``): mAP, R@k, nDCG@10 and the rank distance follow from them.
4. search: ``python -m pyserini.search.faiss``: MIRACL's top 100 per language; LAReQA's and captions' top
   ``--run_depth`` runs (default ``RUN_DEPTH``), one call per index (:mod:`hybrid_tevatron.eval.pipeline.search`).
5. trec_eval: ``python -m pyserini.eval.trec_eval``, the oracle: MIRACL's scores; for the pools, the full rankings
   of a seeded sample of queries (every query on small pools) and the top-k runs
   (:mod:`hybrid_tevatron.eval.pipeline.scoring`).
6. report: pools ``python -m hybrid_tevatron.eval.reports.evaluate`` (tables, heatmap, rank distance; the sample's
   metrics must equal trec_eval's to 1e-4, ``results/crosscheck.json``); MIRACL ``... miracl report``.

The Pyserini CLIs and ours run in this process (``--cli subprocess``: one process each); every command is
recorded in OUTPUT/commands.sh, replayable from OUTPUT. OUTPUT is written through
:class:`hybrid_tevatron.eval.output.OutputFolder`: created only when everything succeeded, never half-written,
one evaluation at a time; an existing non-empty OUTPUT is refused without ``--overwrite``. Every option also
reads an environment variable (the option name in capitals: ``LANGUAGES``, ``POOLING``, ``ENCODER``, ...;
``--cli``: ``PYSERINI_CLI``); options win.
"""

from __future__ import annotations

import argparse
import os
import sys

from hybrid_tevatron.booleans import parse_bool
from hybrid_tevatron.errors import HybridTevatronError, Interrupted
from hybrid_tevatron.eval.output import OutputFolder
from hybrid_tevatron.eval.pipeline.encode import Dtype, Encoder, EncodeStage, resolve
from hybrid_tevatron.eval.pipeline.ranks import SAMPLE_LINES
from hybrid_tevatron.eval.pipeline.scoring import oracle, trec_eval
from hybrid_tevatron.eval.pipeline.search import search
from hybrid_tevatron.eval.pipeline.search_plan import RUN_DEPTH, SearchPlan, load_plan, plan_from_manifest, write_plan
from hybrid_tevatron.eval.runner import Cli, CliRunner, StepError
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)


def _env(name: str, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def _words(values) -> list[str]:
    """``["ar de", "en,es"]`` -> ``["ar", "de", "en", "es"]``: space- or comma-separated, repeatable."""
    if isinstance(values, str):
        values = [values]
    return [w for v in values or [] for w in v.replace(",", " ").split()]


def _choice(enum_cls, flag: str):
    """argparse ``type`` for an enum option, with the one message for a bad value."""
    def parse(value):
        try:
            return enum_cls(value)
        except ValueError:
            names = [m.value for m in enum_cls]
            raise argparse.ArgumentTypeError(f"{flag} must be {', '.join(names[:-1])} or {names[-1]}, got "
                                             f"{value!r}") from None
    return parse


def _flag_bool(name: str):
    value = _env(name)
    if value is None:
        return None
    flag = parse_bool(value)
    if flag is None:
        raise StepError(f"{name} must be 1 or 0, got {value!r}")
    return flag


# --------------------------------------------------------------------------------------------------- arguments


def _encoding_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("encoding (default: the model's hybrid_tevatron.json, written by the trainer)")
    g.add_argument("--pooling", choices=["cls", "mean"], default=_env("POOLING"))
    g.add_argument("--normalize", dest="normalize", action="store_const", const=True,
                   help="L2-normalise embeddings (env NORMALIZE=1|0)")
    g.add_argument("--no-normalize", "--no_normalize", dest="normalize", action="store_const", const=False)
    g.add_argument("--query_prefix", default=os.environ.get("QUERY_PREFIX"), help="e.g. 'query: '")
    g.add_argument("--passage_prefix", default=os.environ.get("PASSAGE_PREFIX"), help="e.g. 'passage: '")
    g.add_argument("--query_max_len", type=int, default=_env("QUERY_MAX_LEN"))
    g.add_argument("--passage_max_len", type=int, default=_env("PASSAGE_MAX_LEN"))
    g.add_argument("--encoder", type=_choice(Encoder, "--encoder"), default=_env("ENCODER", "ours"),
                   help="ours: python -m hybrid_tevatron.pyserini.encode; pyserini: python -m pyserini.encode "
                        "--encoder-class auto + python -m pyserini.encode.query (default ours)")
    g.add_argument("--device", default=_env("DEVICE"), help="cpu, cuda, cuda:0 ... (default cuda:0 when "
                   "available, else cpu)")
    g.add_argument("--dtype", type=_choice(Dtype, "--dtype"), default=_env("DTYPE", "auto"),
                   help="--encoder ours: autocast dtype (auto = bf16 on CUDA, fp32 on CPU); Pyserini's is fp32")
    g.add_argument("--batch_size", type=int, default=int(_env("BATCH_SIZE", 64)))
    g.add_argument("--encode_processes", type=int, default=int(_env("ENCODE_PROCESSES", 1)),
                   help="--encoder ours: encode each corpus with N processes under torchrun (one shard each, one "
                        "GPU each when there are GPUs), merged into one index (default 1)")
    r = p.add_argument_group("search and output")
    r.add_argument("--threads", type=int, default=int(_env("THREADS", 1)), help="Faiss search threads")
    r.add_argument("--cli", type=_choice(Cli, "--cli"), default=_env("PYSERINI_CLI", "inprocess"),
                   help="run the CLIs in this process (default) or one process each")
    r.add_argument("--name", default=_env("NAME"), help="row name in the result tables (default: the output "
                   "folder's name)")
    r.add_argument("--overwrite", action="store_true", default=_flag_bool("OVERWRITE") or False,
                   help="replace an existing, non-empty output folder")


def _pool_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("whole-pool ranks, runs and the trec_eval cross-check")
    g.add_argument("--run_depth", type=int, default=int(_env("RUN_DEPTH", RUN_DEPTH)),
                   help=f"lines per query of the runs Pyserini writes (default {RUN_DEPTH}); the scores come from "
                        "the exact ranks and do not depend on it")
    g.add_argument("--sample_lines", type=int, default=int(_env("SAMPLE_LINES", SAMPLE_LINES)),
                   help=f"full-ranking lines that trec_eval checks our metrics on (every query of a small pool, a "
                        f"seeded sample of a large one; default {SAMPLE_LINES})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="family", required=True)
    la = sub.add_parser("lareqa", help="XQuAD-R / MLQA-R: mono X->X, cross X->Y, multilingual; rank distance",
                        description="Evaluate on LAReQA (XQuAD-R or MLQA-R) with Pyserini.")
    la.add_argument("model", help="a Hugging Face model folder (with its tokenizer) or a Hub id")
    la.add_argument("dataset_dir", help="a folder of LAReQA {lang}.json files (xquad-r/ or mlqa-r/)")
    la.add_argument("output_dir")
    d = la.add_argument_group("data selection")
    d.add_argument("--languages", nargs="+", default=_env("LANGUAGES"), help="query/pool languages, space- or "
                   "comma-separated (default: all)")
    d.add_argument("--max_questions", type=int, default=_env("MAX_QUESTIONS"),
                   help="the first N question ids only, and the sentences of their articles")
    d.add_argument("--full_pool", action="store_true", default=_flag_bool("FULL_POOL") or False,
                   help="with --max_questions: keep every sentence in the pools")
    d.add_argument("--articles", action="append", default=_words(_env("ARTICLES")), metavar="SPEC",
                   help="keep these articles (index, title or @FILE; repeatable)")
    d.add_argument("--exclude_articles", action="append", default=_words(_env("EXCLUDE_ARTICLES")),
                   metavar="SPEC", help="drop these articles (same forms)")
    d.add_argument("--seen_languages", nargs="+", default=_env("SEEN_LANGUAGES"),
                   help="training languages, for a seen/unseen breakdown")
    _pool_options(la)
    _encoding_options(la)

    ca = sub.add_parser("captions", help="caption pools (caption proxy for image retrieval): cross X->Y, X->en, "
                        "multilingual; rank distance",
                        description="Evaluate on multilingual captions of the same images (Multi30K, XTD10, any "
                                    "'one caption file per language' set): a caption in X must retrieve the captions "
                                    "of its image in the other languages. A caption proxy: no images are involved.")
    ca.add_argument("model")
    ca.add_argument("output_dir")
    d = ca.add_argument_group("data (one source)")
    d.add_argument("--multi30k", metavar="DIR", help="Multi30K folder ({split}.{lang}.gz), with --split")
    d.add_argument("--multi30k_task2", metavar="DIR", help="Multi30K task 2 folder (raw/{split}.{k}.{lang}.gz: "
                   "independent descriptions, several per image; adds mono X->X searches), with --split")
    d.add_argument("--split", help="with --multi30k: test_2016_flickr, test_2018_flickr, test_2017_mscoco, val ...; "
                   "with --multi30k_task2: test_2016, val")
    d.add_argument("--xtd10", metavar="DIR", help="XTD10 folder (test_1kcaptions_{lang}.txt)")
    d.add_argument("--files", nargs="+", metavar="LANG=PATH", help="caption files, line i = image i")
    d.add_argument("--image_names", help="with --files: image ids, one a line")
    d.add_argument("--languages", nargs="+", default=_env("LANGUAGES"), help="default: every caption file")
    d.add_argument("--max_images", type=int, default=_env("MAX_IMAGES"), help="the first N images only")
    d.add_argument("--seen_languages", nargs="+", default=_env("SEEN_LANGUAGES"),
                   help="training languages, for a seen/unseen breakdown")
    _pool_options(ca)
    _encoding_options(ca)

    from hybrid_tevatron.images.evaluate import add_parser as add_images_parser

    add_images_parser(sub)
    mi = sub.add_parser("miracl", help="MIRACL: nDCG@10 and R@100 per language",
                        description="Evaluate on MIRACL with Pyserini.")
    mi.add_argument("model")
    mi.add_argument("output_dir")
    d = mi.add_argument_group("data")
    d.add_argument("--languages", nargs="+", default=_env("LANGUAGES"), help="MIRACL languages (required)")
    d.add_argument("--split", default=_env("SPLIT", "dev"))
    d.add_argument("--topics", default=_env("TOPICS"), help="Pyserini topics name or TSV file; {lang} and {split} "
                   "are filled in (default miracl-v1.0-{lang}-{split})")
    d.add_argument("--qrels", default=_env("QRELS"), help="Pyserini qrels name or TREC qrels file (same default)")
    d.add_argument("--corpus", default=_env("CORPUS"), help="hf:REPO, a .jsonl[.gz] file or a folder "
                   "(default hf:miracl/miracl-corpus)")
    d.add_argument("--index", action="append", default=[], metavar="LANG=DIR",
                   help="use this prebuilt Faiss index for LANG instead of encoding its corpus (e.g. one encoded "
                        "and merged on several nodes); repeatable")
    _encoding_options(mi)
    return p


def _overrides(args) -> dict:
    normalize = args.normalize if args.normalize is not None else _flag_bool("NORMALIZE")
    return {"pooling": args.pooling, "normalize": normalize, "query_prefix": args.query_prefix,
            "passage_prefix": args.passage_prefix, "query_max_len": args.query_max_len,
            "passage_max_len": args.passage_max_len}


def _local_source(value: str | None) -> str | None:
    """A topics/qrels value naming a file -> absolute (the stages run in the work folder); a Pyserini name, kept."""
    from hybrid_tevatron.eval.benchmarks.miracl import names_a_file

    return os.path.abspath(value) if value and names_a_file(value) else value


# --------------------------------------------------------------------------------------------------- the flow


class Evaluation:
    """The shared part of both families: the model check, the output folder, the runner and the encode,
    search and trec_eval stages."""

    def __init__(self, args, out: OutputFolder):
        self.args, self.out, self.work = args, out, out.work
        self.runner = CliRunner(args.cli, out.record, out.work)
        model = args.model
        enc = resolve(model, _overrides(args), args.encoder, args.dtype)
        from hybrid_tevatron.atomic import atomic_write_json

        atomic_write_json(os.path.join(self.work, "encoding.json"), enc)
        if os.path.isdir(model):
            os.symlink(os.path.abspath(model), os.path.join(self.work, "model"))
            model_arg = "model"
        else:
            model_arg = model
        device = args.device or _default_device()
        if args.encode_processes > 1 and args.encoder is not Encoder.OURS:
            raise StepError("--encode_processes needs --encoder ours")
        self.encoding = EncodeStage(enc, model_arg, self.runner, device, args.batch_size, args.encode_processes)
        log.info(f"model {model}: {enc['model_type']}, dim {enc['hidden_size']}, pooling {enc['pooling']}, "
                 f"normalize {int(enc['normalize'])}, query prefix '{enc['query_prefix']}' (max "
                 f"{enc['query_max_len']}), passage prefix '{enc['passage_prefix']}' (max {enc['passage_max_len']}); "
                 f"encoder {args.encoder.value} on {device}")

    def path(self, *parts) -> str:
        return os.path.join(self.work, *parts)

    def pool_stages(self, name: str, unit: str) -> str:
        """LAReQA and caption pools after their inputs: plan, encode, ranks, search, trec_eval, evaluate (with the
        cross-check); returns the evaluation's one-line summary and writes ``results/summary.txt``."""
        from hybrid_tevatron.eval.reports.evaluate import load_pool_manifest

        plan = plan_from_manifest(load_pool_manifest(self.path("inputs")), self.args.run_depth)
        write_plan(plan, self.path("inputs", "plan.json"))
        plan = plan.at(self.path("inputs"))
        with self.out.stage("2/6 encode"):
            self.encoding.plan(plan, self.work, unit)
        with self.out.stage("3/6 ranks"):
            self.runner.run("hybrid_tevatron.eval.pipeline.ranks", [
                "--plan", "inputs", "--index_dir", "index", "--queries_dir", "queries", "--output_dir", "ranks",
                "--device", self.encoding.device, "--sample_lines", self.args.sample_lines])
        with self.out.stage("4/6 search"):
            search(plan, self.path("index"), self.path("queries"), self.path("runs"), self.runner, self.args.threads)
        with self.out.stage("5/6 trec_eval"):
            oracle(plan, self.path("runs"), self.path("ranks"), self.path("trec_eval"), self.runner)
        with self.out.stage("6/6 evaluate"):
            argv = ["--manifest", "inputs", "--ranks_dir", "ranks", "--runs_dir", "runs", "--output_dir", "results",
                    "--name", name, "--trec_eval_dir", "trec_eval"]
            if self.args.seen_languages:
                argv += ["--seen_languages", *_words(self.args.seen_languages)]
            summary = self.runner.run("hybrid_tevatron.eval.reports.evaluate", argv, capture=True)
            with open(self.path("results", "summary.txt"), "w", encoding="utf-8") as f:
                f.write(summary)
        return summary

    def run_stages(self, plan: SearchPlan, unit: str, prebuilt=None) -> None:
        """MIRACL: encode, top-k search, trec_eval on every run."""
        with self.out.stage("2/5 encode"):
            self.encoding.plan(plan, self.work, unit, prebuilt)
        with self.out.stage("3/5 search"):
            search(plan, self.path("index"), self.path("queries"), self.path("runs"), self.runner, self.args.threads)
        with self.out.stage("4/5 trec_eval"):
            trec_eval(plan, self.path("runs"), self.path("trec_eval"), self.runner)


def _log_lines(text: str) -> None:
    for line in text.splitlines():
        log.info(f"   {line}")


def _default_device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def run_lareqa(args) -> str:
    dataset = os.path.abspath(args.dataset_dir)
    if not os.path.isdir(dataset):
        raise StepError(f"dataset folder not found: {args.dataset_dir}")
    if not any(f.endswith(".json") for f in os.listdir(dataset)):
        raise StepError(f"{dataset} holds no {{lang}}.json LAReQA files")
    with OutputFolder(args.output_dir, args.overwrite) as out:
        name = args.name or os.path.basename(out.path)
        log.info(f"evaluating {args.model} on {dataset} -> {out.path} (work folder {out.work})")
        ev = Evaluation(args, out)
        with out.stage("1/6 LAReQA inputs"):
            argv = ["--data_dir", dataset, "--output_dir", "inputs"]
            if args.languages:
                argv += ["--languages", *_words(args.languages)]
            if args.max_questions is not None:
                argv += ["--max_questions", args.max_questions]
            if args.full_pool:
                argv.append("--full_pool")
            if args.articles:
                argv += ["--articles", *args.articles]
            if args.exclude_articles:
                argv += ["--exclude_articles", *args.exclude_articles]
            _log_lines(ev.runner.run("hybrid_tevatron.eval.benchmarks.lareqa", argv, capture=True))
        summary = ev.pool_stages(name, "sentences")
        final = out.path
    _print_pool_outputs(final, summary, args.run_depth)
    return final


def run_captions(args) -> str:
    sources = [flag for flag, value in (("--multi30k", args.multi30k), ("--multi30k_task2", args.multi30k_task2),
                                        ("--xtd10", args.xtd10), ("--files", args.files)) if value]
    if len(sources) != 1:
        raise StepError(f"give exactly one of --multi30k DIR --split S, --multi30k_task2 DIR --split S, --xtd10 DIR, "
                        f"--files LANG=PATH ... (got {' '.join(sources) or 'none'})")
    with OutputFolder(args.output_dir, args.overwrite) as out:
        name = args.name or os.path.basename(out.path)
        log.info(f"evaluating {args.model} on caption pools (caption proxy) -> {out.path} (work folder {out.work})")
        ev = Evaluation(args, out)
        with out.stage("1/6 caption pool"):
            argv = ["pool", "--output_dir", "inputs"]
            if args.multi30k:
                argv += ["--multi30k", os.path.abspath(args.multi30k), "--split", args.split or ""]
            elif args.multi30k_task2:
                argv += ["--multi30k_task2", os.path.abspath(args.multi30k_task2), "--split", args.split or ""]
            elif args.xtd10:
                argv += ["--xtd10", os.path.abspath(args.xtd10)]
            else:
                argv += ["--files", *[f"{lang}={os.path.abspath(path)}" for lang, _, path in
                                      (f.partition("=") for f in _words(args.files))]]
                if args.image_names:
                    argv += ["--image_names", os.path.abspath(args.image_names)]
            if args.languages:
                argv += ["--languages", *_words(args.languages)]
            if args.max_images is not None:
                argv += ["--max_images", args.max_images]
            _log_lines(ev.runner.run("hybrid_tevatron.data.captions", argv, capture=True))
        summary = ev.pool_stages(name, "captions")
        final = out.path
    _print_pool_outputs(final, summary, args.run_depth)
    return final


def _print_pool_outputs(o: str, summary: str, depth: int) -> None:
    print(summary.splitlines()[0] if summary else "")
    print(f"""
results:   {o}/results/results.json
tables:    {o}/results/results.md
heatmap:   {o}/results/cross_map.png
check:     {o}/results/crosscheck.json (metrics from the ranks vs trec_eval)
ranks:     {o}/ranks/{{search}}.tsv (whole-pool rank of every relevant item)
runs:      {o}/runs/{{search}}.trec (top {depth})   trec_eval: {o}/trec_eval/ (oracle.json)
indexes:   {o}/index/{{lang/X,all}}   queries: {o}/queries/X/embedding.pkl
commands:  {o}/commands.sh   timings: {o}/timings.tsv   settings: {o}/encoding.json""")


def run_miracl(args) -> str:
    languages = _words(args.languages)
    if not languages:
        raise StepError('--languages is required (e.g. --languages "de yo")')
    prebuilt = {}
    for spec in args.index:
        lang, sep, folder = spec.partition("=")
        if not sep or not lang or not folder:
            raise StepError(f"--index expects LANG=DIR, got {spec!r}")
        if not os.path.isfile(os.path.join(folder, "index")) or not os.path.isfile(os.path.join(folder, "docid")):
            raise StepError(f"--index {spec}: {folder} is not a Faiss index folder (index + docid)")
        prebuilt[lang] = os.path.abspath(folder)
    with OutputFolder(args.output_dir, args.overwrite) as out:
        name = args.name or os.path.basename(out.path)
        log.info(f"evaluating {args.model} on MIRACL ({' '.join(languages)}, {args.split}) -> {out.path} "
                 f"(work folder {out.work})")
        ev = Evaluation(args, out)
        with out.stage("1/5 MIRACL inputs"):
            argv = ["prepare", "--languages", *languages, "--output_dir", "inputs", "--split", args.split]
            for flag, value in (("--topics", _local_source(args.topics)), ("--qrels", _local_source(args.qrels)),
                                ("--corpus", args.corpus if not args.corpus or args.corpus.startswith("hf:")
                                 else os.path.abspath(args.corpus))):
                if value:
                    argv += [flag, value]
            _log_lines(ev.runner.run("hybrid_tevatron.eval.benchmarks.miracl", argv, capture=True))
            plan = load_plan(ev.path("inputs", "plan.json"))
        ev.run_stages(plan, "documents", prebuilt=prebuilt)
        with out.stage("5/5 report"):
            ev.runner.run("hybrid_tevatron.eval.benchmarks.miracl", ["report", "--inputs", "inputs", "--trec_eval_dir",
                                                         "trec_eval", "--output_dir", "results", "--name", name],
                          capture=True)
        final = out.path
    o = final
    with open(os.path.join(o, "results", "results.md"), encoding="utf-8") as f:
        print(f.read())
    print(f"""results:   {o}/results/results.json
table:     {o}/results/results.md
runs:      {o}/runs/{{lang}}.trec   trec_eval: {o}/trec_eval/{{lang}}.txt
indexes:   {o}/index/{{lang}}   queries: {o}/queries/{{lang}}/embedding.pkl
commands:  {o}/commands.sh   timings: {o}/timings.tsv   settings: {o}/encoding.json""")
    return final


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from hybrid_tevatron.images.evaluate import run as run_images

        {"lareqa": run_lareqa, "captions": run_captions, "miracl": run_miracl, "images": run_images}[args.family](args)
    except Interrupted as err:
        log.error(f"error: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except HybridTevatronError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
