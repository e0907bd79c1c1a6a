"""Shared fixtures: a tiny locally built XLM-R model and a small parallel corpus (nothing downloaded)."""

import os
import signal

import pytest
from helpers import BACKENDS, RESOURCE_DATA, SHARED_DATA, skip_unavailable_backend

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# A test suite started as a script's background job inherits an ignored SIGINT, and so would every command the
# tests start (an ignored signal stays ignored: errors.catchable). The tests that press Ctrl-C need it live.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


DATA_ENV = "HYBRID_TEVATRON_TEST_DATA"  # "resources": tests/resources/data even where ../shared/data exists


def data_root() -> tuple[str, str]:
    """(folder, kind): ``../shared/data`` ("shared") when it exists, else ``tests/resources/data`` ("resources",
    a real XQuAD-R slice and generated look-alikes, see its README); $HYBRID_TEVATRON_TEST_DATA=resources forces
    the latter."""
    choice = os.environ.get(DATA_ENV, "").strip()
    if choice not in ("", "resources", "shared"):
        raise pytest.UsageError(f"{DATA_ENV} must be 'resources' or 'shared', got {choice!r}")
    if choice == "resources" or (not choice and not os.path.isdir(SHARED_DATA)):
        return RESOURCE_DATA, "resources"
    return SHARED_DATA, "shared"


DATA_ROOT, DATA_KIND = data_root()


def pytest_configure(config):
    config.addinivalue_line("markers", "data: uses the data root (shared_data): ../shared/data or tests/resources/data")


    config.addinivalue_line("markers", "shared_only: checks of the real ../shared/data itself; deselected where it "
                                       "is absent (a plain clone)")


def pytest_collection_modifyitems(config, items):
    """Every test that reads the data root is marked ``data`` (CI reruns ``-m data`` on tests/resources/data).
    Checks of the real files themselves (``real_data``, ``shared_only``) are deselected on a plain clone."""
    keep, dropped = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if {"shared_data", "real_data"} & names:
            item.add_marker(pytest.mark.data)
        real = "real_data" in names or item.get_closest_marker("shared_only")
        (dropped if real and not os.path.isdir(SHARED_DATA) else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config):
    line = f"test data: {DATA_ROOT} ({DATA_KIND})"
    if not os.path.isdir(SHARED_DATA):
        line += f"; {SHARED_DATA} absent: checks of the real files deselected"
    return line


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
    """The data root: ``../shared/data`` when present (and not overridden), else ``tests/resources/data``."""
    if DATA_KIND == "shared" and not os.path.isdir(SHARED_DATA):
        pytest.fail(f"{DATA_ENV}=shared but {SHARED_DATA} does not exist")
    return DATA_ROOT


@pytest.fixture(scope="session")
def data_kind(shared_data):
    """"shared" (the real, whole files) or "resources" (the slice and look-alikes)."""
    return DATA_KIND


@pytest.fixture(scope="session")
def real_data(shared_data):
    """The real, whole ../shared/data, for checks that only make sense on it (benchmark-sized runs)."""
    if DATA_KIND != "shared":
        pytest.skip(f"needs the real data at {SHARED_DATA} (now on {RESOURCE_DATA})")
    return shared_data


@pytest.fixture(params=BACKENDS)
def backend(request):
    return skip_unavailable_backend(request.param)
