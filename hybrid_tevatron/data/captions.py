"""Caption corpora ("one caption file per language, line i = image i") -> training JSONL and evaluation pools.

    python -m hybrid_tevatron.data.captions train --multi30k ../shared/data/multi30k --split train \\
        --output_dir data/multi30k-train [--languages en de fr cs] [--negatives 7] [--max_examples 816] [--seed 0]
    python -m hybrid_tevatron.data.captions pool --xtd10 ../shared/data/xtd10 --output_dir pools/xtd10
    python -m hybrid_tevatron.data.captions train --files en=a.en.txt de=a.de.txt [--image_names names.txt] ...
    python -m hybrid_tevatron.data.captions train|pool --multi30k_task2 ../shared/data/multi30k-task2 --split S ...

``--multi30k_task2 DIR --split S`` reads several independent descriptions of each image per language (Multi30K
task 2): a different relation from the translations read here, converted by :mod:`hybrid_tevatron.data.descriptions`
(its docstring says how). The rest of this docstring is about translations.

**Relation**: these captions translate each other (``relation: translation`` in ``stats.json`` and in the pool
manifest). XTD10 is ``mixed``: its Japanese (STAIR) captions are independent descriptions, the others
translations of the English one (``relation_note`` says so).

**Inputs** (exactly one of, or ``--multi30k_task2``): ``--multi30k DIR --split S`` reads ``DIR/{S}.{lang}.gz``
(gzip; image id ``{S}-{line}``); ``--xtd10 DIR`` reads ``DIR/test_1kcaptions_{lang}.txt`` with the image ids from
``DIR/test_image_names.txt`` (file name without extension); ``--files LANG=PATH ...`` reads any such files
(``.gz`` or plain), with image ids from ``--image_names FILE`` (one a line) or ``{line}``. Languages default to
every caption file present. Each file is UTF-8 text, one caption a line (``\\r\\n`` and a leading byte-order mark
are accepted). Validation, each a one-line :class:`~hybrid_tevatron.data.errors.DataError` naming the file and
line: a missing language file, bytes that are not UTF-8, an empty caption, caption files (or the image-name file)
with different line counts, an empty, duplicate or blank-containing image id.

**Training JSONL** (``train``): one ``{lang}.jsonl`` per language in Tevatron's format, aligned by id: query id =
docid = image id; query = positive = the image's caption in that language (so every mono pair pairs a caption
with itself: train it with ``--cross_only_sources NAME``, which the batch plan requires); negatives = the
captions (same language) of ``--negatives`` other images, the same images in every language, drawn uniformly
without replacement per (``--seed``, image position) — deterministic — among the kept images, skipping any image
whose caption equals this image's caption in some language (a duplicate caption would be a false negative).
``--max_examples N`` keeps N images, a uniform sample without replacement drawn from ``--seed`` (kept in file
order). Written with ``stats.json`` (counts, the choices above, duplicate captions per language).

**Evaluation pool** (``pool``): the layout of :mod:`hybrid_tevatron.eval.benchmarks.lareqa`
(``corpus/{lang}.jsonl`` with docid ``{lang}-{n}``, n = 0-based line; ``topics/{X}.tsv`` with qid
``{image id}-{X}``; ``qrels/{search}.txt``; ``manifest.json``), format ``hybrid_tevatron.captions/1``;
``--max_images N`` keeps the first N images.
Searches: **cross** X->Y for every ordered pair X != Y (X->en is the text->image stand-in: a caption proxy, not
image retrieval; relevant = the image's caption in Y) and **multi** X->all (pool = every language's captions;
relevant = the image's captions in the other languages). The query's own caption is in the multi pool and would
trivially rank first, so each multi search names ``exclude/multi.X.txt`` ("qid docid" lines, one per query: its own
caption); an evaluator must drop those pairs from the run before scoring (``python -m hybrid_tevatron.eval
captions`` does). There is no mono setting (a caption would retrieve itself). The manifest's own format tag tells
the evaluation to apply the exclusion.

Everything is written to a temporary folder next to the output folder and renamed into place at the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hybrid_tevatron.atomic import atomic_dir
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.data.pool_ids import clean_text, docid, query_id
from hybrid_tevatron.errors import report_errors

POOL_FORMAT = "hybrid_tevatron.captions/1"
MULTI30K_NAME = "{split}.{lang}.gz"
XTD10_NAME, XTD10_IMAGES = "test_1kcaptions_{lang}.txt", "test_image_names.txt"
DEFAULT_NEGATIVES = 7  # = Tevatron's default group of 8 minus the positive
_SALT_SAMPLE, _SALT_NEGATIVES = 0x5A3D1, 0x4E6E7
_BLANK = re.compile(r"\s")


@dataclass
class CaptionSet:
    """Parallel captions: ``captions[lang][i]`` describes image ``image_ids[i]`` (the line ``lines[i]``)."""

    name: str
    languages: list[str]
    image_ids: list[str]
    captions: dict[str, list[str]]
    paths: dict[str, str]
    lines: list[int]  # 1-based line of each image in the files (stable under --max_examples)
    relation: str = "translation"  # or "mixed" (XTD10); several descriptions per image: data.descriptions
    relation_note: str | None = None

    def __len__(self) -> int:
        return len(self.image_ids)


# ------------------------------------------------------------------------------------------------ reading
def read_lines(path: str, what: str) -> list[str]:
    """The lines of a UTF-8 text file (gzip if ``.gz``), without line ends; a final newline ends the last line."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file ({what})")
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({what}): {err}") from None
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    out = []
    for lineno, line in enumerate(raw, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}:{lineno}: not UTF-8 ({err.reason} at byte {err.start} of the line)") from None
        out.append(text.rstrip("\r").lstrip("\ufeff") if lineno == 1 else text.rstrip("\r"))
    return out


def read_captions(path: str, lang: str) -> list[str]:
    captions = read_lines(path, f"captions of language {lang!r}")
    if not captions:
        raise DataError(f"{path}: empty file (captions of language {lang!r})")
    empty = [i for i, c in enumerate(captions, 1) if not c.strip()]
    if empty:
        more = f" (and {len(empty) - 1} more empty lines)" if len(empty) > 1 else ""
        raise DataError(f"{path}:{empty[0]}: empty caption (language {lang!r}){more}")
    return [c.strip() for c in captions]


def read_image_names(path: str) -> list[str]:
    """Image ids from a name file, one a line; a trailing extension (``.jpg``) is dropped."""
    names = read_lines(path, "image names")
    ids, first = [], {}
    for lineno, name in enumerate(names, 1):
        name = name.strip()
        if not name or _BLANK.search(name):
            raise DataError(f"{path}:{lineno}: image name must be non-empty without blanks, got {name!r}")
        image = os.path.splitext(name)[0] or name
        if image in first:
            raise DataError(f"{path}:{lineno}: duplicate image {image!r} (first at {path}:{first[image]})")
        first[image] = lineno
        ids.append(image)
    return ids


def load_caption_files(name: str, files: dict[str, str], image_names: str | None = None,
                       id_prefix: str = "") -> CaptionSet:
    """Parallel captions from ``{lang: path}``; image ids from ``image_names`` or ``{id_prefix}{line}``."""
    if not files:
        raise DataError(f"{name}: no caption files")
    captions = {lang: read_captions(path, lang) for lang, path in files.items()}
    first = next(iter(files))
    n = len(captions[first])
    for lang, path in files.items():
        if len(captions[lang]) != n:
            raise DataError(f"{path}: {len(captions[lang])} captions, but {files[first]} has {n} (line i must be "
                            "the same image in every language)")
    if image_names:
        ids = read_image_names(image_names)
        if len(ids) != n:
            raise DataError(f"{image_names}: {len(ids)} image names, but {files[first]} has {n} captions")
    else:
        ids = [f"{id_prefix}{i}" for i in range(1, n + 1)]
    return CaptionSet(name, list(files), ids, captions, dict(files), list(range(1, n + 1)))


def pick_languages(available: Sequence[str], languages: Sequence[str] | None, expected: str) -> list[str]:
    if not languages:
        if not available:
            raise DataError(f"no caption files found ({expected})")
        return list(available)
    return list(dict.fromkeys(languages))


def multi30k_files(data_dir: str, split: str, languages: Sequence[str] | None = None) -> dict[str, str]:
    """``{lang: DIR/{split}.{lang}.gz}``; every requested language must have its file."""
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: Multi30K folder not found")
    pattern = re.compile(re.escape(split) + r"\.([A-Za-z_-]+)\.gz$")
    present = sorted(m.group(1) for f in os.listdir(data_dir) if (m := pattern.match(f)))
    langs = pick_languages(present, languages, os.path.join(data_dir, MULTI30K_NAME.format(split=split, lang="LANG")))
    return _existing(data_dir, {lang: MULTI30K_NAME.format(split=split, lang=lang) for lang in langs}, present)


def xtd10_files(data_dir: str, languages: Sequence[str] | None = None) -> dict[str, str]:
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: XTD10 folder not found")
    pattern = re.compile(r"test_1kcaptions_([A-Za-z_-]+)\.txt$")
    present = sorted(m.group(1) for f in os.listdir(data_dir) if (m := pattern.match(f)))
    langs = pick_languages(present, languages, os.path.join(data_dir, XTD10_NAME.format(lang="LANG")))
    return _existing(data_dir, {lang: XTD10_NAME.format(lang=lang) for lang in langs}, present)


def _existing(data_dir: str, names: dict[str, str], present: Sequence[str]) -> dict[str, str]:
    files = {lang: os.path.join(data_dir, name) for lang, name in names.items()}
    for lang, path in files.items():
        if not os.path.isfile(path):
            raise DataError(f"{path}: no caption file for language {lang!r} (present: {', '.join(present) or 'none'})")
    return files


def parse_lang_files(items: Sequence[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            lang, eq, path = part.partition("=")
            lang, path = lang.strip(), path.strip()
            if not eq or not lang or not path:
                raise DataError(f"--files: expected LANG=PATH, got {part!r}")
            if lang in files:
                raise DataError(f"--files: language {lang!r} given twice")
            files[lang] = path
    return files


# ------------------------------------------------------------------------------------------------ selection
def sample_positions(n: int, max_examples: int | None, seed: int) -> list[int] | None:
    """``max_examples`` of ``range(n)`` drawn uniformly without replacement from ``seed``, sorted (None: all)."""
    if max_examples is None or max_examples >= n:
        return None
    if max_examples < 1:
        raise DataError(f"--max_examples must be >= 1, got {max_examples}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT_SAMPLE]))
    return np.sort(rng.choice(n, size=max_examples, replace=False)).tolist()


def sample_images(captions: CaptionSet, max_examples: int | None, seed: int) -> CaptionSet:
    """``max_examples`` images drawn uniformly without replacement from ``seed``, in file order (all if None)."""
    keep = sample_positions(len(captions), max_examples, seed)
    if keep is None:
        return captions
    return CaptionSet(captions.name, captions.languages, [captions.image_ids[i] for i in keep],
                      {lang: [c[i] for i in keep] for lang, c in captions.captions.items()}, captions.paths,
                      [captions.lines[i] for i in keep], captions.relation, captions.relation_note)


def first_images(captions: CaptionSet, n: int) -> CaptionSet:
    """The first ``n`` images (file order): a small deterministic pool."""
    if n < 1:
        raise DataError(f"--max_images must be >= 1, got {n}")
    return CaptionSet(captions.name, captions.languages, captions.image_ids[:n],
                      {lang: c[:n] for lang, c in captions.captions.items()}, captions.paths, captions.lines[:n],
                      captions.relation, captions.relation_note)


def duplicate_groups(captions: CaptionSet) -> dict[int, set]:
    """Per image that shares its caption with another image in some language, the set of those other images."""
    same: dict[int, set] = {}
    for lang in captions.languages:
        by_text: dict[str, list[int]] = {}
        for i, text in enumerate(captions.captions[lang]):
            by_text.setdefault(text, []).append(i)
        for group in by_text.values():
            if len(group) > 1:
                for i in group:
                    same.setdefault(i, set()).update(j for j in group if j != i)
    return same


def choose_negatives(n: int, k: int, seed: int, excluded: dict[int, set]) -> list[list[int]]:
    """Per image i: ``k`` distinct other images (fewer only if too few exist), uniform without replacement from
    a generator seeded by (seed, i); never i itself nor ``excluded[i]``."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT_NEGATIVES, i]))
        out.append(draw_others(rng, n, k, {i} | excluded.get(i, set())))
    return out


def draw_others(rng: np.random.Generator, n: int, k: int, banned: set) -> list[int]:
    """``k`` distinct members of ``range(n)`` outside ``banned`` (fewer only if too few exist), uniform without
    replacement from ``rng``."""
    want = min(k, n - len(banned))
    chosen: list[int] = []
    seen = set(banned)
    if want > (n - len(banned)) // 2:  # dense: a permutation is cheaper than rejection
        chosen = [int(j) for j in rng.permutation(n) if int(j) not in banned][:want]
    while len(chosen) < want:
        for j in rng.integers(0, n, size=2 * (want - len(chosen)) + 4).tolist():
            if j not in seen:
                seen.add(j)
                chosen.append(j)
                if len(chosen) == want:
                    break
    return chosen


# ------------------------------------------------------------------------------------------------ training JSONL
def check_output(output_dir: str, overwrite: bool) -> str:
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise DataError(f"{output_dir}: exists and is not a folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise DataError(f"{output_dir}: folder exists and is not empty (pass --overwrite to replace it)")
    return output_dir


def write_training(captions: CaptionSet, output_dir: str, negatives: int = DEFAULT_NEGATIVES, seed: int = 0,
                   max_examples: int | None = None, overwrite: bool = False) -> dict:
    """Write ``{lang}.jsonl`` and ``stats.json`` (see the module docstring); return the stats."""
    if negatives < 0:
        raise DataError(f"--negatives must be >= 0, got {negatives}")
    if len(captions.languages) < 2:
        raise DataError(f"{captions.name}: translated captions need at least two languages for a training pair "
                        f"(one language pairs each caption with itself), got {captions.languages}")
    output_dir = check_output(output_dir, overwrite)
    total = len(captions)
    kept = sample_images(captions, max_examples, seed)
    dups = duplicate_groups(kept)
    negs = choose_negatives(len(kept), negatives, seed, dups)
    ids = kept.image_ids
    with atomic_dir(output_dir) as tmp:
        for lang in kept.languages:
            texts = kept.captions[lang]
            with open(os.path.join(tmp, f"{lang}.jsonl"), "w", encoding="utf-8") as f:
                for i, image in enumerate(ids):
                    record = {
                        "query_id": image,
                        "query": texts[i],
                        "positive_passages": [{"docid": image, "title": "", "text": texts[i]}],
                        "negative_passages": [{"docid": ids[j], "title": "", "text": texts[j]} for j in negs[i]],
                    }
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        stats = {
            "source": kept.name,
            "relation": kept.relation,
            **({"relation_note": kept.relation_note} if kept.relation_note else {}),
            "languages": kept.languages,
            "files": {lang: os.path.abspath(p) for lang, p in kept.paths.items()},
            "images_in_files": total,
            "queries": len(kept),
            "max_examples": max_examples,
            "seed": seed,
            "negatives_per_query": negatives,
            "min_negatives": min((len(x) for x in negs), default=0),
            "negatives_rule": "other images' captions (same language), uniform without replacement per (seed, "
                              "image position); images sharing a caption with the query in any language skipped",
            "images_with_duplicate_caption": {lang: _duplicates(kept.captions[lang]) for lang in kept.languages},
            "self_paired": "query == positive in every language: train with --cross_only_sources",
        }
        with open(os.path.join(tmp, "stats.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    return stats


def _duplicates(texts: list[str]) -> int:
    counts: dict[str, int] = {}
    for t in texts:
        counts[t] = counts.get(t, 0) + 1
    return sum(c for c in counts.values() if c > 1)


# ------------------------------------------------------------------------------------------------ evaluation pool
def plan_pool_searches(captions: CaptionSet) -> list[dict]:
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


def write_pool(captions: CaptionSet, output_dir: str, overwrite: bool = False) -> dict:
    """Write the evaluation pool (see the module docstring); return the manifest."""
    if len(captions.languages) < 2:
        raise DataError(f"{captions.name}: a caption pool needs at least two languages, got {captions.languages}")
    output_dir = check_output(output_dir, overwrite)
    langs = captions.languages
    positions = [line - 1 for line in captions.lines]
    with atomic_dir(output_dir) as root:
        for sub in ("corpus", "topics", "qrels", "exclude"):
            os.makedirs(os.path.join(root, sub))
        corpora = {}
        for lang in langs:
            rel = f"corpus/{lang}.jsonl"
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                f.writelines(json.dumps({"id": docid(lang, p), "contents": clean_text(text), "lang": lang},
                                        ensure_ascii=False) + "\n"
                             for p, text in zip(positions, captions.captions[lang]))
            corpora[lang] = {"path": rel, "size": len(captions)}
        topics = {}
        for lang in langs:
            rel = f"topics/{lang}.tsv"
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                for image, text in zip(captions.image_ids, captions.captions[lang]):
                    f.write(f"{query_id(image, lang)}\t{clean_text(text)}\n")
            topics[lang] = {"path": rel, "queries": len(captions)}
        searches = plan_pool_searches(captions)
        for s in searches:
            with open(os.path.join(root, s["qrels"]), "w", encoding="utf-8") as f:
                for qid, docids in s.pop("_qrels").items():
                    f.writelines(f"{qid} 0 {d} 1\n" for d in docids)
            if s["exclude"]:
                with open(os.path.join(root, s["exclude"]), "w", encoding="utf-8") as f:
                    f.writelines(f"{qid} {d}\n" for qid, d in s.pop("_exclude").items())
        pairs = [[s["query_lang"], s["pool"]] for s in searches if s["setting"] == "cross"]
        manifest = {
            "format": POOL_FORMAT,
            "dataset": captions.name,
            "relation": captions.relation,
            **({"relation_note": captions.relation_note} if captions.relation_note else {}),
            "files": {lang: os.path.abspath(p) for lang, p in captions.paths.items()},
            "proxy": "caption proxy: captions of the same image in other languages stand in for the image",
            "parallel": True,
            "languages": langs,
            "pairs": pairs,
            "counts": {"images": len(captions), "pool_all": len(captions) * len(langs), "pairs": len(pairs),
                       "queries": {st: sum(s["queries"] for s in searches if s["setting"] == st)
                                   for st in ("cross", "multi")},
                       "images_with_duplicate_caption": {lang: _duplicates(captions.captions[lang]) for lang in langs}},
            "exclude_rule": "multi searches: drop each 'qid docid' pair of the search's exclude file (the query's "
                            "own caption) from the run before scoring",
            "corpora": corpora,
            "topics": topics,
            "searches": searches,
        }
        with open(os.path.join(root, "manifest.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


# ------------------------------------------------------------------------------------------------ CLI
XTD10_NOTE = "jp (STAIR) captions are independent descriptions of the image; the others translate the English one"


def load_xtd10(data_dir: str, languages: Sequence[str] | None = None) -> CaptionSet:
    """XTD10's captions (relation ``mixed``: see ``XTD10_NOTE``)."""
    captions = load_caption_files("xtd10", xtd10_files(data_dir, languages),
                                  image_names=os.path.join(data_dir, XTD10_IMAGES))
    captions.relation, captions.relation_note = "mixed", XTD10_NOTE
    return captions


def load_from_args(args):
    """A :class:`CaptionSet` (translations), or with ``--multi30k_task2`` a
    :class:`~hybrid_tevatron.data.descriptions.DescriptionSet`."""
    given = [flag for flag, v in (("--multi30k", args.multi30k), ("--multi30k_task2", args.multi30k_task2),
                                  ("--xtd10", args.xtd10), ("--files", args.files)) if v]
    if len(given) != 1:
        raise DataError("give exactly one of --multi30k DIR, --multi30k_task2 DIR, --xtd10 DIR, --files LANG=PATH ... "
                        f"(got {given or 'none'})")
    if args.multi30k_task2:
        from hybrid_tevatron.data.descriptions import load_task2

        if not args.split:
            raise DataError("--multi30k_task2 needs --split (train, val, test_2016)")
        return load_task2(args.multi30k_task2, args.split, args.languages)
    if args.multi30k:
        if not args.split:
            raise DataError("--multi30k needs --split (train, val, test_2016_flickr, ...)")
        files = multi30k_files(args.multi30k, args.split, args.languages)
        return load_caption_files(f"multi30k-{args.split}", files, id_prefix=f"{args.split}-")
    if args.xtd10:
        return load_xtd10(args.xtd10, args.languages)
    files = parse_lang_files(args.files)
    if args.languages:
        missing = [lang for lang in args.languages if lang not in files]
        if missing:
            raise DataError(f"--languages {missing} have no file in --files")
        files = {lang: files[lang] for lang in args.languages}
    return load_caption_files(args.name or "captions", files, image_names=args.image_names)


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.data.captions", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    parsers = {"train": sub.add_parser("train", help="parallel training JSONL, one file per language"),
               "pool": sub.add_parser("pool", help="evaluation pool: corpora, topics, qrels, exclusions, manifest")}
    for p in parsers.values():
        p.add_argument("--multi30k", metavar="DIR", help="Multi30K folder ({split}.{lang}.gz): translations")
        p.add_argument("--multi30k_task2", metavar="DIR", help="Multi30K task 2 folder (raw/{split}.{k}.{lang}.gz, "
                       "image_splits/{split}_images.txt): independent descriptions, several per image")
        p.add_argument("--split", help="with --multi30k: train, val, test_2016_flickr, test_2017_mscoco, ...; with "
                       "--multi30k_task2: train, val, test_2016")
        p.add_argument("--xtd10", metavar="DIR", help="XTD10 folder (test_1kcaptions_{lang}.txt, test_image_names.txt)")
        p.add_argument("--files", nargs="+", metavar="LANG=PATH", help="any caption files, line i = image i")
        p.add_argument("--image_names", help="with --files: image ids, one a line (default: the line number)")
        p.add_argument("--name", help="with --files: the data set's name (default: captions)")
        p.add_argument("--languages", nargs="+", help="default: every language with a caption file")
        p.add_argument("--output_dir", required=True)
        p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    parsers["pool"].add_argument("--max_images", type=int, help="keep the first N images (file order)")
    t = parsers["train"]
    t.add_argument("--negatives", type=int, default=DEFAULT_NEGATIVES,
                   help=f"negatives per query: other images' captions (default {DEFAULT_NEGATIVES})")
    t.add_argument("--max_examples", type=int, help="keep this many images (seeded uniform sample, file order)")
    t.add_argument("--seed", type=int, default=0, help="seed of the sample and the negatives (default 0)")
    args = ap.parse_args(argv)
    captions = load_from_args(args)
    if isinstance(captions, CaptionSet):
        convert = sys.modules[__name__]
    else:
        from hybrid_tevatron.data import descriptions as convert
    if args.command == "train":
        stats = convert.write_training(captions, args.output_dir, args.negatives, args.seed, args.max_examples,
                                       args.overwrite)
        queries = f", {stats['queries']} queries ({stats['relation']})" if "images" in stats else ""
        print(f"{stats['source']}: {stats.get('images', stats['queries'])} of {stats['images_in_files']} images"
              f"{queries}, {len(stats['languages'])} languages ({' '.join(stats['languages'])}), "
              f"{stats['negatives_per_query']} negatives each -> {os.path.abspath(args.output_dir)}")
    else:
        if args.max_images is not None:
            captions = convert.first_images(captions, args.max_images)
        manifest = convert.write_pool(captions, args.output_dir, args.overwrite)
        c = manifest["counts"]
        print(f"{manifest['dataset']}: {c['images']} images ({manifest['relation']}), "
              f"{len(manifest['languages'])} languages, {c['pool_all']} captions, {c['pairs']} cross pairs, "
              f"{len(manifest['searches'])} searches -> "
              f"{os.path.join(os.path.abspath(args.output_dir), 'manifest.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
