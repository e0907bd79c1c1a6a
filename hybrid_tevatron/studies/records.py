"""What both studies (:mod:`~hybrid_tevatron.studies.reproduction`, :mod:`~hybrid_tevatron.studies.domain_study`) share:
reading a study root's records (results, timings, optional JSON), seed statistics, and the markdown of their docs'
generated blocks (``<!-- BEGIN GENERATED: name -->`` ... ``<!-- END GENERATED: name -->``, rewritten from a summary;
the prose around them is left alone).
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
from collections.abc import Callable, Mapping

from hybrid_tevatron.errors import HybridTevatronError

GENERATED_BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)", re.S)


# ------------------------------------------------------------------------------------------------------ records

def seed_stats(values: list[float]) -> dict:
    """Mean, sample std (0 for one value), n and the values."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n, "values": values}


class StudyRecordError(HybridTevatronError):
    """A study's record (config.json, a summary, results) that cannot be read or is not what the study writes."""


def read_record(path: str, default=None, fix: str = ""):
    """A study root's JSON record (config, plan, choice, summary, results), or ``default`` when it is absent; one
    that is not valid JSON (empty, cut off, edited) is a :class:`StudyRecordError` naming file, line and column, and
    ``fix`` (what to do)."""
    if not os.path.isfile(path):
        return default
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise StudyRecordError(_fixed(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})", fix)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise StudyRecordError(_fixed(f"{path}: cannot read it ({getattr(err, 'strerror', None) or err})", fix)) \
            from None


def read_object(path: str, default=None, fix: str = "") -> dict | None:
    """:func:`read_record` of a record that must be a JSON object."""
    value = read_record(path, default, fix)
    if value is not default and not isinstance(value, dict):
        raise StudyRecordError(_fixed(f"{path}: expected a JSON object, got {_json_kind(value)}", fix))
    return value


def read_summary(path: str, make: str) -> dict:
    """A study's ``summary.json``, checked to be what its ``summarize`` writes: a JSON object with ``meta`` (an
    object; its ``config``, ``hardware`` and ``plan`` objects, its ``timings`` a list of ``{stage, seconds}``) and
    per dataset ``{run: {metric: {mean, std, n, values, seeds}}}``. Anything else is a :class:`StudyRecordError`
    naming the file and what is wrong, then ``make`` (how to write it again)."""
    if not os.path.isfile(path):
        raise StudyRecordError(f"{path}: no summary ({make})")
    summary = read_record(path, fix=make)
    problem = _summary_problem(summary)
    if problem:
        raise StudyRecordError(f"{path}: not a summary of this study ({problem}); {make}")
    return summary


def read_doc(path: str) -> str:
    """The text of a doc whose generated blocks are rewritten (a missing or unreadable one: one error)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise StudyRecordError(f"{path}: cannot read the doc ({getattr(err, 'strerror', None) or err})") from None


def _fixed(message: str, fix: str) -> str:
    return f"{message}; {fix}" if fix else message


def _json_kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_stat(stat) -> bool:
    return (isinstance(stat, dict) and _number(stat.get("mean")) and _number(stat.get("std"))
            and isinstance(stat.get("n"), int) and not isinstance(stat["n"], bool) and stat["n"] >= 1
            and isinstance(stat.get("values"), list) and isinstance(stat.get("seeds"), list))


def _summary_problem(summary) -> str | None:
    """What makes ``summary`` unlike a summary (:func:`read_summary`), or None."""
    if not isinstance(summary, dict):
        return f"{_json_kind(summary)}, not an object"
    meta = summary.get("meta")
    if not isinstance(meta, dict):
        return '"meta" is missing or not an object'
    for key in ("config", "hardware", "plan"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            return f"meta.{key} is not an object"
    timings = meta.get("timings") or []
    if not isinstance(timings, list) or not all(isinstance(t, dict) and isinstance(t.get("stage"), str)
                                                and _number(t.get("seconds")) for t in timings):
        return 'meta.timings is not a list of {"stage", "seconds"}'
    for name, runs in summary.items():
        if name == "meta":
            continue
        if not isinstance(runs, dict):
            return f'"{name}" is not an object of runs'
        for run, body in runs.items():
            if not isinstance(body, dict):
                return f'"{name}"."{run}" is not an object of metrics'
            for key, stat in body.items():
                if not _is_stat(stat):
                    return f'"{name}"."{run}"."{key}" is not {{mean, std, n, values, seeds}}'
    return None


def results_path(run_dir: str) -> str | None:
    """``results/results.json`` (the evaluation program's layout) or ``results.json`` of a run folder."""
    for path in (os.path.join(run_dir, "results", "results.json"), os.path.join(run_dir, "results.json")):
        if os.path.isfile(path):
            return path
    return None


def read_timings(path: str) -> list[dict]:
    """``timings.tsv`` (stage, seconds per line) as ``[{"stage", "seconds"}]``; none when it is absent."""
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")  # stage, seconds[, machine]
            if len(parts) in (2, 3):
                try:
                    seconds = float(parts[1])
                except ValueError:
                    raise StudyRecordError(f"{path}:{lineno}: seconds is not a number ({parts[1]!r})") from None
                rows.append({"stage": parts[0], "seconds": seconds, **({"machine": parts[2]} if
                                                                        len(parts) == 3 else {})})
    return rows


# ----------------------------------------------------------------------------------------------------- markdown

def fmt_stat(stat: dict | None, key: str) -> str:
    """``mean ± std`` (one decimal for rank distance, else three); the mean alone for one seed; – when absent."""
    if not stat:
        return "–"
    digits = 1 if "rank_distance" in key else 3
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def config_block(summary: dict) -> str:
    cfg = summary["meta"].get("config") or {}
    if not cfg:
        return "_No config.json: not run._\n"
    return md_table(["setting", "value"], [[k, f"`{under_home(v)}`"] for k, v in cfg.items()])


def under_home(value, home: str | None = None):
    """A path under the home folder as ``~/...`` (one machine's home is not part of a setting); other values as
    they are."""
    home = os.path.expanduser("~") if home is None else home
    return "~" + value[len(home):] if isinstance(value, str) and home != "/" and value.startswith(home + "/") else value


def hardware_block(summary: dict) -> str:
    """Hardware, then wall times per stage kind (train, eval per dataset): count, median and range. The sum of
    count × median estimates a run with the cores to itself: the median discounts runs that shared them."""
    meta = summary["meta"]
    hw = meta.get("hardware") or {}
    lines = [f"- {k}: {v}" for k, v in hw.items()]
    timings = meta.get("timings") or []
    if timings:
        by_kind: dict[str, list[float]] = {}
        for t in timings:
            by_kind.setdefault(t["stage"].rsplit(":", 1)[0], []).append(t["seconds"])  # drop the run name
        medians = {k: statistics.median(v) for k, v in by_kind.items()}
        lines.append(f"- wall time of the recorded stages: {sum(t['seconds'] for t in timings) / 60:.1f} min in all; "
                     f"sum of count × median: {sum(len(v) * medians[k] for k, v in by_kind.items()) / 60:.1f} min")
        lines += [f"- {k}: {len(v)}×, median {medians[k] / 60:.1f} min (range {min(v) / 60:.1f}–{max(v) / 60:.1f})"
                  for k, v in by_kind.items()]
    return ("\n".join(lines) + "\n") if lines else "_No hardware.json / timings.tsv: not run._\n"


def render_blocks(text: str, summary: dict, source: str, blocks: Mapping[str, Callable[[dict], str]]) -> str:
    """``text`` with every generated block recomputed from ``summary`` by ``blocks[name]``; an unknown block name
    is an error naming the known ones."""
    unknown = [m["name"] for m in GENERATED_BLOCK.finditer(text) if m["name"] not in blocks]
    if unknown:
        raise HybridTevatronError(f"unknown generated blocks: {', '.join(unknown)} (known: {', '.join(blocks)})")
    return GENERATED_BLOCK.sub(
        lambda m: f"{m.group(1)}<!-- from {source} -->\n\n{blocks[m['name']](summary)}\n{m.group(4)}", text)
