"""Tables and plots of LAReQA results (``results.json`` from ``hybrid_tevatron.eval.reports.evaluate``).

    python -m hybrid_tevatron.eval.reports.report --headline A/results.json
    python -m hybrid_tevatron.eval.reports.report --compare A/results.json B/results.json --names zero-shot hybrid \\
        --output reports/compare

writes ``compare.md`` (the paper's layout: one row per run, per dataset: mono / cross / multilingual mAP, rank
distance, mono R@1, cross R@1, multilingual R@10), ``compare.json`` (the same numbers) and ``compare.png`` (bars).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from hybrid_tevatron.atomic import atomic_path, atomic_write_json, atomic_write_text
from hybrid_tevatron.data.languages import SETTINGS
from hybrid_tevatron.errors import HybridTevatronError, report_errors
from hybrid_tevatron.jsonfiles import read_format

RESULTS_FORMAT = "hybrid_tevatron.lareqa-results/1"
# (summary key, column title); the paper's headline columns first
COLUMNS = (
    ("mono.map", "mono mAP"),
    ("cross.map", "cross mAP"),
    ("multi.map", "multi mAP"),
    ("rank_distance", "rank dist. ↓"),
    ("mono.recall_1", "mono R@1"),
    ("cross.recall_1", "cross R@1"),
    ("multi.recall_10", "multi R@10"),
)


class ReportError(HybridTevatronError, ValueError):
    """A results file that cannot be read; the message names it."""


def load_results(path: str) -> dict:
    """Read a ``results.json`` (``path`` may be its folder)."""
    results = read_format(path, "results.json", RESULTS_FORMAT, ReportError, "results file")
    del results["root"]
    return results


def fmt(value, key: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1f}" if "rank_distance" in key else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def summary_table(results_list: list[dict], names: list[str]) -> str:
    """Markdown: per dataset, one row per run with the paper's columns."""
    out = []
    datasets = list(dict.fromkeys(r["dataset"] for r in results_list))
    for ds in datasets:
        rows = [[name] + [fmt(r["summary"].get(k), k) for k, _ in COLUMNS]
                for r, name in zip(results_list, names) if r["dataset"] == ds]
        out.append(f"### {ds}\n\n" + _table(["run"] + [t for _, t in COLUMNS], rows))
    return "\n".join(out)


def cross_matrix(results: dict, key: str = "map") -> tuple[list[str], list[list[float]]]:
    """X->Y matrix (rows: query language, columns: pool language); diagonal = mono, NaN where no pair."""
    langs = results["languages"]
    mono = results["settings"].get("mono", {}).get("per_language", {})
    cross = results["settings"].get("cross", {}).get("per_pair", {})
    matrix = []
    for x in langs:
        row = []
        for y in langs:
            cell = mono.get(x) if x == y else cross.get(f"{x}-{y}")
            row.append(cell[key] if cell and cell.get(key) is not None else float("nan"))
        matrix.append(row)
    return langs, matrix


def detail_markdown(results: dict) -> str:
    """The full report of one evaluation: headline row, per-language table, X->Y matrix, notes."""
    s = results["settings"]
    parts = [f"# {results['name']} on {results['dataset']}\n",
             f"Runs: `{results['runs_dir']}`; manifest: `{results['manifest']}`.\n",
             summary_table([results], [results["name"]])]
    if results.get("proxy"):
        parts.insert(1, f"**{results['proxy']}**: not image retrieval.\n")
    if "to_pivot" in s:
        tp = s["to_pivot"]
        rows = [[x, fmt(v.get("map")), fmt(v.get("recall_1")), fmt(v.get("recall_10"))]
                for x, v in tp["per_query_language"].items()]
        rows.append(["**macro**"] + [fmt(tp["macro"].get(k)) for k in ("map", "recall_1", "recall_10")])
        parts.append(f"## X→{tp['pivot']} (caption proxy of text→image)\n\n"
                     + _table(["X", "mAP", "R@1", "R@10"], rows))
    header = ["lang", "mono mAP", "mono R@1", "cross mAP (X→·)", "cross R@1", "multi mAP", "multi R@10",
              "rank dist. ↓"]
    rows = []
    for x in results["languages"]:
        mono = s.get("mono", {}).get("per_language", {}).get(x, {})
        cross = s.get("cross", {}).get("per_query_language", {}).get(x, {})
        multi = s.get("multi", {}).get("per_language", {}).get(x, {})
        rows.append([x, fmt(mono.get("map")), fmt(mono.get("recall_1")), fmt(cross.get("map")),
                     fmt(cross.get("recall_1")), fmt(multi.get("map")), fmt(multi.get("recall_10")),
                     fmt(multi.get("rank_distance"), "rank_distance")])
    macro = [s.get(k, {}).get("macro", {}) for k in SETTINGS]
    rows.append(["**macro**", fmt(macro[0].get("map")), fmt(macro[0].get("recall_1")), fmt(macro[1].get("map")),
                 fmt(macro[1].get("recall_1")), fmt(macro[2].get("map")), fmt(macro[2].get("recall_10")),
                 fmt(macro[2].get("rank_distance"), "rank_distance")])
    parts.append("## Per query language\n\n" + _table(header, rows))
    if "cross" in s:
        langs, matrix = cross_matrix(results)
        rows = [[x] + [fmt(v) for v in row] for x, row in zip(langs, matrix)]
        parts.append("## X→Y mAP (rows: query language, columns: pool language; diagonal: mono)\n\n"
                     + _table(["X \\ Y"] + langs, rows))
    if results.get("seen_unseen"):
        parts.append(seen_unseen_markdown(results))
    notes = results.get("notes") or []
    if notes:
        parts.append("## Notes\n\n" + "".join(f"- {n}\n" for n in notes))
    return "\n".join(parts)


def seen_unseen_markdown(results: dict) -> str:
    su = results["seen_unseen"]
    rows = [[f"{setting} {group}"] + [fmt(v.get(k), k) for k in ("map", "recall_1", "recall_10", "rank_distance")]
            for setting in SETTINGS for group, v in su.get(setting, {}).items()]
    return (f"## Seen ({' '.join(su['seen'])}) vs unseen ({' '.join(su['unseen'])}) languages\n\n"
            + _table(["setting / group", "mAP", "R@1", "R@10", "rank dist. ↓"], rows))


def headline_markdown(results: dict) -> str:
    """The headline row and (when the evaluation knew the training languages) the seen/unseen table."""
    parts = [summary_table([results], [results["name"]])]
    if results.get("seen_unseen"):
        parts.append(seen_unseen_markdown(results))
    return "\n".join(parts)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_heatmap(results: dict, path: str, key: str = "map") -> str:
    """Heatmap PNG of the X->Y ``key`` matrix (diagonal = mono), values written in the cells."""
    plt = _pyplot()
    import numpy as np

    langs, matrix = cross_matrix(results, key)
    data = np.array(matrix, dtype=float)
    n = len(langs)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * n, 0.8 + 0.55 * n))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    finite = data[np.isfinite(data)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9)
    ax.set_xticks(range(n), langs)
    ax.set_yticks(range(n), langs)
    ax.set_xlabel("pool language Y")
    ax.set_ylabel("query language X")
    label = {"map": "mAP", "recall_1": "R@1", "recall_10": "R@10", "ndcg_cut_10": "nDCG@10"}.get(key, key)
    ax.set_title(f"{results['name']} – {results['dataset']}: X→Y {label} (diagonal: mono)", fontsize=10)
    mid = (vmin + vmax) / 2
    for i in range(n):
        for j in range(n):
            if np.isfinite(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.2f}"[1:] if 0 <= data[i, j] < 1 else f"{data[i, j]:.2f}",
                        ha="center", va="center", fontsize=7, color="black" if data[i, j] > mid else "white")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)
    return path


def plot_compare(results_list: list[dict], names: list[str], path: str) -> str:
    """Grouped bars per dataset: mono/cross/multi mAP, and rank distance on its own axis."""
    plt = _pyplot()
    import numpy as np

    datasets = list(dict.fromkeys(r["dataset"] for r in results_list))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 3.6 * len(datasets)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1.3]})
    keys = [("mono.map", "mono"), ("cross.map", "cross"), ("multi.map", "multi")]
    for row, ds in enumerate(datasets):
        runs = [(r, n) for r, n in zip(results_list, names) if r["dataset"] == ds]
        width = 0.8 / len(runs)
        ax, ax_rd = axes[row]
        for i, (r, name) in enumerate(runs):
            vals = [r["summary"].get(k) or 0.0 for k, _ in keys]
            bars = ax.bar(np.arange(len(keys)) + (i - (len(runs) - 1) / 2) * width, vals, width, label=name)
            ax.bar_label(bars, fmt="%.3f", fontsize=7)
            rd = r["summary"].get("rank_distance")
            bar = ax_rd.bar([i], [rd or 0.0], 0.7, color=bars.patches[0].get_facecolor())
            ax_rd.bar_label(bar, labels=[fmt(rd, "rank_distance")], fontsize=7)
        ax.set_xticks(range(len(keys)), [t for _, t in keys])
        ax.set_ylabel("mAP")
        ax.set_title(f"{ds}: mAP by setting")
        ax.legend(fontsize=8)
        ax_rd.set_xticks(range(len(runs)), [n for _, n in runs], rotation=30, ha="right", fontsize=8)
        ax_rd.set_title(f"{ds}: rank distance (lower is better)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def write_compare(paths: list[str], names: list[str] | None, output_dir: str) -> dict[str, str]:
    """Side-by-side table (md + json) and bar plot of several results files; returns the written paths."""
    results_list = [load_results(p) for p in paths]
    if names is None:
        names = [r.get("name") or os.path.basename(os.path.dirname(os.path.abspath(p)))
                 for r, p in zip(results_list, paths)]
    if len(names) != len(results_list):
        raise ReportError(f"--names gives {len(names)} names for {len(results_list)} results files")
    rows = [{"name": n, "dataset": r["dataset"], "results": os.path.abspath(p),
             **{k: r["summary"].get(k) for k, _ in COLUMNS}} for r, n, p in zip(results_list, names, paths)]
    md = "# Comparison\n\n" + summary_table(results_list, names) + "\n" + "".join(
        f"- {row['name']}: `{row['results']}`\n" for row in rows)
    out = {"markdown": os.path.join(output_dir, "compare.md"), "json": os.path.join(output_dir, "compare.json"),
           "plot": os.path.join(output_dir, "compare.png")}
    atomic_write_text(out["markdown"], md)
    atomic_write_json(out["json"], {"columns": [k for k, _ in COLUMNS], "rows": rows})
    plot_compare(results_list, names, out["plot"])
    return out


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.reports.report",
                                description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--compare", nargs="+", metavar="RESULTS",
                      help="results.json files (or their folders) from hybrid_tevatron.eval.reports.evaluate")
    what.add_argument("--headline", metavar="RESULTS", help="print one results.json's headline row and "
                      "seen/unseen table")
    p.add_argument("--names", nargs="+", help="one row name per results file (default: the name inside each)")
    p.add_argument("--output", help="--compare: folder for compare.md, compare.json, compare.png")
    args = p.parse_args(argv)
    if args.headline:
        print(headline_markdown(load_results(args.headline)))
        return 0
    if not args.output:
        p.error("--compare needs --output")
    out = write_compare(args.compare, args.names, args.output)
    print(open(out["markdown"], encoding="utf-8").read())
    for kind, path in out.items():
        print(f"{kind}: {os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
