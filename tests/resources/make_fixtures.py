"""Write the tests' data root, ``tests/resources/data`` (the stand-in for ``../shared/data`` on a plain clone).

    python tests/resources/make_fixtures.py                    # the look-alikes (no real data needed)
    python tests/resources/make_fixtures.py --xquad ../shared/data/xquad-r     # and the XQuAD-R slice

* ``xquad-r/``: a slice of the real XQuAD-R files (CC BY-SA 4.0, see its README): all 48 articles in file order
  (so the pinned train/test article split holds), a few paragraphs each, one question per paragraph and each
  paragraph's sentences up to the one that ends the answer. Texts, offsets and ids are unchanged. Needs the real
  files, so it is written only with ``--xquad``.
* ``mlqa-r/``, ``multi30k/``, ``multi30k-task2/``, ``xtd10/``: generated look-alikes (the real files carry
  non-commercial terms, so none of their text is copied): the real file names, formats, languages, line ends and
  alignment rules, invented pseudo-word text, fewer lines. Deterministic: the same bytes on every run
  (``tests/test_fixtures.py`` checks the committed files against a fresh run).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")

# ------------------------------------------------------------------------------------------------ pseudo-words
_LATIN = "bcdfghjklmnprstvz"
_EXTRA = {"en": "", "de": "äöüß", "fr": "éèçà", "cs": "čřšžěý", "es": "ñáéó", "it": "àèò", "pl": "łąęśż",
          "tr": "şğıçö", "vi": "ơưạếđ"}
_VOWELS = "aeiou"


def _syllables(lang: str, rng: random.Random) -> list[str]:
    if lang in _EXTRA:
        extra = _EXTRA[lang]
        return [c + v for c in _LATIN + extra[:2] for v in _VOWELS + extra[2:]]
    if lang == "ru":
        return [c + v for c in "бвгдклмнпрстчш" for v in "аеиоуыя"]
    if lang == "ar":
        return [c + v for c in "بتجدرسعفقلمنهو" for v in ("", "ا", "ي")]
    if lang == "hi":
        return [c + v for c in "कखगचजतदनपबमरलस" for v in ("", "ा", "ि", "ी", "ु", "े")]
    if lang == "ko":
        return [chr(0xAC00 + rng.randrange(11172)) for _ in range(120)]
    if lang == "zh":
        return [chr(0x4E00 + rng.randrange(0x5000)) for _ in range(400)]
    if lang == "jp":
        return [chr(0x3041 + i) for i in range(80)] + [chr(0x30A1 + i) for i in range(80)] + \
            [chr(0x4E00 + rng.randrange(0x5000)) for _ in range(120)]
    raise ValueError(lang)


_NO_SPACE = ("zh", "jp")
_STOP = {"zh": "。", "jp": "", "hi": "।"}


def vocabulary(lang: str, size: int = 300) -> list[str]:
    """``size`` distinct pseudo-words of ``lang``'s script (concept i is word i in every language)."""
    rng = random.Random(f"vocab-{lang}")
    syl = _syllables(lang, rng)
    words: dict[str, None] = {}
    while len(words) < size:
        n = rng.choice((1, 2)) if lang in ("zh", "jp", "ko") else rng.choice((1, 2, 2, 3))
        words.setdefault("".join(rng.choice(syl) for _ in range(n)))
    return list(words)


_VOCABS: dict[str, list[str]] = {}


def render(lang: str, concepts: list[int], stop: bool = True) -> str:
    """The concepts as a sentence of ``lang``: its words in order, capitalised (Latin/Cyrillic), a full stop."""
    vocab = _VOCABS.setdefault(lang, vocabulary(lang))
    words = [vocab[c % len(vocab)] for c in concepts]
    text = ("" if lang in _NO_SPACE else " ").join(words)
    if text[:1].isalpha() and text[:1].lower() != text[:1].upper():
        text = text[0].upper() + text[1:]
    return text + (_STOP.get(lang, ".") if stop else "")


def translate(rng: random.Random, concepts: list[int]) -> list[int]:
    """A "translation": the same concepts, now and then one dropped or two swapped."""
    out = list(concepts)
    if len(out) > 3 and rng.random() < 0.3:
        del out[rng.randrange(1, len(out))]
    if len(out) > 3 and rng.random() < 0.3:
        i = rng.randrange(1, len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


# ------------------------------------------------------------------------------------------------ writers
def _write_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _write_gz(path: str, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as g:
        g.write(text.encode("utf-8"))
    _write_bytes(path, buf.getvalue())


def _lines(lines: list[str], crlf: bool = False) -> str:
    """LF with a final newline, or (XTD10's es/it/ko/pl/ru/tr/zh) CRLF without one."""
    return "\r\n".join(lines) if crlf else "".join(line + "\n" for line in lines)


# ------------------------------------------------------------------------------------------------ MLQA-R
MLQA_LANGUAGES = ("ar", "de", "en", "es", "hi", "vi", "zh")


def write_mlqa(out: str, paragraphs: int = 64) -> None:
    """SQuAD-style ``{lang}.json`` like MLQA-R's: every question id is in en and in 1-3 other languages (so a
    question has 2-4 gold sentences across the pool); each language has its own articles/paragraphs (titles in
    its language), 3-6 sentences a paragraph, 1-3 questions; answer = a word span of the gold sentence."""
    rng = random.Random("mlqa-r")
    files: dict[str, list] = {lang: [] for lang in MLQA_LANGUAGES}
    others = [lang for lang in MLQA_LANGUAGES if lang != "en"]
    pairs = [[a, b] for i, a in enumerate(others) for b in others[i + 1:]]  # every cross pair shares questions
    for p in range(paragraphs):
        langs = ["en"] + sorted(rng.sample(others, rng.choice((1, 2, 2, 3, 3))) if p % 4 or not pairs else pairs.pop())
        article = p // 3  # three paragraphs an article
        sentences = [[rng.randrange(300) for _ in range(rng.randint(5, 12))] for _ in range(rng.randint(3, 6))]
        qas = []
        for _ in range(rng.randint(1, 3)):
            gold = rng.randrange(len(sentences))
            at = rng.randrange(1, len(sentences[gold]))
            qid = hashlib.sha1(f"mlqa-{p}-{len(qas)}".encode()).hexdigest()
            question = [rng.randrange(300)] + [c for c in sentences[gold] if c != sentences[gold][at]][:4]
            qas.append((qid, question, gold, sentences[gold][at]))
        title_concepts = [1000 + article, 1001 + article]
        for lang in langs:
            lr = random.Random(f"mlqa-{p}-{lang}")
            texts = [render(lang, translate(lr, s)) for s in sentences]
            sep = "" if lang in _NO_SPACE else " "
            context, breaks, pos = "", [], 0
            for i, t in enumerate(texts):
                if i:
                    context += sep
                    pos += len(sep)
                breaks.append([pos, pos + len(t)])
                context += t
                pos += len(t)
            items = []
            for qid, question, gold, answer in qas:
                word = render(lang, [answer], stop=False)
                start = context.find(word, breaks[gold][0], breaks[gold][1])
                if start < 0:  # capitalised at the sentence start, or dropped by the "translation"
                    word = texts[gold][: len(word)]
                    start = breaks[gold][0]
                items.append({"question": render(lang, question, stop=False) + "?",
                              "answers": [{"text": word, "answer_start": start}], "id": qid})
            title = render(lang, title_concepts, stop=False)
            arts = files[lang]
            if not arts or arts[-1]["title"] != title:
                arts.append({"title": title, "paragraphs": []})
            arts[-1]["paragraphs"].append({"context": context, "qas": items, "sentence_breaks": breaks,
                                           "sentences": texts})
    for lang, arts in files.items():
        _write_bytes(os.path.join(out, f"{lang}.json"),
                     json.dumps({"version": 1.0, "data": arts}, ensure_ascii=False).encode("utf-8"))


# ------------------------------------------------------------------------------------------------ captions
def _caption(rng: random.Random) -> list[int]:
    return [rng.randrange(300) for _ in range(rng.randint(6, 13))]


def _describe(rng: random.Random, image: list[int]) -> list[int]:
    """An independent description of the same image: some of its concepts, some new ones, another order."""
    keep = rng.sample(image, max(2, len(image) // 2))
    new = [rng.randrange(300) for _ in range(rng.randint(2, 6))]
    out = keep + new
    rng.shuffle(out)
    return out


MULTI30K_SPLITS = {"train": (("cs", "de", "en", "fr"), 64), "val": (("cs", "de", "en", "fr"), 30),
                   "test_2016_flickr": (("cs", "de", "en", "fr"), 40), "test_2017_flickr": (("de", "en", "fr"), 32),
                   "test_2017_mscoco": (("de", "en", "fr"), 20), "test_2018_flickr": (("cs", "de", "en", "fr"), 36)}


def write_multi30k(out: str) -> None:
    """Task 1: ``{split}.{lang}.gz``, line i the same caption in every language (de/fr/cs "translate" en)."""
    for split, (langs, n) in MULTI30K_SPLITS.items():
        rng = random.Random(f"multi30k-{split}")
        images = [_caption(rng) for _ in range(n)]
        for lang in langs:
            lr = random.Random(f"multi30k-{split}-{lang}")
            _write_gz(os.path.join(out, f"{split}.{lang}.gz"),
                      _lines([render(lang, c if lang == "en" else translate(lr, c), stop=lr.random() < 0.5)
                              for c in images]))


TASK2_SPLITS = {"train": 40, "val": 24, "test_2016": 30}


def _flickr_names(rng: random.Random, n: int, long: bool = False) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < n:
        stem = f"{rng.randrange(10**10, 10**11)}_{rng.randrange(16**10):010x}" if long else \
            str(rng.randrange(10**6, 10**10))
        names.setdefault(stem + ".jpg")
    return list(names)


def write_multi30k_task2(out: str) -> None:
    """Task 2: ``raw/{split}.{k}.{lang}.gz`` (k = 1..5, en/de), five independent descriptions per image (not
    translations; one image has two identical German ones, as in the real test_2016), and
    ``image_splits/{split}_images.txt`` (also test_2017, which has no captions)."""
    for split, n in TASK2_SPLITS.items():
        rng = random.Random(f"task2-{split}")
        images = [_caption(rng) for _ in range(n)]
        _write_bytes(os.path.join(out, "image_splits", f"{split}_images.txt"),
                     _lines(_flickr_names(rng, n)).encode("utf-8"))
        for lang in ("en", "de"):
            lr = random.Random(f"task2-{split}-{lang}")
            caps = [[render(lang, _describe(lr, img), stop=lr.random() < 0.4) for _ in range(5)] for img in images]
            if lang == "de":
                caps[n // 2][4] = caps[n // 2][3]
            for k in range(5):
                _write_gz(os.path.join(out, "raw", f"{split}.{k + 1}.{lang}.gz"), _lines([c[k] for c in caps]))
    _write_bytes(os.path.join(out, "image_splits", "test_2017_images.txt"),
                 _lines(_flickr_names(random.Random("task2-test_2017"), 36, long=True)).encode("utf-8"))


XTD10_LANGUAGES = ("de", "en", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh")
XTD10_CRLF = ("es", "it", "ko", "pl", "ru", "tr", "zh")  # as in the real files: CRLF, no final newline
XTD10_IMAGES = 50


def write_xtd10(out: str) -> None:
    """``test_1kcaptions_{lang}.txt`` (11 languages, line i = image i; jp an independent description, the
    others translations of en) and ``test_image_names.txt`` (COCO train2014 names)."""
    rng = random.Random("xtd10")
    ids = sorted(rng.sample(range(10**5, 6 * 10**5), XTD10_IMAGES))
    _write_bytes(os.path.join(out, "test_image_names.txt"),
                 _lines([f"COCO_train2014_{i:012d}.jpg" for i in ids]).encode("utf-8"))
    images = [_caption(rng) for _ in range(XTD10_IMAGES)]
    for lang in XTD10_LANGUAGES:
        lr = random.Random(f"xtd10-{lang}")
        caps = [render(lang, _describe(lr, c) if lang == "jp" else translate(lr, c), stop=False) for c in images]
        _write_bytes(os.path.join(out, f"test_1kcaptions_{lang}.txt"),
                     _lines(caps, crlf=lang in XTD10_CRLF).encode("utf-8"))


LOOKALIKES = {"mlqa-r": write_mlqa, "multi30k": write_multi30k, "multi30k-task2": write_multi30k_task2,
              "xtd10": write_xtd10}


def write_lookalikes(root: str) -> None:
    for name, write in LOOKALIKES.items():
        write(os.path.join(root, name))


# ------------------------------------------------------------------------------------------------ XQuAD-R slice
XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
XQUAD_PARAGRAPHS, XQUAD_TEST_PARAGRAPHS = 4, 1  # per training article / per held-out article (i % 3 == 2)


def _sentence_at(paragraph: dict, pos: int) -> int:
    """The last sentence starting at or before character ``pos``."""
    return max(i for i, (b, _e) in enumerate(paragraph["sentence_breaks"]) if b <= pos)


def _cut(paras: dict[str, dict], qi: int) -> dict[str, int]:
    """{lang: sentences to keep} for question ``qi``: up to the one holding the answer's last character."""
    ends = {}
    for lang, p in paras.items():
        a = p["qas"][qi]["answers"][0]
        start, end = a["answer_start"], a["answer_start"] + max(len(a["text"]), 1) - 1
        ends[lang] = max(_sentence_at(p, start), _sentence_at(p, end)) + 1
    return ends


def slice_xquad(src: str) -> dict[str, dict]:
    """``{lang: json}``: every article, in file order; 4 of its paragraphs (1 for a held-out article), in their
    order, with one question each: the (paragraph, question) pairs that keep the fewest bytes over the 11
    languages, preferring answers inside their gold sentence in every language (article 0 keeps paragraph 0 with its first question, LAReQA's example); each language's context
    and sentences cut after the sentence holding the answer's last character."""
    data = {}
    for lang in XQUAD_LANGUAGES:
        with open(os.path.join(src, f"{lang}.json"), encoding="utf-8") as f:
            data[lang] = json.load(f)
    out = {lang: {"data": [], "version": data[lang]["version"]} for lang in XQUAD_LANGUAGES}
    for ai, article in enumerate(data["en"]["data"]):
        n_par = XQUAD_TEST_PARAGRAPHS if ai % 3 == 2 else XQUAD_PARAGRAPHS
        arts = {lang: {"paragraphs": [], "title": data[lang]["data"][ai]["title"]} for lang in XQUAD_LANGUAGES}
        picks = []  # (cost, paragraph, question)
        for pi in range(len(article["paragraphs"])):
            paras = {lang: data[lang]["data"][ai]["paragraphs"][pi] for lang in XQUAD_LANGUAGES}
            for qi in range(len(article["paragraphs"][pi]["qas"])):
                if (ai, pi) == (0, 0) and qi:
                    break  # article 0, paragraph 0: its first question
                ends = _cut(paras, qi)
                cost = sum(len(paras[lang]["context"][:paras[lang]["sentence_breaks"][k - 1][1]].encode())
                           for lang, k in ends.items())
                if any(p["qas"][qi]["answers"][0]["text"] not in p["sentences"][_sentence_at(
                        p, p["qas"][qi]["answers"][0]["answer_start"])] for p in paras.values()):
                    cost += 10**6  # an answer that runs past its gold sentence somewhere: only if nothing else
                picks.append((-1 if (ai, pi) == (0, 0) else cost, pi, qi, ends))
        best: dict[int, tuple] = {}
        for _cost, pi, qi, ends in sorted(picks):
            if len(best) < n_par and pi not in best:
                best[pi] = (qi, ends)
        for pi in sorted(best):
            qi, ends = best[pi]
            for lang, k in ends.items():
                p = data[lang]["data"][ai]["paragraphs"][pi]
                end = p["sentence_breaks"][k - 1][1]
                arts[lang]["paragraphs"].append({"context": p["context"][:end], "qas": [p["qas"][qi]],
                                                 "sentence_breaks": p["sentence_breaks"][:k],
                                                 "sentences": p["sentences"][:k]})
        for lang in XQUAD_LANGUAGES:
            out[lang]["data"].append(arts[lang])
    return out


def write_xquad(src: str, out: str) -> None:
    for lang, doc in slice_xquad(src).items():
        _write_bytes(os.path.join(out, f"{lang}.json"), json.dumps(doc, ensure_ascii=False).encode("utf-8"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DATA, help=f"data root to write (default {DATA})")
    ap.add_argument("--xquad", default=None, help="the real XQuAD-R folder: also write the xquad-r/ slice")
    args = ap.parse_args(argv)
    write_lookalikes(args.out)
    if args.xquad:
        write_xquad(args.xquad, os.path.join(args.out, "xquad-r"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
