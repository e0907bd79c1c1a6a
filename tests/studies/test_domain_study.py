"""recipes/domain_adaptation.sh end to end at a tiny scale (tiny model, 2 steps, 1 seed, 20 images, 6 questions,
en/de/fr/ko) on the real data: a reduced grid (CELLS) with a degenerate cell, a description source and both aim
candidates, the choice on the validation sets, the summary and its tables, resuming, and refusing another
configuration in the same folder (slow: about 8 minutes on 2 shared cores)."""

import json
import os
import subprocess

import pytest
from helpers import REPO, recipe_env

from hybrid_tevatron.studies import domain_grid as G
from hybrid_tevatron.studies.domain_plan import plan
from hybrid_tevatron.studies.domain_study import StudyError
from hybrid_tevatron.studies.domain_tables import effect, render

CELLS = "wiki-hybrid flickr-mono wikiflickr-hybrid wikidesc-hybrid wikiflickrdesc-hybrid"


def _run(out, env):
    return subprocess.run(["bash", os.path.join(REPO, "recipes", "domain_adaptation.sh"), out], env=env,
                          capture_output=True, text=True, timeout=1800)


def test_plan_of_the_full_grid():
    p = plan([1, 2, 3])
    runs = {(r["cell"], r["seed"]): r["evals"] for r in p["runs"]}
    assert ("zero-shot", None) in runs and ("wiki-hybrid", 3) in runs and ("desc-mono", 2) not in runs
    assert runs[("wiki-hybrid", 2)] == ["xtd10", "m30k-desc", "xquad-r"] and runs[("desc-hybrid", 3)] == [
        "xtd10", "m30k-desc"]
    assert not [c for c in G.CELLS if c.degenerate and any(r["cell"] == c.name for r in p["runs"])]
    # whole default test sets; XQuAD-R only where Wikipedia is trained on (or the base model)
    assert p["test_sets"] == ["xtd10", "m30k-desc", "m30k-2016", "xquad-r"]
    assert runs[("zero-shot", None)] == p["test_sets"] and "xquad-r" not in runs[("desc-cross", 1)]
    # validation: the candidates on the three val sets (both caption relations and Wikipedia), the guard's
    # reference on wiki-val, nobody else
    assert p["candidates"] == ["wikiflickr-hybrid", "wikidesc-hybrid", "wikiflickrdesc-hybrid"]
    assert runs[("wikiflickrdesc-hybrid", 1)][-3:] == ["m30k-val", "m30k-desc-val", "wiki-val"]
    assert runs[("wiki-hybrid", 1)][-1] == "wiki-val" and ("wikiflickrdesc-hybrid", 3) in runs
    assert all("val" not in s for (cell, seed), evals in runs.items() for s in evals
               if seed not in (None, 1) or cell not in ("wiki-hybrid", *p["candidates"]))
    assert p["grid"]["wikiflickrdesc-hybrid"] == {"sources": ["wiki", "flickr", "desc"], "weights": [2, 1, 1],
                                                  "regime": "hybrid"}
    assert plan([1], ["desc-cross"])["runs"] == [{"cell": "desc-cross", "seed": 1,
                                                  "evals": ["xtd10", "m30k-desc", "m30k-2016"]}]
    with pytest.raises(StudyError, match="unknown cells or test sets"):
        plan([1], sets=["m30k-val"])  # a validation set is never a test set


def test_estimate_counts_whole_pools():
    from hybrid_tevatron.studies.domain_plan import estimate, eval_minutes

    whole = estimate(plan([1, 2]), None, None)
    assert whole["train_runs"] == 15 and whole["total_min"] == pytest.approx(whole["train_min"] + whole["eval_min"])
    assert eval_minutes("xtd10", None, None) == pytest.approx(0.2 + 22000 / 5200)
    assert eval_minutes("m30k-desc", 100, None) == pytest.approx(0.2 + 2000 / 5200)  # 5 descriptions a language
    assert estimate(plan([1, 2]), 120, 60)["eval_min"] < whole["eval_min"] / 4


def test_effect_verdicts():
    one = {"mean": 0.5, "std": 0.0, "n": 1}
    three = {"mean": 0.6, "std": 0.01, "n": 3}
    assert effect(three, one)["verdict"] == "higher beyond noise"
    assert effect(one, one)["verdict"] == "one seed each: no noise estimate"
    assert effect(dict(three, mean=0.49), dict(one, std=0.1, n=3))["verdict"] == "within noise"
    assert effect(None, one)["verdict"] == "not run"


def _stat(mean, n=2, std=0.01):
    return {"mean": mean, "std": std, "n": n, "values": [mean] * n, "seeds": list(range(1, n + 1))}


def test_answers_say_by_how_much_the_aim_is_missed_and_what_moved_it():
    """The answers block in words from a summary: each criterion against its bound with the zero-shot and
    Wikipedia-only values beside it, the effects of each topic, and the jp→en ceiling beside task-2 mono."""
    from hybrid_tevatron.studies.domain_tables import answers_block

    chosen = "wikiflickrdesc-hybrid"
    runs = [{"cell": c, "seed": 1, "evals": ["xtd10"]} for c in ("zero-shot", "wiki-hybrid", chosen)]
    summary = {"meta": {"choice": {"chosen": chosen}, "plan": {"runs": runs}, "config": {}},
               "xtd10": {"zero-shot": {"multi.map": _stat(0.2, 1), "to_en.recall_10@jp": _stat(0.6, 1),
                                       "to_en.recall_10@ko": _stat(0.88, 1)},
                         "wiki-hybrid": {"multi.map": _stat(0.48), "to_en.recall_10@jp": _stat(0.62),
                                         "to_en.recall_10@ko": _stat(0.92)},
                         chosen: {"multi.map": _stat(0.62), "to_en.recall_10@jp": _stat(0.7),
                                  "to_en.recall_10@ko": _stat(0.9)}},
               "xquad-r": {"wiki-hybrid": {"multi.map": _stat(0.615)}, chosen: {"multi.map": _stat(0.6)}},
               "m30k-desc": {"zero-shot": {"mono.recall_10": _stat(0.52, 1), "to_en.recall_10": _stat(0.41, 1)},
                             "desc-mono": {"mono.recall_10": _stat(0.56, 1), "to_en.recall_10": _stat(0.44, 1)}}}
    text = answers_block(summary)
    assert "The aim is not reached by **wikiflickrdesc-hybrid**" in text
    assert ("- XTD10 multilingual-pool mAP: 0.620 ± 0.010 against 0.600, reached (zero-shot 0.200, wiki-hybrid "
            "0.480, wikiflickrdesc-hybrid 0.620).") in text
    assert "- XTD10 jp→en R@10: 0.700 ± 0.010 against 0.800, **missed by 0.100** (zero-shot 0.600," in text
    assert ("- held-out XQuAD-R multi mAP (wiki-hybrid − 0.01): 0.600 ± 0.010 against 0.605, **missed by 0.005**"
            in text)
    assert "wiki-hybrid − zero-shot on xtd10 multi.map: +0.280 (2 s.e. ±0.024), higher beyond noise." in text
    assert "wikiflickr-hybrid − wiki-hybrid on xquad-r multi.map: not run." in text
    assert "The highest jp→en R@10 of any recorded cell is 0.700 (wikiflickrdesc-hybrid; zero-shot 0.600" in text
    assert "ko→en R@10, whose captions are translations, is 0.900" in text
    assert "mono R@10 0.560 (desc-mono; zero-shot 0.520) and the de→en ones at 0.440" in text
    assert text.startswith("#### The aim")  # every planned evaluation recorded: no "in progress" line


def test_a_data_folder_setting_is_required(tmp_path, monkeypatch):
    """``run`` takes its data folders from the settings only (the recipe gives ../shared/data beside the checkout);
    a missing one is an error naming it."""
    from hybrid_tevatron.studies.domain_study import run

    for name in ("XTD10", "MULTI30K", "MULTI30K_TASK2", "XQUAD_R"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("MODEL", "m")
    monkeypatch.delenv("MULTI30K_TASK2")
    with pytest.raises(StudyError, match=r"^MULTI30K_TASK2 is not set: the multi30k-task2 data folder \(bash "
                                         r"recipes/domain_adaptation.sh sets it to ../shared/data/multi30k-task2"):
        run(str(tmp_path / "da"), str(tmp_path / "records"))
    assert not (tmp_path / "da").exists()


def test_the_recipe_gives_the_data_folders_beside_the_checkout(tmp_path):
    """recipes/domain_adaptation.sh sets each unset data folder to ../shared/data/NAME beside the checkout (the
    study itself has no default); a given one is kept."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\ncase "$*" in *domain_study*) env;; *lareqa_release*) echo /x;; *) echo m;; esac\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("XTD10", "MULTI30K", "MULTI30K_TASK2")}
    proc = subprocess.run(["bash", os.path.join(REPO, "recipes", "domain_adaptation.sh"), str(tmp_path / "da")],
                          env={**env, "PYTHON": str(fake), "MODEL": "m", "MULTI30K": "/given"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    shared = os.path.join(os.path.dirname(REPO), "shared", "data")
    lines = proc.stdout.splitlines()
    assert f"XTD10={shared}/xtd10" in lines and f"MULTI30K_TASK2={shared}/multi30k-task2" in lines
    assert "MULTI30K=/given" in lines and "XQUAD_R=/x" in lines


def test_the_recipe_replays_a_run_with_the_same_defaults(tmp_path):
    """``domain_adaptation.sh replay ...`` runs the replay on the checkout's records, with the data folders set as
    for the study."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\ncase "$*" in *studies.replay*) echo "$*"; env;; *lareqa_release*) echo /x;; '
                    '*) echo m;; esac\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("XTD10", "MULTI30K", "MULTI30K_TASK2", "RECORDS")}
    proc = subprocess.run(["bash", os.path.join(REPO, "recipes", "domain_adaptation.sh"), "replay", "--run",
                           "wiki-hybrid-s1", "--root", str(tmp_path / "replay")],
                          env={**env, "PYTHON": str(fake), "MODEL": "m"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    records = os.path.join(REPO, "results", "domain_adaptation")
    assert [line for line in lines if "studies.replay" in line] == [
        f"-m hybrid_tevatron.studies.replay --records {records} --run wiki-hybrid-s1 --root {tmp_path / 'replay'}"]
    shared = os.path.join(os.path.dirname(REPO), "shared", "data")
    assert f"XTD10={shared}/xtd10" in lines and "XQUAD_R=/x" in lines and not (tmp_path / "replay").exists()


@pytest.mark.slow
def test_domain_study_small(tiny_model_dir, shared_data, tmp_path):
    out = str(tmp_path / "da")
    env = recipe_env(MODEL=tiny_model_dir, SEEDS="1", CELLS=CELLS, STEPS="2", BATCH="4",
                     EVAL_SETS="xtd10 m30k-desc xquad-r", EVAL_IMAGES="20", EVAL_QUESTIONS="6",
                     EVAL_LANGUAGES="en de fr ko", FLICKR_IMAGES="40", XQUAD_R=os.path.join(shared_data, "xquad-r"),
                     MULTI30K=os.path.join(shared_data, "multi30k"), XTD10=os.path.join(shared_data, "xtd10"),
                     MULTI30K_TASK2=os.path.join(shared_data, "multi30k-task2"), RECORDS=str(tmp_path / "records"))
    proc = _run(out, env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.load(open(os.path.join(out, "summary.json"), encoding="utf-8"))
    choice = json.load(open(os.path.join(tmp_path, "records", "choice.json"), encoding="utf-8"))
    candidates = ["wikiflickr-hybrid", "wikidesc-hybrid", "wikiflickrdesc-hybrid"]
    assert choice["chosen"] in candidates and list(choice["scores"]) == candidates
    assert choice["by"] == "mean of m30k-val multi.map, m30k-desc-val multi.map"
    assert choice["guard"] == "wiki-val multi.map >= wiki-hybrid - 0.01"
    by = choice["scores_by_set"]
    assert choice["scores"] == {c: pytest.approx((by["m30k-val multi.map"][c] + by["m30k-desc-val multi.map"][c]) / 2)
                                for c in candidates}
    ref = summary["wiki-val"]["wiki-hybrid"]["multi.map"]["mean"]
    assert choice["guard_bound"] == pytest.approx(ref - 0.01, abs=1e-9)
    assert choice["within_guard"] == {c: choice["guard_scores"][c] >= choice["guard_bound"] for c in candidates}
    best = max(candidates, key=lambda c: (choice["within_guard"][c], choice["scores"][c], -candidates.index(c)))
    assert choice["chosen"] == best
    assert list(summary["xtd10"]) == ["wiki-hybrid", *candidates] and list(summary["m30k-val"]) == candidates
    assert list(summary["m30k-desc-val"]) == candidates
    assert list(summary["wiki-val"]) == ["wiki-hybrid", *candidates]
    assert summary["cells"]["flickr-mono"]["status"].startswith("not possible (degenerate)")
    assert summary["cells"][choice["chosen"]]["status"] == "chosen aim candidate"
    xtd = summary["xtd10"]["wiki-hybrid"]
    assert xtd["multi.map"]["seeds"] == [1] and {"to_en.recall_10@ko", "multi.map@group:flickr",
                                                 "to_en.recall_10@group:unseen"} <= set(xtd)
    assert {"mono.map", "cross.map", "multi.map"} <= set(summary["m30k-desc"]["wikidesc-hybrid"])
    assert "mono.map" in summary["xquad-r"]["wiki-hybrid"]
    assert not os.listdir(os.path.join(out, "models"))  # every model deleted once evaluated
    commands = open(os.path.join(out, "commands.sh"), encoding="utf-8").read()
    assert "--cross_only_sources flickr" in commands and "--source_weights wiki=1,flickr=1" in commands
    assert "--source_weights wiki=1,desc=1" in commands and "--cross_only_sources desc" not in commands
    assert "--source_weights wiki=2,flickr=1,desc=1" in commands
    assert "captions train --multi30k_task2" in commands and "xquad_train" in commands and "--val_every 8" in commands
    assert f"--model_name_or_path {tiny_model_dir}" in commands
    md = open(os.path.join(out, "summary.md"), encoding="utf-8").read()
    assert "caption proxy" in md and "not image retrieval" in md and "not possible (degenerate)" in md
    assert "relation: description" in md
    doc = render(open(os.path.join(REPO, "docs", "domain_adaptation.md"), encoding="utf-8").read(), summary, "S")
    assert "Chosen on validation only" in doc and ("The aim as a whole: **not reached** (caption proxy). Measured on "
                                                  "pools of the first 20 images") in doc
    stages = [line.split("\t")[0] for line in open(os.path.join(out, "timings.tsv"))]
    assert stages.count("train:wiki-hybrid-s1") == 1 and "eval:wiki-val:wiki-hybrid-s1" in stages
    # a second run resumes (nothing retrained or re-evaluated); a third, with another STEPS, is refused
    again, other_run = _run(out, env), _run(out, dict(env, STEPS="3"))
    assert again.returncode == 0 and "wiki-hybrid-s1: done (recorded in" in again.stderr, again.stderr[-4000:]
    assert [line.split("\t")[0] for line in open(os.path.join(out, "timings.tsv"))] == stages
    assert other_run.returncode == 2 and "holds results of another configuration" in other_run.stderr


def test_committed_doc_tables_match_the_committed_expected_scores():
    """docs/domain_adaptation.md's generated tables and recipes/expected/domain_adaptation.yaml come from the same
    run: every expected row's mean is the number in its table cell (no drift between the two)."""
    import re

    import yaml

    from hybrid_tevatron.studies.domain_tables import TITLES

    expected = os.path.join(REPO, "recipes", "expected", "domain_adaptation.yaml")
    if not os.path.exists(expected):  # written from the records once they are complete (test_study_records.py)
        pytest.skip("no expected scores committed: the domain study's records are not complete yet")
    with open(expected, encoding="utf-8") as f:
        rows = yaml.safe_load(f)["rows"]
    with open(os.path.join(REPO, "docs", "domain_adaptation.md"), encoding="utf-8") as f:
        doc = f.read()
    titles = {es.title: es.name for es in G.EVAL_SETS}
    cells, eval_set, header = {}, None, None
    tables = r"<!-- BEGIN GENERATED: (?:xtd10|xtd10-languages|descriptions|multi30k|xquad-r) -->(.*?)<!-- END"
    for block in re.findall(tables, doc, re.S):
        for line in block.splitlines():
            title = line.split(" — ")[0].rstrip(":")
            if title in titles:
                eval_set, header = titles[title], None
            elif line.startswith("| ") and header is None:
                header = [c.strip() for c in line.strip("|").split("|")]
            elif line.startswith("| "):
                values = [c.strip().split(" ± ")[0] for c in line.strip("|").split("|")]
                cells.update({(eval_set, values[0].split()[0], h): v for h, v in zip(header[1:], values[1:])})
    assert len(rows) >= 60
    for row in rows:
        eval_set, cell, key = row["id"].split("/")
        digits = 1 if "rank_distance" in key else 3
        # the doc rounds the run's mean to `digits`, the YAML to 4 decimals
        measured = float(cells[(eval_set, cell, TITLES[key])])
        assert abs(measured - row["expected"]) <= 0.5 * 10 ** -digits + 1e-4, row["id"]
