"""The domain study's plan: which (cell, seed) runs and which evaluation sets (:func:`plan`), the seeds added where a
headline effect is within noise (:func:`added_seeds`), and the minutes it takes on 2 CPU cores (:func:`estimate`)."""

from __future__ import annotations

from collections.abc import Mapping

from hybrid_tevatron.studies import domain_grid as G
from hybrid_tevatron.studies.core import StudyError
from hybrid_tevatron.studies.domain_summary import summarize
from hybrid_tevatron.studies.domain_tables import (
    effect_of,
    progress,
)
from hybrid_tevatron.studies.record_folder import RecordFolder


def plan(seeds: list[int], cells: list[str] | None = None, sets: list[str] | None = None,
         added: Mapping[str, list[int]] | None = None) -> dict:
    """Which (cell, seed) trains and which evaluations it gets. ``sets`` picks test sets (default: those marked
    default in the grid); the validation sets are planned for the aim candidates and the choice's reference cell
    (first seed) whenever a candidate is planned. ``added``: more seeds of some headline cells
    (:func:`added_seeds`), evaluated as the later seeds are."""
    unknown = [c for c in (cells or []) if c not in G.CELL] + [s for s in (sets or []) if s not in G.EVAL_SET]
    unknown += [s for s in (sets or []) if s in G.EVAL_SET and not G.EVAL_SET[s].test]
    if unknown:
        raise StudyError(f"unknown cells or test sets: {unknown} (cells: {list(G.CELL)}; test sets: "
                         f"{[e.name for e in G.EVAL_SETS if e.test]})")
    chosen = [c for c in G.CELLS if c.name in cells] if cells else list(G.CELLS)
    test_sets = [e.name for e in G.EVAL_SETS if e.test and (e.name in sets if sets else e.default)]
    later = [s for s in test_sets if s in G.LATER_SEED_SETS]
    candidates = [c.name for c in chosen if c.candidate]
    guard_set, _, reference, _ = G.CHOICE_GUARD
    runs = []
    for cell in chosen:
        if cell.degenerate:
            continue
        cell_seeds = [*seeds, *(added or {}).get(cell.name, [])] if cell.headline else seeds[:1]
        for seed in [None] if cell.regime == "zero-shot" else cell_seeds:
            first = seed in (None, seeds[0])
            evals = [s for s in (test_sets if first else later)
                     if cell.wikipedia or G.EVAL_SET[s].family != "lareqa"]
            if first and candidates and cell.candidate:
                evals += [e.name for e in G.EVAL_SETS if not e.test]
            elif first and candidates and cell.name == reference:
                evals.append(guard_set)
            runs.append({"cell": cell.name, "seed": seed, "evals": evals})
    grid = {c.name: {"sources": list(c.sources), "weights": list(c.weights), "regime": c.regime}
            for c in chosen if c.trained}
    out = {"seeds": seeds, "cells": [c.name for c in chosen], "test_sets": test_sets, "later_seed_sets": later,
           "runs": runs, "candidates": candidates, "grid": grid}
    if added:
        out["added_seeds"] = {c: list(v) for c, v in added.items()}
    return out


def added_seeds(records: RecordFolder, the_plan: dict) -> dict[str, list[int]]:
    """One more seed for the trained cells of every headline effect (both cells headline) that comes out within
    noise once every run of ``the_plan`` (its own ``seeds``) is recorded, up to
    :data:`~hybrid_tevatron.studies.domain_grid.MAX_SEEDS` seeds; ``{}`` before that. Computed from the records of
    the plan's seeds alone, so it gives the same answer however many added runs are recorded."""
    seeds = the_plan["seeds"]
    if len(seeds) >= G.MAX_SEEDS:
        return {}
    summary = summarize(records, seeds=seeds)
    summary["meta"]["plan"] = the_plan
    if not progress(summary)["complete"]:
        return {}
    out: dict[str, list[int]] = {}
    for e in G.EFFECTS:
        if all(c in the_plan["cells"] and G.CELL[c].headline for c in (e.a, e.b)) and \
                effect_of(summary, e)["verdict"] == "within noise":
            for c in (e.a, e.b):
                if G.CELL[c].trained:
                    out[c] = [max(seeds) + 1]
    return {c: out[c] for c in the_plan["cells"] if c in out}


def eval_minutes(eval_set: str, images: int | None, questions: int | None) -> float:
    """Estimated minutes of one evaluation on 2 CPU cores (:data:`~hybrid_tevatron.studies.domain_grid.MINUTES`)."""
    es, m = G.EVAL_SET[eval_set], G.MINUTES
    if es.family == "lareqa":
        n = min(questions or G.QUESTIONS[eval_set], G.QUESTIONS[eval_set])
        return m["eval_start"] + m["xquad-r"] * n / G.QUESTIONS["xquad-r"]
    n = min(images or G.IMAGES[eval_set], G.IMAGES[eval_set])
    encodings = 2 * n * len(es.languages) * G.CAPTIONS_PER_IMAGE.get(eval_set, 1)
    return m["eval_start"] + encodings / m["caption_encodings_per_min"]


def estimate(the_plan: dict, images: int | None, questions: int | None) -> dict:
    """Minutes of the plan on 2 CPU cores, with caption pools of ``images`` images and ``questions`` XQuAD-R
    questions (None: whole)."""
    trained = {(r["cell"], r["seed"]) for r in the_plan["runs"] if G.CELL[r["cell"]].trained}
    train = G.MINUTES["train"] * len(trained)
    evals = sum(eval_minutes(s, images, questions) for r in the_plan["runs"] for s in r["evals"])
    return {"train_runs": len(trained), "train_min": train, "eval_min": evals, "total_min": train + evals}
