"""Behaviour-neutral restructuring, checked: the quick start, one ``eval captions`` and one ``eval lareqa`` run write
the same files, byte for byte, with this checkout's code and with the code of :data:`BASE` (the commit before the
second structural pass), on the same machine, with a tiny model. Only times and paths may differ.

The base code comes from this repository's own history (``git archive``), so the test needs a git checkout that
holds :data:`BASE` (CI's clone does); it runs as ``PYTHONPATH`` over the installed package.
"""

import filecmp
import json
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO, RESOURCE_DATA, recipe_env

BASE = "9527b8f20b35f4efb9933b933b7a265d6b7a67f6"

# What may differ: clock readings and durations (JSON keys and log stamps), and the folders a run was given.
TIME_KEYS = re.compile(r"(second|time|_s$|^started|^finished|^date|elapsed|wall)", re.I)
TIME_TEXT = [re.compile(p) for p in (
    r"\[\d\d:\d\d:\d\d\]",                                   # log stamps
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?",  # ISO times
    r"\b\d+(\.\d+)?\s?(s|sec|seconds|ms|min)\b",               # durations
    r"\b\d+ min \d+ s\b",
    r"\d+(\.\d+)?(it/s|s/it)",
    r"\b\d\d:\d\d(:\d\d)?\b",
    r"'train_(runtime|samples_per_second|steps_per_second)': '[\d.]+'",  # the Trainer's speed line
    r"(?m)(?<=\t)\d+(\.\d+)?$",                                       # timings.tsv's seconds
)]
RANDOM_TEXT = re.compile(r"\.tmp\.[A-Za-z0-9_]{8}")  # work folders (tempfile.mkdtemp's suffix)


def base_tree(tmp_path_factory) -> str:
    if subprocess.run(["git", "-C", REPO, "cat-file", "-e", f"{BASE}^{{commit}}"], capture_output=True).returncode:
        pytest.fail(f"this checkout's history lacks the base commit {BASE[:12]}; clone without --depth")
    out = tmp_path_factory.mktemp("base-code")
    archive = subprocess.run(["git", "-C", REPO, "archive", BASE, "hybrid_tevatron", "recipes"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return str(out)


def run_all(tree: str, model: str, out: str) -> None:
    """The three runs, with the code of ``tree``, into ``out``/{quickstart,captions,lareqa}."""
    env = recipe_env(PYTHONPATH=tree, MODEL=model, XQUAD_R=os.path.join(RESOURCE_DATA, "xquad-r"), STEPS="8",
                     SEED="1")
    which = subprocess.run([sys.executable, "-c", "import hybrid_tevatron; print(hybrid_tevatron.__file__)"],
                           env=env, cwd=out, capture_output=True, text=True, check=True).stdout.strip()
    assert which.startswith(tree + os.sep), (which, tree)

    def run(*argv):
        proc = subprocess.run(list(argv), env=env, cwd=out, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        with open(os.path.join(out, "console.txt"), "a") as f:
            f.write(f"$ {' '.join(argv[1:])}\n{proc.stdout}")

    run("bash", os.path.join(tree, "recipes", "quickstart.sh"), os.path.join(out, "quickstart"))
    model_dir = os.path.join(out, "quickstart", "model")
    run(sys.executable, "-m", "hybrid_tevatron.eval", "captions", model_dir, os.path.join(out, "captions"),
        "--xtd10", os.path.join(RESOURCE_DATA, "xtd10"), "--languages", "en", "de", "jp")
    run(sys.executable, "-m", "hybrid_tevatron.eval", "lareqa", model_dir, os.path.join(RESOURCE_DATA, "mlqa-r"),
        os.path.join(out, "lareqa"), "--languages", "de", "en", "es")


def masked_json(value, key=""):
    if isinstance(value, dict):
        return {k: masked_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked_json(v, key) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and TIME_KEYS.search(key):
        return "<time>"
    if isinstance(value, str):
        return masked_text(value)
    return value


def masked_text(text: str) -> str:
    text = RANDOM_TEXT.sub(".tmp.<random>", text)
    for pattern in TIME_TEXT:
        text = pattern.sub("<time>", text)
    return text


def normalised(path: str, roots: dict[str, str]):
    """A file's content with the run's folders named by role, and times masked (JSON: by key; text: by pattern)."""
    if os.path.basename(path) == "training_args.bin":  # the Trainer's pickled arguments: compare their values
        import torch

        data = json.dumps(torch.load(path, weights_only=False).to_dict(), sort_keys=True).encode()
    else:
        with open(path, "rb") as f:
            data = f.read()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data
    for root, name in sorted(roots.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(root, name)
    if path.endswith(".json"):
        try:
            return json.dumps(masked_json(json.loads(text)), indent=1, sort_keys=False)
        except json.JSONDecodeError:
            pass
    return masked_text(text)


def files(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names}


def test_restructured_code_writes_what_the_base_commit_wrote(tiny_model_dir, tmp_path_factory):
    base = base_tree(tmp_path_factory)
    outs = {}
    for name, tree in (("base", base), ("ours", REPO)):
        outs[name] = str(tmp_path_factory.mktemp(f"outputs-{name}"))
        run_all(tree, tiny_model_dir, outs[name])
    ours, theirs = files(outs["ours"]), files(outs["base"])
    assert ours == theirs, f"only ours: {sorted(ours - theirs)}; only base's: {sorted(theirs - ours)}"
    differ = []
    for rel in sorted(ours):
        a, b = os.path.join(outs["base"], rel), os.path.join(outs["ours"], rel)
        if filecmp.cmp(a, b, shallow=False):
            continue
        shared = {RESOURCE_DATA: "<data>", tiny_model_dir: "<model>"}
        if normalised(a, {outs["base"]: "<out>", base: "<code>", **shared}) != normalised(
                b, {outs["ours"]: "<out>", REPO: "<code>", **shared}):
            differ.append(rel)
    assert not differ, f"{len(differ)} of {len(ours)} files differ beyond times and paths: {differ[:20]}"
