"""Evaluate the LAReQA runs of one model: mono / cross / multilingual metrics and rank distance.

    python -m hybrid_tevatron.eval.evaluate --manifest lareqa/xquad-r --runs_dir runs/hybrid/xquad-r \\
        --output_dir reports/hybrid/xquad-r [--name hybrid] [--seen_languages en de ...] [--trec_eval_dir E]

Reads ``{runs_dir}/{search}.trec`` (or ``.trec.gz``) for every search of the manifest and writes
``results.json``, ``results.md`` (paper layout + per-language tables + the X->Y matrix) and ``cross_map.png`` (X->Y
mAP heatmap, diagonal = mono). Averages: per search over its queries (``trec_eval -c``), then cross over the pool
languages of each query language, then every setting macro over query languages. Rank distance: multilingual runs
only (see ``hybrid_tevatron.eval.metrics``). With ``--trec_eval_dir`` (the ``{search}.txt`` outputs of
``python -m pyserini.eval.trec_eval -q``, the oracle), every per-query value and mean must equal trec_eval's to
1e-4: ``crosscheck.json`` says so, and a disagreement is an error. Paths in ``results.json`` are as given.
"""

from __future__ import annotations

import argparse
import os
import sys

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.eval.lareqa import MANIFEST_FORMAT, LareqaError
from hybrid_tevatron.jsonfiles import read_format
from hybrid_tevatron.eval.metrics import KEYS, MEASURES, EvalError, compare_with_trec_eval, evaluate_run, macro, \
    mean, parse_trec_eval, read_qrels
from hybrid_tevatron.logs import get_logger
from hybrid_tevatron.eval.report import RESULTS_FORMAT, detail_markdown, fmt, plot_heatmap

SETTINGS = ("mono", "cross", "multi")
METRIC_KEYS = tuple(KEYS[m] for m in MEASURES)
PIVOT = "en"  # caption pools: the language whose caption stands in for the image
CROSSCHECK_TOLERANCE = 1e-4
log = get_logger(__name__)


def load_pool_manifest(path: str) -> dict:
    """A LAReQA manifest or a caption pool's (:mod:`hybrid_tevatron.data.captions`: cross and multi settings, the
    query's own caption excluded from multi runs by the search)."""
    from hybrid_tevatron.data.captions import POOL_FORMAT

    return read_format(path, "manifest.json", (MANIFEST_FORMAT, POOL_FORMAT), LareqaError, "manifest")


def find_run(runs_dir: str, run: str) -> str | None:
    for candidate in (run, run + ".gz"):
        path = os.path.join(runs_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def _aggregate(values: list[dict], keys) -> dict:
    return {k: macro(v.get(k) for v in values) for k in keys}


def evaluate_lareqa(manifest_path: str, runs_dir: str, settings=SETTINGS, seen_languages=None, name=None,
                    trec_eval_dir: str | None = None) -> dict:
    """All metrics of the runs in ``runs_dir`` for the searches of ``manifest_path``; returns the results dict
    (with ``crosscheck`` against the saved trec_eval outputs of ``trec_eval_dir`` when given)."""
    manifest = load_pool_manifest(manifest_path)
    root = manifest["root"]
    searches = [s for s in manifest["searches"] if s["setting"] in settings]
    if not searches:
        raise EvalError(f"{manifest_path}: no searches for settings {list(settings)}")
    if not os.path.isdir(runs_dir):
        raise EvalError(f"{runs_dir}: runs folder not found")
    paths = {s["name"]: find_run(runs_dir, s["run"]) for s in searches}
    missing = [s["run"] for s in searches if paths[s["name"]] is None]
    if missing:
        raise EvalError(f"{runs_dir}: {len(missing)} of {len(searches)} run files missing, e.g. "
                        f"{', '.join(missing[:5])} (expected {{search}}.trec or .trec.gz; choose --settings "
                        "to evaluate fewer settings)")

    per_search, search_info, notes = {}, {}, []
    check = {"tolerance": CROSSCHECK_TOLERANCE, "searches": {}, "problems": []}
    for i, s in enumerate(searches, 1):
        qrels = read_qrels(os.path.join(root, s["qrels"]))
        res = evaluate_run(paths[s["name"]], qrels, pool_size=s["pool_size"],
                           with_rank_distance=s["setting"] == "multi")
        pq = res["per_query"]
        keys = METRIC_KEYS + (("rank_distance",) if s["setting"] == "multi" else ())
        per_search[s["name"]] = {**{k: mean(pq, k) for k in keys}, "queries": len(pq)}
        st = res["stats"]
        full = st["queries_missing"] == 0 and st["retrieved_min"] == s["pool_size"]
        search_info[s["name"]] = {"run": paths[s["name"]], "setting": s["setting"],
                                  "query_lang": s["query_lang"], "pool": s["pool"], "pool_size": s["pool_size"],
                                  "full_ranking": full, **st}
        if trec_eval_dir is not None:
            check["searches"][s["name"]] = _crosscheck(pq, os.path.join(trec_eval_dir, s["name"] + ".txt"),
                                                       check["problems"], s["name"])
        log.info(f"[{i}/{len(searches)}] {s['name']}: {len(pq)} queries, mAP {per_search[s['name']]['map']:.4f}"
                 + (f", rank distance {fmt(per_search[s['name']]['rank_distance'], 'rank_distance')}"
                    if s["setting"] == "multi" else ""))

    langs = manifest["languages"]
    out_settings: dict = {}
    by_setting = {st: [s for s in searches if s["setting"] == st] for st in settings}
    if by_setting.get("mono"):
        per_lang = {s["query_lang"]: per_search[s["name"]] for s in by_setting["mono"]}
        out_settings["mono"] = {"macro": _aggregate(list(per_lang.values()), METRIC_KEYS), "per_language": per_lang}
    if by_setting.get("cross"):
        per_pair = {f"{s['query_lang']}-{s['pool']}": per_search[s["name"]] for s in by_setting["cross"]}
        per_x = {}
        for x in langs:
            pairs = [per_search[s["name"]] for s in by_setting["cross"] if s["query_lang"] == x]
            if pairs:
                per_x[x] = {**_aggregate(pairs, METRIC_KEYS), "pairs": len(pairs)}
        out_settings["cross"] = {"macro": _aggregate(list(per_x.values()), METRIC_KEYS),
                                 "per_query_language": per_x, "per_pair": per_pair}
    if by_setting.get("multi"):
        per_lang = {s["query_lang"]: per_search[s["name"]] for s in by_setting["multi"]}
        for s in by_setting["multi"]:
            per_lang[s["query_lang"]]["unretrieved_relevant"] = search_info[s["name"]]["unretrieved_relevant"]
        out_settings["multi"] = {"macro": _aggregate(list(per_lang.values()), METRIC_KEYS + ("rank_distance",)),
                                 "per_language": per_lang}

    summary = {}
    for st, body in out_settings.items():
        for k in METRIC_KEYS:
            summary[f"{st}.{k}"] = body["macro"][k]
    if "multi" in out_settings:
        summary["rank_distance"] = out_settings["multi"]["macro"]["rank_distance"]

    for st in out_settings:
        partial = [n for n, info in search_info.items() if info["setting"] == st and not info["full_ranking"]]
        if partial:
            depth = min(search_info[n]["retrieved_min"] or 0 for n in partial)
            notes.append(f"{st}: {len(partial)} runs are not full rankings (fewest hits per query: {depth}); mAP "
                         "is over the retrieved depth" + (
                             "; unretrieved relevant passages take their expected random-order ranks in the "
                             "rank distance" if st == "multi" else ""))
    unretrieved = sum(info["unretrieved_relevant"] for info in search_info.values() if info["setting"] == "multi")
    if unretrieved:
        notes.append(f"multi: {unretrieved} relevant passages were not retrieved")

    results = {
        "format": RESULTS_FORMAT,
        "name": name or os.path.basename(os.path.normpath(runs_dir)),
        "dataset": manifest["dataset"],
        "manifest": os.path.join(os.path.dirname(manifest_path) if manifest_path.endswith(".json") else manifest_path,
                                 "manifest.json"),
        "runs_dir": runs_dir,
        "languages": langs,
        "selection": manifest.get("selection"),
        "summary": summary,
        "settings": out_settings,
        "searches": search_info,
        "notes": notes,
    }
    if manifest.get("proxy"):
        results["proxy"] = manifest["proxy"]
        _pivot(results, manifest.get("pivot", PIVOT))
    if seen_languages:
        results["seen_unseen"] = seen_unseen(results, seen_languages)
    if trec_eval_dir is not None:
        check["max_abs_diff"] = max((c["max_abs_diff"] for c in check["searches"].values()), default=0.0)
        check["agrees"] = not check["problems"]
        results["crosscheck"] = check
    return results


def _crosscheck(per_query: dict, trec_eval_path: str, problems: list, name: str) -> dict:
    """Our per-query values vs the saved ``trec_eval -q`` output of one search (problems appended, 5 at most)."""
    if not os.path.isfile(trec_eval_path):
        raise EvalError(f"trec_eval output not found: {trec_eval_path}")
    with open(trec_eval_path, encoding="utf-8") as f:
        theirs = parse_trec_eval(f.read())
    found = compare_with_trec_eval(per_query, theirs, tol=CROSSCHECK_TOLERANCE)
    problems += [f"{name}: {p}" for p in found[:5]]
    diff = max((abs(v - theirs[q][k]) for q, vals in per_query.items() for k, v in vals.items()
                if q in theirs and k in theirs[q]), default=0.0)
    return {"queries": len(per_query), "max_abs_diff": diff, "agrees": not found}


def _pivot(results: dict, pivot: str) -> None:
    """Caption pools: X->pivot (the pivot language's caption stands in for the image, so X->en is the caption
    proxy of text->image retrieval) per query language, macro-averaged into ``summary["to_{pivot}.*"]``."""
    pairs = results["settings"].get("cross", {}).get("per_pair", {})
    per_x = {x: pairs[f"{x}-{pivot}"] for x in results["languages"] if f"{x}-{pivot}" in pairs}
    if not per_x:
        return
    macro_ = _aggregate(list(per_x.values()), METRIC_KEYS)
    results["settings"]["to_pivot"] = {"pivot": pivot, "macro": macro_, "per_query_language": per_x}
    for k in METRIC_KEYS:
        results["summary"][f"to_{pivot}.{k}"] = macro_[k]


def seen_unseen(results: dict, seen_languages) -> dict:
    """Macro averages over seen / unseen query languages (cross: over the pairs of each seen/unseen group)."""
    seen = [x for x in results["languages"] if x in set(seen_languages)]
    unseen = [x for x in results["languages"] if x not in set(seen_languages)]
    out: dict = {"seen": seen, "unseen": unseen}
    group = {x: "seen" if x in seen else "unseen" for x in results["languages"]}
    s = results["settings"]
    for st in ("mono", "multi"):
        if st in s:
            keys = METRIC_KEYS + (("rank_distance",) if st == "multi" else ())
            out[st] = {g: _aggregate([v for x, v in s[st]["per_language"].items() if group[x] == g], keys)
                       for g in ("seen", "unseen") if any(group[x] == g for x in s[st]["per_language"])}
    if "cross" in s:
        groups: dict = {}
        for pair, v in s["cross"]["per_pair"].items():
            x, y = pair.split("-", 1)
            groups.setdefault(f"{group[x]}→{group[y]}", []).append(v)
        out["cross"] = {g: {**_aggregate(v, METRIC_KEYS), "pairs": len(v)} for g, v in sorted(groups.items())}
    return out


def write_reports(results: dict, output_dir: str) -> dict[str, str]:
    """results.json, results.md, (with cross or mono results) cross_map.png and (after a cross-check)
    crosscheck.json; returns the written paths."""
    out = {"json": os.path.join(output_dir, "results.json"), "markdown": os.path.join(output_dir, "results.md")}
    if "crosscheck" in results:
        out["check"] = atomic_write_json(os.path.join(output_dir, "crosscheck.json"), results.pop("crosscheck"))
    atomic_write_json(out["json"], results)
    atomic_write_text(out["markdown"], detail_markdown(results))
    if "cross" in results["settings"] or "mono" in results["settings"]:
        out["heatmap"] = plot_heatmap(results, os.path.join(output_dir, "cross_map.png"))
    return out


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--manifest", required=True, help="manifest.json from hybrid_tevatron.eval.lareqa (or its folder)")
    p.add_argument("--runs_dir", required=True, help="folder with {search}.trec[.gz] run files")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--name", help="row name in tables (default: the runs folder's name)")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--seen_languages", nargs="+", help="training languages, for a seen/unseen breakdown")
    p.add_argument("--trec_eval_dir", help="saved 'pyserini.eval.trec_eval -q' outputs ({search}.txt): check that "
                   "our metrics equal them (crosscheck.json; a difference > 1e-4 is an error)")
    args = p.parse_args(argv)
    results = evaluate_lareqa(args.manifest, args.runs_dir, args.settings, args.seen_languages, args.name,
                              args.trec_eval_dir)
    check = results.get("crosscheck")
    out = write_reports(results, args.output_dir)
    if check is not None:
        if not check["agrees"]:
            raise EvalError(f"in-process metrics disagree with trec_eval on {args.runs_dir}:\n  "
                            + "\n  ".join(check["problems"][:20]))
        log.info(f"crosscheck: {len(check['searches'])} runs, in-process metrics = trec_eval "
                 f"(max |diff| {check['max_abs_diff']:.2e})")
    summary = "  ".join(f"{k} {v:.4f}" for k, v in results["summary"].items() if v is not None)
    print(f"{results['name']} on {results['dataset']}: {summary}")
    for kind, path in out.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
