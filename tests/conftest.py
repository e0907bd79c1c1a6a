"""Shared fixtures: a tiny locally built XLM-R model and a small parallel corpus (nothing downloaded)."""

import os
import sys

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

def recipe_env(**extra) -> dict:
    """Environment for a recipe or CLI run as a subprocess: this interpreter's bin first on PATH (its python and
    Pyserini), PYTHON set to it, the Hub offline; ``extra`` on top."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHON"] = sys.executable
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


SHARED_DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from hybrid_tevatron.testing import build_tiny_model

    return build_tiny_model(str(tmp_path_factory.mktemp("tiny-xlmr")))


@pytest.fixture(scope="session")
def parallel_dir(tmp_path_factory):
    """Directory with en/de/es/zh.jsonl: 40 parallel queries, 4 negatives each."""
    from hybrid_tevatron.testing import write_parallel_jsonl

    out = str(tmp_path_factory.mktemp("parallel"))
    write_parallel_jsonl(out)
    return out


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


BACKENDS = ["pypi", "main"]
_MISSING = {"pypi": "Tevatron 0.1.0 (tevatron.modeling/tevatron.trainer) is not importable",
            "main": "Tevatron main (tevatron.retriever) is not importable"}


def skip_unavailable_backend(name):
    """``name``, or skip the test when that backend's Tevatron is not installed."""
    from hybrid_tevatron.backends import backend_available

    if not backend_available(name):
        pytest.skip(f"backend {name!r} not installed: {_MISSING[name]}")
    return name


@pytest.fixture(params=BACKENDS)
def backend(request):
    return skip_unavailable_backend(request.param)
