"""mMARCO (Hugging Face ``unicamp-dl/mmarco``) -> our parallel training format: one Tevatron JSONL per language.

    python -m hybrid_tevatron.data.mmarco --mmarco_dir MMARCO --output_dir data/mmarco \\
        --languages ar de en es hi ru zh --max_queries 100000 --negatives 7 [--download [--revision main]]

Reads the dataset repository's own files (what ``hf download unicamp-dl/mmarco --repo-type dataset`` puts in
``--local-dir``; ``--download`` fetches exactly the missing ones into ``--mmarco_dir``, which needs Hub access):

* ``data/triples.train.ids.small.tsv`` — ``qid<TAB>positive pid<TAB>negative pid``, the MS MARCO training
  triples, shared by all languages (that is what makes mMARCO parallel);
* ``data/{translation}/collections/{name}_collection.tsv`` — ``pid<TAB>passage``;
* ``data/{translation}/queries/train/{name}_queries.train.tsv`` — ``qid<TAB>query``;

where ``name`` is mMARCO's language name (``english``, ``german``…; ISO codes are accepted and mapped) and
``translation`` is ``google`` (the 14-language release; ``helsinki`` is the older 9-language one).

Output: ``{iso}.jsonl`` per language, one record per query id, in the order in which query ids first occur in
the triples file (already shuffled by MS MARCO; ``--max_queries`` keeps that prefix). Each record lists the
query's distinct positives and up to ``--negatives`` distinct negatives (triples order, positives never among
them), with the same docids in the same order in every language. A query is dropped when its text or any of
its positives is missing/empty in some language; a negative is dropped when missing in some language
(counts in ``stats.json``). Files are streamed twice (ids, then texts), one language at a time: memory holds the
selected ids and one language's selected texts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence

from hybrid_tevatron.atomic import atomic_path, atomic_write_json
from hybrid_tevatron.errors import HybridTevatronError, first_line, report_errors
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)
REPO = "unicamp-dl/mmarco"


class MmarcoError(HybridTevatronError, ValueError):
    """Missing or unknown mMARCO inputs; the message names the file or language."""

LANGUAGE_NAMES = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french", "hi": "hindi",
    "id": "indonesian", "it": "italian", "ja": "japanese", "nl": "dutch", "pt": "portuguese", "ru": "russian",
    "vi": "vietnamese", "zh": "chinese",
}
ISO = {name: code for code, name in LANGUAGE_NAMES.items()}
# The mMARCO languages that XQuAD-R also covers, less vi (held out as unseen): our reading of the paper's 7 (⚑).
PAPER_LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "zh")
TRIPLES = os.path.join("data", "triples.train.ids.small.tsv")


def language_code(lang: str) -> str:
    """ISO code of an mMARCO language given as code or name (``de`` or ``german``)."""
    if lang in LANGUAGE_NAMES:
        return lang
    if lang in ISO:
        return ISO[lang]
    raise MmarcoError(f"unknown mMARCO language {lang!r}; known: {', '.join(sorted(LANGUAGE_NAMES))}")


def collection_path(root: str, lang: str, translation: str = "google") -> str:
    return os.path.join(root, "data", translation, "collections", f"{LANGUAGE_NAMES[lang]}_collection.tsv")


def queries_path(root: str, lang: str, translation: str = "google") -> str:
    return os.path.join(root, "data", translation, "queries", "train", f"{LANGUAGE_NAMES[lang]}_queries.train.tsv")


def missing_files(mmarco_dir: str, langs: Sequence[str], translation: str = "google") -> list[str]:
    """The repository files (relative paths) this conversion needs that ``mmarco_dir`` lacks or holds empty."""
    needed = [TRIPLES] + [os.path.relpath(f("", lang, translation)) for lang in langs
                          for f in (collection_path, queries_path)]
    return [p for p in needed if not os.path.isfile(os.path.join(mmarco_dir, p))
            or not os.path.getsize(os.path.join(mmarco_dir, p))]


def download(mmarco_dir: str, langs: Sequence[str], translation: str = "google", revision: str = "main") -> None:
    """Fetch the missing files of :data:`REPO` (dataset) at ``revision`` into ``mmarco_dir``."""
    from huggingface_hub import hf_hub_download

    for path in missing_files(mmarco_dir, langs, translation):
        log.info(f"downloading {path} of {REPO}@{revision} into {mmarco_dir}")
        try:
            hf_hub_download(REPO, path, repo_type="dataset", revision=revision, local_dir=mmarco_dir)
        except Exception as err:  # noqa: BLE001 - network, auth, missing revision: one message
            raise MmarcoError(f"could not download {path} of {REPO}@{revision} ({first_line(err)}); "
                              "without Hub access put "
                              f"the repository's files in {mmarco_dir}") from None


def read_tsv(path: str, fields: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a TSV file; the last field keeps any further tabs. Errors name file:line."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line:
                continue
            parts = line.split("\t", fields - 1)
            if len(parts) != fields:
                raise MmarcoError(f"{path}:{n}: expected {fields} tab-separated fields, got {len(parts)}")
            yield n, parts


def select_queries(triples: str, max_queries: int | None, negatives: int) -> dict[str, tuple[list[str], list[str]]]:
    """``{qid: (positives, negatives)}`` for the first ``max_queries`` query ids of the triples file."""
    chosen: dict[str, tuple[list[str], list[str]]] = {}
    full = 0  # chosen queries that already have ``negatives`` negatives
    for _, (qid, pos, neg) in read_tsv(triples, 3):
        entry = chosen.get(qid)
        if entry is None:
            if max_queries is not None and len(chosen) >= max_queries:
                if full == len(chosen):
                    break  # nothing left to collect
                continue
            entry = chosen[qid] = ([], [])
            full += negatives == 0
        if pos not in entry[0]:
            entry[0].append(pos)
            if pos in entry[1]:  # seen as a negative first: a positive wins
                entry[1].remove(pos)
                full -= len(entry[1]) == negatives - 1
        if neg not in entry[0] and neg not in entry[1] and len(entry[1]) < negatives:
            entry[1].append(neg)
            full += len(entry[1]) == negatives
    return chosen


def load_texts(path: str, wanted: set, keep_text: bool = True) -> dict[str, str]:
    """Texts of the ``wanted`` ids in an ``id<TAB>text`` file (empty texts count as missing); with
    ``keep_text=False`` only the keys are meaningful (values are empty), to check availability cheaply."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing (download it with recipes/prepare_mmarco.sh)")
    out = {}
    for _, (key, text) in read_tsv(path, 2):
        if key in wanted:
            text = text.strip()
            if text:
                out[key] = text if keep_text else ""
    return out


def convert(mmarco_dir: str, output_dir: str, languages: Sequence[str] = PAPER_LANGUAGES,
            max_queries: int | None = None, negatives: int = 7, translation: str = "google") -> dict:
    """Write ``{iso}.jsonl`` per language and ``stats.json`` to ``output_dir``; return the stats."""
    langs = [language_code(lang) for lang in languages]
    if len(set(langs)) != len(langs):
        raise MmarcoError(f"duplicate languages in {list(languages)}")
    if negatives < 0:
        raise MmarcoError(f"--negatives must be >= 0, got {negatives}")
    triples = os.path.join(mmarco_dir, TRIPLES)
    absent = missing_files(mmarco_dir, langs, translation)
    if absent:  # before hours of streaming
        raise MmarcoError(f"{', '.join(os.path.join(mmarco_dir, p) for p in absent)}: missing (pass --download, "
                          "or bash recipes/prepare_mmarco.sh)")
    chosen = select_queries(triples, max_queries, negatives)
    pids = {p for pos, neg in chosen.values() for p in pos + neg}
    # pass 1, one language at a time: which selected ids have text in every language
    q_ok, p_ok = set(chosen), set(pids)
    for lang in langs:
        q_ok &= load_texts(queries_path(mmarco_dir, lang, translation), q_ok, keep_text=False).keys()
        p_ok &= load_texts(collection_path(mmarco_dir, lang, translation), p_ok, keep_text=False).keys()
    kept, dropped_queries, dropped_negatives = [], 0, 0
    for qid, (pos, neg) in chosen.items():
        if qid not in q_ok or any(p not in p_ok for p in pos):
            dropped_queries += 1
            continue
        good_neg = [p for p in neg if p in p_ok]
        dropped_negatives += len(neg) - len(good_neg)
        kept.append((qid, pos, good_neg))
    # pass 2, one language at a time: texts of the kept ids -> {iso}.jsonl
    os.makedirs(output_dir, exist_ok=True)
    need_q = {q for q, _, _ in kept}
    need_p = {p for _, pos, neg in kept for p in pos + neg}
    for lang in langs:
        qtext = load_texts(queries_path(mmarco_dir, lang, translation), need_q)
        ptext = load_texts(collection_path(mmarco_dir, lang, translation), need_p)
        with atomic_path(os.path.join(output_dir, f"{lang}.jsonl")) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for qid, pos, neg in kept:
                record = {
                    "query_id": qid,
                    "query": qtext[qid],
                    "positive_passages": [{"docid": p, "title": "", "text": ptext[p]} for p in pos],
                    "negative_passages": [{"docid": p, "title": "", "text": ptext[p]} for p in neg],
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        del qtext, ptext
    stats = {
        "languages": langs, "translation": translation, "queries": len(kept), "dropped_queries": dropped_queries,
        "dropped_negatives": dropped_negatives,
        "mean_negatives": round(sum(len(n) for _, _, n in kept) / max(len(kept), 1), 2),
    }
    atomic_write_json(os.path.join(output_dir, "stats.json"), stats)
    return stats


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mmarco_dir", required=True, help="local copy of the unicamp-dl/mmarco dataset repository")
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--languages", nargs="+", default=list(PAPER_LANGUAGES), help="ISO codes or mMARCO names")
    ap.add_argument("--max_queries", type=int, default=None, help="keep the first N query ids of the triples")
    ap.add_argument("--negatives", type=int, default=7, help="max distinct negatives per query")
    ap.add_argument("--translation", default="google", help="data/<translation>/ folder (google or helsinki)")
    ap.add_argument("--download", action="store_true", help=f"fetch the missing files of {REPO} first (Hub access)")
    ap.add_argument("--revision", default="main", help="with --download: the dataset repository's revision")
    args = ap.parse_args(argv)
    if args.download:
        download(args.mmarco_dir, [language_code(lang) for lang in args.languages], args.translation, args.revision)
    stats = convert(args.mmarco_dir, args.output_dir, args.languages, args.max_queries, args.negatives,
                    args.translation)
    log.info(json.dumps(stats))
    log.info(f"wrote {', '.join(lang + '.jsonl' for lang in stats['languages'])} and stats.json to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
