"""The caption sources and their flags, declared once: ``--multi30k DIR --split S``, ``--multi30k_task2 DIR --split
S``, ``--xtd10 DIR`` or ``--files LANG=PATH ... [--image_names FILE]``, exactly one of them, as a typed
:class:`CaptionSource`, and loaded (translations: :mod:`hybrid_tevatron.data.caption_files`; several descriptions
per image: :mod:`hybrid_tevatron.data.descriptions`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

from hybrid_tevatron.data.caption_files import (
    CaptionSet,
    load_caption_files,
    load_xtd10,
    multi30k_files,
    parse_lang_files,
)
from hybrid_tevatron.data.descriptions import DescriptionSet, load_task2
from hybrid_tevatron.data.errors import DataError

SOURCES = ("multi30k", "multi30k_task2", "xtd10", "files")  # the flags, in the order the check names them
_USAGE = {"multi30k": "--multi30k DIR --split S", "multi30k_task2": "--multi30k_task2 DIR --split S",
          "xtd10": "--xtd10 DIR", "files": "--files LANG=PATH ..."}
_SPLITS = {"multi30k": "train, val, test_2016_flickr, ...", "multi30k_task2": "train, val, test_2016"}


def add_source_arguments(parser, sources: Sequence[str] = SOURCES) -> None:
    """Add the flags of ``sources`` (and ``--split``, ``--image_names`` where they apply) to ``parser`` (a parser
    or an argument group)."""
    if "multi30k" in sources:
        parser.add_argument("--multi30k", metavar="DIR", help="Multi30K folder ({split}.{lang}.gz): translations")
    if "multi30k_task2" in sources:
        parser.add_argument("--multi30k_task2", metavar="DIR", help="Multi30K task 2 folder "
                            "(raw/{split}.{k}.{lang}.gz, image_splits/{split}_images.txt): independent descriptions, "
                            "several per image")
    splits = [f"with --{s}: {_SPLITS[s]}" for s in sources if s in _SPLITS]
    if splits:
        parser.add_argument("--split", help="; ".join(splits))
    if "xtd10" in sources:
        parser.add_argument("--xtd10", metavar="DIR", help="XTD10 folder (test_1kcaptions_{lang}.txt, "
                            "test_image_names.txt)")
    if "files" in sources:
        parser.add_argument("--files", nargs="+", metavar="LANG=PATH", help="any caption files, line i = image i")
        parser.add_argument("--image_names", help="with --files: the image names, one a line (image id: the name "
                            "without its extension)")


@dataclass(frozen=True)
class CaptionSource:
    """One caption source: ``kind`` (one of :data:`SOURCES`) with its ``folder``, or ``files`` (``LANG=PATH`` items)
    with ``image_names``; ``name`` names a ``files`` data set; empty ``languages``: every caption file."""

    kind: str
    folder: str | None = None
    split: str | None = None
    files: tuple[str, ...] = ()
    image_names: str | None = None
    languages: tuple[str, ...] = ()
    name: str | None = None

    def argv(self) -> list[str]:
        """The flags that name this source, paths made absolute (a command line that runs from another folder)."""
        if self.kind == "files":
            argv = ["--files", *[f"{lang}={os.path.abspath(path)}" for lang, _, path in
                                 (item.partition("=") for item in self.files)]]
            if self.image_names:
                argv += ["--image_names", os.path.abspath(self.image_names)]
        else:
            argv = [f"--{self.kind}", os.path.abspath(self.folder)]
            if self.kind in _SPLITS:
                argv += ["--split", self.split or ""]
        if self.name:
            argv += ["--name", self.name]
        return argv + (["--languages", *self.languages] if self.languages else [])


def source_from_args(args: argparse.Namespace, sources: Sequence[str] = SOURCES, languages: Sequence[str] | None = None,
                     files: Sequence[str] | None = None, name: str | None = None) -> CaptionSource:
    """The one source that ``args`` (parsed with :func:`add_source_arguments`) gives, else one :class:`DataError`;
    ``languages`` and ``files`` (``LANG=PATH`` items) default to ``args.languages`` and ``args.files``."""
    given = [s for s in sources if getattr(args, s, None)]
    if len(given) != 1:
        raise DataError(f"give exactly one of {', '.join(_USAGE[s] for s in sources)} "
                        f"(got {' '.join(f'--{s}' for s in given) or 'none'})")
    kind = given[0]
    languages = tuple((getattr(args, "languages", None) if languages is None else languages) or ())
    if kind == "files":
        return CaptionSource(kind, files=tuple(args.files if files is None else files), image_names=args.image_names,
                             languages=languages, name=name)
    return CaptionSource(kind, getattr(args, kind), getattr(args, "split", None), languages=languages)


def load_source(source: CaptionSource) -> CaptionSet | DescriptionSet:
    """The captions of ``source``: a :class:`CaptionSet` (translations), or with ``multi30k_task2`` a
    :class:`~hybrid_tevatron.data.descriptions.DescriptionSet`."""
    languages = list(source.languages) or None
    if source.kind == "multi30k_task2":
        if not source.split:
            raise DataError("--multi30k_task2 needs --split (train, val, test_2016)")
        return load_task2(source.folder, source.split, languages)
    if source.kind == "multi30k":
        if not source.split:
            raise DataError("--multi30k needs --split (train, val, test_2016_flickr, ...)")
        files = multi30k_files(source.folder, source.split, languages)
        return load_caption_files(f"multi30k-{source.split}", files, id_prefix=f"{source.split}-")
    if source.kind == "xtd10":
        return load_xtd10(source.folder, languages)
    files = parse_lang_files(source.files)
    if languages:
        missing = [lang for lang in languages if lang not in files]
        if missing:
            raise DataError(f"--languages {missing} have no file in --files")
        files = {lang: files[lang] for lang in languages}
    return load_caption_files(source.name or "captions", files, image_names=source.image_names)
