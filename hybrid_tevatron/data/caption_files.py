"""Caption files: one file per language, line i = image i, read into a checked :class:`CaptionSet`.

**Relation**: these captions translate each other (``relation: translation``). XTD10 is ``mixed``: its Japanese
(STAIR) captions are independent descriptions, the others translations of the English one (``relation_note`` says
so). Several independent descriptions of each image per language (Multi30K task 2) are a different relation, read
by :mod:`hybrid_tevatron.data.descriptions`.

**Inputs**: Multi30K ``DIR/{split}.{lang}.gz`` (gzip; image id ``{split}-{line}``); XTD10
``DIR/test_1kcaptions_{lang}.txt`` with the image ids from ``DIR/test_image_names.txt`` (file name without
extension); or any such files (``.gz`` or plain), with image ids from an image-name file (one a line) or ``{line}``.
Languages default to every caption file present. Each file is UTF-8 text, one caption a line (``\\r\\n`` and a
leading byte-order mark are accepted). Validation, each a one-line :class:`~hybrid_tevatron.data.errors.DataError`
naming the file and line: a missing language file, bytes that are not UTF-8, an empty caption, caption files (or the
image-name file) with different line counts, an empty, duplicate or blank-containing image id.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hybrid_tevatron.data.errors import DataError

MULTI30K_NAME = "{split}.{lang}.gz"
XTD10_NAME, XTD10_IMAGES = "test_1kcaptions_{lang}.txt", "test_image_names.txt"
XTD10_NOTE = "jp (STAIR) captions are independent descriptions of the image; the others translate the English one"
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


def load_xtd10(data_dir: str, languages: Sequence[str] | None = None) -> CaptionSet:
    """XTD10's captions (relation ``mixed``: see ``XTD10_NOTE``)."""
    captions = load_caption_files("xtd10", xtd10_files(data_dir, languages),
                                  image_names=os.path.join(data_dir, XTD10_IMAGES))
    captions.relation, captions.relation_note = "mixed", XTD10_NOTE
    return captions


def first_images(captions: CaptionSet, n: int) -> CaptionSet:
    """The first ``n`` images (file order): a small deterministic pool."""
    if n < 1:
        raise DataError(f"--max_images must be >= 1, got {n}")
    return CaptionSet(captions.name, captions.languages, captions.image_ids[:n],
                      {lang: c[:n] for lang, c in captions.captions.items()}, captions.paths, captions.lines[:n],
                      captions.relation, captions.relation_note)


def duplicate_count(texts: list[str]) -> int:
    """How many captions equal another caption of the list."""
    counts: dict[str, int] = {}
    for t in texts:
        counts[t] = counts.get(t, 0) + 1
    return sum(c for c in counts.values() if c > 1)


# ------------------------------------------------------------------------------------------------ output folders
def check_output(output_dir: str, overwrite: bool) -> str:
    """``output_dir`` made absolute; refused if it is a file, or a non-empty folder without ``overwrite``."""
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise DataError(f"{output_dir}: exists and is not a folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise DataError(f"{output_dir}: folder exists and is not empty (pass --overwrite to replace it)")
    return output_dir
