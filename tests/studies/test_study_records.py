"""The domain study's committed records (hybrid_tevatron/studies/record_folder.py): written atomically and read back,
a resume that skips exactly the recorded steps, refusals (another configuration or grid, changed number-deciding
code), the deadline, and the doc, figure and expected scores written from the records alone; then the committed
records of results/domain_adaptation against the committed doc, README and expected scores."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers import REPO, recipe_env

from hybrid_tevatron.studies.record_folder import NUMBER_FILES, PACKAGE_DIR, RecordError, RecordFolder

RECORDS = os.path.join(REPO, "results", "domain_adaptation")


def _results(folder, value=0.5, check=True):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"summary": {"multi.map": value, "rank_distance": 12.0}, "settings": {}}, f)
    if check:
        with open(os.path.join(folder, "crosscheck.json"), "w", encoding="utf-8") as f:
            json.dump({"max_abs_diff": 0.0}, f)
    return folder


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def test_records_are_written_atomically_and_read_back(tmp_path, caplog):
    out, rec = str(tmp_path / "out"), str(tmp_path / "rec")
    records = RecordFolder(rec, {out: "OUT", "/models/me5": "MODEL"})
    argv = ["python", "-m", "hybrid_tevatron.eval", "captions", "/models/me5", f"{out}/eval/xtd10/zero-shot",
            "--name", "a b"]
    records.record_eval("xtd10", "zero-shot", _results(str(tmp_path / "r1")), argv, 12.34)
    assert RecordFolder(rec).results("xtd10", "zero-shot")["summary"]["multi.map"] == 0.5
    assert _files(rec) == ["code/" + records.code("eval")["fingerprint"] + ".json", "commands.sh",
                           "eval/xtd10/zero-shot/crosscheck.json", "eval/xtd10/zero-shot/results.json",
                           "eval/xtd10/zero-shot/step.json", "timings.tsv"]  # no temporary file left
    step = json.load(open(os.path.join(rec, "eval", "xtd10", "zero-shot", "step.json"), encoding="utf-8"))
    line = 'python -m hybrid_tevatron.eval captions "$MODEL" "$OUT"/eval/xtd10/zero-shot --name \'a b\''
    assert step["command"] == line and open(os.path.join(rec, "commands.sh")).read().endswith(line + "\n")
    assert step["fingerprint"] == records.code("eval")["fingerprint"] and step["seconds"] == 12.3
    assert {"cpu", "cores", "gpu"} <= set(step["machine"]) and step["commit"]
    stage, seconds, machine = open(os.path.join(rec, "timings.tsv")).read().splitlines()[0].split("\t")
    assert (stage, seconds) == ("eval:xtd10:zero-shot", "12") and "cores" in machine
    # a training record keeps the training's summary
    records.record_train("wiki-hybrid-s1", {"global_step": 100, "final_loss_by_mode": {"mono": 0.1}}, argv, 60)
    assert RecordFolder(rec).training("wiki-hybrid-s1")["summary"]["global_step"] == 100
    # an evaluation that left no complete results is not recorded, and nothing is left half-written
    before = _files(rec)
    broken = _results(str(tmp_path / "r2"))
    open(os.path.join(broken, "results.json"), "w").close()
    with pytest.raises(RecordError, match="r2/results.json: the evaluation left no complete results"):
        records.record_eval("xtd10", "wiki-hybrid-s1", broken, argv, 1)
    assert _files(rec) == before
    # an unreadable or incomplete record is not done, and is said once
    for name, text in (("results.json", "{"), ("results.json", '{"summary": {}}'), ("step.json", "")):
        path = os.path.join(rec, "eval", "xtd10", "zero-shot", name)
        kept = open(path).read()
        open(path, "w").write(text)
        fresh = RecordFolder(rec)
        with caplog.at_level("INFO"):
            assert fresh.results("xtd10", "zero-shot") is None and not fresh.has_eval("xtd10", "zero-shot")
        assert caplog.text.count("zero-shot: incomplete or unreadable record (results.json / step.json); redone") == 1
        caplog.clear()
        open(path, "w").write(kept)


def test_a_headline_effect_within_noise_adds_one_seed(tmp_path):
    """Once every planned run is recorded, the trained cells of a headline effect within noise get one more seed
    (planned as the later seeds are); decided on the plan's own seeds, so recording the added runs changes nothing;
    none with SEEDS at the maximum."""
    from hybrid_tevatron.studies.domain_plan import added_seeds, plan

    cells = ["zero-shot", "desc-cross", "desc-hybrid"]
    base = plan([1, 2], cells, ["m30k-desc"])
    records = RecordFolder(str(tmp_path / "rec"))
    # desc-hybrid − desc-cross: multi.map apart beyond noise, cross.map within it
    values = {("desc-cross", 1): (0.20, 0.350), ("desc-cross", 2): (0.22, 0.356), ("desc-hybrid", 1): (0.35, 0.352),
              ("desc-hybrid", 2): (0.36, 0.354), ("zero-shot", None): (0.25, 0.30)}

    def record(cell, seed, multi=0.3, cross=0.3):
        folder = tmp_path / "res" / f"{cell}-{seed}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({"summary": {"multi.map": multi, "cross.map": cross}}))
        run = cell if seed is None else f"{cell}-s{seed}"
        records.record_eval("m30k-desc", run, str(folder), ["python", "-m", "x"], 1)

    for (cell, seed), (multi, cross) in list(values.items())[:-1]:
        record(cell, seed, multi, cross)
    assert added_seeds(records, base) == {}  # zero-shot not recorded yet
    record("zero-shot", None, *values[("zero-shot", None)])
    added = added_seeds(records, base)
    assert added == {"desc-cross": [3], "desc-hybrid": [3]}
    extended = plan([1, 2], cells, ["m30k-desc"], added)
    assert extended["added_seeds"] == added and extended["seeds"] == [1, 2]
    assert {"cell": "desc-hybrid", "seed": 3, "evals": ["m30k-desc"]} in extended["runs"]
    assert len(extended["runs"]) == len(base["runs"]) + 2
    record("desc-cross", 3, 0.5, 0.9)  # a third seed far off moves no decision
    assert added_seeds(records, base) == added
    assert added_seeds(records, plan([1, 2, 3], cells, ["m30k-desc"])) == {}


def test_another_configuration_or_grid_is_refused(tmp_path):
    rec = str(tmp_path / "rec")
    plan = {"runs": [{"cell": "zero-shot", "seed": None, "evals": ["xtd10"]},
                     {"cell": "wiki-hybrid", "seed": 1, "evals": ["xtd10", "xquad-r"]}],
            "grid": {"wiki-hybrid": {"sources": ["wiki"], "weights": [], "regime": "hybrid"}}}
    RecordFolder(rec).start({"steps": "100", "model": "~/m"}, plan)
    with pytest.raises(RecordError, match=r"records are of another configuration \(steps: '100' recorded, '3' now\)"):
        RecordFolder(rec).start({"steps": "3", "model": "~/m"}, plan)
    more = dict(plan, runs=plan["runs"] + [{"cell": "wiki-hybrid", "seed": 2, "evals": ["xtd10"]}])
    RecordFolder(rec).start({"steps": "100", "model": "~/m"}, more)  # more seeds extend the records
    assert json.load(open(os.path.join(rec, "plan.json")))["runs"] == more["runs"]
    for other, why in ((dict(more, runs=more["runs"][1:]), "run zero-shot is not planned now"),
                       (dict(more, runs=[more["runs"][0], dict(more["runs"][1], evals=["xtd10"])] + more["runs"][2:]),
                        "run wiki-hybrid-s1 no longer evaluates xquad-r"),
                       (dict(more, grid={"wiki-hybrid": {"sources": ["wiki"], "weights": [], "regime": "cross"}}),
                        "cell wiki-hybrid was")):
        with pytest.raises(RecordError, match=f"records are of another grid .*{why}"):
            RecordFolder(rec).start({"steps": "100", "model": "~/m"}, other)
    open(os.path.join(rec, "config.json"), "w").write("{")
    with pytest.raises(RecordError, match="config.json: unreadable"):
        RecordFolder(rec).start({"steps": "100", "model": "~/m"}, more)


def test_a_changed_number_deciding_file_is_refused_unless_accepted(tmp_path):
    package = str(tmp_path / "hybrid_tevatron")
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    rec = str(tmp_path / "rec")
    RecordFolder(rec, package_dir=package).record_eval("xtd10", "zero-shot", _results(str(tmp_path / "r")),
                                                       ["python"], 1)
    RecordFolder(rec, package_dir=package).record_train("wiki-hybrid-s1", {}, ["python"], 1)
    with open(os.path.join(package, "studies", "domain_tables.py"), "a") as f:
        f.write("# not a number-deciding file\n")
    RecordFolder(rec, package_dir=package).check_code()
    assert "eval/reports/metrics.py" in NUMBER_FILES["eval"]
    with open(os.path.join(package, "eval", "reports", "metrics.py"), "a") as f:
        f.write("# changed\n")
    with pytest.raises(RecordError, match=r"records made by other number-deciding code \(1 eval record\(s\) made at "
                                          r"\S+: eval/reports/metrics.py\); continue from a checkout of that "
                                          r"commit \(git worktree add ../study \S+\)"):
        RecordFolder(rec, package_dir=package).check_code()
    RecordFolder(rec, package_dir=package).check_code(accept=True)
    accepted = json.load(open(os.path.join(rec, "accepted.json")))
    assert [(a["kind"], a["records"]) for a in accepted] == [("eval", 1)]
    RecordFolder(rec, package_dir=package).check_code()  # accepted once, for this code
    with open(os.path.join(package, "sampling.py"), "a") as f:
        f.write("# changed\n")
    with pytest.raises(RecordError, match=r"1 train record\(s\) made at \S+: sampling.py"):
        RecordFolder(rec, package_dir=package).check_code()


# ------------------------------------------------------------------------------------------------- end to end

def _study(repo, env, *args, module="hybrid_tevatron.studies.domain_study"):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=900)


def _stages(rec):
    path = os.path.join(rec, "timings.tsv")
    return [line.split("\t")[0] for line in open(path)] if os.path.exists(path) else []


def test_study_resumes_from_records_in_a_temporary_repository(tiny_model_dir, shared_data, tmp_path):
    """The real study commands, a tiny model and a quick configuration, on a copy of the package in a temporary git
    repository (so that a commit can change a number-deciding file)."""
    repo = str(tmp_path / "repo")
    shutil.copytree(PACKAGE_DIR, os.path.join(repo, "hybrid_tevatron"), ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("docs/domain_adaptation.md", "README.md"):
        os.makedirs(os.path.dirname(os.path.join(repo, name)), exist_ok=True)
        shutil.copy(os.path.join(REPO, name), os.path.join(repo, name))
    git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", repo], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], check=True)
    out, rec = str(tmp_path / "out"), str(tmp_path / "rec")
    env = recipe_env(PYTHONPATH=repo, MODEL=tiny_model_dir, SEEDS="1", CELLS="zero-shot wiki-hybrid", STEPS="2",
                     BATCH="4", EVAL_SETS="xtd10", EVAL_IMAGES="8", EVAL_LANGUAGES="en de",
                     XQUAD_R=os.path.join(shared_data, "xquad-r"), MULTI30K=os.path.join(shared_data, "multi30k"),
                     XTD10=os.path.join(shared_data, "xtd10"),
                     MULTI30K_TASK2=os.path.join(shared_data, "multi30k-task2"))
    run = ["run", "--root", out, "--records", rec]
    # a deadline that fits no step: nothing starts, exit 0 with the line that says what is left
    first = _study(repo, env, *run, "--stop_after", "0.01")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "deadline: 0 of 3 planned steps recorded" in first.stdout and "left: 1 trainings and 2 evaluations" in \
        first.stdout and f"continue with: bash recipes/domain_adaptation.sh {out} --stop_after MINUTES" in first.stdout
    assert _stages(rec) == [] and sorted(os.listdir(rec)) == ["config.json", "plan.json"]
    whole = _study(repo, env, *run)
    assert whole.returncode == 0, whole.stderr[-3000:]
    stages = ["eval:xtd10:zero-shot", "train:wiki-hybrid-s1", "eval:xtd10:wiki-hybrid-s1"]
    assert _stages(rec) == stages and os.path.isfile(os.path.join(out, "summary.json"))
    train = json.load(open(os.path.join(rec, "train", "wiki-hybrid-s1.json")))
    assert train["summary"]["global_step"] == 2 and train["summary"]["examples"] == 8
    assert '--output_dir "$OUT"/models/wiki-hybrid-s1' in train["step"]["command"]
    assert train["step"]["commit"].split("+")[0] == subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True,
                                                                   text=True).stdout.strip()
    # another machine: a fresh root; every recorded step is skipped, the summary comes from the records
    shutil.rmtree(out)
    again = _study(repo, env, *run)
    assert again.returncode == 0 and _stages(rec) == stages, again.stderr[-3000:]
    assert "wiki-hybrid-s1: done (recorded in" in again.stderr and not os.path.isdir(os.path.join(out, "models"))
    # a replay of the trained run from its recorded lines, into another root: a tampered record differs, by name;
    # the true one is equal, and its outcome goes into the records
    replay = ["--run", "wiki-hybrid-s1", "--root", str(tmp_path / "replay"), "--records", rec, "--sets", "xtd10"]
    recorded = os.path.join(rec, "eval", "xtd10", "wiki-hybrid-s1", "results.json")
    true = open(recorded, encoding="utf-8").read()
    tampered = json.loads(true)
    tampered["summary"]["multi.map"] += 0.01
    open(recorded, "w", encoding="utf-8").write(json.dumps(tampered))
    differs = _study(repo, env, *replay, module="hybrid_tevatron.studies.replay")
    assert differs.returncode == 2 and "Traceback" not in differs.stderr, differs.stderr[-3000:]
    assert "error: replay of wiki-hybrid-s1 differs from the records beyond 0.001: xtd10 multi.map: " in differs.stderr
    open(recorded, "w", encoding="utf-8").write(true)
    equal = _study(repo, env, *replay, module="hybrid_tevatron.studies.replay")
    assert equal.returncode == 0 and "replay of wiki-hybrid-s1 equals the records to 0.001 on " in equal.stdout, \
        equal.stderr[-3000:]
    outcome = json.load(open(os.path.join(rec, "replay", "wiki-hybrid-s1.json")))
    assert outcome["equal"] and outcome["sets"] == ["xtd10"] and outcome["by_set"]["xtd10"]["max_diff"] <= 1e-3
    assert _stages(rec) == stages  # a replay records no step
    other_model = _study(repo, dict(env, MODEL=str(tmp_path)), *replay, module="hybrid_tevatron.studies.replay")
    assert other_model.returncode == 2 and "this replay's settings are not the records' (model: " in \
        other_model.stderr, other_model.stderr[-3000:]
    # an unreadable record: that step alone is redone, with one line
    open(os.path.join(rec, "eval", "xtd10", "zero-shot", "results.json"), "w").write("{")
    redo = _study(repo, env, *run)
    assert redo.returncode == 0 and _stages(rec) == stages + ["eval:xtd10:zero-shot"], redo.stderr[-3000:]
    assert "zero-shot: incomplete or unreadable record (results.json / step.json); redone" in redo.stderr
    # another configuration is refused by name
    other = _study(repo, dict(env, STEPS="3"), "run", "--root", str(tmp_path / "out2"), "--records", rec)
    assert other.returncode == 2 and "another configuration (steps: '2' recorded, '3' now)" in other.stderr
    # a committed change to a number-deciding file: refused, naming it; accepted by the flag, into the records
    with open(os.path.join(repo, "hybrid_tevatron", "eval", "reports", "metrics.py"), "a") as f:
        f.write("# a change\n")
    subprocess.run([*git, "commit", "-qam", "change"], check=True)
    changed = _study(repo, env, *run)
    assert changed.returncode == 2 and "eval/reports/metrics.py" in changed.stderr, changed.stderr[-3000:]
    assert "--accept_changed_code" in changed.stderr and "Traceback" not in changed.stderr
    taken = _study(repo, env, *run, "--accept_changed_code")
    assert taken.returncode == 0 and _stages(rec) == stages + ["eval:xtd10:zero-shot"], taken.stderr[-3000:]
    assert json.load(open(os.path.join(rec, "accepted.json")))[0]["records"] == 2
    # the doc, the README block, the figure and the expected scores from the records alone
    shutil.rmtree(out)
    docs = _study(repo, env, "doc", "--records", rec, "--figure", str(tmp_path / "fig.png"), "--expected",
                  str(tmp_path / "expected.yaml"))
    assert docs.returncode == 0, docs.stderr[-3000:]
    doc = open(os.path.join(repo, "docs", "domain_adaptation.md"), encoding="utf-8").read()
    readme = open(os.path.join(repo, "README.md"), encoding="utf-8").read()
    value = json.load(open(os.path.join(rec, "eval", "xtd10", "wiki-hybrid-s1", "results.json")))["summary"]
    row = [line for line in doc.splitlines() if line.startswith("| wiki-hybrid (Wikipedia, hybrid) n=1 |")][0]
    assert f"| {value['multi.map']:.3f} |" in row and f"<!-- from {rec} -->" in doc
    assert "All 2 planned evaluations are recorded." in doc
    assert "- `wiki-hybrid-s1`: retrained from its line in `commands.sh` and evaluated on xtd10 on " in doc
    assert "tolerance 0.001: **equal to the records**" in doc
    assert "All 2 planned evaluations are recorded (caption pools of the first 8 images); no aim candidate" in readme
    assert open(tmp_path / "fig.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    rows = yaml.safe_load(open(tmp_path / "expected.yaml"))["rows"]
    assert {"id": "xtd10/wiki-hybrid/multi.map", "expected": round(value["multi.map"], 4)}.items() <= \
        next(r for r in rows if r["id"] == "xtd10/wiki-hybrid/multi.map").items()


# ------------------------------------------------------------------------------------------ the committed records

def _committed_summary():
    from hybrid_tevatron.studies.domain_summary import summarize

    if not os.path.isfile(os.path.join(RECORDS, "plan.json")):
        pytest.skip("no committed records of the domain study")
    return summarize(RecordFolder(RECORDS))


def test_committed_doc_and_readme_are_the_committed_records():
    """docs/domain_adaptation.md's and README.md's generated blocks equal what the committed records give."""
    from hybrid_tevatron.studies.domain_tables import BLOCKS, README_BLOCKS
    from hybrid_tevatron.studies.records import render_blocks

    summary = _committed_summary()
    for name, blocks in (("docs/domain_adaptation.md", BLOCKS), ("README.md", README_BLOCKS)):
        text = open(os.path.join(REPO, name), encoding="utf-8").read()
        assert render_blocks(text, summary, "results/domain_adaptation", blocks) == text, \
            f"{name}: run python -m hybrid_tevatron.studies.domain_study doc"


def test_committed_expected_scores_pass_on_the_committed_records():
    from hybrid_tevatron.studies.check_expected import check, load_expected
    from hybrid_tevatron.studies.domain_tables import progress

    summary = _committed_summary()
    expected = os.path.join(REPO, "recipes", "expected", "domain_adaptation.yaml")
    p = progress(summary)
    if not p["complete"]:
        assert not os.path.exists(expected), "expected scores of an incomplete study"
        pytest.skip(f"the domain study's records are not complete yet ({p['recorded']} of {p['planned']} planned "
                    "evaluations recorded)")
    rows = check(load_expected(expected), summary)
    assert rows and all(r["status"] == "OK" for r in rows), [r for r in rows if r["status"] != "OK"]
    # the recipe checks a study root against them: its config.json (settings and plan) must be the expected's
    from hybrid_tevatron.studies.domain_study import run_config

    assert load_expected(expected)["meta"]["config"] == run_config(summary["meta"]["config"], summary["meta"]["plan"])


def test_committed_zero_shot_xtd10_equals_docs_evaluation():
    """The records' zero-shot whole-XTD10 row is the whole-pool zero-shot figure of docs/evaluation.md."""
    import re

    summary = _committed_summary()
    zero = (summary.get("xtd10") or {}).get("zero-shot")
    if not zero:
        pytest.skip("zero-shot XTD10 not recorded yet")
    text = open(os.path.join(REPO, "docs", "evaluation.md"), encoding="utf-8").read()
    m = re.search(r"scored multilingual mAP ([0-9.]+), X→en R@10 ([0-9.]+), jp→en\s+R@10 ([0-9.]+)", text)
    assert m, "docs/evaluation.md: the whole-XTD10 zero-shot sentence moved"
    for key, doc_value in zip(("multi.map", "to_en.recall_10", "to_en.recall_10@jp"), m.groups()):
        assert f"{zero[key]['mean']:.3f}" == doc_value, key
