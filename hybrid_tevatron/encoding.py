"""How a checkpoint encodes, the one schema: pooling, L2 normalisation, prefixes and maximum lengths.

The trainer writes them into the checkpoint's :data:`ENCODING_FILE` (``hybrid_tevatron.json``, beside other
metadata); every reader (our encoders, the evaluation) takes them from :func:`read_encoding`, with one override
rule: a value given explicitly (not ``None``) > the file > the defaults. ``pooling`` and ``normalize`` have no
default: without the file they must be given. The defaults of the lengths are the trainer's
(:data:`DEFAULT_QUERY_MAX_LEN`, :data:`DEFAULT_PASSAGE_MAX_LEN`, used by ``hybrid_tevatron.arguments``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Mapping

from hybrid_tevatron.booleans import parse_bool
from hybrid_tevatron.errors import HybridTevatronError

ENCODING_FILE = "hybrid_tevatron.json"
DEFAULT_QUERY_MAX_LEN = 32
DEFAULT_PASSAGE_MAX_LEN = 128


class EncodingError(HybridTevatronError, ValueError):
    """Encoding settings that are missing or invalid; the message names the file or flag."""


class Pooling(str, enum.Enum):
    """How token states become one vector: the first token (``cls``) or the mask-weighted mean (``mean``)."""

    CLS = "cls"
    MEAN = "mean"

    __str__ = str.__str__  # "cls", not "Pooling.CLS", in messages and logs
    __format__ = str.__format__


@dataclasses.dataclass(frozen=True)
class Encoding:
    pooling: Pooling
    normalize: bool
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_len: int = DEFAULT_QUERY_MAX_LEN
    passage_max_len: int = DEFAULT_PASSAGE_MAX_LEN

    def __post_init__(self):  # the one validation: values from files, flags and code all pass here
        for key in KEYS:
            object.__setattr__(self, key, _value(key, getattr(self, key), "encoding"))

    def to_dict(self) -> dict:
        """The keys of :data:`ENCODING_FILE`, JSON-ready (``pooling`` as its string)."""
        return {**dataclasses.asdict(self), "pooling": self.pooling.value}

    def side(self, side: str) -> SideEncoding:
        """The settings of one side, ``"query"`` or ``"passage"``."""
        if side not in SIDES:
            raise EncodingError(f"side must be 'query' or 'passage', got {side!r}")
        return SideEncoding(self.pooling, self.normalize, getattr(self, f"{side}_prefix"),
                            getattr(self, f"{side}_max_len"))


@dataclasses.dataclass(frozen=True)
class SideEncoding:
    """How one side (queries or passages) is encoded: :meth:`Encoding.side`."""

    pooling: Pooling
    normalize: bool
    prefix: str
    max_length: int


SIDES = ("query", "passage")
KEYS = tuple(f.name for f in dataclasses.fields(Encoding))


def _value(key: str, value, where: str):
    """``value`` of ``key`` checked and in its type; ``where`` (a file or a flag) starts the error message."""
    if key == "pooling":
        try:
            return Pooling(value)
        except ValueError:
            raise EncodingError(f"{where}: pooling must be cls or mean, got {value!r}") from None
    if key == "normalize":
        if isinstance(value, bool):
            return value
        flag = parse_bool(value) if isinstance(value, str) else None
        if flag is not None:
            return flag
        raise EncodingError(f"{where}: normalize must be true or false, got {value!r}")
    if key.endswith("_prefix"):
        if not isinstance(value, str):
            raise EncodingError(f"{where}: {key} must be a string, got {value!r}")
        return value
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise EncodingError(f"{where}: {key} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or (isinstance(value, float) and value != n) or n < 1:
        raise EncodingError(f"{where}: {key} must be >= 1, got {value!r}")
    return n


def read_saved(model: str) -> tuple[dict, str]:
    """The encoding keys of ``{model}/hybrid_tevatron.json`` (``{}`` without the file) and its path; the legacy
    ``l2_norm`` key reads as ``normalize``."""
    path = os.path.join(model, ENCODING_FILE)
    if not os.path.isfile(path):
        return {}, path
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise EncodingError(f"{path}: unreadable: {err}") from None
    if not isinstance(saved, dict):
        raise EncodingError(f"{path}: expected a JSON object")
    if "normalize" not in saved and "l2_norm" in saved:
        saved["normalize"] = saved["l2_norm"]
    return {k: saved[k] for k in KEYS if saved.get(k) is not None}, path


def read_encoding(model: str, overrides: Mapping[str, object] | None = None) -> tuple[Encoding, dict[str, str]]:
    """``(settings, source per key)``: explicit ``overrides`` (non-None) > ``hybrid_tevatron.json`` > defaults."""
    saved, path = read_saved(model)
    values, source = {}, {}
    for key in KEYS:
        given = (overrides or {}).get(key)
        if given is not None:
            values[key], source[key] = _value(key, given, f"--{key}"), "command line"
        elif key in saved:
            values[key], source[key] = _value(key, saved[key], path), path
        elif key not in ("pooling", "normalize"):
            source[key] = "default"
    missing = [k for k in ("pooling", "normalize") if k not in values]
    if missing:
        raise EncodingError(
            f"{model}: no hybrid_tevatron.json with the training settings, so pass them explicitly: "
            + " and ".join({"pooling": "--pooling cls|mean", "normalize": "--normalize or --no-normalize"}[k]
                           for k in missing)
            + " (and --query_prefix/--passage_prefix/--query_max_len/--passage_max_len if training used them)")
    return Encoding(**values), source


def side_encoding(model: str, side: str, pooling=None, normalize=None, prefix=None,
                  max_length=None) -> tuple[SideEncoding, dict[str, str]]:
    """One side's settings by :func:`read_encoding`'s rule, with that side's overrides (``None`` = not given)."""
    if side not in SIDES:
        raise EncodingError(f"side must be 'query' or 'passage', got {side!r}")
    encoding, source = read_encoding(model, {"pooling": pooling, "normalize": normalize, f"{side}_prefix": prefix,
                                             f"{side}_max_len": max_length})
    return encoding.side(side), {"pooling": source["pooling"], "normalize": source["normalize"],
                                 "prefix": source[f"{side}_prefix"], "max_length": source[f"{side}_max_len"]}


def write_encoding(folder: str, encoding: Encoding, **provenance) -> str:
    """Write ``{folder}/hybrid_tevatron.json`` atomically: the keys of ``encoding`` (what :func:`read_encoding`
    reads back) and ``provenance`` (what else the trainer records: temperature, base model, regime...)."""
    from hybrid_tevatron.atomic import atomic_write_json

    clash = sorted(set(provenance) & set(KEYS))
    if clash:
        raise EncodingError(f"provenance keys {clash} are encoding keys: set them on the Encoding")
    return atomic_write_json(os.path.join(folder, ENCODING_FILE), {**encoding.to_dict(), **provenance})
