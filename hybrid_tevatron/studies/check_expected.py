"""Check measured scores against expected ones, Pyserini two-click-reproduction style: OK / OKish / FAIL per row.

    python -m hybrid_tevatron.studies.check_expected recipes/expected/me5_small_xquad_r.yaml [--results results.json]
    python -m hybrid_tevatron.studies.check_expected --write recipes/expected/me5_small_xquad_r.yaml \\
        --results results.json --select 'xquad-r/*/multi.map' ... [--meta command="bash recipes/reproduce.sh"] \\
        [--config config.json]
    python -m hybrid_tevatron.studies.check_expected --matches_config recipes/expected/reproduce.yaml < config.json

Expected file (YAML)::

    title: ...                       # free text
    results: runs/reproduce/summary.json   # default results file, relative to the current folder
    meta: {command: ..., commit: ..., hardware: ...}
    rows:
      - id: xquad-r/hybrid/multi.map # "/"-separated path into the results JSON
        expected: 0.6123
        ok: 0.005                    # |measured - expected| <= ok    -> OK
        okish: 0.02                  #                       <= okish -> OKish, else FAIL
        std: 0.0041                  # optional: seed std of the run that wrote the row (information only)

A results leaf is a number or ``{"mean": number, ...}`` (then the mean is compared). A row whose id is missing
from the results is MISSING (counts as a failure). Exit status: 0 when no row is FAIL or MISSING, 1 otherwise (a
verdict, as diff's); 2 an expected failure (``error:`` line), as every command of the package.

``--matches_config`` exits 0 when the JSON settings on stdin equal the ``meta.config`` the expected file was
written with (``--config``), else prints the differing settings and exits 1: a run with other settings is not
expected to match. A ``model`` given as a local folder is compared by its folder name (``/tmp/models/me5-small``
matches ``/data/me5-small``; the embedded model built by ``hybrid_tevatron.models`` is ``me5-small`` wherever it
lies; a Hub id such as ``intfloat/multilingual-e5-small`` matches only itself).

``--write`` snapshots a results file into an expected file (never hand-typed numbers): every leaf matching a
``--select`` glob becomes a row; its tolerances are ``max(ok_abs, ok_std * std)`` (okish: the same with okish_*),
or ``max(ok_rel * |value|, ok_std * std)`` for rows matching ``--relative`` (default ``*rank_distance*``: a
count of ranks, whose scale grows with the pool). Seed noise widens the band where the run measured it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import sys
from collections.abc import Iterable

import yaml

from hybrid_tevatron.atomic import atomic_write_text
from hybrid_tevatron.errors import HybridTevatronError, report_errors

DEFAULTS = {"ok_abs": 0.005, "okish_abs": 0.02, "ok_rel": 0.02, "okish_rel": 0.05, "ok_std": 1.0, "okish_std": 3.0}
RELATIVE = ["*rank_distance*"]


class ExpectedError(HybridTevatronError, ValueError):
    """A malformed expected file; the message names the file and the row."""


def _comparable(config: dict | None) -> dict | None:
    """Settings as compared by ``--matches_config``: a local model folder by its name, not its location."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        return config
    model = config["model"]
    if os.path.isabs(model) or model.startswith(".") or os.path.isdir(model):
        return dict(config, model=_model_name(model))
    return config


def _model_name(folder: str) -> str:
    """A local model folder's name: the embedded model's own name when it is one (wherever it was built), else
    the folder's name."""
    from hybrid_tevatron.models import me5_small

    try:
        with open(os.path.join(folder, me5_small.MARKER), encoding="utf-8") as f:
            return json.load(f)["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return os.path.basename(os.path.normpath(folder))


def load_expected(path: str) -> dict:
    """Parse and validate an expected-scores YAML file."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or not doc["rows"]:
        raise ExpectedError(f"{path}: expected a mapping with a non-empty 'rows' list")
    seen = set()
    for n, row in enumerate(doc["rows"]):
        where = f"{path}: row {n}" + (f" ({row.get('id')})" if isinstance(row, dict) and row.get("id") else "")
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ExpectedError(f"{where}: needs an 'id' string")
        for key in ("expected", "ok", "okish"):
            value = row.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ExpectedError(f"{where}: '{key}' must be a finite number, got {row.get(key)!r}")
        if not 0 <= row["ok"] <= row["okish"]:
            raise ExpectedError(f"{where}: need 0 <= ok <= okish, got ok={row['ok']} okish={row['okish']}")
        if row["id"] in seen:
            raise ExpectedError(f"{where}: duplicate id")
        seen.add(row["id"])
    return doc


def leaves(obj, prefix: str = "") -> Iterable[tuple]:
    """(path, leaf) of every number or ``{"mean": ...}`` dict of a results JSON."""
    if isinstance(obj, dict) and "mean" in obj and isinstance(obj["mean"], (int, float)):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, obj


def resolve(results: dict, row_id: str) -> float | None:
    """The measured value of ``row_id`` (the mean of a ``{"mean": ...}`` leaf), or None when absent."""
    node = results
    for part in row_id.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        node = node.get("mean")
    if isinstance(node, (int, float)) and not isinstance(node, bool) and math.isfinite(node):
        return float(node)
    return None


def check(expected: dict, results: dict) -> list[dict]:
    """One dict per row: id, expected, measured, diff, status (OK / OKish / FAIL / MISSING)."""
    out = []
    for row in expected["rows"]:
        measured = resolve(results, row["id"])
        if measured is None:
            out.append({"id": row["id"], "expected": row["expected"], "measured": None, "diff": None,
                        "status": "MISSING"})
            continue
        diff = measured - row["expected"]
        status = "OK" if abs(diff) <= row["ok"] + 1e-12 else "OKish" if abs(diff) <= row["okish"] + 1e-12 else "FAIL"
        out.append({"id": row["id"], "expected": row["expected"], "measured": measured, "diff": diff,
                    "status": status})
    return out


def format_report(rows: list[dict]) -> str:
    width = max(len(r["id"]) for r in rows)
    lines = [f"{'row':<{width}}  {'expected':>10}  {'measured':>10}  {'diff':>9}  status"]
    for r in rows:
        m = "-" if r["measured"] is None else f"{r['measured']:.4f}"
        d = "-" if r["diff"] is None else f"{r['diff']:+.4f}"
        lines.append(f"{r['id']:<{width}}  {r['expected']:>10.4f}  {m:>10}  {d:>9}  {r['status']}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("OK", "OKish", "FAIL", "MISSING")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def snapshot(results: dict, select: list[str], tol: dict = DEFAULTS, relative: list[str] = RELATIVE) -> list[dict]:
    """Expected rows for every results leaf matching one of the ``select`` globs (results order)."""
    rows = []
    for path, leaf in leaves(results):
        if not any(fnmatch.fnmatchcase(path, pattern) for pattern in select):
            continue
        value = float(leaf["mean"] if isinstance(leaf, dict) else leaf)
        std = float(leaf.get("std") or 0.0) if isinstance(leaf, dict) else 0.0
        row = {"id": path, "expected": round(value, 4)}
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in relative):
            ok, okish = tol["ok_rel"] * abs(value), tol["okish_rel"] * abs(value)
        else:
            ok, okish = tol["ok_abs"], tol["okish_abs"]
        row["ok"] = round(max(ok, tol["ok_std"] * std), 4)
        row["okish"] = round(max(okish, tol["okish_std"] * std, row["ok"]), 4)
        if isinstance(leaf, dict) and leaf.get("n"):
            row["n"] = int(leaf["n"])
            row["std"] = round(std, 4)
        rows.append(row)
    unmatched = [p for p in select if not any(fnmatch.fnmatchcase(path, p) for path, _ in leaves(results))]
    if unmatched:
        raise ExpectedError(f"--select patterns match nothing in the results: {', '.join(unmatched)}")
    return rows


def write_expected(path: str, rows: list[dict], title: str, results_path: str, meta: dict) -> None:
    doc = {"title": title, "results": results_path, "meta": meta, "rows": rows}
    text = ("# Written by `python -m hybrid_tevatron.studies.check_expected --write` from a results file; "
            "do not edit numbers by hand.\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    atomic_write_text(path, text)


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected", nargs="?", help="expected-scores YAML to check against")
    ap.add_argument("--results", help="results JSON (default: the 'results' entry of the YAML)")
    ap.add_argument("--write", metavar="YAML", help="write an expected file from --results instead of checking")
    ap.add_argument("--select", nargs="+", default=["*"], help="with --write: globs of result paths to keep")
    ap.add_argument("--title", default="", help="with --write: title")
    ap.add_argument("--relative", nargs="+", default=RELATIVE,
                    help="with --write: globs of rows with relative tolerances")
    ap.add_argument("--meta", nargs="*", default=[], metavar="KEY=VALUE", help="with --write: provenance")
    ap.add_argument("--config", help="with --write: JSON settings of the run, stored as meta.config")
    ap.add_argument("--matches_config", metavar="YAML", help="compare the JSON settings on stdin with YAML's")
    for key, value in DEFAULTS.items():
        ap.add_argument(f"--{key}", type=float, default=value, help=f"with --write (default {value})")
    args = ap.parse_args(argv)
    if args.matches_config:
        expected = _comparable(load_expected(args.matches_config).get("meta", {}).get("config"))
        given = _comparable(json.load(sys.stdin))
        if expected == given:
            return 0
        diff = sorted(k for k in set(expected or {}) | set(given) if (expected or {}).get(k) != given.get(k))
        print(f"not checked against {args.matches_config}: settings differ ({', '.join(diff)})", file=sys.stderr)
        return 1
    if args.write:
        if not args.results:
            ap.error("--write needs --results")
        with open(args.results, encoding="utf-8") as f:
            results = json.load(f)
        meta = dict(kv.split("=", 1) for kv in args.meta)
        if args.config:
            with open(args.config, encoding="utf-8") as f:
                meta["config"] = json.load(f)
        rows = snapshot(results, args.select, {k: getattr(args, k) for k in DEFAULTS}, args.relative)
        write_expected(args.write, rows, args.title, args.results, meta)
        print(f"wrote {len(rows)} rows to {args.write}", file=sys.stderr)
        return 0
    if not args.expected:
        ap.error("give an expected YAML file (or --write)")
    doc = load_expected(args.expected)
    results_path = args.results or doc.get("results")
    if not results_path:
        ap.error(f"{args.expected} names no results file; pass --results")
    if not os.path.isfile(results_path):  # an expected failure (exit 2); 1 is the verdict "rows outside tolerance"
        raise ExpectedError(f"{results_path}: no such results file (run the command in {args.expected} first)")
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    rows = check(doc, results)
    print(f"{args.expected} vs {results_path}")
    print(format_report(rows))
    return 0 if all(r["status"] in ("OK", "OKish") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
