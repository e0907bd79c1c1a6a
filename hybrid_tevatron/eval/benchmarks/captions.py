"""Caption pools: captions of the same images in several languages -> Pyserini inputs (corpora, topics, qrels,
exclusions and a manifest), the caption proxy of image retrieval.

    python -m hybrid_tevatron.data.captions pool --xtd10 ../shared/data/xtd10 --output_dir pools/xtd10
    python -m hybrid_tevatron.data.captions pool --multi30k_task2 ../shared/data/multi30k-task2 --split test_2016 \\
        --output_dir pools/multi30k-task2-test_2016 [--max_images N]

:func:`write_caption_pool` writes one from a :class:`~hybrid_tevatron.data.caption_sources.CaptionSource` (what
``python -m hybrid_tevatron.eval captions`` and the command above call). The layout of
:mod:`hybrid_tevatron.eval.benchmarks.pool` (``corpus/{lang}.jsonl`` with docid ``{lang}-{n}``, n = 0-based line;
``topics/{X}.tsv`` with qid ``{image id}-{X}``; ``qrels/{search}.txt``; ``exclude/{search}.txt``;
``manifest.json``), format ``hybrid_tevatron.captions/1``; ``--max_images N`` keeps the first N images.

**Translations** (:class:`~hybrid_tevatron.data.caption_files.CaptionSet`; the manifest's ``relation`` is
``translation``, or ``mixed`` with a ``relation_note`` for XTD10). Searches: **cross** X->Y for every ordered pair
X != Y (X->en is the text->image stand-in: a caption proxy, not image retrieval; relevant = the image's caption in
Y) and **multi** X->all (pool = every language's captions; relevant = the image's captions in the other languages).
The query's own caption is in the multi pool and would trivially rank first, so each multi search names
``exclude/multi.X.txt`` ("qid docid" lines, one per query: its own caption); an evaluator must drop those pairs from
the run before scoring (``python -m hybrid_tevatron.eval captions`` does). There is no mono setting (a caption would
retrieve itself). The manifest's own format tag tells the evaluation to apply the exclusion.

**Several descriptions per image** (:class:`~hybrid_tevatron.data.descriptions.DescriptionSet`, Multi30K task 2;
the manifest adds ``relation: description`` and ``descriptions_per_image``). Docid ``{lang}-{n}-{k}`` (n = 0-based
line, k = description number), query id ``{image}-{k}-{X}``: every description is a query. Searches: **mono** X->X
(relevant: the image's K - 1 other descriptions in X), **cross** X->Y (relevant: its K descriptions in Y) and
**multi** X->all (relevant: its K x L - 1 other descriptions). Mono and multi pools hold the query's own caption, so
those searches name ``exclude/{search}.txt`` (one "qid docid" line per query: its own caption), dropped before
scoring as for the translations.

Everything is written to a temporary folder next to the output folder and renamed into place at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from hybrid_tevatron.atomic import atomic_dir
from hybrid_tevatron.data.caption_files import CaptionSet, check_output, duplicate_count, first_images
from hybrid_tevatron.data.caption_sources import CaptionSource, load_source
from hybrid_tevatron.data.descriptions import RELATION, DescriptionSet, identical_descriptions
from hybrid_tevatron.data.descriptions import first_images as first_described_images
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.data.languages import SETTINGS
from hybrid_tevatron.data.pool_ids import clean_text, docid, query_id
from hybrid_tevatron.eval.benchmarks.pool import (
    MANIFEST,
    PoolManifest,
    cross_pairs,
    write_corpus,
    write_search_files,
    write_topics,
)

POOL_FORMAT = "hybrid_tevatron.captions/1"
POOL_COMMAND = "hybrid_tevatron.data.captions"  # python -m POOL_COMMAND pool ...: the command line of a pool


# ------------------------------------------------------------------------------------------------ one call
def write_caption_pool(source: CaptionSource, output_dir: str, max_images: int | None = None,
                       overwrite: bool = False) -> dict:
    """Read ``source``, keep its first ``max_images`` images (all if None), write its pool to ``output_dir``;
    return the manifest."""
    captions = load_source(source)
    if isinstance(captions, DescriptionSet):
        if max_images is not None:
            captions = first_described_images(captions, max_images)
        return write_description_pool(captions, output_dir, overwrite)
    if max_images is not None:
        captions = first_images(captions, max_images)
    return write_translation_pool(captions, output_dir, overwrite)


def pool_argv(source: CaptionSource, output_dir: str, max_images: int | None = None) -> list[str]:
    """The arguments of ``python -m hybrid_tevatron.data.captions`` (:data:`POOL_COMMAND`) that write the same
    pool as ``write_caption_pool(source, output_dir, max_images)``."""
    return ["pool", "--output_dir", output_dir, *source.argv(),
            *(["--max_images", str(max_images)] if max_images is not None else [])]


def pool_summary(manifest: dict, output_dir: str) -> str:
    """One line: the pool's data set, images, languages, captions, searches and where its manifest is."""
    c = manifest["counts"]
    return (f"{manifest['dataset']}: {c['images']} images ({manifest['relation']}), "
            f"{len(manifest['languages'])} languages, {c['pool_all']} captions, {c['pairs']} cross pairs, "
            f"{len(manifest['searches'])} searches -> {os.path.join(os.path.abspath(output_dir), MANIFEST)}")


def _queries(searches: list[dict], settings: tuple[str, ...]) -> dict:
    return {st: sum(s["queries"] for s in searches if s["setting"] == st) for st in settings}


def _write_pool(output_dir: str, overwrite: bool, manifest: PoolManifest, docs: Callable[[str], Iterable],
                queries: Callable[[str], Iterable]) -> dict:
    """Write a caption pool to ``output_dir``: each language's corpus from ``docs(lang)`` and topics from
    ``queries(lang)`` (``(id, text)`` pairs), every search's qrels and exclusions, and ``manifest`` with its
    ``corpora`` and ``topics`` filled in; return the manifest written."""
    output_dir = check_output(output_dir, overwrite)
    with atomic_dir(output_dir) as root:
        for sub in ("corpus", "topics", "qrels", "exclude"):
            os.makedirs(os.path.join(root, sub))
        for lang in manifest.languages:
            manifest.corpora[lang] = write_corpus(root, lang, docs(lang))
            rel = f"topics/{lang}.tsv"
            manifest.topics[lang] = {"path": rel, "queries": write_topics(root, rel, queries(lang))}
        write_search_files(root, manifest.searches)
        return manifest.write(root)


# ------------------------------------------------------------------------------------------------ translations
def translation_searches(captions: CaptionSet) -> list[dict]:
    """Every search (cross X->Y, multi X->all) with its qrels and exclusions (not yet written)."""
    langs, n = captions.languages, len(captions)
    positions = [line - 1 for line in captions.lines]  # docid numbers: 0-based line in the files
    images = list(zip(captions.image_ids, positions))
    searches = []
    for x in langs:
        for y in langs:
            if x != y:
                name = f"cross.{x}-{y}"
                searches.append({"name": name, "setting": "cross", "query_lang": x, "pool": y,
                                 "topics": f"topics/{x}.tsv", "qrels": f"qrels/{name}.txt", "pool_size": n,
                                 "queries": n, "relevant": n, "exclude": None, "run": f"{name}.trec",
                                 "_qrels": {query_id(img, x): [docid(y, p)] for img, p in images}})
    for x in langs:
        name = f"multi.{x}"
        others = [y for y in langs if y != x]
        searches.append({"name": name, "setting": "multi", "query_lang": x, "pool": "all",
                         "topics": f"topics/{x}.tsv", "qrels": f"qrels/{name}.txt", "pool_size": n * len(langs),
                         "queries": n, "relevant": n * len(others), "exclude": f"exclude/{name}.txt",
                         "run": f"{name}.trec",
                         "_qrels": {query_id(img, x): [docid(y, p) for y in others] for img, p in images},
                         "_exclude": {query_id(img, x): docid(x, p) for img, p in images}})
    return searches


def write_translation_pool(captions: CaptionSet, output_dir: str, overwrite: bool = False) -> dict:
    """Write the pool of translated captions (see the module docstring); return the manifest."""
    if len(captions.languages) < 2:
        raise DataError(f"{captions.name}: a caption pool needs at least two languages, got {captions.languages}")
    langs, n = captions.languages, len(captions)
    positions = [line - 1 for line in captions.lines]
    searches = translation_searches(captions)
    pairs = cross_pairs(searches)
    manifest = PoolManifest(
        format=POOL_FORMAT, dataset=captions.name,
        source={"relation": captions.relation,
                **({"relation_note": captions.relation_note} if captions.relation_note else {}),
                "files": {lang: os.path.abspath(p) for lang, p in captions.paths.items()},
                "proxy": "caption proxy: captions of the same image in other languages stand in for the image"},
        parallel=True, languages=langs, pairs=pairs,
        counts={"images": n, "pool_all": n * len(langs), "pairs": len(pairs),
                "queries": _queries(searches, ("cross", "multi")),
                "images_with_duplicate_caption": {lang: duplicate_count(captions.captions[lang]) for lang in langs}},
        exclude_rule="multi searches: drop each 'qid docid' pair of the search's exclude file (the query's own "
                     "caption) from the run before scoring",
        corpora={}, topics={}, searches=searches)
    return _write_pool(
        output_dir, overwrite, manifest,
        lambda lang: ((docid(lang, p), clean_text(text)) for p, text in zip(positions, captions.captions[lang])),
        lambda lang: ((query_id(image, lang), clean_text(text))
                      for image, text in zip(captions.image_ids, captions.captions[lang])))


# ------------------------------------------------------------------------------------------------ descriptions
def description_docid(lang: str, n: int, k: int) -> str:
    """Docid of description ``k`` (1-based) on 0-based line ``n`` in ``lang``."""
    return f"{lang}-{n}-{k}"


def description_searches(descriptions: DescriptionSet) -> list[dict]:
    """Every search (mono X->X, cross X->Y, multi X->all) with its qrels and exclusions (not yet written)."""
    langs, n, per_image = descriptions.languages, len(descriptions), descriptions.per_image
    queries = n * per_image
    rows = [(image, line - 1) for image, line in zip(descriptions.image_ids, descriptions.lines)]

    def qid(image: str, k: int, lang: str) -> str:
        return query_id(f"{image}-{k}", lang)

    def search(setting: str, x: str, pool: str, name: str, relevant_langs: list[str], exclude: bool) -> dict:
        qrels = {qid(image, k, x): [description_docid(y, p, j) for y in relevant_langs
                                    for j in range(1, per_image + 1) if (y, j) != (x, k)]
                 for image, p in rows for k in range(1, per_image + 1)}
        size = queries * (len(langs) if pool == "all" else 1)
        s = {"name": name, "setting": setting, "query_lang": x, "pool": pool, "topics": f"topics/{x}.tsv",
             "qrels": f"qrels/{name}.txt", "pool_size": size, "queries": queries,
             "relevant": sum(len(v) for v in qrels.values()), "exclude": f"exclude/{name}.txt" if exclude else None,
             "run": f"{name}.trec", "_qrels": qrels}
        if exclude:
            s["_exclude"] = {qid(image, k, x): description_docid(x, p, k) for image, p in rows
                             for k in range(1, per_image + 1)}
        return s

    searches = [search("mono", x, x, f"mono.{x}", [x], True) for x in langs]
    searches += [search("cross", x, y, f"cross.{x}-{y}", [y], False) for x in langs for y in langs if x != y]
    searches += [search("multi", x, "all", f"multi.{x}", langs, True) for x in langs]
    return searches


def write_description_pool(descriptions: DescriptionSet, output_dir: str, overwrite: bool = False) -> dict:
    """Write the pool of several descriptions per image (see the module docstring); return the manifest."""
    langs, per_image, n = descriptions.languages, descriptions.per_image, len(descriptions)
    positions = [line - 1 for line in descriptions.lines]
    searches = description_searches(descriptions)
    pairs = cross_pairs(searches)
    manifest = PoolManifest(
        format=POOL_FORMAT, dataset=descriptions.name,
        source={"relation": RELATION, "descriptions_per_image": per_image,
                "files": {lang: [os.path.abspath(p) for p in paths] for lang, paths in descriptions.paths.items()},
                "image_names": os.path.abspath(descriptions.names_file),
                "proxy": "caption proxy: other descriptions of the same image (in the same or other languages) "
                         "stand in for the image"},
        parallel=True, languages=langs, pairs=pairs,
        counts={"images": n, "pool_all": n * per_image * len(langs), "pairs": len(pairs),
                "queries": _queries(searches, SETTINGS),
                "images_with_identical_descriptions": {lang: identical_descriptions(descriptions, lang)
                                                       for lang in langs}},
        exclude_rule="mono and multi searches: drop each 'qid docid' pair of the search's exclude file (the "
                     "query's own caption) from the run before scoring",
        corpora={}, topics={}, searches=searches)
    return _write_pool(
        output_dir, overwrite, manifest,
        lambda lang: ((description_docid(lang, p, k), clean_text(text))
                      for p, row in zip(positions, descriptions.captions[lang]) for k, text in enumerate(row, 1)),
        lambda lang: ((query_id(f"{image}-{k}", lang), clean_text(text))
                      for image, row in zip(descriptions.image_ids, descriptions.captions[lang])
                      for k, text in enumerate(row, 1)))
