"""XQuAD-R as parallel training data: a fixed article split and conversion to per-language Tevatron JSONL.

    python -m hybrid_tevatron.data.xquad_train --xquad_dir ../shared/data/xquad-r --output_dir data/xquad-train
    python -m hybrid_tevatron.data.xquad_train --print_split test      # held-out article titles, one a line

**Split** (:func:`split_articles`): the 48 articles in file order; article ``i`` is held out for testing when
``i % 3 == 2`` (16 articles, 374 questions), the other 32 (816 questions) are for training. The same rule gives the
same titles for every language file (all 11 files list the articles in the same order; checked).
:data:`TEST_ARTICLES` pins the resulting titles so a reordered copy of the data fails loudly instead of
silently moving text across the split. ``--val_every V`` also carves a validation split from the training
articles (:func:`split_validation`): training article ``j`` (file order among them) is held out for validation when
``j % V == V - 1`` (``V = 8``: 4 articles, left out of the training files; ``val_articles.txt`` lists them).

**Training examples** (one ``{lang}.jsonl`` per language, aligned by ``query_id`` and ``docid``):

* query = the question (``query_id`` = XQuAD id, the same in every language);
* positive = the question's gold sentence in that language (LAReQA's rule: the sentence whose
  ``sentence_breaks`` span holds the answer's ``answer_start``), exactly the candidate the evaluation counts as
  relevant. Sentence segmentation differs across languages, so positives are aligned *by question*, not by
  sentence position. ``docid`` = ``{title}/p{paragraph}/{id of the first question of its class}``, where a class is
  the set of questions of a paragraph whose gold sentences coincide in *every* written language — those share one
  docid, so the batch plan (which never puts a doc id twice in a step) keeps them apart;
* negatives = the positives (docids) of the other classes of the same article — same paragraph first, then the
  rest of the article in document order — *excluding* every class whose gold sentence coincides with this
  question's gold in *any* written language (that sentence would hold the answer). They are parallel by
  construction (each is a question's gold sentence in every language).

Residual noise, measured and printed in ``stats.json`` as ``partial_conflict_pairs``: two questions whose gold
sentences coincide in some written languages but not all (mostly where Thai segments more coarsely) get
different docids, so they can share a step, where one's positive is an in-batch false negative for the other.
Sentences that are nobody's gold are not used (they have no parallel id).

``title`` is empty: the evaluation's candidates are bare sentences. Outputs are written to a temporary name and
renamed, with ``split.json`` (train/val/test titles, rules), ``{train,val,test}_articles.txt`` (one title a
line, the form ``python -m hybrid_tevatron.eval.benchmarks.lareqa --articles @FILE`` reads) and ``stats.json`` (counts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.data.languages import TRAIN_LANGUAGES, UNSEEN_LANGUAGES
from hybrid_tevatron.data.languages import XQUAD_R_LANGUAGES as ALL_LANGUAGES
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)
TEST_EVERY, TEST_OFFSET = 3, 2
# The titles the rule selects on the LAReQA XQuAD-R files (commit 9bc8c7fb6dd8): articles 2, 5, ..., 47.
TEST_ARTICLES = (
    "Normans", "Teacher", "Sky_(United_Kingdom)", "Steam_engine", "Apollo_program", "Ctenophora",
    "Black_Death", "Victoria_and_Albert_Museum", "Pharmacy", "Construction", "Jacksonville,_Florida",
    "University_of_Chicago", "Intergovernmental_Panel_on_Climate_Change", "Rhine", "Imperialism", "Force",
)


def split_articles(titles: Sequence[str], every: int = TEST_EVERY,
                   offset: int = TEST_OFFSET) -> tuple[list[str], list[str]]:
    """(train titles, test titles): article ``i`` (file order) is test when ``i % every == offset``."""
    if every < 2 or not 0 <= offset < every:
        raise DataError(f"need every >= 2 and 0 <= offset < every, got every={every} offset={offset}")
    if len(set(titles)) != len(titles):
        raise DataError("article titles are not unique")
    train = [t for i, t in enumerate(titles) if i % every != offset]
    test = [t for i, t in enumerate(titles) if i % every == offset]
    return train, test


def split_validation(train: Sequence[str], every: int) -> tuple[list[str], list[str]]:
    """(training titles, validation titles): training article ``j`` is validation when ``j % every == every - 1``;
    ``every`` 0 holds none out."""
    if every == 0:
        return list(train), []
    if every < 2:
        raise DataError(f"need val_every 0 (no validation split) or >= 2, got {every}")
    return ([t for j, t in enumerate(train) if j % every != every - 1],
            [t for j, t in enumerate(train) if j % every == every - 1])


def load_xquad(xquad_dir: str, languages: Sequence[str]) -> dict[str, list]:
    """``{lang: articles}`` from ``{xquad_dir}/{lang}.json``, checked to be parallel (same articles, paragraphs and
    question ids in the same order as the first language)."""
    data = {}
    for lang in languages:
        path = os.path.join(xquad_dir, f"{lang}.json")
        if not os.path.isfile(path):
            raise DataError(f"{path}: no XQuAD-R file for language {lang!r}")
        with open(path, encoding="utf-8") as f:
            data[lang] = json.load(f)["data"]
    ref_lang = languages[0]
    ref = data[ref_lang]
    for lang in languages[1:]:
        path = os.path.join(xquad_dir, f"{lang}.json")
        arts = data[lang]
        if [a["title"] for a in arts] != [a["title"] for a in ref]:
            raise DataError(f"{path}: article titles/order differ from {ref_lang}.json")
        for i, (a, r) in enumerate(zip(arts, ref)):
            if len(a["paragraphs"]) != len(r["paragraphs"]):
                raise DataError(f"{path}: article {i} ({a['title']}) has {len(a['paragraphs'])} paragraphs, "
                                 f"{ref_lang}.json has {len(r['paragraphs'])}")
            for j, (p, rp) in enumerate(zip(a["paragraphs"], r["paragraphs"])):
                if [q["id"] for q in p["qas"]] != [q["id"] for q in rp["qas"]]:
                    raise DataError(f"{path}: article {i} ({a['title']}) paragraph {j}: question ids differ "
                                     f"from {ref_lang}.json")
    return data


def gold_sentence(paragraph: dict, qa: dict, where: str) -> int:
    """Index of the sentence whose ``sentence_breaks`` span holds the (first) answer's ``answer_start``."""
    start = qa["answers"][0]["answer_start"]
    hits = [k for k, (a, b) in enumerate(paragraph["sentence_breaks"]) if a <= start < b]
    if len(hits) != 1:
        raise DataError(f"{where}: question {qa['id']}: answer_start {start} lies in {len(hits)} sentence spans")
    return hits[0]


def build_examples(data: dict[str, list], titles: Sequence[str]) -> tuple[dict[str, list[dict]], dict]:
    """Tevatron-format records per language for the articles ``titles``; returns (records, stats)."""
    languages = list(data)
    wanted = set(titles)
    ref = data[languages[0]]
    missing = wanted - {a["title"] for a in ref}
    if missing:
        raise DataError(f"articles not in the data: {sorted(missing)}")
    records: dict[str, list[dict]] = {lang: [] for lang in languages}
    n_classes = n_partial = n_neg = 0
    for i, article in enumerate(ref):
        if article["title"] not in wanted:
            continue
        title = article["title"]
        # per question: paragraph, gold sentence index per language
        questions = []  # (paragraph j, qid, {lang: k})
        for j, paragraph in enumerate(article["paragraphs"]):
            for n, qa in enumerate(paragraph["qas"]):
                golds = {}
                for lang in languages:
                    p = data[lang][i]["paragraphs"][j]
                    golds[lang] = gold_sentence(p, p["qas"][n], f"{lang}.json article {i} ({title}) paragraph {j}")
                questions.append((j, qa["id"], golds))
        # classes: same paragraph and same gold sentence in every language
        class_of: dict[tuple, str] = {}
        qclass = {}
        for j, qid, golds in questions:
            key = (j,) + tuple(golds[lang] for lang in languages)
            class_of.setdefault(key, f"{title}/p{j}/{qid}")
            qclass[qid] = (key, class_of[key])
        n_classes += len(class_of)
        # partially conflicting pairs (same gold in some language, different classes)
        for a in range(len(questions)):
            for b in range(a + 1, len(questions)):
                ja, qa_id, ga = questions[a]
                jb, qb_id, gb = questions[b]
                if ja == jb and qclass[qa_id][1] != qclass[qb_id][1] and any(ga[l] == gb[l] for l in languages):
                    n_partial += 1
        classes = list(class_of.items())  # document order (paragraph, first question)
        for j, qid, golds in questions:
            key, docid = qclass[qid]
            negs = []
            for same_paragraph in (True, False):
                for ckey, cdoc in classes:
                    if cdoc == docid or (ckey[0] == j) != same_paragraph:
                        continue
                    if ckey[0] == j and any(ckey[1 + x] == golds[lang] for x, lang in enumerate(languages)):
                        continue  # shares this question's gold sentence in some language: holds the answer
                    negs.append((ckey, cdoc))
            n_neg += len(negs)
            for lang in languages:
                paragraphs = data[lang][i]["paragraphs"]
                qa = next(q for q in paragraphs[j]["qas"] if q["id"] == qid)
                pos_text = paragraphs[j]["sentences"][golds[lang]]
                neg_items = [
                    {"docid": cdoc, "title": "",
                     "text": paragraphs[ckey[0]]["sentences"][ckey[1 + languages.index(lang)]]}
                    for ckey, cdoc in negs
                ]
                records[lang].append({
                    "query_id": qid,
                    "query": qa["question"],
                    "positive_passages": [{"docid": docid, "title": "", "text": pos_text}],
                    "negative_passages": neg_items,
                })
    n_q = len(records[languages[0]])
    stats = {
        "languages": languages,
        "articles": len(wanted),
        "queries": n_q,
        "positive_docids": n_classes,
        "mean_negatives": round(n_neg / max(n_q, 1), 2),
        "partial_conflict_pairs": n_partial,
    }
    return records, stats


def convert(xquad_dir: str, output_dir: str, languages: Sequence[str] = TRAIN_LANGUAGES, split: str = "train",
            every: int = TEST_EVERY, offset: int = TEST_OFFSET, check_titles: bool = True, val_every: int = 0) -> dict:
    """Write ``{lang}.jsonl`` for the ``split`` articles, plus ``split.json`` and ``stats.json``; return stats.
    ``val_every`` > 0 holds validation articles out of the training articles (:func:`split_validation`)."""
    if split not in ("train", "test"):
        raise DataError(f"split must be train or test, got {split!r}")
    unknown = [lang for lang in languages if lang not in ALL_LANGUAGES]
    if unknown:
        raise DataError(f"unknown XQuAD-R languages {unknown}; available: {', '.join(ALL_LANGUAGES)}")
    data = load_xquad(xquad_dir, list(languages))
    titles = [a["title"] for a in next(iter(data.values()))]
    train, test = split_articles(titles, every, offset)
    if check_titles and (every, offset) == (TEST_EVERY, TEST_OFFSET) and tuple(test) != TEST_ARTICLES:
        raise DataError(f"{xquad_dir}: the default split selects {test}, expected TEST_ARTICLES {list(TEST_ARTICLES)} "
                         "(different XQuAD-R files or article order?)")
    train, val = split_validation(train, val_every)
    records, stats = build_examples(data, train if split == "train" else test)
    os.makedirs(output_dir, exist_ok=True)
    for lang, rows in records.items():
        atomic_write_text(os.path.join(output_dir, f"{lang}.jsonl"),
                          "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    split_info = {"rule": f"article i (file order) is test when i % {every} == {offset}",
                  "val_rule": f"training article j is validation when j % {val_every} == {val_every - 1}" if val_every
                  else "none", "train": train, "val": val, "test": test, "written": split}
    atomic_write_json(os.path.join(output_dir, "split.json"), split_info)
    for side, names in (("train", train), ("val", val), ("test", test)):  # for ``eval.lareqa --articles @FILE``
        atomic_write_text(os.path.join(output_dir, f"{side}_articles.txt"), "".join(t + "\n" for t in names))
    stats["split"] = split
    atomic_write_json(os.path.join(output_dir, "stats.json"), stats)
    return stats


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xquad_dir", default=None, help="folder with XQuAD-R {lang}.json files")
    ap.add_argument("--output_dir", default=None, help="where {lang}.jsonl, split.json, stats.json go")
    ap.add_argument("--languages", nargs="+", default=list(TRAIN_LANGUAGES),
                    help=f"languages to write (default: all but {' '.join(UNSEEN_LANGUAGES)})")
    ap.add_argument("--split", default="train", choices=["train", "test"], help="which articles to write")
    ap.add_argument("--test_every", type=int, default=TEST_EVERY)
    ap.add_argument("--test_offset", type=int, default=TEST_OFFSET)
    ap.add_argument("--val_every", type=int, default=0,
                    help="hold training article j out for validation when j %% V == V - 1 (0: no validation split)")
    ap.add_argument("--print_split", choices=["train", "test"], default=None,
                    help="print that side's article titles (one a line) and exit; needs --xquad_dir unless the "
                    "default rule is used")
    args = ap.parse_args(argv)
    if args.print_split:
        if args.xquad_dir:
            data = load_xquad(args.xquad_dir, ["en"])
            train, test = split_articles([a["title"] for a in data["en"]], args.test_every, args.test_offset)
        elif (args.test_every, args.test_offset) == (TEST_EVERY, TEST_OFFSET):
            train, test = None, list(TEST_ARTICLES)
        else:
            ap.error("--print_split with a non-default rule needs --xquad_dir")
        if train is None and args.print_split == "train":
            ap.error("--print_split train needs --xquad_dir")
        print("\n".join(train if args.print_split == "train" else test))
        return 0
    if not args.xquad_dir or not args.output_dir:
        ap.error("--xquad_dir and --output_dir are required")
    stats = convert(args.xquad_dir, args.output_dir, args.languages, args.split, args.test_every, args.test_offset,
                    val_every=args.val_every)
    log.info(json.dumps(stats))
    log.info(f"wrote {', '.join(lang + '.jsonl' for lang in args.languages)}, split.json, train_articles.txt, "
             f"val_articles.txt, test_articles.txt, stats.json to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
