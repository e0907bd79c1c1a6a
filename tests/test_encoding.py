"""hybrid_tevatron.encoding: one schema for how a checkpoint encodes, one reader, one writer.

* defaults of the lengths are the trainer's (the same constants as ``hybrid_tevatron.arguments``);
* override rule: a value given (not None) > ``hybrid_tevatron.json`` > defaults, with the source of each key;
  pooling and normalize have no default (the error names the flags to pass);
* the legacy ``l2_norm`` key reads as ``normalize`` (``normalize`` wins when both are there);
* bad values are an ``EncodingError`` (also a ``ValueError``) naming the file or flag and the key;
* what the writer writes, the reader reads back.
"""

import json
import re

import pytest

from hybrid_tevatron.encoding import (
    DEFAULT_PASSAGE_MAX_LEN,
    DEFAULT_QUERY_MAX_LEN,
    ENCODING_FILE,
    Encoding,
    EncodingError,
    Pooling,
    SideEncoding,
    read_encoding,
    side_encoding,
    write_encoding,
)
from hybrid_tevatron.errors import HybridTevatronError


def _write(folder, **keys):
    (folder / ENCODING_FILE).write_text(json.dumps(keys), encoding="utf-8")
    return str(folder / ENCODING_FILE)


def test_defaults_are_the_trainers():
    from hybrid_tevatron.arguments import HybridDataArguments

    args = HybridDataArguments()
    assert (args.query_max_len, args.passage_max_len) == (DEFAULT_QUERY_MAX_LEN, DEFAULT_PASSAGE_MAX_LEN) == (32, 128)
    e = Encoding(pooling="cls", normalize=False)
    assert (e.query_prefix, e.passage_prefix, e.query_max_len, e.passage_max_len) == ("", "", 32, 128)
    assert e.pooling is Pooling.CLS and str(e.pooling) == "cls" and f"{e.pooling}" == "cls"


def test_without_file_pooling_and_normalize_are_required(tmp_path):
    with pytest.raises(EncodingError, match=re.escape("--pooling cls|mean and --normalize or --no-normalize")):
        read_encoding(str(tmp_path))
    with pytest.raises(EncodingError, match=r"pass them explicitly: --normalize or --no-normalize \("):
        read_encoding(str(tmp_path), {"pooling": "mean"})
    e, source = read_encoding(str(tmp_path), {"pooling": "mean", "normalize": False, "query_prefix": None})
    assert e == Encoding(Pooling.MEAN, False)
    assert source == {"pooling": "command line", "normalize": "command line", "query_prefix": "default",
                      "passage_prefix": "default", "query_max_len": "default", "passage_max_len": "default"}
    # a Hub id (not a folder) reads no file either
    assert read_encoding("intfloat/multilingual-e5-small", {"pooling": "cls", "normalize": True})[0].normalize


def test_override_rule(tmp_path):
    path = _write(tmp_path, pooling="mean", normalize=True, query_prefix="query: ", passage_prefix="passage: ",
                  query_max_len=16, temperature=0.05, backend="pypi")
    e, source = read_encoding(str(tmp_path), {"pooling": None, "normalize": False, "passage_max_len": 64,
                                              "passage_prefix": ""})
    assert e == Encoding(Pooling.MEAN, False, "query: ", "", 16, 64)
    assert source == {"pooling": path, "normalize": "command line", "query_prefix": path,
                      "passage_prefix": "command line", "query_max_len": path, "passage_max_len": "command line"}
    side, side_source = side_encoding(str(tmp_path), "query", max_length=8)
    assert side == SideEncoding(Pooling.MEAN, True, "query: ", 8)
    assert side_source == {"pooling": path, "normalize": path, "prefix": path, "max_length": "command line"}
    assert e.side("passage") == SideEncoding(Pooling.MEAN, False, "", 64)


def test_legacy_l2_norm_key(tmp_path):
    _write(tmp_path, pooling="cls", l2_norm=True)
    assert read_encoding(str(tmp_path))[0].normalize is True
    _write(tmp_path, pooling="cls", l2_norm=True, normalize=False)
    assert read_encoding(str(tmp_path))[0].normalize is False


@pytest.mark.parametrize("keys, message", [
    ({"pooling": "max", "normalize": True}, "pooling must be cls or mean, got 'max'"),
    ({"pooling": "cls", "normalize": "maybe"}, "normalize must be true or false, got 'maybe'"),
    ({"pooling": "cls", "normalize": 1}, "normalize must be true or false, got 1"),
    ({"pooling": "cls", "normalize": True, "query_max_len": 0}, "query_max_len must be >= 1, got 0"),
    ({"pooling": "cls", "normalize": True, "passage_max_len": "long"}, "passage_max_len must be an integer"),
    ({"pooling": "cls", "normalize": True, "query_prefix": 3}, "query_prefix must be a string, got 3"),
])
def test_bad_values_name_the_file_and_key(tmp_path, keys, message):
    path = _write(tmp_path, **keys)
    with pytest.raises(EncodingError, match=re.escape(f"{path}: {message}")) as err:
        read_encoding(str(tmp_path))
    assert isinstance(err.value, HybridTevatronError) and isinstance(err.value, ValueError)


def test_bad_files_and_flags(tmp_path):
    (tmp_path / ENCODING_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(EncodingError, match="expected a JSON object"):
        read_encoding(str(tmp_path))
    (tmp_path / ENCODING_FILE).write_text("{oops", encoding="utf-8")
    with pytest.raises(EncodingError, match=f"{ENCODING_FILE}: unreadable"):
        read_encoding(str(tmp_path))
    with pytest.raises(EncodingError, match="--pooling: pooling must be cls or mean"):
        read_encoding(str(tmp_path / "none"), {"pooling": "max", "normalize": True})
    with pytest.raises(EncodingError, match="query_max_len must be >= 1"):
        Encoding("cls", True, query_max_len=-1)  # the dataclass checks what code builds, too
    with pytest.raises(EncodingError, match="side must be 'query' or 'passage'"):
        Encoding("cls", True).side("document")


def test_writer_reader_round_trip(tmp_path):
    written = Encoding(pooling="mean", normalize=True, query_prefix="query: ", passage_prefix="passage: ",
                       query_max_len=24, passage_max_len=200)
    path = write_encoding(str(tmp_path), written, temperature=0.05, base_model="m", languages=["en", "de"])
    assert path == str(tmp_path / ENCODING_FILE)
    saved = json.loads((tmp_path / ENCODING_FILE).read_text(encoding="utf-8"))
    assert saved["pooling"] == "mean" and saved["temperature"] == 0.05 and saved["languages"] == ["en", "de"]
    read, source = read_encoding(str(tmp_path))
    assert read == written and set(source.values()) == {path}
    assert [p.name for p in tmp_path.iterdir()] == [ENCODING_FILE]  # nothing temporary left
    with pytest.raises(EncodingError, match="provenance keys"):
        write_encoding(str(tmp_path), written, pooling="cls")


def test_trainer_metadata_writes_the_schema(tmp_path):
    from types import SimpleNamespace

    from hybrid_tevatron.arguments import HybridDataArguments
    from hybrid_tevatron.modeling import CheckpointMetadata

    model_args = SimpleNamespace(pooling="mean", normalize=True, temperature=0.02, model_name_or_path="base")
    data_args = HybridDataArguments(query_prefix="query: ", passage_prefix="passage: ", regime="mono")
    CheckpointMetadata.from_args(model_args, data_args, backend="pypi").save(str(tmp_path))
    assert read_encoding(str(tmp_path))[0] == Encoding("mean", True, "query: ", "passage: ")
    saved = json.loads((tmp_path / ENCODING_FILE).read_text(encoding="utf-8"))
    assert (saved["temperature"], saved["regime"], saved["backend"], saved["alpha"]) == (0.02, "mono", "pypi", 1.0)
