"""``python -m hybrid_tevatron.eval lareqa|captions|images|miracl ...``: the evaluation program
(:mod:`hybrid_tevatron.eval.program`) with its families, listed here and nowhere else.

    python -m hybrid_tevatron.eval lareqa MODEL DATASET_DIR OUTPUT_DIR [options]   # XQuAD-R, MLQA-R
    python -m hybrid_tevatron.eval captions MODEL OUTPUT_DIR --xtd10 DIR | ...     # caption proxy
    python -m hybrid_tevatron.eval images MODEL OUTPUT_DIR --image_data DIR --image_index DIR   # image-text
    python -m hybrid_tevatron.eval miracl MODEL OUTPUT_DIR --languages "de yo" [options]

The lareqa, captions and miracl stages: :mod:`hybrid_tevatron.eval.stages`; images:
:mod:`hybrid_tevatron.images.evaluate`. The entry point is the one module that imports the families: they import
the program, never the other way.
"""

import sys

from hybrid_tevatron.eval import program
from hybrid_tevatron.eval.stages import CAPTIONS_FAMILY, LAREQA_FAMILY, MIRACL_FAMILY
from hybrid_tevatron.images.evaluate import IMAGES_FAMILY

FAMILIES = (LAREQA_FAMILY, CAPTIONS_FAMILY, IMAGES_FAMILY, MIRACL_FAMILY)  # the subcommands, in this order


def main(argv=None) -> int:
    return program.main(FAMILIES, argv)


if __name__ == "__main__":
    sys.exit(main())
