"""LAReQA (XQuAD-R, MLQA-R) -> Pyserini inputs: corpora, topics, qrels and a manifest.

    python -m hybrid_tevatron.eval.benchmarks.lareqa --data_dir ../shared/data/xquad-r --output_dir lareqa/xquad-r

Candidates are the sentences of every paragraph (``sentences``); a question's gold sentence in language Y is the
sentence of its Y paragraph whose ``sentence_breaks`` span holds ``answers[0].answer_start`` of file Y. Settings
(LAReQA): **mono** X->X (pool = X), **cross** X->Y, X != Y (pool = Y; only pairs sharing questions), **multi**
(pool = all languages; the gold sentence of every language holding the question id is relevant).

Output layout (paths in the manifest are relative to the output folder)::

    manifest.json                 languages, pairs, counts, corpora, topics, searches (see ``build``)
    corpus/{lang}.jsonl           {"id": "{lang}-{n}", "contents": sentence, "lang": lang}; n = position in file
    topics/{X}.tsv                qid \\t question, qid = "{question id}-{X}"
    topics/cross.{X}-{Y}.tsv      only where X has questions missing from Y (MLQA-R)
    qrels/{search}.txt            TREC qrels ("qid 0 docid 1") per search: mono.X, cross.X-Y, multi.X

The multilingual pool is the union of the language corpora (the evaluation merges their indexes).

Docids are stable: filtering (``--articles``, ``--max_questions``) drops sentences but never renumbers them.
Everything is written to a temporary folder next to the output folder and renamed into place at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field

from hybrid_tevatron.atomic import atomic_dir
from hybrid_tevatron.data.languages import LAREQA_DATASETS, SETTINGS
from hybrid_tevatron.data.pool_ids import clean_text, docid, query_id
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.eval.benchmarks.pool import (
    PoolError,
    PoolManifest,
    cross_pairs,
    write_corpus,
    write_search_files,
    write_topics,
)
from hybrid_tevatron.jsonfiles import read_format, read_json
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

MANIFEST_FORMAT = "hybrid_tevatron.lareqa/1"


@dataclass
class Candidate:
    docid: str
    text: str
    article: int


@dataclass
class Question:
    id: str
    text: str
    gold: str  # docid of the gold sentence in this language
    article: int


@dataclass
class LanguagePool:
    """One language file: its candidate sentences and questions (file order), article titles by index."""

    lang: str
    path: str
    candidates: list[Candidate] = field(default_factory=list)
    questions: dict[str, Question] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)


def _require(cond: bool, path: str, where: str, msg: str) -> None:
    if not cond:
        raise PoolError(f"{path}: {where}: {msg}")


def read_language_file(path: str, lang: str) -> LanguagePool:
    """Parse one LAReQA JSON file into candidates and questions with gold sentence ids."""
    data = read_json(path, PoolError, f"language file for '{lang}'")
    _require(isinstance(data, dict) and isinstance(data.get("data"), list), path, "top level",
             'expected {"data": [articles]}')
    pool = LanguagePool(lang=lang, path=path)
    for ai, article in enumerate(data["data"]):
        where = f"data[{ai}]"
        _require(isinstance(article, dict) and isinstance(article.get("paragraphs"), list), path, where,
                 "article without a 'paragraphs' list")
        pool.titles.append(str(article.get("title", "")))
        for pi, para in enumerate(article["paragraphs"]):
            pwhere = f"{where}.paragraphs[{pi}]"
            _require(isinstance(para, dict), path, pwhere, "paragraph is not an object")
            for key in ("sentences", "sentence_breaks", "qas"):
                _require(isinstance(para.get(key), list), path, pwhere, f"missing list '{key}'")
            sentences, breaks = para["sentences"], para["sentence_breaks"]
            _require(len(sentences) == len(breaks), path, pwhere,
                     f"{len(sentences)} sentences but {len(breaks)} sentence_breaks")
            first = len(pool.candidates)
            for si, (sentence, span) in enumerate(zip(sentences, breaks)):
                _require(isinstance(sentence, str), path, f"{pwhere}.sentences[{si}]", "not a string")
                _require(isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span),
                         path, f"{pwhere}.sentence_breaks[{si}]", f"expected [start, end], got {span!r}")
                pool.candidates.append(Candidate(docid(lang, len(pool.candidates)), clean_text(sentence), ai))
            for qi, qa in enumerate(para["qas"]):
                qwhere = f"{pwhere}.qas[{qi}]"
                _require(isinstance(qa, dict) and isinstance(qa.get("id"), str) and qa["id"], path, qwhere,
                         "question without a string 'id'")
                qwhere += f" (id {qa['id']})"
                _require(qa["id"] not in pool.questions, path, qwhere, "duplicate question id in this file")
                _require(isinstance(qa.get("question"), str), path, qwhere, "missing 'question' text")
                answers = qa.get("answers")
                _require(isinstance(answers, list) and answers and isinstance(answers[0], dict)
                         and isinstance(answers[0].get("answer_start"), int), path, qwhere,
                         "no answers[0].answer_start")
                start = answers[0]["answer_start"]
                hits = [si for si, (b, e) in enumerate(breaks) if b <= start < e]
                _require(len(hits) == 1, path, qwhere,
                         f"answer_start {start} lies in {len(hits)} sentence_breaks spans {breaks} (need exactly 1)")
                gold = pool.candidates[first + hits[0]].docid
                pool.questions[qa["id"]] = Question(qa["id"], clean_text(qa["question"]), gold, ai)
    _require(bool(pool.candidates), path, "pool", "no candidate sentences (empty pool)")
    _require(bool(pool.questions), path, "questions", "no questions")
    return pool


@dataclass
class ArticleSelection:
    """Articles picked by 0-based index (position in the file) or by title; ``@FILE`` reads one entry a line."""

    indices: set[int] = field(default_factory=set)
    titles: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, specs) -> ArticleSelection | None:
        if not specs:
            return None
        sel = cls()
        for spec in _expand_specs(specs):
            if re.fullmatch(r"\d+", spec):
                sel.indices.add(int(spec))
            else:
                sel.titles.add(spec)
        return sel

    def matches(self, index: int, title: str) -> bool:
        return index in self.indices or title in self.titles

    def to_json(self):
        return {"indices": sorted(self.indices), "titles": sorted(self.titles)}


def _expand_specs(specs) -> list[str]:
    out = []
    for spec in specs:
        if spec.startswith("@"):
            path = spec[1:]
            if not os.path.isfile(path):
                raise PoolError(f"{path}: article list not found")
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        out.append(line)
        else:
            out.append(spec.strip())
    return out


@dataclass
class Lareqa:
    """A loaded (and possibly filtered) LAReQA dataset."""

    dataset: str
    data_dir: str
    parallel: bool
    pools: dict[str, LanguagePool]
    selection: dict

    @property
    def languages(self) -> list[str]:
        return list(self.pools)


def _detect_dataset(data_dir: str, dataset: str | None) -> str:
    if dataset and dataset != "auto":
        return dataset
    return os.path.basename(os.path.normpath(data_dir)).lower()


def load_lareqa(data_dir: str, languages=None, dataset: str | None = None, articles=None, exclude_articles=None,
                max_questions: int | None = None, full_pool: bool = False, log=None) -> Lareqa:
    """Read ``{lang}.json`` for every language, apply the article/question selection, check alignment."""
    if not os.path.isdir(data_dir):
        raise PoolError(f"{data_dir}: data folder not found")
    name = _detect_dataset(data_dir, dataset)
    spec = LAREQA_DATASETS.get(name)
    if languages:
        langs = list(dict.fromkeys(languages))
    elif spec:
        langs = list(spec["languages"])
    else:
        langs = sorted(f[:-5] for f in os.listdir(data_dir) if f.endswith(".json"))
        if not langs:
            raise PoolError(f"{data_dir}: no {{lang}}.json files")
    parallel = bool(spec and spec["parallel"])
    missing = [os.path.join(data_dir, f"{lang}.json") for lang in langs
               if not os.path.isfile(os.path.join(data_dir, f"{lang}.json"))]
    if missing:
        raise PoolError(f"{missing[0]}: language file for '{os.path.basename(missing[0])[:-5]}' not found"
                        + (f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
    pools = {}
    for lang in langs:
        path = os.path.join(data_dir, f"{lang}.json")
        pools[lang] = read_language_file(path, lang)
        if log:
            log(f"read {path}: {len(pools[lang].questions)} questions, {len(pools[lang].candidates)} sentences")

    keep, drop = ArticleSelection.parse(articles), ArticleSelection.parse(exclude_articles)
    for label, sel in (("--articles", keep), ("--exclude_articles", drop)):
        if sel is None:
            continue
        known_titles = {t for p in pools.values() for t in p.titles}
        n_articles = max(len(p.titles) for p in pools.values())
        bad = sorted(str(i) for i in sel.indices if i >= n_articles) + sorted(sel.titles - known_titles)
        if bad:
            raise PoolError(f"{data_dir}: {label} names articles found in no language file: {', '.join(bad)}")
    if keep or drop:
        for pool in pools.values():
            ok = {i for i, t in enumerate(pool.titles)
                  if (keep is None or keep.matches(i, t)) and not (drop and drop.matches(i, t))}
            _filter(pool, lambda c, ok=ok: c.article in ok, lambda q, ok=ok: q.article in ok)

    if max_questions is not None:
        if max_questions < 1:
            raise PoolError(f"--max_questions must be >= 1, got {max_questions}")
        chosen = _first_questions(pools, max_questions)
        for pool in pools.values():
            kept_articles = {q.article for q in pool.questions.values() if q.id in chosen}
            _filter(pool, (lambda c: True) if full_pool else (lambda c, a=kept_articles: c.article in a),
                    lambda q: q.id in chosen)

    for pool in pools.values():
        if not pool.candidates:
            raise PoolError(f"{pool.path}: empty pool after the article/question selection")
        if not pool.questions:
            raise PoolError(f"{pool.path}: no questions left after the article/question selection")
    if parallel:
        _check_parallel(name, pools)
    selection = {
        "articles": keep.to_json() if keep else None,
        "exclude_articles": drop.to_json() if drop else None,
        "max_questions": max_questions,
        "full_pool": bool(full_pool) if max_questions is not None else True,
    }
    return Lareqa(name, os.path.abspath(data_dir), parallel, pools, selection)


def _filter(pool: LanguagePool, keep_candidate, keep_question) -> None:
    pool.candidates = [c for c in pool.candidates if keep_candidate(c)]
    kept = {c.docid for c in pool.candidates}
    pool.questions = {k: q for k, q in pool.questions.items() if keep_question(q) and q.gold in kept}


def _first_questions(pools: dict[str, LanguagePool], n: int) -> set[str]:
    """The first ``n`` question ids, taken round-robin over languages in file order (deterministic)."""
    orders = [list(p.questions) for p in pools.values()]
    chosen: dict[str, None] = {}
    for i in range(max(len(o) for o in orders)):
        for order in orders:
            if i < len(order) and len(chosen) < n:
                chosen.setdefault(order[i])
    return set(chosen)


def _check_parallel(name: str, pools: dict[str, LanguagePool]) -> None:
    first = next(iter(pools.values()))
    ids = set(first.questions)
    for pool in pools.values():
        other = set(pool.questions)
        if other != ids:
            missing = sorted(ids - other)
            extra = sorted(other - ids)
            detail = (f"question id {missing[0]} (in {first.path}) is missing from {pool.path}" if missing
                      else f"question id {extra[0]} (in {pool.path}) is missing from {first.path}")
            raise PoolError(f"{name} must be {len(pools)}-way parallel: {detail} "
                            f"({len(missing)} missing, {len(extra)} extra)")


def plan_searches(data: Lareqa) -> list[dict]:
    """Every search of the three settings, with its topics/qrels content (not yet written)."""
    langs = data.languages
    golds = {lang: {qid: q.gold for qid, q in data.pools[lang].questions.items()} for lang in langs}
    sizes = {lang: len(data.pools[lang].candidates) for lang in langs}
    searches = []

    def add(setting, x, pool, questions, relevant, topics):
        name = {"mono": f"mono.{x}", "cross": f"cross.{x}-{pool}", "multi": f"multi.{x}"}[setting]
        qrels = {query_id(q, x): relevant(q) for q in questions}
        searches.append({
            "name": name, "setting": setting, "query_lang": x, "pool": pool,
            "topics": topics, "qrels": f"qrels/{name}.txt",
            "pool_size": sum(sizes.values()) if pool == "all" else sizes[pool],
            "queries": len(qrels), "relevant": sum(len(v) for v in qrels.values()),
            "run": f"{name}.trec", "_qrels": qrels, "_questions": questions,
        })

    for x in langs:
        add("mono", x, x, list(golds[x]), lambda q, x=x: [golds[x][q]], f"topics/{x}.tsv")
    for x in langs:
        for y in langs:
            if x == y:
                continue
            shared = [q for q in golds[x] if q in golds[y]]
            if not shared:
                continue
            topics = f"topics/{x}.tsv" if len(shared) == len(golds[x]) else f"topics/cross.{x}-{y}.tsv"
            add("cross", x, y, shared, lambda q, y=y: [golds[y][q]], topics)
    for x in langs:
        add("multi", x, "all", list(golds[x]), lambda q: [golds[lang][q] for lang in langs if q in golds[lang]],
            f"topics/{x}.tsv")
    return searches


def build(data: Lareqa, output_dir: str, overwrite: bool = False, log=None) -> dict:
    """Write corpora, topics, qrels and ``manifest.json``; return the manifest.

    Manifest keys: ``format``, ``dataset``, ``data_dir``, ``parallel``, ``languages``, ``pairs`` ([X, Y] with X != Y),
    ``selection``, ``counts`` (``questions``/``sentences``/``articles`` per language, ``pool_all``, ``queries``
    per setting), ``corpora`` ({language: {path, size}}), ``topics`` ({X: {path,
    queries}}), ``searches`` (list of {name, setting, query_lang, pool, topics, qrels, pool_size, queries,
    relevant, run}).
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise PoolError(f"{output_dir}: exists and is not a folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise PoolError(f"{output_dir}: folder exists and is not empty (pass --overwrite to replace it)")
    with atomic_dir(output_dir) as tmp:
        manifest = _write_all(data, tmp, log)
    return manifest


def _write_all(data: Lareqa, root: str, log=None) -> dict:
    langs = data.languages
    for sub in ("corpus", "topics", "qrels"):
        os.makedirs(os.path.join(root, sub))
    corpora = {lang: write_corpus(root, lang, ((c.docid, c.text) for c in data.pools[lang].candidates))
               for lang in langs}
    topics = {lang: {"path": f"topics/{lang}.tsv",
                     "queries": _write_topics(root, f"topics/{lang}.tsv", data.pools[lang],
                                              list(data.pools[lang].questions))}
              for lang in langs}
    searches = plan_searches(data)
    for s in searches:
        if not os.path.exists(os.path.join(root, s["topics"])):
            _write_topics(root, s["topics"], data.pools[s["query_lang"]], s["_questions"])
        del s["_questions"]
    write_search_files(root, searches)
    pairs = cross_pairs(searches)
    manifest = PoolManifest(
        format=MANIFEST_FORMAT, dataset=data.dataset, source={"data_dir": data.data_dir}, parallel=data.parallel,
        languages=langs, pairs=pairs, selection=data.selection,
        counts={
            "questions": {lang: len(data.pools[lang].questions) for lang in langs},
            "sentences": {lang: len(data.pools[lang].candidates) for lang in langs},
            "articles": {lang: len({c.article for c in data.pools[lang].candidates}) for lang in langs},
            "pool_all": sum(c["size"] for c in corpora.values()),
            "unique_questions": len({q for lang in langs for q in data.pools[lang].questions}),
            "pairs": len(pairs),
            "queries": {setting: sum(s["queries"] for s in searches if s["setting"] == setting)
                        for setting in SETTINGS},
        },
        corpora=corpora, topics=topics, searches=searches).write(root)
    if log:
        log(f"wrote {len(corpora)} corpora, {len(topics)} topic files, {len(searches)} searches")
    return manifest


def _write_topics(root: str, rel: str, pool: LanguagePool, question_ids) -> int:
    return write_topics(root, rel, ((query_id(q, pool.lang), pool.questions[q].text) for q in question_ids))


def load_manifest(path: str) -> dict:
    """Read a manifest written by :func:`build` (``path`` may be the folder); adds ``root`` (its folder)."""
    return read_format(path, "manifest.json", MANIFEST_FORMAT, PoolError, "manifest")


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.benchmarks.lareqa",
                                description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", required=True, help="folder with {lang}.json LAReQA files (xquad-r/ or mlqa-r/)")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--dataset", default="auto", help="xquad-r, mlqa-r or auto (from the folder name); "
                   "xquad-r must be fully parallel")
    p.add_argument("--languages", nargs="+", help="default: all languages of the dataset")
    p.add_argument("--articles", nargs="+", metavar="SPEC",
                   help="keep only these articles: 0-based index, title, or @FILE (one entry a line, # comments)")
    p.add_argument("--exclude_articles", nargs="+", metavar="SPEC", help="drop these articles (same forms)")
    p.add_argument("--max_questions", type=int, help="keep the first N question ids (round-robin over languages, "
                   "file order) and only the sentences of their articles (a small deterministic slice for CI)")
    p.add_argument("--full_pool", action="store_true", help="with --max_questions: keep every sentence")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = p.parse_args(argv)
    data = load_lareqa(args.data_dir, args.languages, args.dataset, args.articles, args.exclude_articles,
                       args.max_questions, args.full_pool, log=log.info)
    manifest = build(data, args.output_dir, overwrite=args.overwrite, log=log.info)
    c = manifest["counts"]
    out = os.path.abspath(args.output_dir)
    print(f"{manifest['dataset']}: {len(manifest['languages'])} languages, {c['unique_questions']} question ids, "
          f"{c['pool_all']} sentences, {c['pairs']} cross pairs, {len(manifest['searches'])} searches")
    print(f"manifest: {os.path.join(out, 'manifest.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
