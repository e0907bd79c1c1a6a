"""The evaluation of the ``lareqa``, ``captions`` and ``miracl`` families, stage by stage, in one process: inputs,
encode, exact ranks, Faiss search, trec_eval, report (their options: :mod:`hybrid_tevatron.eval.options`).

    python -m hybrid_tevatron.eval lareqa MODEL DATASET_DIR OUTPUT_DIR [options]   # XQuAD-R, MLQA-R
    python -m hybrid_tevatron.eval captions MODEL OUTPUT_DIR --xtd10 DIR | --multi30k DIR --split S \
        | --multi30k_task2 DIR --split S | --files LANG=PATH ... [options]        # caption proxy
    python -m hybrid_tevatron.eval miracl MODEL OUTPUT_DIR --languages "de yo" [options]

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
reads an environment variable (:mod:`hybrid_tevatron.eval.options`).
"""

from __future__ import annotations

import os

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.data.caption_sources import source_from_args
from hybrid_tevatron.eval.benchmarks.captions import POOL_COMMAND, pool_argv, pool_summary, write_caption_pool
from hybrid_tevatron.eval.benchmarks.miracl import names_a_file
from hybrid_tevatron.eval.options import add_captions, add_lareqa, add_miracl, encoding_overrides, words
from hybrid_tevatron.eval.output import OutputFolder
from hybrid_tevatron.eval.pipeline.encode import Encoder, EncodeStage, resolve
from hybrid_tevatron.eval.pipeline.scoring import oracle, trec_eval
from hybrid_tevatron.eval.pipeline.search import search
from hybrid_tevatron.eval.pipeline.search_plan import SearchPlan, load_plan, plan_from_manifest, write_plan
from hybrid_tevatron.eval.program import Family
from hybrid_tevatron.eval.reports.evaluate import load_pool_manifest
from hybrid_tevatron.eval.runner import CliRunner, StepError, command_line
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)


def _local_source(value: str | None) -> str | None:
    """A topics/qrels value naming a file -> absolute (the stages run in the work folder); a Pyserini name, kept."""
    return os.path.abspath(value) if value and names_a_file(value) else value


class Evaluation:
    """What the pool families (LAReQA, captions) and MIRACL share: the model check, the output folder, the runner
    and the encode, search and trec_eval stages."""

    def __init__(self, args, out: OutputFolder):
        self.args, self.out, self.work = args, out, out.work
        self.runner = CliRunner(args.cli, out.record, out.work)
        model = args.model
        enc = resolve(model, encoding_overrides(args), args.encoder, args.dtype)
        atomic_write_json(os.path.join(self.work, "encoding.json"), enc)
        if os.path.isdir(model):
            os.symlink(os.path.abspath(model), os.path.join(self.work, "model"))
            model_arg = "model"
        else:
            model_arg = model
        device = args.device or _default_device()
        if args.encode_processes > 1 and args.encoder is not Encoder.OURS:
            raise StepError("--encode_processes needs --encoder ours")
        self.encode_stage = EncodeStage(enc, model_arg, self.runner, device, args.batch_size, args.encode_processes)
        log.info(f"model {model}: {enc['model_type']}, dim {enc['hidden_size']}, pooling {enc['pooling']}, "
                 f"normalize {int(enc['normalize'])}, query prefix '{enc['query_prefix']}' (max "
                 f"{enc['query_max_len']}), passage prefix '{enc['passage_prefix']}' (max {enc['passage_max_len']}); "
                 f"encoder {args.encoder.value} on {device}")

    def path(self, *parts) -> str:
        return os.path.join(self.work, *parts)

    def pool_stages(self, name: str, unit: str) -> str:
        """LAReQA and caption pools after their inputs: plan, encode, ranks, search, trec_eval, evaluate (with the
        cross-check); returns the evaluation's one-line summary and writes ``results/summary.txt``."""
        plan = plan_from_manifest(load_pool_manifest(self.path("inputs")), self.args.run_depth)
        write_plan(plan, self.path("inputs", "plan.json"))
        plan = plan.at(self.path("inputs"))
        with self.out.stage("2/6 encode"):
            self.encode_stage.encode_plan(plan, self.work, unit)
        with self.out.stage("3/6 ranks"):
            self.runner.run("hybrid_tevatron.eval.pipeline.ranks", [
                "--plan", "inputs", "--index_dir", "index", "--queries_dir", "queries", "--output_dir", "ranks",
                "--device", self.encode_stage.device, "--sample_lines", self.args.sample_lines])
        with self.out.stage("4/6 search"):
            search(plan, self.path("index"), self.path("queries"), self.path("runs"), self.runner, self.args.threads)
        with self.out.stage("5/6 trec_eval"):
            oracle(plan, self.path("runs"), self.path("ranks"), self.path("trec_eval"), self.runner)
        with self.out.stage("6/6 evaluate"):
            argv = ["--manifest", "inputs", "--ranks_dir", "ranks", "--runs_dir", "runs", "--output_dir", "results",
                    "--name", name, "--trec_eval_dir", "trec_eval"]
            if self.args.seen_languages:
                argv += ["--seen_languages", *words(self.args.seen_languages)]
            summary = self.runner.run("hybrid_tevatron.eval.reports.evaluate", argv, capture=True)
            with open(self.path("results", "summary.txt"), "w", encoding="utf-8") as f:
                f.write(summary)
        return summary

    def topk_stages(self, plan: SearchPlan, unit: str, prebuilt=None) -> None:
        """MIRACL: encode, top-k search, trec_eval on every run."""
        with self.out.stage("2/5 encode"):
            self.encode_stage.encode_plan(plan, self.work, unit, prebuilt)
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


def eval_lareqa(args) -> str:
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
                argv += ["--languages", *words(args.languages)]
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


def eval_captions(args) -> str:
    source = source_from_args(args, languages=words(args.languages), files=words(args.files))
    with OutputFolder(args.output_dir, args.overwrite) as out:
        name = args.name or os.path.basename(out.path)
        log.info(f"evaluating {args.model} on caption pools (caption proxy) -> {out.path} (work folder {out.work})")
        ev = Evaluation(args, out)
        with out.stage("1/6 caption pool"):
            out.record(command_line(POOL_COMMAND, pool_argv(source, "inputs", args.max_images)))
            inputs = os.path.join(out.work, "inputs")
            _log_lines(pool_summary(write_caption_pool(source, inputs, args.max_images), inputs))
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


def eval_miracl(args) -> str:
    languages = words(args.languages)
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
        ev.topk_stages(plan, "documents", prebuilt=prebuilt)
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


LAREQA_FAMILY = Family("lareqa", add_lareqa, eval_lareqa)
CAPTIONS_FAMILY = Family("captions", add_captions, eval_captions)
MIRACL_FAMILY = Family("miracl", add_miracl, eval_miracl)
