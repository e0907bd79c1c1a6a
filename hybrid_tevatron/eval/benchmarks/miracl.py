"""MIRACL -> Pyserini inputs (corpus JSONL, topics TSV, qrels, search plan) and the nDCG@10 / R@100 report.

    python -m hybrid_tevatron.eval.benchmarks.miracl prepare --languages de yo --output_dir miracl/inputs \\
        [--split dev] [--topics PATTERN] [--qrels PATTERN] [--corpus SOURCE]
    python -m hybrid_tevatron.eval.benchmarks.miracl report --inputs miracl/inputs --trec_eval_dir E --output_dir R

Sources (``{lang}`` and ``{split}`` are filled in per language):

- ``--topics`` / ``--qrels``: default ``miracl-v1.0-{lang}-{split}``, a Pyserini topics/qrels name. Pyserini 1.6
  does not bundle these files: Anserini downloads them on first use from
  ``https://raw.githubusercontent.com/castorini/anserini-tools/master/topics-and-qrels/`` into
  ``~/.cache/pyserini/topics-and-qrels/`` (``topics.miracl-v1.0-de-dev.tsv``, ``qrels.miracl-v1.0-de-dev.tsv``)
  and reads them from there afterwards, offline. Any value that names an existing file is read as a local
  topics TSV (``qid<TAB>query``) / TREC qrels file instead.
- ``--corpus``: default ``hf:miracl/miracl-corpus``, the Hugging Face dataset repository; only the language's files
  ``miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz`` are fetched (``huggingface_hub.snapshot_download``, cached in the
  HF cache, so ``HF_HUB_OFFLINE=1`` works once cached). The repository is script-based, which ``datasets`` >= 4
  cannot load, hence the direct file download. A local path is read instead: a ``.jsonl``/``.jsonl.gz`` file, a
  folder of them, or a local copy of the repository (a folder holding ``miracl-corpus-v1.0-{lang}/``).
  Records are ``{"docid", "title", "text"}``.

Output layout (paths in ``manifest.json`` / ``plan.json`` are relative to the output folder)::

    corpus/{lang}.jsonl    {"id": docid, "contents": "title text"}  (whitespace runs -> one space)
    topics/{lang}.tsv      qid \\t query
    qrels/{lang}.txt       TREC qrels as given
    manifest.json          languages, sources, counts
    plan.json              search plan (``hybrid_tevatron.eval.pipeline.search_plan``; top 100 per query; trec_eval
                           ``-c -M 100 -m ndcg_cut.10`` and ``-c -m recall.100``)

The output folder is written to a temporary folder beside it and renamed into place at the end.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import re
import shutil
import sys

from hybrid_tevatron.atomic import atomic_dir, atomic_write_json, atomic_write_text
from hybrid_tevatron.errors import HybridTevatronError, first_line, report_errors
from hybrid_tevatron.eval.pipeline.search_plan import Corpus, Search, SearchPlan, write_plan
from hybrid_tevatron.eval.trec import parse_trec_eval
from hybrid_tevatron.eval.trec import read_qrels as read_qrels_file
from hybrid_tevatron.jsonfiles import read_format
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

MANIFEST_FORMAT = "hybrid_tevatron.miracl/1"
HF_REPO = "miracl/miracl-corpus"
DEFAULT_CORPUS = f"hf:{HF_REPO}"
DEFAULT_TOPICS = "miracl-v1.0-{lang}-{split}"
DEFAULT_QRELS = "miracl-v1.0-{lang}-{split}"
LANGUAGES = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "yo",
             "zh")
HITS = 100
TREC_EVAL_ARGS = [["-c", "-M", "100", "-m", "ndcg_cut.10"], ["-c", "-m", "recall.100"]]
MEASURES = {"ndcg_cut_10": "nDCG@10", "recall_100": "R@100"}
PYSERINI_CACHE = "~/.cache/pyserini/topics-and-qrels"
_WS = re.compile(r"\s+")


class MiraclError(HybridTevatronError, ValueError):
    """A problem with a MIRACL source; the message names it."""


def clean(text: str) -> str:
    return _WS.sub(" ", text or "").strip()


def _fill(pattern: str, lang: str, split: str) -> str:
    return pattern.replace("{lang}", lang).replace("{split}", split)


# ------------------------------------------------------------------------------------------------ topics, qrels


def names_a_file(source: str) -> bool:
    """A ``--topics``/``--qrels`` value is a file when it exists, holds a path separator or ends in .tsv/.txt;
    anything else is a Pyserini name."""
    return os.path.isfile(source) or os.path.sep in source or source.endswith((".tsv", ".txt"))


def _pyserini_named(source: str, kind: str, load):
    """``load(source)`` for a Pyserini ``kind`` name ('topics' or 'qrels'), with one set of error messages."""
    from pyserini.search import _base

    if names_a_file(source):
        raise MiraclError(f"{kind} file not found: {source}")
    if source not in getattr(_base, f"{kind}_mapping"):
        raise MiraclError(f"{source!r} is neither a {kind} file nor a Pyserini {kind} name")
    try:
        return load(source)
    except Exception as err:  # noqa: BLE001 - Anserini raises Java exceptions
        raise MiraclError(f"Pyserini could not load the {kind} {source!r}: {first_line(err)}. Pyserini 1.6 downloads "
                          f"them on first use into {PYSERINI_CACHE}; offline, copy {kind}.{source}.tsv there or "
                          f"pass --{kind} FILE") from None


def load_topics(source: str) -> tuple[dict[str, str], str]:
    """``{qid: query}`` from a TSV file or a Pyserini topics name; returns (topics, description of the source)."""
    if os.path.isfile(source):
        topics = {}
        with open(source, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                qid, sep, text = line.rstrip("\n").partition("\t")
                if not sep or not qid.strip() or not text.strip():
                    raise MiraclError(f"{source}:{n}: expected 'qid<TAB>query', got {line.rstrip()!r}")
                if qid.strip() in topics:
                    raise MiraclError(f"{source}:{n}: duplicate query id {qid.strip()}")
                topics[qid.strip()] = clean(text)
        if not topics:
            raise MiraclError(f"{source}: no topics")
        return topics, f"file {os.path.abspath(source)}"
    from pyserini.search import get_topics

    raw = _pyserini_named(source, "topics", get_topics)
    topics = {str(qid): clean(t.get("title", "")) for qid, t in raw.items()}
    if not topics:
        raise MiraclError(f"Pyserini topics {source!r} are empty")
    return topics, f"pyserini topics {source}"


def load_qrels(source: str) -> tuple[str, str]:
    """Path of a TREC qrels file: ``source`` itself or the file of a Pyserini qrels name."""
    if os.path.isfile(source):
        return source, f"file {os.path.abspath(source)}"
    from pyserini.search import get_qrels_file

    path = _pyserini_named(source, "qrels", get_qrels_file)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise MiraclError(f"Pyserini returned an empty qrels file for {source!r}: {path}")
    return path, f"pyserini qrels {source} ({path})"


def read_qrels(path: str) -> list[tuple[str, str, int]]:
    """``(qid, docid, relevance)`` rows of a TREC qrels file (:func:`hybrid_tevatron.eval.trec.read_qrels`)."""
    return [(q, d, rel) for q, docs in read_qrels_file(path).items() for d, rel in docs.items()]


# ------------------------------------------------------------------------------------------------ corpus


def corpus_files(source: str, lang: str) -> tuple[list[str], str]:
    """The ``.jsonl[.gz]`` files of ``lang``'s corpus from a local path or ``hf:REPO``; (files, description)."""
    if source.startswith("hf:"):
        repo = source[3:]
        sub = f"miracl-corpus-v1.0-{lang}"
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(repo_id=repo, repo_type="dataset", allow_patterns=[f"{sub}/*"])
        except Exception as err:  # noqa: BLE001 - offline, missing repo, network errors
            raise MiraclError(f"cannot fetch {sub}/ from the Hugging Face dataset {repo}: {first_line(err)}. "
                              "Offline, pass --corpus with a local copy (a docs-*.jsonl.gz folder or file)") from None
        files = _jsonl_files(os.path.join(local, sub))
        if not files:
            raise MiraclError(f"the Hugging Face dataset {repo} has no {sub}/docs-*.jsonl.gz (language {lang!r})")
        return files, f"hf dataset {repo} ({sub})"
    if os.path.isfile(source):
        return [source], f"file {os.path.abspath(source)}"
    if os.path.isdir(source):
        nested = os.path.join(source, f"miracl-corpus-v1.0-{lang}")
        folder = nested if os.path.isdir(nested) else source
        files = _jsonl_files(folder)
        if not files:
            raise MiraclError(f"{folder}: no .jsonl or .jsonl.gz corpus files")
        return files, f"folder {os.path.abspath(folder)}"
    raise MiraclError(f"corpus not found: {source}")


def _jsonl_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*.jsonl")) + glob.glob(os.path.join(folder, "*.jsonl.gz")))


def convert_corpus(files: list[str], out_path: str) -> tuple[int, set[str]]:
    """MIRACL ``{docid, title, text}`` records -> Pyserini ``{"id", "contents"}`` JSONL; (count, docids)."""
    ids: set[str] = set()
    with open(out_path, "w", encoding="utf-8") as out:
        for path in files:
            opener = gzip.open if path.endswith(".gz") else open
            try:
                with opener(path, "rt", encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        if not line.strip():
                            continue
                        try:
                            rec = json.loads(line)
                        except json.JSONDecodeError as err:
                            raise MiraclError(f"{path}:{n}: malformed JSON: {err.msg}") from None
                        docid = rec.get("docid", rec.get("id", rec.get("_id"))) if isinstance(rec, dict) else None
                        if docid is None or not isinstance(rec.get("text"), str):
                            raise MiraclError(f"{path}:{n}: expected a record with 'docid' and 'text'")
                        docid = str(docid)
                        if docid in ids:
                            raise MiraclError(f"{path}:{n}: duplicate docid {docid}")
                        ids.add(docid)
                        contents = clean(f"{rec.get('title') or ''} {rec['text']}")
                        out.write(json.dumps({"id": docid, "contents": contents}, ensure_ascii=False) + "\n")
            except (OSError, EOFError, UnicodeDecodeError) as err:
                raise MiraclError(f"{path}: unreadable: {err}") from None
    if not ids:
        raise MiraclError(f"no documents in {', '.join(files)}")
    return len(ids), ids


# ------------------------------------------------------------------------------------------------ prepare


def prepare(languages, output_dir: str, split: str = "dev", topics: str = DEFAULT_TOPICS,
            qrels: str = DEFAULT_QRELS, corpus: str = DEFAULT_CORPUS, overwrite: bool = False, log=None) -> dict:
    languages = list(dict.fromkeys(languages))
    if not languages:
        raise MiraclError("no languages given")
    output_dir = os.path.abspath(output_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise MiraclError(f"{output_dir}: folder exists and is not empty (pass --overwrite to replace it)")
    with atomic_dir(output_dir) as tmp:
        manifest = _prepare_into(languages, tmp, split, topics, qrels, corpus, log)
    return manifest


def _prepare_into(languages, root, split, topics_pattern, qrels_pattern, corpus_pattern, log) -> dict:
    for sub in ("corpus", "topics", "qrels"):
        os.makedirs(os.path.join(root, sub))
    manifest = {"format": MANIFEST_FORMAT, "split": split, "languages": languages, "sources": {}, "counts": {},
                "warnings": []}
    corpora, queries, searches = {}, {}, []
    for lang in languages:
        t_src, q_src, c_src = (_fill(p, lang, split) for p in (topics_pattern, qrels_pattern, corpus_pattern))
        topics, t_desc = load_topics(t_src)
        qrels_path, q_desc = load_qrels(q_src)
        rows = read_qrels(qrels_path)
        files, c_desc = corpus_files(c_src, lang)
        if log:
            log(f"{lang}: {len(topics)} topics ({t_desc}), {len(rows)} judgements ({q_desc}), "
                f"corpus {c_desc}: {len(files)} files")
        n_docs, ids = convert_corpus(files, os.path.join(root, "corpus", f"{lang}.jsonl"))
        judged_queries = {q for q, _d, _r in rows}
        relevant = [(q, d) for q, d, r in rows if r > 0]
        if not relevant:
            raise MiraclError(f"{lang}: the qrels ({q_desc}) hold no relevant documents")
        missing_docs = sorted({d for _q, d in relevant if d not in ids})
        if len(missing_docs) == len({d for _q, d in relevant}):
            raise MiraclError(f"{lang}: none of the {len(missing_docs)} relevant documents of the qrels is in the "
                              f"corpus ({c_desc}); wrong language or corpus?")
        if missing_docs:
            manifest["warnings"].append(f"{lang}: {len(missing_docs)} relevant documents are not in the corpus, "
                                        f"e.g. {missing_docs[:3]}")
        no_topic = sorted(judged_queries - set(topics))
        if len(no_topic) == len(judged_queries):
            raise MiraclError(f"{lang}: no query of the qrels ({q_desc}) is in the topics ({t_desc})")
        if no_topic:
            manifest["warnings"].append(f"{lang}: {len(no_topic)} judged queries have no topic, e.g. {no_topic[:3]}")
        with open(os.path.join(root, "topics", f"{lang}.tsv"), "w", encoding="utf-8") as f:
            for qid, text in topics.items():
                f.write(f"{qid}\t{text}\n")
        shutil.copyfile(qrels_path, os.path.join(root, "qrels", f"{lang}.txt"))
        manifest["sources"][lang] = {"topics": t_desc, "qrels": q_desc, "corpus": c_desc}
        manifest["counts"][lang] = {"topics": len(topics), "judged_queries": len(judged_queries),
                                    "relevant": len(relevant), "documents": n_docs}
        corpora[lang] = Corpus(path=f"corpus/{lang}.jsonl", size=n_docs)
        queries[lang] = f"topics/{lang}.tsv"
        searches.append(Search(name=lang, index=lang, queries=lang, topics=f"topics/{lang}.tsv",
                               qrels=f"qrels/{lang}.txt", hits=HITS, run=f"{lang}.trec"))
    for w in manifest["warnings"]:
        if log:
            log(f"warning: {w}")
    # plan.json's keys: those of the fields that are not None, in field order (no dataset, no pool keys)
    write_plan(SearchPlan(kind="miracl", corpora=corpora, queries=queries, trec_eval_args=TREC_EVAL_ARGS,
                          searches=searches), os.path.join(root, "plan.json"))
    atomic_write_json(os.path.join(root, "manifest.json"), manifest)
    return manifest


# ------------------------------------------------------------------------------------------------ report


def report(inputs: str, trec_eval_dir: str, output_dir: str, name: str | None = None) -> dict:
    """nDCG@10 and R@100 per language (from the trec_eval outputs) -> results.json + results.md."""
    manifest = read_format(inputs, "manifest.json", MANIFEST_FORMAT, MiraclError, "manifest")
    per_lang = {}
    for lang in manifest["languages"]:
        path = os.path.join(trec_eval_dir, f"{lang}.txt")
        if not os.path.isfile(path):
            raise MiraclError(f"trec_eval output not found: {path}")
        with open(path, encoding="utf-8") as f:
            values = parse_trec_eval(f.read()).get("all", {})
        lacking = [m for m in MEASURES if m not in values]
        if lacking:
            raise MiraclError(f"{path}: no {', '.join(lacking)}")
        per_lang[lang] = {**{m: values[m] for m in MEASURES},
                          "queries": manifest["counts"][lang]["judged_queries"],
                          "documents": manifest["counts"][lang]["documents"]}
    average = {m: sum(v[m] for v in per_lang.values()) / len(per_lang) for m in MEASURES}
    results = {"format": "hybrid_tevatron.miracl_results/1", "name": name or "model", "split": manifest["split"],
               "per_language": per_lang, "average": average, "sources": manifest["sources"],
               "warnings": manifest.get("warnings", []),
               "trec_eval": [" ".join(a) for a in TREC_EVAL_ARGS]}
    lines = [f"# MIRACL ({manifest['split']}): {results['name']}", "",
             "| lang | queries | documents | nDCG@10 | R@100 |", "|---|---:|---:|---:|---:|"]
    for lang, v in per_lang.items():
        lines.append(f"| {lang} | {v['queries']} | {v['documents']} | {v['ndcg_cut_10']:.4f} | {v['recall_100']:.4f} |")
    lines.append(f"| **avg** | | | {average['ndcg_cut_10']:.4f} | {average['recall_100']:.4f} |")
    lines += ["", "trec_eval: " + "; ".join(f"`{a}`" for a in results["trec_eval"]), ""]
    lines += [f"- {lang}: topics {s['topics']}; qrels {s['qrels']}; corpus {s['corpus']}"
              for lang, s in manifest["sources"].items()]
    lines += [f"- warning: {w}" for w in results["warnings"]]
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_json(os.path.join(output_dir, "results.json"), results)
    atomic_write_text(os.path.join(output_dir, "results.md"), "\n".join(lines) + "\n")
    return results


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.benchmarks.miracl",
                                description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="topics, qrels and corpus -> Pyserini inputs + search plan")
    pr.add_argument("--languages", nargs="+", required=True, help=f"MIRACL languages ({' '.join(LANGUAGES)})")
    pr.add_argument("--output_dir", required=True)
    pr.add_argument("--split", default="dev")
    pr.add_argument("--topics", default=DEFAULT_TOPICS, help="Pyserini topics name or TSV file; {lang}/{split} "
                    f"are filled in (default {DEFAULT_TOPICS})")
    pr.add_argument("--qrels", default=DEFAULT_QRELS, help=f"Pyserini qrels name or file (default {DEFAULT_QRELS})")
    pr.add_argument("--corpus", default=DEFAULT_CORPUS, help="hf:REPO, or a local .jsonl[.gz] file / folder; "
                    f"{{lang}} is filled in (default {DEFAULT_CORPUS})")
    pr.add_argument("--overwrite", action="store_true")
    rp = sub.add_parser("report", help="nDCG@10 / R@100 table from the trec_eval outputs")
    rp.add_argument("--inputs", required=True)
    rp.add_argument("--trec_eval_dir", required=True)
    rp.add_argument("--output_dir", required=True)
    rp.add_argument("--name")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        m = prepare(args.languages, args.output_dir, args.split, args.topics, args.qrels, args.corpus,
                    args.overwrite, log.info)
        for lang, c in m["counts"].items():
            print(f"{lang}: {c['topics']} topics, {c['judged_queries']} judged queries, {c['documents']} documents")
    else:
        res = report(args.inputs, args.trec_eval_dir, args.output_dir, args.name)
        for lang, v in res["per_language"].items():
            print(f"{lang}: nDCG@10 {v['ndcg_cut_10']:.4f}  R@100 {v['recall_100']:.4f}  ({v['queries']} queries)")
        print(f"average: nDCG@10 {res['average']['ndcg_cut_10']:.4f}  R@100 {res['average']['recall_100']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
