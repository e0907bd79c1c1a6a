"""Images folder + caption files -> an image data set folder (what the tower encodes and training reads).

    python -m hybrid_tevatron.images.data --xtd10 ../shared/data/xtd10 --images COCO_DIR --output_dir data/xtd10-img
    python -m hybrid_tevatron.images.data --multi30k ../shared/data/multi30k --split train \\
        --image_splits multi30k/data/task1/image_splits --images flickr30k-images --output_dir data/flickr-train
    python -m hybrid_tevatron.images.data --files en=a.txt de=b.txt --image_names names.txt --images DIR ...

**Inputs.** Captions are read by :mod:`hybrid_tevatron.data.caption_files` (one file per language, line i =
image i, its validation), from the caption source flags of :mod:`hybrid_tevatron.data.caption_sources`. Image file
names, one a line, line i = image i: XTD10's ``test_image_names.txt`` (MSCOCO 2014 names), Multi30K's
``image_splits/{split}.txt`` (Flickr30k names; ``--image_splits`` is that file or its folder), or ``--image_names``.
The image id is the file name without its extension. Every image must exist under ``--images`` and open as an image
(Pillow); a missing or unreadable image, and caption files whose line count differs from the name list, are one
:class:`~hybrid_tevatron.data.errors.DataError` naming the file.

**Output folder** (written whole or not at all, :func:`hybrid_tevatron.atomic.atomic_dir`):

* ``corpus.jsonl``: Tevatron main's multimodal corpus rows ``{"docid": ID, "image": PATH, "text": ""}`` (absolute
  path; ``datasets``' ``cast_column("image", Image())`` turns it into pixels);
* ``image_names.txt`` and ``captions/{lang}.txt``: the parallel caption files this package reads
  (``python -m hybrid_tevatron.data.captions ... --files LANG=captions/LANG.txt --image_names image_names.txt``);
* ``manifest.json``: format :data:`FORMAT`, data set name, languages, image count, relation of the captions.

Invariant: row i of ``corpus.jsonl``, line i of ``image_names.txt`` and line i of every caption file are one image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hybrid_tevatron.atomic import atomic_dir
from hybrid_tevatron.data.caption_files import (
    MULTI30K_NAME,
    XTD10_IMAGES,
    CaptionSet,
    check_output,
    load_caption_files,
    load_xtd10,
    multi30k_files,
    parse_lang_files,
    read_image_names,
    read_lines,
)
from hybrid_tevatron.data.caption_sources import add_source_arguments, source_from_args
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.errors import report_errors

FORMAT = "hybrid_tevatron.images/1"
IMAGE_SOURCES = ("multi30k", "xtd10", "files")  # the caption sources that name their images
CORPUS, NAMES, MANIFEST, CAPTIONS = "corpus.jsonl", "image_names.txt", "manifest.json", "captions"


@dataclass
class ImageSet:
    """Captions of images: ``captions.image_ids[i]`` is the image at ``paths[i]`` (a readable image file)."""

    captions: CaptionSet
    paths: list[str]

    @property
    def image_ids(self) -> list[str]:
        return self.captions.image_ids

    def __len__(self) -> int:
        return len(self.paths)


def check_image(path: str, where: str) -> None:
    """``path`` exists and Pillow can read it as an image; else one :class:`DataError` naming it."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise DataError(f"{path}: no such image ({where})")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: not a readable image ({where}): {reason}") from None


def attach_images(captions: CaptionSet, names_file: str, images_dir: str) -> ImageSet:
    """The image file of every caption line: ``names_file`` (the list ``captions`` was read with, so the counts
    already agree) line i names image i under ``images_dir``; every file is checked."""
    if not os.path.isdir(images_dir):
        raise DataError(f"{images_dir}: images folder not found")
    ids = read_image_names(names_file)  # validates: non-empty, no blanks, no duplicates
    if ids != captions.image_ids:
        raise DataError(f"{names_file}: not the image list the captions were read with")
    paths = []
    for lineno, name in enumerate(read_lines(names_file, "image names"), 1):
        path = os.path.abspath(os.path.join(images_dir, name.strip()))
        check_image(path, f"image {ids[lineno - 1]!r}, {names_file}:{lineno}")
        paths.append(path)
    return ImageSet(captions, paths)


def multi30k_image_names(image_splits: str, split: str) -> str:
    """Multi30K's ``image_splits/{split}.txt`` (``image_splits`` is that file or its folder)."""
    path = os.path.join(image_splits, f"{split}.txt") if os.path.isdir(image_splits) else image_splits
    if not os.path.isfile(path):
        raise DataError(f"{path}: no Multi30K image list for split {split!r} (--image_splits: the file or the "
                        "image_splits folder of github.com/multi30k/dataset)")
    return path


def load_from_args(args) -> ImageSet:
    source = source_from_args(args, IMAGE_SOURCES)
    languages = list(source.languages) or None
    if source.kind == "xtd10":
        names = os.path.join(source.folder, XTD10_IMAGES)
        captions = load_xtd10(source.folder, languages)
    elif source.kind == "multi30k":
        if not source.split or not args.image_splits:
            raise DataError(f"--multi30k needs --split and --image_splits (captions {MULTI30K_NAME})")
        names = multi30k_image_names(args.image_splits, source.split)
        files = multi30k_files(source.folder, source.split, languages)
        captions = load_caption_files(f"multi30k-{source.split}", files, image_names=names)
    else:
        if not source.image_names:
            raise DataError("--files needs --image_names (the image file of each caption line)")
        files = parse_lang_files(source.files)
        if languages:
            files = {lang: files[lang] for lang in languages if lang in files}
        names = source.image_names
        captions = load_caption_files(args.name or "images", files, image_names=names)
    return attach_images(captions, names, args.images)


def write_image_set(images: ImageSet, output_dir: str, overwrite: bool = False) -> dict:
    """Write the output folder of the module docstring; return the manifest."""
    output_dir = check_output(output_dir, overwrite)
    captions = images.captions
    manifest = {
        "format": FORMAT, "dataset": captions.name, "languages": captions.languages, "images": len(images),
        "relation": captions.relation, **({"relation_note": captions.relation_note} if captions.relation_note else {}),
        "caption_files": {lang: os.path.abspath(p) for lang, p in captions.paths.items()},
    }
    with atomic_dir(output_dir) as tmp:
        with open(os.path.join(tmp, CORPUS), "w", encoding="utf-8") as f:
            for docid, path in zip(images.image_ids, images.paths):
                f.write(json.dumps({"docid": docid, "image": path, "text": ""}, ensure_ascii=False) + "\n")
        _write_lines(os.path.join(tmp, NAMES), images.image_ids)
        os.makedirs(os.path.join(tmp, CAPTIONS))
        for lang in captions.languages:
            _write_lines(os.path.join(tmp, CAPTIONS, f"{lang}.txt"), captions.captions[lang])
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


@dataclass
class ImageData:
    """A folder written by :func:`write_image_set`, read back: docids, image paths, captions per language."""

    folder: str
    name: str
    languages: list[str]
    image_ids: list[str]
    image_paths: list[str]
    captions: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.image_ids)


def read_image_data(folder: str, languages: Sequence[str] | None = None) -> ImageData:
    """Read an image data set folder (checked: its manifest's format, one caption per image per language)."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing (not an image data set folder; write one with python -m "
                        "hybrid_tevatron.images.data)")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    langs = list(languages or manifest["languages"])
    unknown = [lang for lang in langs if lang not in manifest["languages"]]
    if unknown:
        raise DataError(f"{folder}: no captions in {unknown} (it has {manifest['languages']})")
    files = {lang: os.path.join(folder, CAPTIONS, f"{lang}.txt") for lang in langs}
    captions = load_caption_files(manifest["dataset"], files, image_names=os.path.join(folder, NAMES))
    rows = [json.loads(line) for line in read_lines(os.path.join(folder, CORPUS), "image corpus")]
    if [r["docid"] for r in rows] != captions.image_ids:
        raise DataError(f"{os.path.join(folder, CORPUS)}: docids differ from {os.path.join(folder, NAMES)}")
    return ImageData(folder, manifest["dataset"], langs, captions.image_ids, [r["image"] for r in rows],
                     captions.captions)


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.images.data", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="folder of the image files named by the image list")
    add_source_arguments(ap, IMAGE_SOURCES)
    ap.add_argument("--image_splits", help="with --multi30k: image_splits/{split}.txt or that folder")
    ap.add_argument("--name", help="with --files: the data set's name (default: images)")
    ap.add_argument("--languages", nargs="+", help="default: every language with a caption file")
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = ap.parse_args(argv)
    manifest = write_image_set(load_from_args(args), args.output_dir, args.overwrite)
    print(f"{manifest['dataset']}: {manifest['images']} images, captions in {' '.join(manifest['languages'])} -> "
          f"{os.path.abspath(args.output_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
