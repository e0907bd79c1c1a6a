"""The domain-adaptation study's tables (markdown) from its ``summary.json``
(:func:`hybrid_tevatron.studies.domain_summary.summarize`): one table per evaluation set, X→en R@10 per XTD10
language, the effects the study asks about (a − b against the seed noise) and the "aim high" target, reached or
not. ``render`` fills the ``<!-- BEGIN GENERATED: name -->`` blocks of docs/domain_adaptation.md (names:
:data:`BLOCKS`) and leaves the prose alone. Caption numbers are a caption proxy, never image retrieval.
"""

from __future__ import annotations

import math

from hybrid_tevatron.studies import domain_grid as G
from hybrid_tevatron.studies.record_folder import machine_name
from hybrid_tevatron.studies.records import config_block, fmt_stat, hardware_block, md_table, render_blocks

PROXY = ("Caption retrieval here is a **caption proxy**: a caption must find the captions of the same image in "
         "other languages (X→en stands in for text→image); no images are involved. It is not image retrieval.")


def run_name(cell: str, seed: int | None) -> str:
    return cell if seed is None else f"{cell}-s{seed}"


def effect(a: dict | None, b: dict | None, lower_better: bool = False) -> dict:
    """a − b (sign flipped when lower is better) against 2 standard errors of the difference of the seed means."""
    if not a or not b:
        return {"verdict": "not run"}
    d = (b["mean"] - a["mean"]) if lower_better else (a["mean"] - b["mean"])
    if a["n"] < 2 and b["n"] < 2:
        return {"diff": d, "verdict": "one seed each: no noise estimate"}
    noise = 2 * math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    if abs(d) <= noise:
        return {"diff": d, "noise": noise, "verdict": "within noise"}
    return {"diff": d, "noise": noise, "verdict": ("higher" if d > 0 else "lower") + " beyond noise"}


def target(summary: dict) -> dict:
    """The aim's criteria on the chosen candidate's test means (reached or not, as measured)."""
    chosen = summary["meta"].get("choice", {}).get("chosen")
    xtd, xq = (summary.get("xtd10") or {}).get(chosen or "", {}), summary.get("xquad-r") or {}
    rows = [("XTD10 multilingual-pool mAP", "xtd10", "multi.map", G.TARGET["xtd10_multi_map"])]
    rows += [(f"XTD10 {x}→en R@10", "xtd10", f"to_en.recall_10@{x}", v)
             for x, v in G.TARGET["xtd10_to_en_recall_10"].items()]
    ref = xq.get("wiki-hybrid", {}).get("multi.map")
    bound = ref["mean"] - G.TARGET["xquad_r_multi_map_drop"] if ref else None
    rows.append(("held-out XQuAD-R multi mAP (wiki-hybrid − 0.01)", "xquad-r", "multi.map", bound))
    out = []
    for criterion, eval_set, key, b in rows:
        s = (xtd if eval_set == "xtd10" else xq.get(chosen or "", {})).get(key)
        out.append({"criterion": criterion, "eval_set": eval_set, "key": key, "measured": s, "bound": b,
                    "reached": None if s is None or b is None else s["mean"] >= b})
    flags = [r["reached"] for r in out]  # one criterion missed decides; otherwise unmeasured ones leave it open
    return {"chosen": chosen, "rows": out, "reached": False if False in flags else None if None in flags else True}


# ----------------------------------------------------------------------------------------------------- markdown

def _row_name(summary: dict, cell: str) -> str:
    c = G.CELL[cell]
    return f"{cell} ({c.domain}, {c.regime})" + (" **chosen**" if summary["cells"][cell]["status"].startswith(
        "chosen") else "")


def set_table(summary: dict, eval_set: str, keys, titles=None) -> str:
    """One row per cell of the grid (degenerate cells with their reason), one column per metric key."""
    runs = summary.get(eval_set) or {}
    rows = []
    for cell in G.CELLS:
        if cell.degenerate:
            rows.append([_row_name(summary, cell.name), cell.degenerate] + [""] * (len(keys) - 1))
        elif cell.name in runs:
            n = max(v["n"] for v in runs[cell.name].values())
            rows.append([f"{_row_name(summary, cell.name)} n={n}"]
                        + [fmt_stat(runs[cell.name].get(k), k) for k in keys])
    es = G.EVAL_SET[eval_set]
    if not any(cell.name in runs for cell in G.CELLS):
        return f"_{es.title}: not run yet._\n"
    head = f"{es.title}" + (f" — relation: {es.relation}; caption proxy, not image retrieval"
                            if es.family == "captions" else "") + ":\n\n"
    return head + md_table(["cell (domain, regime) seeds"] + [TITLES.get(k, k) for k in titles or keys], rows)


TITLES = {"multi.map": "multi mAP", "cross.map": "X→Y mAP", "mono.map": "mono mAP", "to_en.map": "X→en mAP",
          "to_en.recall_10": "X→en R@10", "rank_distance": "rank dist. ↓",
          **{f"multi.map@group:{g}": f"multi mAP {g} ({' '.join(v)})" for g, v in G.LANGUAGE_GROUPS.items()},
          **{f"to_en.recall_10@group:{g}": f"X→en R@10 {g}" for g in G.LANGUAGE_GROUPS},
          **{f"to_en.recall_10@{x}": f"{x}→en R@10" for x in G.XTD10_LANGUAGES}}


def _xtd_keys():
    groups = [f"multi.map@group:{g}" for g in G.LANGUAGE_GROUPS] + [f"to_en.recall_10@group:{g}"
                                                                     for g in G.LANGUAGE_GROUPS]
    return ["multi.map", *groups, "to_en.recall_10", "to_en.recall_10@jp", "to_en.recall_10@ko", "rank_distance"]


def effect_of(summary: dict, e: G.Effect) -> dict:
    """:func:`effect` of one of :data:`~hybrid_tevatron.studies.domain_grid.EFFECTS` on the recorded means."""
    per_cell = summary.get(e.eval_set) or {}
    return effect(per_cell.get(e.a, {}).get(e.key), per_cell.get(e.b, {}).get(e.key), "rank_distance" in e.key)


def effects_table(summary: dict) -> str:
    rows = []
    for e in G.EFFECTS:
        r = effect_of(summary, e)
        rows.append([e.question, f"{e.eval_set} {e.key}", f"{e.a} − {e.b}", f"{r['diff']:+.3f}" if "diff" in r else "–",
                     f"±{r['noise']:.3f}" if "noise" in r else "–", r["verdict"]])
    return md_table(["question", "set, metric", "a − b", "measured", "2 s.e.", "verdict"], rows)


def target_block(summary: dict) -> str:
    t = target(summary)
    choice = summary["meta"].get("choice") or {}
    head = choice_text(choice) if choice else "_No aim candidate chosen yet: not run._\n\n"
    rows = [[r["criterion"], fmt_stat(r["measured"], "map"), "–" if r["bound"] is None else f"≥ {r['bound']:.3f}",
             {True: "reached", False: "not reached", None: "not run"}[r["reached"]]] for r in t["rows"]]
    verdict = {True: "reached", False: "**not reached**", None: "not measured yet"}[t["reached"]]
    images = (summary["meta"].get("config") or {}).get("eval_images", "all")
    pools = "" if images == "all" else (f" Measured on pools of the first {images} images per caption set: the "
                                        "thresholds refer to the whole 1,000-image XTD10 pool, so this verdict "
                                        "does not carry over to it.")
    return head + md_table(["criterion (chosen aim, test sets)", "measured", "target", "verdict"], rows) + \
        f"\nThe aim as a whole: {verdict} (caption proxy).{pools}\n"


def choice_text(choice: dict) -> str:
    """The validation choice in words: the guard, then each candidate's two validation scores."""
    guard = choice.get("guard", "not run")
    rows = ", ".join(f"{c} {v:.3f} (wiki-val {choice['guard_scores'][c]:.3f}"
                     + ("" if choice.get("guard_bound") is None else
                        ", within" if choice["within_guard"][c] else ", outside") + ")"
                     for c, v in choice["scores"].items())
    bound = "" if choice.get("guard_bound") is None else f" = {choice['guard_bound']:.3f}"
    return (f"Chosen on validation only (seed {choice['seed']}): **{choice['chosen']}**. Candidates within the "
            f"Wikipedia guard ({guard}{bound}) first, then the higher {choice['by']}: {rows}.\n\n")


def progress(summary: dict) -> dict:
    """How many of the planned evaluations have a record: ``{"planned", "recorded", "complete"}``."""
    the_plan = summary["meta"].get("plan") or {}
    planned = recorded = 0
    for r in the_plan.get("runs", []):
        for s in r["evals"]:
            planned += 1
            stats = (summary.get(s) or {}).get(r["cell"])
            recorded += bool(stats) and r["seed"] in next(iter(stats.values()))["seeds"]
    return {"planned": planned, "recorded": recorded, "complete": planned > 0 and planned == recorded}


def status_block(summary: dict) -> str:
    the_plan = summary["meta"].get("plan") or {}
    if not the_plan:
        return "_No plan.json: not run yet._\n"
    p = progress(summary)
    head = (f"All {p['planned']} planned evaluations are recorded.\n\n" if p["complete"] else
            f"**In progress:** {p['recorded']} of {p['planned']} planned evaluations are recorded; the tables hold "
            "what is recorded so far, and the aim's verdict waits for the rest.\n\n")
    added = the_plan.get("added_seeds") or {}
    if added:
        head += ("Seeds added because a headline effect came out within noise with seeds "
                 f"{', '.join(map(str, the_plan['seeds']))}: "
                 + ", ".join(f"{c} (seed {', '.join(map(str, v))})" for c, v in added.items()) + ".\n\n")
    rows = []
    for r in the_plan["runs"]:
        done = [s for s in r["evals"] if r["cell"] in (summary.get(s) or {})
                and (r["seed"] in next(iter(summary[s][r["cell"]].values()))["seeds"])]
        rows.append([run_name(r["cell"], r["seed"]), f"{len(done)} of {len(r['evals'])}"])
    return head + md_table(["run", "evaluations recorded"], rows)


def pools(summary: dict) -> str:
    """"whole test sets", or the cap a quick run's caption pools had."""
    images = (summary["meta"].get("config") or {}).get("eval_images", "all")
    return "whole test sets" if images == "all" else f"caption pools of the first {images} images"


def verdict_sentence(summary: dict) -> str:
    """The aim's verdict in one sentence (caption proxy), or how far the records are."""
    p, t = progress(summary), target(summary)
    if not p["complete"]:
        return (f"The study is in progress ({pools(summary)}): {p['recorded']} of {p['planned']} planned evaluations "
                "are recorded, and the aim's verdict waits for the rest.")
    if t["reached"] is None:
        return (f"All {p['planned']} planned evaluations are recorded ({pools(summary)}); no aim candidate was "
                "planned and chosen, so there is no verdict.")
    missed = [f"{r['criterion']} {r['measured']['mean']:.3f} against {r['bound']:.3f}" for r in t["rows"]
              if r["reached"] is False]
    if t["reached"]:
        return f"The aim is reached by {t['chosen']}, chosen on validation only (caption proxy, {pools(summary)})."
    return (f"The aim is **not reached** by {t['chosen']}, chosen on validation only (caption proxy, "
            f"{pools(summary)}): {'; '.join(missed)}.")


def _mean(summary: dict, eval_set: str, cell: str, key: str) -> float | None:
    stat = ((summary.get(eval_set) or {}).get(cell) or {}).get(key)
    return None if stat is None else stat["mean"]


def _values(summary: dict, eval_set: str, key: str, cells) -> str:
    """``cell 0.123, cell 0.456`` for the recorded ones of ``cells``."""
    found = [(c, _mean(summary, eval_set, c, key)) for c in cells]
    return ", ".join(f"{c} {v:.3f}" for c, v in found if v is not None) or "not run"


def aim_answer(summary: dict) -> str:
    """Each criterion of the aim for the chosen candidate: measured, target, by how much it is missed, and the same
    metric for the zero-shot model and the Wikipedia-only cell beside it."""
    t = target(summary)
    if t["chosen"] is None:
        return "No aim candidate is chosen yet: the choice waits for the candidates' validation records.\n"
    lines = []
    for r in t["rows"]:
        eval_set, key, m, b = r["eval_set"], r["key"], r["measured"], r["bound"]
        if m is None or b is None:
            lines.append(f"- {r['criterion']}: not run yet.")
            continue
        gap = m["mean"] - b
        lines.append(f"- {r['criterion']}: {fmt_stat(m, key)} against {b:.3f}, "
                     + ("reached" if gap >= 0 else f"**missed by {-gap:.3f}**")
                     + f" ({_values(summary, eval_set, key, ['zero-shot', 'wiki-hybrid', t['chosen']])}).")
    verdict = {True: "reached", False: "not reached", None: "not measured yet"}[t["reached"]]
    return (f"The aim is {verdict} by **{t['chosen']}**, the candidate chosen on validation only (mean over "
            f"its seeds, caption proxy, {pools(summary)}):\n\n" + "\n".join(lines) + "\n")


def effect_answer(summary: dict, topic: str) -> str:
    """The effects of one topic in words: a − b, its noise band and verdict."""
    lines = []
    for e in (e for e in G.EFFECTS if e.topic == topic):
        r = effect_of(summary, e)
        measured = f"{r['diff']:+.3f}" + (f" (2 s.e. ±{r['noise']:.3f})" if "noise" in r else "") + ", " \
            if "diff" in r else ""
        lines.append(f"- {e.question}: {e.a} − {e.b} on {e.eval_set} {e.key}: {measured}{r['verdict']}.")
    return "\n".join(lines) + "\n"


def ceiling_answer(summary: dict) -> str:
    """How far jp→en R@10 (XTD10's one description language) went, beside the in-domain description measures of
    Multi30K task 2: another description of the same image in the same language (mono) and in the other (de→en)."""
    jp = {c: v for c in summary.get("xtd10") or {} if (v := _mean(summary, "xtd10", c, "to_en.recall_10@jp"))}
    desc = {c: v for c in summary.get("m30k-desc") or {} if (v := _mean(summary, "m30k-desc", c, "mono.recall_10"))}
    if not jp or not desc:
        return "Not run yet.\n"
    best, top = max(jp, key=jp.get), max(desc, key=desc.get)
    aim = G.TARGET["xtd10_to_en_recall_10"]["jp"]
    return (f"The highest jp→en R@10 of any recorded cell is {jp[best]:.3f} ({best}; zero-shot "
            f"{jp.get('zero-shot', float('nan')):.3f}; the aim asks {aim:.2f}); the same cell's ko→en R@10, "
            f"whose captions are translations, is {_mean(summary, 'xtd10', best, 'to_en.recall_10@ko'):.3f}. "
            "In domain, on Multi30K task 2 (Flickr images, 5 descriptions per language: a query has 4 relevant "
            "captions in its own language and 5 in the other, so R@10 there is the share of them in the top 10, "
            f"not one hit), the best cell there finds the other descriptions in the same language at mono R@10 "
            f"{desc[top]:.3f} ({top}; zero-shot {desc.get('zero-shot', float('nan')):.3f}) and the de→en ones at "
            f"{_mean(summary, 'm30k-desc', top, 'to_en.recall_10'):.3f}.\n")


def answers_block(summary: dict) -> str:
    """The study's answers in words, every number from the records: the aim, one part per effect topic
    (:data:`~hybrid_tevatron.studies.domain_grid.TOPICS`) and the jp→en ceiling."""
    p = progress(summary)
    head = "" if p["complete"] else (f"_In progress: {p['recorded']} of {p['planned']} planned evaluations are "
                                     "recorded; these answers hold for what is recorded so far._\n\n")
    parts = [head + "#### The aim\n\n" + aim_answer(summary)]
    parts += [f"#### {heading}\n\n" + effect_answer(summary, topic) for topic, heading in G.TOPICS.items()]
    parts.append("#### How far jp→en goes on this proxy\n\n" + ceiling_answer(summary))
    return "\n".join(parts)


REPLAY_COMMAND = "bash recipes/domain_adaptation.sh replay --run RUN --root /tmp/replay"


def replay_block(summary: dict) -> str:
    """Each recorded replay (``replay/RUN.json``, :mod:`hybrid_tevatron.studies.replay`) in words: where and at what
    code it ran against the records, the largest difference per set against the tolerance, the training's losses."""
    replays = summary["meta"].get("replays") or {}
    if not replays:
        return f"_Not replayed yet._ The command: `{REPLAY_COMMAND}`.\n"
    lines = []
    for run, r in replays.items():
        now, then = machine_name(r["machine"]), r["recorded"]["machines"]
        host, hosts = r["machine"].get("host", "unknown"), r["recorded"].get("hosts", ["unknown"])
        if then != [now] or (host != "unknown" and "unknown" not in hosts and host not in hosts):
            other = f"another machine than the records' ({', '.join(then)}; hosts {', '.join(hosts)})"
        elif host in hosts:
            other = "the machine that made the records"
        else:
            other = "a machine of the records' CPU model and cores (the records name no host)"
        where = f"on {now} (host {host}), {other}"
        code = ("the records' number-deciding code" if sorted(set(r["fingerprint"].values())) ==
                r["recorded"]["fingerprints"] else "number-deciding code changed since the records")
        commits = ", ".join(sorted({c[:12] for c in r["commit"].values()}))
        diffs = "; ".join(f"{s} {v['max_diff']:.1e} ({v['worst'][0]})" for s, v in r["by_set"].items())
        losses = ", ".join(f"{k} {a:.4f} recorded, {b:.4f} replayed" for k, (a, b) in r["train_losses"].items()
                           if a is not None and b is not None)
        verdict = "**equal to the records**" if r["equal"] else "**different from the records**: " + "; ".join(
            f"{s} {k} {a} recorded, {b} replayed" for s, v in r["by_set"].items() for k, a, b in v["differs"])
        lines.append(f"- `{run}`: retrained from its line in `commands.sh` and evaluated on "
                     f"{', '.join(r['sets'])} {where}, at commit {commits} ({code}), {r['finished']}. Largest "
                     f"difference per set: {diffs}; tolerance {r['tolerance']:g}: {verdict}. The training's losses: "
                     f"{losses or 'not compared'}.")
    return "\n".join(lines) + f"\n\nThe command: `{REPLAY_COMMAND}`.\n"


def readme_block(summary: dict) -> str:
    return verdict_sentence(summary) + " Tables, effects and the figure: " \
        "[docs/domain_adaptation.md](docs/domain_adaptation.md).\n"


FIGURE_CELLS = [c.name for c in G.CELLS if c.headline]  # the zero-shot model and the headline cells
FIGURE = "docs/img/domain-xtd10-to-en.png"  # written by `domain_study doc`; the doc links it as FIGURE_IN_DOC
FIGURE_IN_DOC = "img/domain-xtd10-to-en.png"


def figure(summary: dict, path: str) -> str | None:
    """X→en R@10 per XTD10 query language for the zero-shot model and the headline cells (mean over seeds, the
    seeds' range as a bar), jp and ko marked, the aim's 0.80 drawn; None when XTD10 has no record yet."""
    xtd = summary.get("xtd10") or {}
    cells = [c for c in FIGURE_CELLS if c in xtd]
    if not cells:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hybrid_tevatron.atomic import atomic_path

    langs = [x for x in G.XTD10_LANGUAGES if x != "en"]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(cells)
    for i, cell in enumerate(cells):
        stats = [xtd[cell].get(f"to_en.recall_10@{x}") for x in langs]
        xs = [j + (i - (len(cells) - 1) / 2) * width for j in range(len(langs))]
        means = [s["mean"] if s else float("nan") for s in stats]
        low = [s["mean"] - min(s["values"]) if s else 0 for s in stats]
        high = [max(s["values"]) - s["mean"] if s else 0 for s in stats]
        ax.bar(xs, means, width, yerr=[low, high], capsize=2, label=f"{cell} (n={stats[0]['n'] if stats[0] else 0})")
    aim = G.TARGET["xtd10_to_en_recall_10"]
    ax.axhline(min(aim.values()), color="black", linestyle="--", linewidth=1, label="aim for jp, ko (0.80)")
    for j, x in enumerate(langs):
        if x in aim:
            ax.axvspan(j - 0.45, j + 0.45, color="gold", alpha=0.25, zorder=0)
    ax.set_xticks(range(len(langs)), [f"{x}→en" + (" *" if x in aim else "") for x in langs])
    ax.set_ylim(0, 1)
    ax.set_ylabel("R@10 (caption proxy)")
    ax.set_title(f"XTD10 ({pools(summary)}): X→en R@10 per query language (caption proxy, not image retrieval; "
                 "* jp, ko: the aim's languages)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


TRANSLATION_KEYS = ["multi.map", "cross.map", "to_en.recall_10", "rank_distance"]  # the task-1 tables' columns
# what recipes/expected/domain_adaptation.yaml keeps: the columns of the doc's tables of the default test sets
EXPECTED_SELECT = (["xtd10/*/multi.map", "xtd10/*/multi.map@group:*", "xtd10/*/to_en.recall_10",
                    "xtd10/*/to_en.recall_10@*", "xtd10/*/rank_distance"]
                   + [f"m30k-desc/*/{k}" for k in G.EVAL_SET["m30k-desc"].keys]
                   + [f"m30k-2016/*/{k}" for k in TRANSLATION_KEYS]
                   + [f"xquad-r/*/{k}" for k in G.EVAL_SET["xquad-r"].keys])


BLOCKS = {
    "config": config_block, "hardware": hardware_block, "status": status_block, "target": target_block,
    "xtd10": lambda s: set_table(s, "xtd10", _xtd_keys()),
    "xtd10-languages": lambda s: set_table(s, "xtd10", [f"to_en.recall_10@{x}" for x in G.XTD10_LANGUAGES
                                                        if x != "en"]),
    "descriptions": lambda s: set_table(s, "m30k-desc", G.EVAL_SET["m30k-desc"].keys),
    "multi30k": lambda s: "\n".join(set_table(s, name, TRANSLATION_KEYS) for name in
                                    ("m30k-2016", "m30k-2018", "m30k-mscoco")
                                    if s.get(name) or G.EVAL_SET[name].default),
    "xquad-r": lambda s: set_table(s, "xquad-r", G.EVAL_SET["xquad-r"].keys),
    "effects": effects_table,
    "answers": answers_block,
    "replay": replay_block,
    "figure": lambda s: (f"![X→en R@10 per XTD10 language, caption proxy]({FIGURE_IN_DOC})\n" if s.get("xtd10") else
                         "_XTD10: not run yet._\n"),
}
README_BLOCKS = {"domain-study": readme_block}


def render(text: str, summary: dict, source: str) -> str:
    """``text`` with every generated block of docs/domain_adaptation.md recomputed from ``summary``."""
    return render_blocks(text, summary, source, BLOCKS)


def markdown(summary: dict) -> str:
    parts = [PROXY, "## Aim", target_block(summary), "## XTD10", BLOCKS["xtd10"](summary),
             BLOCKS["xtd10-languages"](summary), "## Multi30K descriptions (task 2)",
             BLOCKS["descriptions"](summary), "## Multi30K translations (task 1)", BLOCKS["multi30k"](summary),
             "## Held-out XQuAD-R", BLOCKS["xquad-r"](summary), "## Effects", effects_table(summary),
             "## Answers", answers_block(summary)]
    return "\n\n".join(parts) + "\n"
