"""The model check and the encode stage: every corpus of a plan into a flat inner-product Faiss index, merged
indexes as the union of their parts (not re-encoded), every query set once into Pyserini's pre-encoded queries.

Two encoders write the same files (``index/KEY/{index,docid}``, ``queries/KEY/embedding.pkl``):
``Encoder.OURS`` runs ``python -m hybrid_tevatron.pyserini.encode`` (bf16/fp16 autocast, length-sorted batches,
``--encode_processes N``: one shard per process under torchrun, merged), ``Encoder.PYSERINI`` runs Pyserini's own
``python -m pyserini.encode`` (``--encoder-class auto``) and ``python -m pyserini.encode.query``. Both encode as the
checkpoint says (:mod:`hybrid_tevatron.encoding`), command-line values over it.
"""

from __future__ import annotations

import enum
import os

from hybrid_tevatron.encoding import read_encoding
from hybrid_tevatron.eval.pipeline.search_plan import SearchPlan
from hybrid_tevatron.eval.runner import CliRunner, StepError
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

class Encoder(str, enum.Enum):
    OURS = "ours"
    PYSERINI = "pyserini"


class Dtype(str, enum.Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


def check_model(model: str) -> dict:
    """Check a local model folder (or a Hub id); return ``{"hidden_size": int, "model_type": str}``.

    The folder needs config, weights and a tokenizer with its vocabulary; the config and tokenizer must load, the
    tokenizer know words and fit the model's embeddings: :func:`hybrid_tevatron.model_files.check_model_loads`, the
    one place for those rules (``python -m hybrid_tevatron.pyserini.encode`` and training run it too)."""
    from hybrid_tevatron.model_files import check_model_loads

    return check_model_loads(model)


def pyserini_prefix(prefix: str, name: str) -> str:
    """Pyserini's Auto encoders prepend ``f"{prefix} {text}"``: pass the prefix without its trailing space."""
    if not prefix:
        return ""
    if not prefix.endswith(" "):
        raise StepError(f"{name} {prefix!r} does not end with a space: Pyserini's encoders always put one space "
                        "between prefix and text, so they cannot reproduce it; use --encoder ours")
    return prefix[:-1]


def resolve(model: str, overrides: dict, encoder: Encoder, dtype: Dtype) -> dict:
    """Check the model; its encoding settings (``hybrid_tevatron.json``, ``overrides`` over it) and size, as the
    ``encoding.json`` of the evaluation folder."""
    if encoder is Encoder.PYSERINI and dtype not in (Dtype.AUTO, Dtype.FP32):
        raise StepError(f"--dtype {dtype.value} needs --encoder ours (Pyserini's auto encoder runs in fp32)")
    info = check_model(model)
    settings, source = read_encoding(model, overrides)
    enc = settings.to_dict()
    if encoder is Encoder.PYSERINI:
        enc["pyserini_query_prefix"] = pyserini_prefix(enc["query_prefix"], "query_prefix")
        enc["pyserini_passage_prefix"] = pyserini_prefix(enc["passage_prefix"], "passage_prefix")
    return {"model": os.path.abspath(model) if os.path.isdir(model) else model, **info, **enc,
            "encoder": encoder.value, "dtype": dtype.value, "source": source}


class EncodeStage:
    """The encode stage of one evaluation: ``model_arg`` is what Pyserini sees (``model``, a link in the work
    folder, for a local model; else the Hub id)."""

    def __init__(self, enc: dict, model_arg: str, runner: CliRunner, device: str, batch_size: int,
                 encode_processes: int = 1):
        self.enc, self.model_arg, self.runner = enc, model_arg, runner
        self.encoder = Encoder(enc["encoder"])
        self.device, self.batch_size, self.encode_processes = device, batch_size, encode_processes

    def _ours(self, side: str, source: list) -> list:
        e = self.enc
        return ["--model", self.model_arg, *source, "--pooling", e["pooling"], "--prefix", e[f"{side}_prefix"],
                "--max_len", e[f"{side}_max_len"], "--device", self.device, "--batch_size", self.batch_size,
                "--dimension", e["hidden_size"], "--dtype", e["dtype"],
                "--normalize" if e["normalize"] else "--no-normalize"]

    def corpus(self, corpus: str, index: str) -> None:
        """Encode the JSONL ``corpus`` into the Faiss index folder ``index`` (paths absolute)."""
        e, rel = self.enc, self.runner.rel
        if self.encoder is Encoder.OURS:
            args = self._ours("passage", ["--corpus", rel(corpus)])
            if self.encode_processes > 1:
                from hybrid_tevatron.pyserini.parallel import encode_corpus_processes

                encode_corpus_processes(args, rel(index), self.encode_processes, record=self.runner.record,
                                        cwd=self.runner.cwd)
            else:
                self.runner.run("hybrid_tevatron.pyserini.encode", [*args, "--output", rel(index)])
            return
        enc = ["--encoder", self.model_arg, "--encoder-class", "auto", "--fields", "text", "--dimension",
               e["hidden_size"], "--device", self.device, "--pooling", e["pooling"], "--max-length",
               e["passage_max_len"], "--batch-size", self.batch_size]
        if e["normalize"]:
            enc.append("--l2-norm")
        if e["pyserini_passage_prefix"]:
            enc += ["--prefix", e["pyserini_passage_prefix"]]
        self.runner.run("pyserini.encode", ["input", "--corpus", rel(corpus), "--fields", "text",
                                            "output", "--embeddings", rel(index), "--to-faiss", "encoder", *enc])

    def queries(self, topics: str, out: str) -> None:
        """Encode the topics TSV ``topics`` into ``out/embedding.pkl`` (Pyserini's pre-encoded queries)."""
        e, rel = self.enc, self.runner.rel
        os.makedirs(out, exist_ok=True)
        if self.encoder is Encoder.OURS:
            self.runner.run("hybrid_tevatron.pyserini.encode",
                            [*self._ours("query", ["--topics", rel(topics)]), "--output", rel(out)])
            return
        args = ["--topics", rel(topics), "--encoder", self.model_arg,
                "--output", rel(os.path.join(out, "embedding.pkl")), "--device", self.device,
                "--pooling", e["pooling"], "--max-length", e["query_max_len"]]
        if e["normalize"]:
            args.append("--l2-norm")
        if e["pyserini_query_prefix"]:
            args += ["--prefx", e["pyserini_query_prefix"]]  # sic: Pyserini's flag name
        self.runner.run("pyserini.encode.query", args)

    def merge(self, out: str, parts: list[str]) -> None:
        """Pyserini's ``merge_faiss_index`` over ``parts``, which must be all the folders of one parent (it takes a
        glob pattern)."""
        parents = {os.path.dirname(p) for p in parts}
        if len(parents) != 1 or sorted(os.listdir(parents.pop())) != sorted(os.path.basename(p) for p in parts):
            raise StepError(f"merge parts must be all the folders of one parent: {parts}")
        self.runner.run("pyserini.encode.merge_faiss_index",
                        ["--dimension", self.enc["hidden_size"], "--input",
                         self.runner.rel(os.path.join(os.path.dirname(parts[0]), "*")), "--output",
                         self.runner.rel(out)])

    def encode_plan(self, plan: SearchPlan, work: str, unit: str, prebuilt: dict | None = None) -> None:
        """Encode every corpus of ``plan`` into ``work/index/KEY`` (or link the ``prebuilt`` index of KEY), build
        the merged indexes, encode every query set into ``work/queries/KEY``; check that each index holds its
        corpus (a merged one: all corpora) and each query file exists. ``unit``: what the log calls corpus items."""
        prebuilt = prebuilt or {}
        unknown = sorted(set(prebuilt) - set(plan.corpora))
        if unknown:
            raise StepError(f"--index names corpora this evaluation does not have: {', '.join(unknown)} "
                            f"(it has {', '.join(plan.corpora)})")
        if not plan.corpora or not plan.queries:
            raise StepError("the search plan lists no corpora or no queries")
        root = plan.root
        for key, c in plan.corpora.items():
            index = os.path.join(work, "index", key)
            if key in prebuilt:
                os.makedirs(os.path.dirname(index), exist_ok=True)
                os.symlink(os.path.abspath(prebuilt[key]), index)
                log.info(f"   corpus {key}: {c.size} {unit}, prebuilt index {prebuilt[key]}")
                continue
            log.info(f"   corpus {key}: {c.size} {unit}")
            self.corpus(os.path.join(root, c.path), index)
        for key, parts in plan.merged.items():
            self.merge(os.path.join(work, "index", key), [os.path.join(work, "index", p) for p in parts])
        for key, path in plan.queries.items():
            self.queries(os.path.join(root, path), os.path.join(work, "queries", key))
        total = 0
        for key, c in plan.corpora.items():
            total += c.size
            _check_index(work, f"index/{key}", c.size, f"the {c.size} {unit} of {c.path}")
        for key in plan.merged:
            _check_index(work, f"index/{key}", total, f"all {total} {unit}")
        for key in plan.queries:
            if not _nonempty(os.path.join(work, "queries", key, "embedding.pkl")):
                raise StepError(f"query encoding wrote no queries/{key}/embedding.pkl")


def _nonempty(path: str) -> bool:
    return os.path.isfile(path) and os.path.getsize(path) > 0


def _check_index(work: str, name: str, size: int, what: str) -> None:
    folder = os.path.join(work, name)
    if not _nonempty(os.path.join(folder, "index")) or not _nonempty(os.path.join(folder, "docid")):
        raise StepError(f"encoding wrote no Faiss index in {name}")
    with open(os.path.join(folder, "docid"), encoding="utf-8") as f:
        n = sum(1 for _ in f)
    if n != size:
        raise StepError(f"{name} holds {n} docids, not {what}")
