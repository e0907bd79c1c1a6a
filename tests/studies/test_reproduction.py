"""Aggregation of per-seed LAReQA results into summary.json and the generated blocks of docs/reproduction.md."""

import json
import math
import os

import pytest
from helpers import REPO

from hybrid_tevatron.errors import HybridTevatronError
from hybrid_tevatron.eval.reports.report import RESULTS_FORMAT
from hybrid_tevatron.studies import reproduction as rp
from hybrid_tevatron.studies.core import StudyError


def _results(mono, cross, multi, rd):
    """A results.json body in the evaluator's format (summary + seen/unseen), as evaluate.py writes it."""
    return {
        "format": RESULTS_FORMAT, "dataset": "xquad-r", "languages": ["en", "de", "el"],
        "summary": {"mono.map": mono, "cross.map": cross, "multi.map": multi, "rank_distance": rd,
                    "mono.recall_1": mono - 0.1, "cross.recall_1": cross - 0.1, "multi.recall_10": multi + 0.1},
        "seen_unseen": {
            "seen": ["en", "de"], "unseen": ["el"],
            "mono": {"seen": {"map": mono + 0.01}, "unseen": {"map": mono - 0.02}},
            "multi": {"seen": {"map": multi, "rank_distance": rd - 5},
                      "unseen": {"map": multi, "rank_distance": rd + 10}},
            "cross": {"seen→seen": {"map": cross, "pairs": 2}, "seen→unseen": {"map": cross - 0.05, "pairs": 2},
                      "unseen→seen": {"map": cross - 0.04, "pairs": 2}},
        },
    }


RUNS = {
    "zero-shot": _results(0.70, 0.50, 0.30, 500.0),
    "mono-s1": _results(0.80, 0.60, 0.40, 400.0),
    "mono-s2": _results(0.82, 0.62, 0.42, 390.0),
    "cross-s1": _results(0.75, 0.70, 0.50, 300.0),
    "cross-s2": _results(0.75, 0.71, 0.51, 302.0),
    "hybrid-s1": _results(0.81, 0.70, 0.50, 290.0),
    "hybrid-s2": _results(0.81, 0.69, 0.51, 288.0),
}


@pytest.fixture
def root(tmp_path):
    for i, (run, body) in enumerate(RUNS.items()):
        d = tmp_path / "eval" / "xquad-r" / run / ("results" if i % 2 else "")  # both layouts
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(body))
    (tmp_path / "eval" / "xquad-r" / "hybrid-s3").mkdir()  # started, no results yet: ignored
    (tmp_path / "config.json").write_text(json.dumps({"steps": 100, "batch": 16}))
    (tmp_path / "plan.json").write_text(json.dumps({"xquad-r": ["zero-shot", "mono-s1", "mono-s2", "hybrid-s3"],
                                                    "mlqa-r": ["zero-shot"]}))
    (tmp_path / "timings.tsv").write_text("train:mono-s1\t600\neval:xquad-r:mono-s1\t180\n")
    (tmp_path / "hardware.json").write_text(json.dumps({"cpu": "test cpu", "cores": 2}))
    return str(tmp_path)


def test_summarize_means_stds_and_breakdowns(root):
    s = rp.summarize(root)
    x = s["xquad-r"]
    assert list(x) == ["zero-shot", "mono", "cross", "hybrid"]
    m = x["mono"]["mono.map"]
    assert m["n"] == 2 and m["seeds"] == [1, 2] and m["mean"] == pytest.approx(0.81)
    assert m["std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert x["zero-shot"]["multi.map"] == {"mean": 0.30, "std": 0.0, "n": 1, "values": [0.30], "seeds": [None]}
    assert x["hybrid"]["multi.rank_distance@unseen"]["mean"] == pytest.approx(299.0)
    assert x["cross"]["cross.map@seen-unseen"]["mean"] == pytest.approx(0.655)
    assert "cross.pairs@seen-seen" not in x["cross"]
    assert s["meta"]["timings"][0] == {"stage": "train:mono-s1", "seconds": 600.0}


def test_claims_verdicts(root):
    s = rp.summarize(root)
    by = {(c["dataset"], c["metric"], c["a"], c["b"]): c for c in rp.claims(s)}
    # hybrid beats mono on cross mAP by 0.085 with tiny seed noise, as in the paper (+0.031)
    c = by[("xquad-r", "cross.map", "hybrid", "mono")]
    assert c["ours_diff"] == pytest.approx(0.085) and c["verdict"] == "holds"
    # rank distance: lower is better, hybrid 289 vs cross 301 -> holds
    assert by[("xquad-r", "rank_distance", "hybrid", "cross")]["verdict"] == "holds"
    # mono mAP: hybrid 0.81 vs mono 0.81 (seed std 0.014): within noise; the paper has hybrid +0.006
    assert by[("xquad-r", "mono.map", "hybrid", "mono")]["verdict"].endswith("(within noise)")
    # paper tie (multi mAP hybrid = cross = .593)
    assert by[("xquad-r", "multi.map", "hybrid", "cross")]["verdict"].startswith("paper: tie")
    assert by[("mlqa-r", "mono.map", "hybrid", "mono")]["verdict"] == "not run"


def test_doc_blocks_regenerated_and_prose_kept(root, tmp_path):
    s = rp.summarize(root)
    text = ("# Repro\n\nProse stays.\n\n<!-- BEGIN GENERATED: xquad-r -->\nold numbers\n"
            "<!-- END GENERATED: xquad-r -->\n"
            "\nMore prose.\n<!-- BEGIN GENERATED: status -->\n<!-- END GENERATED: status -->\n"
            "<!-- BEGIN GENERATED: mlqa-r -->\n<!-- END GENERATED: mlqa-r -->\n"
            "<!-- BEGIN GENERATED: hardware -->\n<!-- END GENERATED: hardware -->\n")
    out = rp.render_doc(text, s, "runs/reproduce/summary.json")
    assert "Prose stays." in out and "More prose." in out and "old numbers" not in out
    assert "| mono (n=2) | 0.810 ± 0.014 |" in out
    assert "| xquad-r | 3 of 4 | hybrid-s3 |" in out and "| mlqa-r | 0 of 1 | zero-shot |" in out
    assert "_No mlqa-r results yet: not run._" in out
    assert "- cpu: test cpu" in out and "13.0 min in all; sum of count × median: 13.0 min" in out
    assert "- train: 1×, median 10.0 min (range 10.0–10.0)" in out and "- eval:xquad-r: 1×, median 3.0 min" in out
    assert rp.render_doc(out, s, "runs/reproduce/summary.json") == out  # idempotent
    with pytest.raises(HybridTevatronError, match="unknown generated blocks: nope"):
        rp.render_doc("<!-- BEGIN GENERATED: nope -->\n<!-- END GENERATED: nope -->", s, "x")


def test_cli_summarize_and_doc(root, tmp_path, capsys):
    assert rp.main(["summarize", "--root", root]) == 0
    assert os.path.isfile(os.path.join(root, "summary.json")) and os.path.isfile(os.path.join(root, "summary.md"))
    assert "The paper's orderings" in capsys.readouterr().out
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- BEGIN GENERATED: claims -->\n<!-- END GENERATED: claims -->\n")
    assert rp.main(["doc", "--summary", os.path.join(root, "summary.json"), "--doc", str(doc)]) == 0
    assert "hybrid vs mono" in doc.read_text()
    with pytest.raises(StudyError, match="no evaluation results yet"):
        rp.summarize(str(tmp_path / "empty"))


def test_committed_doc_tables_match_the_committed_expected_scores():
    """docs/reproduction.md's generated results tables and recipes/expected/reproduce.yaml come from the same run:
    every expected row's mean is the number in its table cell (no drift between the two)."""
    import re

    import yaml

    with open(os.path.join(REPO, "recipes", "expected", "reproduce.yaml"), encoding="utf-8") as f:
        rows = yaml.safe_load(f)["rows"]
    with open(os.path.join(REPO, "docs", "reproduction.md"), encoding="utf-8") as f:
        doc = f.read()
    cells = {}
    for dataset in ("xquad-r", "mlqa-r"):
        block = re.search(rf"<!-- BEGIN GENERATED: {dataset} -->(.*?)<!-- END GENERATED: {dataset} -->", doc, re.S)
        assert block, dataset
        for line in block.group(1).splitlines():
            m = re.match(r"\| ([\w-]+) \(n=\d+\) \|(.*)\|$", line)
            if m:
                values = [c.strip().split(" ± ")[0] for c in m.group(2).split("|")]
                cells.update({(dataset, m.group(1), key): v for key, v in zip(rp.HEADLINE, values)})
    assert len(rows) == 56
    for row in rows:
        dataset, regime, key = row["id"].split("/")
        digits = 1 if "rank_distance" in key else 3
        # the doc rounds the run's mean to `digits`, the YAML to 4 decimals
        assert abs(float(cells[(dataset, regime, key)]) - row["expected"]) <= 0.5 * 10 ** -digits + 1e-4, row["id"]
