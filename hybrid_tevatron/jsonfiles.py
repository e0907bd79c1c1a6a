"""Reading JSON files, the one place for their error messages: not found, not UTF-8, malformed (line and column),
not the expected format. Each caller passes its own error class, so the message keeps its module's type."""

from __future__ import annotations

import json
import os


def read_json(path: str, error: type[Exception], what: str = "file"):
    """The parsed JSON of ``path``; ``error(message naming path)`` if it is missing, not UTF-8 or malformed."""
    if not os.path.isfile(path):
        raise error(f"{path}: {what} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise error(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 ({err})") from None


def read_format(path: str, name: str, fmt: str | tuple[str, ...], error: type[Exception], what: str = "file") -> dict:
    """A JSON object of format ``fmt`` (its ``"format"`` key; a tuple: any of them); ``path`` may be its folder
    (then ``name`` in it).
    Adds ``root``, the file's folder, against which its relative paths resolve."""
    if os.path.isdir(path):
        path = os.path.join(path, name)
    obj = read_json(path, error, what)
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if not isinstance(obj, dict) or obj.get("format") not in formats:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise error(f"{path}: not a {' or '.join(formats)} {what} (format={found!r})")
    obj["root"] = os.path.dirname(os.path.abspath(path))
    return obj
