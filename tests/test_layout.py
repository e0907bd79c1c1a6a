"""README's Layout names the tree as it is: every module of the package's top level, data/, eval/ and studies/ by
file name, every other folder by name, and no file that does not exist."""

import os
import re

from helpers import REPO

PACKAGE = os.path.join(REPO, "hybrid_tevatron")
BY_NAME = ("", "data", "eval", "studies")  # folders whose modules the Layout lists one by one


def layout_block() -> str:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## Layout"):]
    return section.split("```")[1]


def test_every_module_is_in_readmes_layout():
    block = layout_block()
    missing = []
    for folder, _, names in os.walk(PACKAGE):
        rel = os.path.relpath(folder, PACKAGE)
        top = "" if rel == "." else rel.split(os.sep)[0]
        for name in names:
            if not name.endswith(".py") or name in ("__init__.py", "__main__.py"):
                continue
            if (name if top in BY_NAME else f"{top}/") not in block:
                missing.append(os.path.join(rel, name))
    assert missing == []


def test_readmes_layout_names_no_missing_module():
    modules = {name for root in (PACKAGE, os.path.join(REPO, "tests")) for _, _, names in os.walk(root)
               for name in names if name.endswith(".py")}
    named = set(re.findall(r"\b([a-z_0-9]+\.py)\b", layout_block()))
    assert named - modules == set()
