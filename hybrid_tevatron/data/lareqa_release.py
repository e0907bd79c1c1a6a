"""Where a recipe's LAReQA files come from: the folder given, else ``../shared/data/NAME`` beside the checkout,
else the public release (GitHub google-research-datasets/lareqa, pinned commits) fetched once into ``data/NAME``.

    python -m hybrid_tevatron.data.lareqa_release xquad-r [FOLDER] [--root REPO]    # prints the folder to use
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

from hybrid_tevatron.atomic import atomic_path
from hybrid_tevatron.data.languages import LAREQA_DATASETS
from hybrid_tevatron.errors import HybridTevatronError, report_errors
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)
URL = "https://raw.githubusercontent.com/google-research-datasets/lareqa"
COMMITS = {
    "xquad-r": "5405d2a77e83d5ccb47623a3f9e5604c3f103193",
    "mlqa-r": "354d67d1cd066854cdfbf5ad0e6105528976141d",  # MLQA-R was removed from the repository later
}
ENV = {"xquad-r": "XQUAD_R", "mlqa-r": "MLQA_R"}


class ReleaseError(HybridTevatronError):
    """The LAReQA files cannot be found or fetched."""


def lareqa_folder(name: str, given: str | None, root: str) -> str:
    """The folder holding NAME's ``{lang}.json`` files (see the module docstring); fetches what is missing."""
    if given:
        if not os.path.isdir(given):
            raise ReleaseError(f"{given} ({ENV[name]}) is not a folder")
        return os.path.abspath(given)
    shared = os.path.join(root, "..", "shared", "data", name)
    if os.path.isdir(shared):
        return os.path.realpath(shared)
    dest = os.path.join(root, "data", name)
    for lang in LAREQA_DATASETS[name]["languages"]:
        path = os.path.join(dest, f"{lang}.json")
        if os.path.isfile(path) and os.path.getsize(path):
            continue
        url = f"{URL}/{COMMITS[name]}/{name}/{lang}.json"
        log.info(f"fetching {name}/{lang}.json from {URL}/{COMMITS[name]}")
        try:
            with urllib.request.urlopen(url, timeout=60) as r, atomic_path(path) as tmp, open(tmp, "wb") as f:
                f.write(r.read())
        except (urllib.error.URLError, OSError) as err:
            raise ReleaseError(f"could not download {url} ({err}); set {ENV[name]} to a local copy") from None
    return os.path.abspath(dest)


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.data.lareqa_release",
                                description=__doc__.split("\n")[0])
    p.add_argument("name", choices=sorted(COMMITS))
    p.add_argument("folder", nargs="?", help="a folder with the {lang}.json files (used as given)")
    p.add_argument("--root", default=".", help="the checkout: ../shared/data and data/ are beside and under it")
    args = p.parse_args(argv)
    print(lareqa_folder(args.name, args.folder, os.path.abspath(args.root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
