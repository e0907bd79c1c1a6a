"""The caption converters' command: caption files -> training JSONL (``train``) or an evaluation pool (``pool``).

    python -m hybrid_tevatron.data.captions train --multi30k ../shared/data/multi30k --split train \\
        --output_dir data/multi30k-train [--languages en de fr cs] [--negatives 7] [--max_examples 816] [--seed 0]
    python -m hybrid_tevatron.data.captions pool --xtd10 ../shared/data/xtd10 --output_dir pools/xtd10
    python -m hybrid_tevatron.data.captions train --files en=a.en.txt de=a.de.txt [--image_names names.txt] ...
    python -m hybrid_tevatron.data.captions train|pool --multi30k_task2 ../shared/data/multi30k-task2 --split S ...

The source (exactly one; :mod:`hybrid_tevatron.data.caption_sources`): translations are read by
:mod:`hybrid_tevatron.data.caption_files` and written as training JSONL by
:mod:`hybrid_tevatron.data.caption_training`; several descriptions per image (``--multi30k_task2``) by
:mod:`hybrid_tevatron.data.descriptions`. Pools: :mod:`hybrid_tevatron.eval.benchmarks.captions`.
"""

from __future__ import annotations

import argparse
import os
import sys

from hybrid_tevatron.data import caption_training, descriptions
from hybrid_tevatron.data.caption_sources import add_source_arguments, load_source, source_from_args
from hybrid_tevatron.data.caption_training import DEFAULT_NEGATIVES
from hybrid_tevatron.data.descriptions import DescriptionSet
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.eval.benchmarks.captions import pool_summary, write_caption_pool


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.data.captions", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    parsers = {"train": sub.add_parser("train", help="parallel training JSONL, one file per language"),
               "pool": sub.add_parser("pool", help="evaluation pool: corpora, topics, qrels, exclusions, manifest")}
    for p in parsers.values():
        add_source_arguments(p)
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
    return ap


def train(args) -> str:
    """Write the training JSONL; return the summary line."""
    captions = load_source(source_from_args(args, name=args.name))
    convert = descriptions if isinstance(captions, DescriptionSet) else caption_training
    stats = convert.write_training(captions, args.output_dir, args.negatives, args.seed, args.max_examples,
                                   args.overwrite)
    queries = f", {stats['queries']} queries ({stats['relation']})" if "images" in stats else ""
    return (f"{stats['source']}: {stats.get('images', stats['queries'])} of {stats['images_in_files']} images"
            f"{queries}, {len(stats['languages'])} languages ({' '.join(stats['languages'])}), "
            f"{stats['negatives_per_query']} negatives each -> {os.path.abspath(args.output_dir)}")


def pool(args) -> str:
    """Write the evaluation pool; return the summary line."""
    manifest = write_caption_pool(source_from_args(args, name=args.name), args.output_dir, args.max_images,
                                  args.overwrite)
    return pool_summary(manifest, args.output_dir)


@report_errors
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    print(train(args) if args.command == "train" else pool(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
