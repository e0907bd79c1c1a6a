"""recipes/reproduce.sh end to end with the tiny model on real XQuAD-R / MLQA-R slices: every stage, the summary,
resuming, and refusing a different configuration in the same output folder (slow: several minutes on 2 cores)."""

import json
import os
import subprocess

import pytest
from helpers import REPO, recipe_env


def _run(out, env):
    return subprocess.run(["bash", os.path.join(REPO, "recipes", "reproduce.sh"), out], env=env,
                          capture_output=True, text=True, timeout=3000)


@pytest.mark.slow
def test_reproduce_small(tiny_model_dir, shared_data, tmp_path):
    out = str(tmp_path / "repro")
    env = recipe_env(MODEL=tiny_model_dir, SEEDS="1 2", REGIMES="mono hybrid", MLQA_SEEDS="1", STEPS="2",
                     BATCH="4", EVAL_EXTRA="--max_questions 6 --languages en,de,vi",
                     XQUAD_R=os.path.join(shared_data, "xquad-r"), MLQA_R=os.path.join(shared_data, "mlqa-r"))
    proc = _run(out, env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"summary: {out}/summary.json" in proc.stdout
    assert f"side by side (first seed): {out}/compare/mlqa-r" in proc.stdout
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert list(summary["xquad-r"]) == ["zero-shot", "mono", "hybrid"]
    assert summary["xquad-r"]["hybrid"]["multi.map"]["seeds"] == [1, 2]
    assert summary["mlqa-r"]["mono"]["mono.map"]["n"] == 1
    assert "multi.rank_distance@unseen" in summary["xquad-r"]["mono"]  # vi is unseen (in both datasets)
    assert json.load(open(os.path.join(out, "plan.json")))["mlqa-r"] == ["zero-shot", "mono-s1", "hybrid-s1"]
    assert not os.path.exists(os.path.join(out, "models"))  or not os.listdir(os.path.join(out, "models"))
    for d in ("xquad-r", "mlqa-r"):
        assert os.path.isfile(os.path.join(out, "compare", d, "compare.png"))
    stages = [line.split("\t")[0] for line in open(os.path.join(out, "timings.tsv"))]
    assert stages.count("train:mono-s1") == 1 and "eval:mlqa-r:hybrid-s1" in stages
    # resume: nothing is retrained or re-evaluated
    again = _run(out, env)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "mono-s2: done (results exist)" in again.stderr
    assert [line.split("\t")[0] for line in open(os.path.join(out, "timings.tsv"))] == stages
    # another configuration in the same folder is refused
    other = _run(out, dict(env, STEPS="3"))
    assert other.returncode == 2 and "holds results of another configuration" in other.stderr
