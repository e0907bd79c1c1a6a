"""What the domain study's records say: the aim candidate chosen on the validation sets (:func:`choose`), and the
summary over seeds of every (set, cell) (:func:`summarize`, from each results.json's :func:`metrics`)."""

from __future__ import annotations

import glob
import os

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.studies import domain_grid as G
from hybrid_tevatron.studies.domain_tables import (
    run_name,
)
from hybrid_tevatron.studies.record_folder import RecordFolder, read_or_none
from hybrid_tevatron.studies.records import read_timings, seed_stats


def choose(records: RecordFolder, the_plan: dict) -> str | None:
    """The aim candidate chosen on the validation sets (first seed), recorded in ``choice.json``; None until every
    candidate (and the guard's reference cell, when planned) has its validation results.

    Candidates whose Wikipedia validation score stays within the guard's tolerance of the reference cell's come
    first (:data:`~hybrid_tevatron.studies.domain_grid.CHOICE_GUARD`), then the higher mean of the caption
    relations' validation scores (:data:`~hybrid_tevatron.studies.domain_grid.CHOICE`); ties go to the earlier
    candidate of the grid."""
    seed, (guard_set, guard_key, reference, tol) = the_plan["seeds"][0], G.CHOICE_GUARD
    candidates = the_plan["candidates"]

    def score(cell: str, where: str, what: str) -> float | None:
        results = records.results(where, run_name(cell, seed))
        return None if results is None else float(results["summary"][what])

    by = {f"{s} {k}": {c: score(c, s, k) for c in candidates} for s, k in G.CHOICE}
    guard = {c: score(c, guard_set, guard_key) for c in candidates}
    ref = score(reference, guard_set, guard_key) if reference in the_plan["cells"] else None
    missing = [v for scores in by.values() for v in scores.values()] + list(guard.values())
    if None in missing or (reference in the_plan["cells"] and ref is None):
        return None
    scores = {c: sum(v[c] for v in by.values()) / len(by) for c in candidates}
    bound = None if ref is None else ref - tol
    within = {c: bound is None or guard[c] >= bound for c in candidates}
    best = max(candidates, key=lambda c: (within[c], scores[c], -candidates.index(c)))
    atomic_write_json(records.path("choice.json"), {
        "chosen": best, "by": "mean of " + ", ".join(by), "seed": seed, "scores": scores, "scores_by_set": by,
        "guard": f"{guard_set} {guard_key} >= {reference} - {tol}" if bound is not None else "not run",
        "guard_bound": bound, "guard_scores": guard, "within_guard": within})
    return best


# ------------------------------------------------------------------------------------------------------ summary

def metrics(results: dict, eval_set: str) -> dict[str, float]:
    """Flat metrics of one results.json: summary keys, per language and per language group (captions)."""
    out = {k: float(v) for k, v in results.get("summary", {}).items() if isinstance(v, (int, float))}
    if G.EVAL_SET[eval_set].family != "captions":
        return out
    settings = results.get("settings", {})
    per = {"to_en.recall_10": (settings.get("to_pivot") or {}).get("per_query_language") or {},
           "multi.map": (settings.get("multi") or {}).get("per_language") or {}}
    for key, by_lang in per.items():
        metric = key.split(".", 1)[1]
        for lang, vals in by_lang.items():
            out[f"{key}@{lang}"] = float(vals[metric])
        if eval_set == "xtd10":
            for group, langs in G.LANGUAGE_GROUPS.items():
                present = [by_lang[x][metric] for x in langs if x in by_lang]
                if present:
                    out[f"{key}@group:{group}"] = sum(present) / len(present)
    return out


def summarize(records: RecordFolder, seeds: list[int] | None = None) -> dict:
    """``summary.json`` from the record folder alone: config, plan, choice, machines, timings and every complete
    evaluation record (mean ± std over seeds per cell and metric; only the runs of ``seeds`` and the zero-shot
    model when given)."""
    meta = {k: read_or_none(records.path(f"{k}.json")) or {} for k in ("config", "plan", "choice")}
    meta["hardware"] = {f"machine {i}": f"{name} ({n} recorded steps)"
                        for i, (name, n) in enumerate(records.machines().items(), 1)}
    meta["timings"] = read_timings(records.path("timings.tsv"))
    meta["replays"] = {os.path.basename(p)[:-5]: r for p in sorted(glob.glob(records.path("replay", "*.json")))
                       if isinstance(r := read_or_none(p), dict)}
    summary: dict = {"meta": meta}
    chosen = meta["choice"].get("chosen")
    summary["cells"] = {c.name: {"status": c.degenerate or ("chosen aim candidate" if c.name == chosen else
                                                           "aim candidate" if c.candidate else "trained"),
                                 "domain": c.domain, "regime": c.regime} for c in G.CELLS}
    for es in G.EVAL_SETS:
        folder = records.path("eval", es.name)
        groups: dict[str, list] = {}
        for run in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            cell, _, seed = run.rpartition("-s") if run != "zero-shot" else (run, "", "")
            if seeds is not None and seed and int(seed) not in seeds:
                continue
            results = records.results(es.name, run) if cell in G.CELL else None
            if results is not None:
                groups.setdefault(cell, []).append((int(seed) if seed else None, metrics(results, es.name)))
        summary[es.name] = {}
        for cell in [c.name for c in G.CELLS if c.name in groups]:
            runs = sorted(groups[cell], key=lambda x: x[0] or 0)
            keys = [k for k in runs[0][1] if all(k in m for _, m in runs)]
            summary[es.name][cell] = {k: {**seed_stats([m[k] for _, m in runs]), "seeds": [s for s, _ in runs]}
                                      for k in keys}
    return summary
