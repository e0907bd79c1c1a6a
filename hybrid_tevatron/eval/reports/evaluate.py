"""Evaluate one model on a pool benchmark (LAReQA, caption pools): mono / cross / multilingual metrics and rank
distance, from the exact whole-pool ranks.

    python -m hybrid_tevatron.eval.reports.evaluate --manifest inputs --ranks_dir ranks --output_dir results \\
        [--runs_dir runs] [--name hybrid] [--seen_languages en de ...] [--trec_eval_dir trec_eval]

Reads ``{ranks_dir}/{search}.tsv`` (:mod:`hybrid_tevatron.eval.pipeline.ranks`: the rank of every relevant docid in the
search's whole pool) for every search of the manifest, computes each query's metrics from those ranks
(:func:`hybrid_tevatron.eval.reports.metrics.query_metrics`, trec_eval's definitions) and writes ``results.json``,
``results.md`` (paper layout + per-language tables + the X->Y matrix) and ``cross_map.png`` (X->Y mAP heatmap,
diagonal = mono). Averages: per search over its queries (``trec_eval -c``), then cross over the pool languages of
each query language, then every setting macro over query languages. Rank distance: multilingual searches only.

With ``--trec_eval_dir`` (the oracle stage's outputs, :func:`hybrid_tevatron.eval.pipeline.scoring.oracle`) it writes
``crosscheck.json``: every value of the full-ranking sample must equal trec_eval's to ``CROSSCHECK_TOLERANCE``
(else an error); the top-k runs' R@1, R@10 and nDCG@10 as trec_eval scores them are compared with ours and
reported (Pyserini's float32 search can order two items differently where their scores tie to the sixth decimal).
Paths in ``results.json`` are as given.
"""

from __future__ import annotations

import argparse
import os
import sys

from hybrid_tevatron.atomic import atomic_write_json, atomic_write_text
from hybrid_tevatron.data.languages import SETTINGS
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.eval.benchmarks.captions import POOL_FORMAT
from hybrid_tevatron.eval.benchmarks.lareqa import MANIFEST_FORMAT
from hybrid_tevatron.eval.benchmarks.pool import PoolError
from hybrid_tevatron.eval.pipeline.ranks import RANKS_FILE, RANKS_FORMAT
from hybrid_tevatron.eval.pipeline.scoring import ORACLE_FILE, SEP
from hybrid_tevatron.eval.reports.metrics import compare_with_trec_eval, macro, mean, query_metrics
from hybrid_tevatron.eval.reports.report import RESULTS_FORMAT, detail_markdown, fmt, plot_heatmap
from hybrid_tevatron.eval.trec import KEYS, MEASURES, EvalError, parse_trec_eval, read_qrels
from hybrid_tevatron.jsonfiles import read_format, read_json
from hybrid_tevatron.logs import get_logger

METRIC_KEYS = tuple(KEYS[m] for m in MEASURES)
PIVOT = "en"  # caption pools: the language whose caption stands in for the image
CROSSCHECK_TOLERANCE = 1e-4
log = get_logger(__name__)


def load_pool_manifest(path: str) -> dict:
    """A LAReQA manifest or a caption pool's (:mod:`hybrid_tevatron.eval.benchmarks.captions`: cross and multi
    settings, the query's own caption excluded from multi runs by the search)."""
    return read_format(path, "manifest.json", (MANIFEST_FORMAT, POOL_FORMAT), PoolError, "manifest")


def read_ranks(path: str) -> dict[str, list[tuple[str, int]]]:
    """``qid docid rank score`` lines -> ``{qid: [(docid, rank), ...]}``."""
    out: dict[str, list[tuple[str, int]]] = {}
    if not os.path.isfile(path):
        raise EvalError(f"{path}: ranks not found (run python -m hybrid_tevatron.eval.pipeline.ranks)")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split("\t")
            if len(parts) != 4:
                raise EvalError(f"{path}:{n}: expected 'qid docid rank score', got {line.rstrip()!r}")
            try:
                out.setdefault(parts[0], []).append((parts[1], int(parts[2])))
            except ValueError:
                raise EvalError(f"{path}:{n}: rank {parts[2]!r} is not an integer") from None
    return out


def search_metrics(ranks: dict[str, list[tuple[str, int]]], qrels: dict[str, dict[str, int]],
                   with_rank_distance: bool = False) -> dict[str, dict]:
    """Per-query metrics of every query of ``qrels`` from its ranks (a query without ranks scores 0: ``-c``)."""
    out = {}
    for qid, judged in qrels.items():
        found = [(rank, judged[d]) for d, rank in ranks.get(qid, []) if judged.get(d, 0) > 0]
        out[qid] = query_metrics(found, [r for r in judged.values() if r > 0], with_rank_distance=with_rank_distance)
    return out


def _aggregate(values: list[dict], keys) -> dict:
    return {k: macro(v.get(k) for v in values) for k in keys}


def evaluate_pool(manifest_path: str, ranks_dir: str, settings=SETTINGS, seen_languages=None, name=None,
                    trec_eval_dir: str | None = None, runs_dir: str | None = None) -> dict:
    """All metrics of the ranks in ``ranks_dir`` for the searches of ``manifest_path``; returns the results dict
    (with ``crosscheck`` against the oracle's trec_eval outputs in ``trec_eval_dir`` when given)."""
    manifest = load_pool_manifest(manifest_path)
    searches, ranked = _ranked_searches(manifest, manifest_path, ranks_dir, settings)
    per_search, search_info, per_query_all = _score_searches(manifest["root"], searches, ranked, ranks_dir, runs_dir)
    out_settings = _by_setting(searches, per_search, search_info, settings, manifest["languages"])
    results = {
        "format": RESULTS_FORMAT,
        "name": name or os.path.basename(os.path.normpath(runs_dir or ranks_dir)),
        "dataset": manifest["dataset"],
        "manifest": os.path.join(os.path.dirname(manifest_path) if manifest_path.endswith(".json") else manifest_path,
                                 "manifest.json"),
        "ranks_dir": ranks_dir,
        "runs_dir": runs_dir,
        "languages": manifest["languages"],
        "selection": manifest.get("selection"),
        "summary": _summary(out_settings),
        "settings": out_settings,
        "searches": search_info,
        "notes": _notes(search_info),
    }
    if manifest.get("proxy"):
        results["proxy"] = manifest["proxy"]
        for key in ("relation", "relation_note"):  # translation / description / mixed: never pooled together
            if manifest.get(key):
                results[key] = manifest[key]
        _pivot(results, manifest.get("pivot", PIVOT))
    if seen_languages:
        results["seen_unseen"] = seen_unseen(results, seen_languages)
    if trec_eval_dir is not None:
        results["crosscheck"] = crosscheck(per_query_all, ranked, trec_eval_dir)
    return results


def _ranked_searches(manifest: dict, manifest_path: str, ranks_dir: str, settings) -> tuple[list[dict], dict]:
    """The manifest's searches of ``settings`` and the ranks file of ``ranks_dir``, which must rank every one."""
    searches = [s for s in manifest["searches"] if s["setting"] in settings]
    if not searches:
        raise EvalError(f"{manifest_path}: no searches for settings {list(settings)}")
    if not os.path.isdir(ranks_dir):
        raise EvalError(f"{ranks_dir}: ranks folder not found")
    ranked = read_format(os.path.join(ranks_dir, RANKS_FILE), RANKS_FILE, RANKS_FORMAT, EvalError, "ranks")
    missing = [s["name"] for s in searches if s["name"] not in ranked["searches"]]
    if missing:
        raise EvalError(f"{ranks_dir}: no ranks for {len(missing)} of {len(searches)} searches, e.g. "
                        f"{', '.join(missing[:5])} (choose --settings to evaluate fewer settings)")
    return searches, ranked


def _score_searches(root: str, searches: list[dict], ranked: dict, ranks_dir: str,
                    runs_dir: str | None) -> tuple[dict, dict, dict]:
    """Per search: its mean metrics, what results.json says of it, and its per-query values."""
    per_search, search_info, per_query_all = {}, {}, {}
    for i, s in enumerate(searches, 1):
        info = ranked["searches"][s["name"]]
        if info["pool_size"] != s["pool_size"]:
            raise EvalError(f"{ranks_dir}: search {s['name']} was ranked over {info['pool_size']} items, the "
                            f"manifest's pool has {s['pool_size']}")
        qrels = read_qrels(os.path.join(root, s["qrels"]))
        pq = search_metrics(read_ranks(os.path.join(ranks_dir, info["ranks"])), qrels, s["setting"] == "multi")
        per_query_all[s["name"]] = pq
        keys = METRIC_KEYS + (("rank_distance",) if s["setting"] == "multi" else ())
        per_search[s["name"]] = {**{k: mean(pq, k) for k in keys}, "queries": len(pq)}
        search_info[s["name"]] = {"ranks": os.path.join(ranks_dir, info["ranks"]), "setting": s["setting"],
                                  "query_lang": s["query_lang"], "pool": s["pool"], "pool_size": s["pool_size"],
                                  "queries": len(pq), "queries_missing": info["queries_unranked"],
                                  "unretrieved_relevant": info["relevant_outside_pool"],
                                  "excluded": info["excluded"]}
        if runs_dir is not None:
            search_info[s["name"]]["run"] = os.path.join(runs_dir, s["run"])
        log.info(f"[{i}/{len(searches)}] {s['name']}: {len(pq)} queries, mAP {per_search[s['name']]['map']:.4f}"
                 + (f", rank distance {fmt(per_search[s['name']]['rank_distance'], 'rank_distance')}"
                    if s["setting"] == "multi" else ""))
    return per_search, search_info, per_query_all


def _by_setting(searches: list[dict], per_search: dict, search_info: dict, settings, langs: list[str]) -> dict:
    """results.json's ``settings``: mono per language, cross per query language and pair, multi per language, each
    with its macro average."""
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
    return out_settings


def _summary(out_settings: dict) -> dict:
    """``{setting}.{metric}`` macro values and the multilingual rank distance."""
    summary = {}
    for st, body in out_settings.items():
        for k in METRIC_KEYS:
            summary[f"{st}.{k}"] = body["macro"][k]
    if "multi" in out_settings:
        summary["rank_distance"] = out_settings["multi"]["macro"]["rank_distance"]
    return summary


def _notes(search_info: dict) -> list[str]:
    """What a reader must know about the counts: relevant items outside their pool, queries never ranked."""
    notes = []
    outside = sum(info["unretrieved_relevant"] for info in search_info.values())
    if outside:
        notes.append(f"{outside} relevant docids of the qrels are not in their search's pool; they count as "
                     "never retrieved")
    unranked = sum(info["queries_missing"] for info in search_info.values())
    if unranked:
        notes.append(f"{unranked} queries of the qrels have no topic or no encoding; they score 0 (trec_eval -c)")
    return notes


def crosscheck(per_query: dict[str, dict], ranked: dict, trec_eval_dir: str) -> dict:
    """Our per-query values vs trec_eval's on the full-ranking sample (must agree) and on the top-k runs
    (reported)."""
    oracle = read_json(os.path.join(trec_eval_dir, ORACLE_FILE), EvalError, "oracle")
    check: dict = {"tolerance": CROSSCHECK_TOLERANCE, "sample": None, "top_k": None, "problems": []}

    def load(name):
        path = os.path.join(trec_eval_dir, name)
        if not os.path.isfile(path):
            raise EvalError(f"trec_eval output not found: {path}")
        with open(path, encoding="utf-8") as f:
            return parse_trec_eval(f.read())

    def split(theirs):
        by_search: dict[str, dict] = {}
        for qid, values in theirs.items():
            if qid != "all":
                search, _, q = qid.partition(SEP)
                by_search.setdefault(search, {})[q] = values
        return by_search

    if oracle.get("sample"):
        theirs = split(load(oracle["sample"]["output"]))
        rows, worst, searches = 0, 0.0, {}
        for name, pq in per_query.items():
            sample = ranked["searches"][name]["sample"]
            if not sample:
                continue
            ours = {q: pq[q] for q in sample if q in pq}
            found = compare_with_trec_eval(ours, theirs.get(name, {}), tol=CROSSCHECK_TOLERANCE)
            check["problems"] += [f"{name}: {p}" for p in found[:5]]
            diff = _max_diff(ours, theirs.get(name, {}))
            worst = max(worst, diff)
            rows += len(ours)
            searches[name] = {"queries": len(ours), "of": len(pq), "max_abs_diff": diff, "agrees": not found}
        check["sample"] = {"queries": rows, "seed": ranked["sample"]["seed"], "lines": ranked["sample"]["lines"],
                           "max_abs_diff": worst, "searches": searches}
    if oracle.get("top_k"):
        keys = [KEYS[m] for m in oracle["top_k"]["measures"]]
        theirs: dict[str, dict] = {}
        for chunk in oracle["top_k"]["chunks"]:
            theirs.update(split(load(chunk["output"])))
        rows, differ, worst_mean, examples = 0, 0, 0.0, []
        for name, pq in per_query.items():
            t = theirs.get(name, {})
            for q, values in pq.items():
                rows += 1
                other = t.get(q, {})
                bad = [k for k in keys if abs(values[k] - other.get(k, 0.0)) > CROSSCHECK_TOLERANCE]
                if bad:
                    differ += 1
                    if len(examples) < 5:
                        examples.append(f"{name} {q}: " + ", ".join(f"{k} ours {values[k]:.4f} trec_eval "
                                                                      f"{other.get(k, 0.0):.4f}" for k in bad))
            for k in keys:
                ours_mean = mean(pq, k) or 0.0
                theirs_mean = sum(t.get(q, {}).get(k, 0.0) for q in pq) / len(pq) if pq else 0.0
                worst_mean = max(worst_mean, abs(ours_mean - theirs_mean))
        check["top_k"] = {"depth": oracle["top_k"]["depth"], "measures": keys, "queries": rows,
                          "queries_differing": differ, "max_abs_diff_of_search_means": worst_mean,
                          "examples": examples}
    check["agrees"] = not check["problems"]
    return check


def _max_diff(ours: dict, theirs: dict) -> float:
    return max((abs(v - theirs[q][k]) for q, vals in ours.items() for k, v in vals.items()
                if v is not None and q in theirs and k in theirs[q]), default=0.0)


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
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.reports.evaluate",
                                description=__doc__.split("\n")[0])
    p.add_argument("--manifest", required=True,
                   help="manifest.json from hybrid_tevatron.eval.benchmarks.lareqa (or its folder)")
    p.add_argument("--ranks_dir", required=True, help="the ranks stage's folder ({search}.tsv, ranks.json)")
    p.add_argument("--runs_dir", help="the top-k runs ({search}.trec), named in results.json")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--name", help="row name in tables (default: the runs or ranks folder's name)")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--seen_languages", nargs="+", help="training languages, for a seen/unseen breakdown")
    p.add_argument("--trec_eval_dir", help="the oracle stage's trec_eval outputs (oracle.json): check that our "
                   "values equal trec_eval's on the full-ranking sample (crosscheck.json; a difference > 1e-4 is "
                   "an error) and compare the top-k runs")
    args = p.parse_args(argv)
    results = evaluate_pool(args.manifest, args.ranks_dir, args.settings, args.seen_languages, args.name,
                              args.trec_eval_dir, args.runs_dir)
    check = results.get("crosscheck")
    out = write_reports(results, args.output_dir)
    if check is not None:
        if not check["agrees"]:
            raise EvalError(f"metrics from the ranks disagree with trec_eval on the full-ranking sample of "
                            f"{args.ranks_dir}:\n  " + "\n  ".join(check["problems"][:20]))
        sample, top = check["sample"], check["top_k"]
        if sample:
            log.info(f"crosscheck: {sample['queries']} sampled queries ranked in full, metrics = trec_eval "
                     f"(max |diff| {sample['max_abs_diff']:.2e})")
        if top:
            log.info(f"crosscheck: top-{top['depth']} runs, {top['queries_differing']} of {top['queries']} queries "
                     f"differ from the exact ranks at a cutoff (max |diff| of search means "
                     f"{top['max_abs_diff_of_search_means']:.2e})")
    summary = "  ".join(f"{k} {v:.4f}" for k, v in results["summary"].items() if v is not None)
    print(f"{results['name']} on {results['dataset']}: {summary}")
    for kind, path in out.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
