"""Caption pools through the one evaluation program (python -m hybrid_tevatron.eval captions), for real: XTD10's
files, a tiny model, Pyserini's encoder/search CLIs, Faiss and trec_eval. A caption proxy, not image retrieval."""

import json
import os
import subprocess
import sys

import pytest
from helpers import recipe_env

from hybrid_tevatron.eval import trec as T
from hybrid_tevatron.eval.reports import metrics as M

LANGS = ["en", "de", "jp"]
IMAGES = 40


def run_captions(model, out, *args):
    return subprocess.run([sys.executable, "-m", "hybrid_tevatron.eval", "captions", str(model), str(out), *args],
                          capture_output=True, text=True, env=recipe_env(), timeout=600)


@pytest.fixture(scope="module")
def xtd_eval(tiny_model_dir, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("captions") / "xtd"
    proc = run_captions(tiny_model_dir, out, "--xtd10", os.path.join(shared_data, "xtd10"), "--languages",
                        *LANGS, "--max_images", str(IMAGES), "--pooling", "mean", "--normalize",
                        "--seen_languages", "en de")
    return proc, str(out)


def test_caption_pool_end_to_end(xtd_eval):
    proc, out = xtd_eval
    assert proc.returncode == 0, proc.stderr[-4000:]
    manifest = json.load(open(os.path.join(out, "inputs", "manifest.json"), encoding="utf-8"))
    assert manifest["counts"]["images"] == IMAGES and manifest["languages"] == LANGS
    searches = {s["name"]: s for s in manifest["searches"]}
    assert set(searches) == {f"cross.{x}-{y}" for x in LANGS for y in LANGS if x != y} | {f"multi.{x}" for x in LANGS}
    results = json.load(open(os.path.join(out, "results", "results.json"), encoding="utf-8"))
    s = results["summary"]
    assert "mono.map" not in s and 0 < s["cross.map"] <= 1 and 0 < s["multi.map"] <= 1 and s["rank_distance"] > 0
    # X->en, the caption proxy of text->image: the macro over de and jp of their cross runs into en
    pairs = results["settings"]["cross"]["per_pair"]
    assert s["to_en.map"] == pytest.approx((pairs["de-en"]["map"] + pairs["jp-en"]["map"]) / 2)
    assert set(results["seen_unseen"]["multi"]) == {"seen", "unseen"}
    md = open(os.path.join(out, "results", "results.md"), encoding="utf-8").read()
    assert "caption proxy" in md and "not image retrieval" in md and "## X→en" in md
    assert json.load(open(os.path.join(out, "results", "crosscheck.json"), encoding="utf-8"))["agrees"]
    commands = open(os.path.join(out, "commands.sh"), encoding="utf-8").read()
    assert "python -m hybrid_tevatron.data.captions pool --output_dir inputs --xtd10" in commands
    assert "--exclude" not in commands  # the exclusion is applied to the ranks and runs, not a Pyserini flag


def test_multi_runs_never_hold_the_querys_own_caption(xtd_eval):
    proc, out = xtd_eval
    assert proc.returncode == 0, proc.stderr[-4000:]
    for x in LANGS:
        own = dict(line.split() for line in open(os.path.join(out, "inputs", "exclude", f"multi.{x}.txt")))
        assert len(own) == IMAGES
        with open(os.path.join(out, "runs", f"multi.{x}.trec"), encoding="utf-8") as f:
            assert not [line for line in f if own.get(line.split()[0]) == line.split()[2]]


def test_multi_ranks_equal_trec_eval_on_the_full_pool_without_own_captions(xtd_eval, tmp_path):
    """One full-pool pass with the plain CLI, the own captions dropped by hand: trec_eval on it equals the metrics
    from the exact ranks, query by query."""
    from hybrid_tevatron.eval.reports.evaluate import read_ranks, search_metrics

    proc, out = xtd_eval
    assert proc.returncode == 0, proc.stderr[-4000:]
    full = tmp_path / "multi.de.full.trec"
    subprocess.run([sys.executable, "-m", "pyserini.search.faiss", "--index", "index/all", "--topics",
                    "inputs/topics/de.tsv", "--encoded-queries", "queries/de", "--output", str(full), "--hits",
                    str(IMAGES * len(LANGS))], cwd=out, env=recipe_env(), check=True, capture_output=True)
    own = dict(line.split() for line in open(os.path.join(out, "inputs", "exclude", "multi.de.txt")))
    kept = tmp_path / "multi.de.kept.trec"
    with open(full, encoding="utf-8") as f, open(kept, "w", encoding="utf-8") as g:
        g.writelines(line for line in f if own.get(line.split()[0]) != line.split()[2])
    qrels_path = os.path.join(out, "inputs", "qrels", "multi.de.txt")
    theirs = subprocess.run([sys.executable, "-m", "pyserini.eval.trec_eval", "-c", "-q", "-m", "map", "-m",
                             "recall.1,10", "-m", "ndcg_cut.10", qrels_path, str(kept)], env=recipe_env(),
                            capture_output=True, text=True, check=True).stdout
    ours = search_metrics(read_ranks(os.path.join(out, "ranks", "multi.de.tsv")), T.read_qrels(qrels_path))
    assert M.compare_with_trec_eval(ours, T.parse_trec_eval(theirs)) == []


def test_two_languages_have_no_rank_distance_and_still_report(tiny_model_dir, shared_data, tmp_path):
    """With one relevant caption per multilingual query there is no pair of relevant ranks: no rank distance."""
    out = tmp_path / "two"
    proc = run_captions(tiny_model_dir, out, "--xtd10", os.path.join(shared_data, "xtd10"), "--languages", "en", "de",
                        "--max_images", "10", "--pooling", "mean", "--normalize")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out / "results" / "results.json", encoding="utf-8"))
    assert results["summary"]["rank_distance"] is None and 0 < results["summary"]["multi.map"] <= 1


@pytest.mark.parametrize("args, message", [
    (["--xtd10", "X", "--multi30k", "Y"],
     "give exactly one of --multi30k DIR --split S, --multi30k_task2 DIR --split S, --xtd10 DIR"),
    (["--xtd10", "{xtd10}", "--languages", "en", "xx"], "test_1kcaptions_xx.txt"),
    (["--xtd10", "{xtd10}", "--max_images", "0"], "--max_images must be >= 1, got 0"),  # 0 is not "all"
])
def test_bad_caption_sources_are_one_line_errors(tiny_model_dir, shared_data, tmp_path, args, message):
    args = [a.format(xtd10=os.path.join(shared_data, "xtd10")) for a in args]
    proc = run_captions(tiny_model_dir, tmp_path / "out", *args, "--pooling", "cls", "--no-normalize")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "out").exists() and not [n for n in os.listdir(tmp_path) if ".tmp." in n]


def test_two_real_evaluations_into_ev_and_ev_slash_one_writes_it(tiny_model_dir, shared_data, tmp_path):
    """`ev` and `ev/` are one OUTPUT: of two evaluations started together, one writes ev (not ev/ev), the other
    is refused naming the holder, and nothing else is left beside it."""
    base = ["--xtd10", os.path.join(shared_data, "xtd10"), "--languages", "en", "de", "--max_images", "30",
            "--pooling", "mean", "--normalize"]
    procs = [subprocess.Popen([sys.executable, "-m", "hybrid_tevatron.eval", "captions", str(tiny_model_dir),
                               str(tmp_path / "ev") + suffix, *base], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=recipe_env()) for suffix in ("", "/")]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], errs
    loser = errs[[p.returncode for p in procs].index(2)]
    assert "is in use by an evaluation" in loser or "exists and is not empty" in loser, loser[-2000:]
    assert (tmp_path / "ev" / "results" / "results.json").is_file() and not (tmp_path / "ev" / "ev").exists()
    assert sorted(os.listdir(tmp_path)) == ["ev"], os.listdir(tmp_path)
