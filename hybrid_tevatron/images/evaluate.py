"""Image–text evaluation: ``python -m hybrid_tevatron.eval images MODEL OUTPUT --image_data DIR --image_index DIR``.

MODEL is a checkpoint of :mod:`hybrid_tevatron.images.train` (text encoder + head); ``--image_data`` an image data
set folder (:mod:`hybrid_tevatron.images.data`: XTD10 + MSCOCO, Multi30K + Flickr30k, ...); the images' vectors
come from ``--image_index`` (the frozen tower's index, :mod:`hybrid_tevatron.images.encode`; every image of the data
must be in it) or are encoded here with ``--tower``. That tower must be the one the model was trained against
(:func:`check_towers`: the checkpoint's ``image_tower`` against ``--tower`` or the index's ``tower.json``, by the
digests of the tower's config and weights and its embedding size), else one ``error:`` line names both before
anything is written; ``--allow_other_tower`` scores another tower of the same size anyway, and ``results.json``'s
``tower_check`` says which it was (``same``, ``other tower allowed``, ``unchecked`` where a side records no tower).
Searches, all over whole pools:

* **text->image** ``t2i.X``: each caption in language X searches every image; one relevant image (its own).
  R@1, R@5, R@10 (and mAP = MRR) per language, macro-averaged;
* **image->text** ``i2t.X``: each image searches the captions in X (one relevant), R@1/5/10 per language;
* **image->text multilingual** ``i2t.multi``: each image searches the captions of every language (its L captions
  are relevant): mAP, R@1/5/10 and the rank distance (largest minus smallest rank of its captions: language bias).

Stages, in the work folder and then moved to OUTPUT (:class:`hybrid_tevatron.eval.output.OutputFolder`: all or
nothing, one evaluation per folder): ``index/images`` and ``index/captions/{X,all}`` (Pyserini Faiss indexes),
``queries/{X,images}/embedding.pkl`` (Pyserini's pre-encoded queries), ``inputs/`` (topics, qrels, ``plan.json``),
``ranks/`` (exact whole-pool ranks by :func:`hybrid_tevatron.eval.pipeline.ranks.rank_plan`: scores at 6 decimals,
trec_eval's order and ties; the metrics come from these), ``runs/`` (``python -m pyserini.search.faiss`` top-10
runs), ``trec_eval/`` (Pyserini's trec_eval on the runs and on the full rankings of a seeded sample of queries) and
``results/``: ``results.json``, ``results.md`` and ``crosscheck.json`` (our metrics must equal trec_eval's on the
sample, else the evaluation fails). Every Pyserini command is in ``commands.sh``. Ids: a caption is
``{X}-{image id}``, an image its docid.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.eval.pipeline.ranks import SAMPLE_LINES
from hybrid_tevatron.eval.pipeline.search_plan import Search, SearchPlan, write_plan
from hybrid_tevatron.eval.program import Family
from hybrid_tevatron.eval.reports.metrics import macro, mean, query_metrics
from hybrid_tevatron.eval.runner import StepError
from hybrid_tevatron.eval.trec import KEYS, read_qrels
from hybrid_tevatron.eval.trec import MEASURES as TREC_MEASURES
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

FORMAT = "hybrid_tevatron.image_results/1"
MEASURES = (*TREC_MEASURES, "recall.5")  # trec_eval's (checked on the sample) and R@5
IMAGES = "images"


def caption_id(lang: str, image: str) -> str:
    return f"{lang}-{image}"


def write_index(folder: str, ids: list[str], vectors: np.ndarray) -> None:
    """A Pyserini Faiss index folder (``index`` + ``docid``), through Pyserini's own writer."""
    from pyserini.encode.optional import FaissRepresentationWriter

    writer = FaissRepresentationWriter(folder, dimension=vectors.shape[1])
    with writer:
        writer.write({"id": ids, "vector": np.ascontiguousarray(vectors, dtype=np.float32)})


def write_queries(folder: str, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
    """Pyserini's pre-encoded queries ``folder/embedding.pkl`` (DataFrame ``id/text/embedding``)."""
    import pandas as pd

    os.makedirs(folder, exist_ok=True)
    pd.DataFrame({"id": ids, "text": texts, "embedding": list(vectors.astype(np.float32))}).to_pickle(
        os.path.join(folder, "embedding.pkl"))


def _lines(path: str, lines) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def prepare(data, image_vectors: np.ndarray, caption_vectors: dict[str, np.ndarray], work: str) -> SearchPlan:
    """Indexes, queries, topics, qrels and the search plan of the module docstring under ``work``; the plan."""
    langs, images = data.languages, data.image_ids
    inputs = os.path.join(work, "inputs")
    write_index(os.path.join(work, "index", IMAGES), images, image_vectors)
    write_queries(os.path.join(work, "queries", IMAGES), images, data.image_paths, image_vectors)
    _lines(os.path.join(inputs, "topics", f"{IMAGES}.tsv"), (f"{d}\t{p}" for d, p in zip(images, data.image_paths)))
    searches, queries = [], {IMAGES: f"topics/{IMAGES}.tsv"}
    for lang in langs:
        ids = [caption_id(lang, d) for d in images]
        write_index(os.path.join(work, "index", "captions", lang), ids, caption_vectors[lang])
        write_queries(os.path.join(work, "queries", lang), ids, data.captions[lang], caption_vectors[lang])
        queries[lang] = f"topics/{lang}.tsv"
        _lines(os.path.join(inputs, queries[lang]), (f"{q}\t{c}" for q, c in zip(ids, data.captions[lang])))
        _lines(os.path.join(inputs, "qrels", f"t2i.{lang}.txt"), (f"{q} 0 {d} 1" for q, d in zip(ids, images)))
        _lines(os.path.join(inputs, "qrels", f"i2t.{lang}.txt"), (f"{d} 0 {q} 1" for q, d in zip(ids, images)))
        searches.append(_search(f"t2i.{lang}", "text->image", IMAGES, lang, queries[lang], len(images)))
        searches.append(_search(f"i2t.{lang}", "image->text", f"captions/{lang}", IMAGES, queries[IMAGES],
                                len(images)))
    all_ids = [caption_id(lang, d) for lang in langs for d in images]
    write_index(os.path.join(work, "index", "captions", "all"), all_ids,
                np.concatenate([caption_vectors[lang] for lang in langs]))
    _lines(os.path.join(inputs, "qrels", "i2t.multi.txt"),
           (f"{d} 0 {caption_id(lang, d)} 1" for d in images for lang in langs))
    searches.append(_search("i2t.multi", "image->text multilingual", "captions/all", IMAGES, queries[IMAGES],
                            len(all_ids)))
    plan = SearchPlan(kind="images", dataset=data.name, corpora={},
                      merged={"captions/all": [f"captions/{lang}" for lang in langs]}, queries=queries,
                      trec_eval_args=[], searches=searches, root=inputs)
    write_plan(plan, os.path.join(inputs, "plan.json"))
    return plan


# plan.json's search keys in file order (hits after ranks, unlike a pool plan's; "exclude" written as null)
SEARCH_KEYS = ("name", "setting", "index", "queries", "topics", "qrels", "pool_size", "ranks", "hits", "run", "exclude")


def _search(name: str, setting: str, index: str, queries: str, topics: str, pool_size: int) -> Search:
    return Search(name=name, setting=setting, index=index, queries=queries, topics=topics, qrels=f"qrels/{name}.txt",
                  pool_size=pool_size, ranks=True, hits=min(10, pool_size), run=f"{name}.trec", exclude=None,
                  layout=SEARCH_KEYS)


def read_ranks(path: str) -> dict[str, list[int]]:
    """``ranks/{search}.tsv`` -> ``{qid: [rank of each relevant item found]}``."""
    out: dict[str, list[int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            qid, _docid, rank, _score = line.rstrip("\n").split("\t")
            out.setdefault(qid, []).append(int(rank))
    return out


def per_query_metrics(ranks: dict[str, list[int]], relevant: dict[str, int], rank_distance: bool = False) -> dict:
    """``{qid: metrics}`` of :data:`MEASURES` (and the rank distance) for every query of the qrels (``relevant``:
    its number of relevant items); a query without ranks scores 0 (trec_eval's ``-c``)."""
    return {q: query_metrics([(r, 1) for r in ranks.get(q, [])], [1] * n, MEASURES, rank_distance)
            for q, n in relevant.items()}


def score(plan: SearchPlan, ranks_dir: str, languages: list[str]) -> tuple:
    """``(results.json's content, {search: per-query metrics})``: per search, per language, macro averages."""
    searches, per_query = {}, {}
    for s in plan.searches:
        qrels = read_qrels(os.path.join(plan.root, s.qrels))
        relevant = {q: sum(1 for r in docs.values() if r > 0) for q, docs in qrels.items()}
        multi = s.name == "i2t.multi"
        pq = per_query[s.name] = per_query_metrics(read_ranks(os.path.join(ranks_dir, s.name + ".tsv")),
                                                   relevant, multi)
        keys = [KEYS.get(m, m.replace(".", "_")) for m in MEASURES] + (["rank_distance"] if multi else [])
        searches[s.name] = {"setting": s.setting, "pool_size": s.pool_size, "queries": len(pq),
                            **{k: mean(pq, k) for k in keys}}
    average = {direction: {k: macro(searches[f"{direction}.{lang}"][k] for lang in languages)
                           for k in ("recall_1", "recall_5", "recall_10", "map")}
               for direction in ("t2i", "i2t")}
    return {"format": FORMAT, "languages": languages, "searches": searches, "average": average}, per_query


def markdown(results: dict, name: str) -> str:
    langs = results["languages"]
    rows = [f"# {name}: image–text retrieval (whole pools, exact ranks)", "",
            "| direction | " + " | ".join(langs) + " | avg |", "|---|" + "---:|" * (len(langs) + 1)]
    for direction, label in (("t2i", "text→image"), ("i2t", "image→text (pool: X)")):
        for k in ("recall_1", "recall_5", "recall_10"):
            cells = [f"{results['searches'][f'{direction}.{lang}'][k]:.3f}" for lang in langs]
            rows.append(f"| {label} {k.replace('recall_', 'R@')} | " + " | ".join(cells)
                        + f" | {results['average'][direction][k]:.3f} |")
    multi = results["searches"]["i2t.multi"]
    rows += ["", f"image→text, multilingual pool of {multi['pool_size']} captions: mAP {multi['map']:.3f}, "
                 f"R@1 {multi['recall_1']:.3f}, R@10 {multi['recall_10']:.3f}, rank distance "
                 f"{multi['rank_distance']:.1f} (lower: less language bias)", ""]
    return "\n".join(rows)


def trained_tower(model: str) -> dict | None:
    """The tower the checkpoint ``model`` was trained against (its ``hybrid_tevatron.json``'s ``image_tower``:
    ``tower``, ``tower_digest``, ``dimension``); None when it records none."""
    from hybrid_tevatron.encoding import ENCODING_FILE
    from hybrid_tevatron.jsonfiles import read_json

    path = os.path.join(model, ENCODING_FILE)
    if not os.path.isfile(path):
        return None
    saved = read_json(path, StepError)
    entry = saved.get("image_tower") if isinstance(saved, dict) else None
    if not isinstance(entry, dict) or not entry.get("tower"):
        return None
    return {k: entry.get(k) for k in ("tower", "tower_digest", "dimension")}


def check_towers(model: str, trained: dict | None, images: dict | None, images_are: str, unrecorded: str,
                 allow_other_tower: bool = False) -> dict:
    """Whether the images' tower (``images``: a :func:`~hybrid_tevatron.images.tower.tower_record` with
    ``dimension``, None when not recorded) is the one ``model`` was trained against (``trained``, from
    :func:`trained_tower`); the ``tower_check`` of ``results.json``: ``same``, ``other tower allowed`` (with
    ``--allow_other_tower``; never for another embedding size) or ``unchecked`` (a side records no tower; its reason,
    ``unrecorded`` for the images', is logged). Another tower is a :class:`StepError` naming both; ``images_are``
    introduces the images' tower in it (``--tower is``, ``--image_index DIR was encoded with tower``)."""
    from hybrid_tevatron.images.tower import describe_tower, tower_differences

    if trained is None or images is None:
        reason = f"{model} records no image tower" if trained is None else unrecorded
        log.warning("the images' tower is not checked against the model's: %s", reason)
        return {"status": "unchecked", "reason": reason}
    differences = tower_differences(trained, images)
    if not differences:
        return {"status": "same", "model_tower": trained, "images_tower": images}
    said = (f"{model} was trained against tower {describe_tower(trained)} but {images_are} {describe_tower(images)}: "
            f"they differ in {', '.join(differences)}")
    if "embedding size" in differences:
        raise StepError(f"{said}; evaluate with the model's tower")
    if not allow_other_tower:
        raise StepError(f"{said}; evaluate with the model's tower, or give --allow_other_tower to score anyway "
                        "(recorded in results.json)")
    log.warning("--allow_other_tower: %s", said)
    return {"status": "other tower allowed", "differences": differences, "model_tower": trained,
            "images_tower": images}


def _images_tower(model: str, image_index: str | None, tower: str | None, device: str | None, batch_size: int,
                  allow_other_tower: bool) -> tuple:
    """``(the loaded --tower or None, results.json's tower_check)``, before any output: a folder that is no image
    tower, or another tower than the model's, is one error line."""
    from hybrid_tevatron.images.tower import ImageTower, tower_record

    if tower is not None:
        image_tower = ImageTower(tower, device=device, batch_size=batch_size)
        return image_tower, check_towers(model, trained_tower(model), {**tower_record(tower),
                                         "dimension": image_tower.dimension}, "--tower is", "", allow_other_tower)
    from hybrid_tevatron.images.encode import TOWER_RECORD, read_tower_record

    indexed = read_tower_record(image_index)
    return None, check_towers(
        model, trained_tower(model), indexed and {k: indexed.get(k) for k in ("tower", "tower_digest", "dimension")},
        f"--image_index {image_index} was encoded with tower", f"{image_index} has no {TOWER_RECORD}",
        allow_other_tower)


def evaluate(model: str, image_data: str, output_dir: str, image_index: str | None = None,
             tower: str | None = None, languages=None, max_images: int | None = None, device: str | None = None,
             batch_size: int = 64, name: str | None = None, overwrite: bool = False,
             sample_lines: int = SAMPLE_LINES, allow_other_tower: bool = False) -> str:
    """The whole evaluation (module docstring) into ``output_dir``; returns its path."""
    from hybrid_tevatron.eval.output import OutputFolder
    from hybrid_tevatron.eval.pipeline.ranks import rank_plan, read_index
    from hybrid_tevatron.eval.pipeline.scoring import oracle
    from hybrid_tevatron.eval.pipeline.search import search
    from hybrid_tevatron.eval.reports.evaluate import crosscheck
    from hybrid_tevatron.eval.runner import Cli, CliRunner
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.model import HEAD_FILE, CaptionEncoder
    from hybrid_tevatron.images.tower import tower_name

    if (image_index is None) == (tower is None):
        raise StepError("give exactly one of --image_index DIR (the tower's index) and --tower T (encode here)")
    if not os.path.isfile(os.path.join(model, HEAD_FILE)):  # before any output or model load
        raise StepError(f"{model}: no {HEAD_FILE} (not a checkpoint of python -m hybrid_tevatron.images.train)")
    data = read_image_data(image_data, languages or None)
    if max_images is not None:
        if max_images < 1:
            raise StepError(f"--max_images must be >= 1, got {max_images}")
        data.image_ids, data.image_paths = data.image_ids[:max_images], data.image_paths[:max_images]
        data.captions = {lang: c[:max_images] for lang, c in data.captions.items()}
    image_tower, tower_check = _images_tower(model, image_index, tower, device, batch_size, allow_other_tower)
    with OutputFolder(output_dir, overwrite) as out:
        with out.stage("1/5 encode"):
            if image_index is not None:
                index = read_index(image_index)
                rows = index.rows()
                missing = [d for d in data.image_ids if d not in rows]
                if missing:
                    raise StepError(f"{image_index}: image {missing[0]!r} of {image_data} is not in the index")
                image_vectors = index.matrix[[rows[d] for d in data.image_ids]]
            else:
                image_vectors = image_tower.encode(data.image_paths)
            encoder = CaptionEncoder.from_checkpoint(model, device=device, batch_size=batch_size)
            if encoder.dimension != image_vectors.shape[1]:
                raise StepError(f"{model}: its head maps to {encoder.dimension} dimensions but the images have "
                                f"{image_vectors.shape[1]} (another tower?)")
            captions = {lang: encoder.encode(data.captions[lang]) for lang in data.languages}
            plan = prepare(data, image_vectors, captions, out.work)
        index_dir, queries_dir, ranks_dir, runs_dir, trec_dir = (
            os.path.join(out.work, d) for d in ("index", "queries", "ranks", "runs", "trec_eval"))
        runner = CliRunner(Cli.INPROCESS, out.record, out.work)
        with out.stage("2/5 ranks"):
            ranked = rank_plan(plan, index_dir, queries_dir, ranks_dir, device="cpu", sample_lines=sample_lines)
        with out.stage("3/5 search"):
            search(plan, index_dir, queries_dir, runs_dir, runner)
        with out.stage("4/5 trec_eval"):
            oracle(plan, runs_dir, ranks_dir, trec_dir, runner)
        with out.stage("5/5 results"):
            results, per_query = score(plan, ranks_dir, data.languages)
            check = crosscheck(per_query, ranked, trec_dir)
            atomic_write_json(os.path.join(out.work, "results", "crosscheck.json"), check)
            if check["problems"]:
                raise StepError("our metrics differ from trec_eval's on the full-ranking sample: "
                                + "; ".join(check["problems"][:3]))
            results.update(model=os.path.abspath(model) if os.path.isdir(model) else model,
                           image_data=os.path.abspath(image_data), images=len(data),
                           image_index=image_index and os.path.abspath(image_index),
                           tower=tower and tower_name(tower), tower_check=tower_check)
            atomic_write_json(os.path.join(out.work, "results", "results.json"), results)
            table = markdown(results, name or os.path.basename(out.path))
            atomic_write_text(os.path.join(out.work, "results", "results.md"), table)
        final = out.path
    print(table)
    print(f"results: {final}/results/results.json   check: {final}/results/crosscheck.json\n"
          f"ranks: {final}/ranks/{{search}}.tsv   runs: {final}/runs/{{search}}.trec (top 10)   "
          f"indexes: {final}/index/")
    return final


def add_parser(sub, name: str) -> argparse.ArgumentParser:
    """The ``images`` subcommand of ``python -m hybrid_tevatron.eval``."""
    p = sub.add_parser(name, help="image–text retrieval: text->image R@1/5/10 per language, image->text over "
                       "the multilingual caption pool (mAP, rank distance)", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a checkpoint of python -m hybrid_tevatron.images.train (encoder + image head)")
    p.add_argument("output_dir")
    p.add_argument("--image_data", required=True, help="image data set folder (python -m hybrid_tevatron.images.data)")
    p.add_argument("--image_index", help="the frozen tower's index of these images (python -m "
                   "hybrid_tevatron.images.encode)")
    p.add_argument("--tower", help="instead of --image_index: encode the images with this tower here")
    p.add_argument("--allow_other_tower", action="store_true", help="score even though the images' tower (--tower, "
                   "or --image_index's tower.json) is not the one the model was trained against (same embedding "
                   "size only); recorded in results.json as tower_check")
    p.add_argument("--languages", nargs="+", help="caption languages (default: all of the data set)")
    p.add_argument("--max_images", type=int, help="the first N images only (a quick look; whole pools are the "
                   "measure)")
    p.add_argument("--device", help="cpu, cuda, cuda:0 ... (default: cuda when available, else cpu)")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--name", help="the row name in results.md (default: the output folder's name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty output folder")
    p.add_argument("--sample_lines", type=int, default=SAMPLE_LINES, help="full-ranking lines that trec_eval checks "
                   f"our metrics on (default {SAMPLE_LINES})")
    return p


def eval_images(args) -> str:
    """The evaluation of the parsed ``images`` subcommand."""
    return evaluate(args.model, args.image_data, args.output_dir, args.image_index, args.tower, args.languages,
                    args.max_images, args.device, args.batch_size, args.name, args.overwrite, args.sample_lines,
                    args.allow_other_tower)


IMAGES_FAMILY = Family("images", add_parser, eval_images)
