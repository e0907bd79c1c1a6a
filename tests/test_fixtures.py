"""tests/resources/data (the data root on a plain clone): the generated look-alikes are what
tests/resources/make_fixtures.py writes, byte for byte; the XQuAD-R slice is what it cuts from the real files
(where ../shared/data is here); every folder holds the real data's file names."""

import filecmp
import os
import sys

import pytest
from helpers import RESOURCE_DATA, RESOURCES, SHARED_DATA

sys.path.insert(0, RESOURCES)
import make_fixtures  # noqa: E402


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                  if f != "README.md")


def _same_tree(expected, committed):
    names = _files(expected)
    assert names == _files(committed)
    match, mismatch, errors = filecmp.cmpfiles(expected, committed, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


@pytest.mark.parametrize("name", sorted(make_fixtures.LOOKALIKES))
def test_lookalikes_are_the_generators_output(name, tmp_path):
    make_fixtures.LOOKALIKES[name](str(tmp_path / name))
    _same_tree(str(tmp_path / name), os.path.join(RESOURCE_DATA, name))


@pytest.mark.shared_only
def test_xquad_slice_is_cut_from_the_real_files(tmp_path):
    real = os.path.join(SHARED_DATA, "xquad-r")
    make_fixtures.write_xquad(real, str(tmp_path / "xquad-r"))
    _same_tree(str(tmp_path / "xquad-r"), os.path.join(RESOURCE_DATA, "xquad-r"))


@pytest.mark.shared_only
@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r", "multi30k", "multi30k-task2", "xtd10"])
def test_same_file_names_as_the_real_data(name):
    real = os.path.join(SHARED_DATA, name)
    ours = set(_files(os.path.join(RESOURCE_DATA, name)))
    assert ours == {f for f in _files(real) if not f.startswith("LICENSE")}
