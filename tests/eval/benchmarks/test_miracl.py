"""MIRACL: the recipe end to end on a small fixture (2 languages, helpers.write_miracl_fixture) with the tiny model,
Pyserini's topics/qrels names resolved offline from Pyserini's cache, the corpus conversion and clear errors."""

import gzip
import json
import os
import subprocess
import sys

import pytest
from helpers import MIRACL_DOCS, MIRACL_QUERIES, REPO, recipe_env, write_miracl_fixture

from hybrid_tevatron.eval import trec as T
from hybrid_tevatron.eval.benchmarks import miracl

RECIPE = os.path.join(REPO, "recipes", "eval_miracl.sh")
@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_miracl_fixture(tmp_path_factory.mktemp("miracl-fixture"))


@pytest.fixture(scope="module")
def miracl_eval(tiny_model_dir, fixture, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("miracl-eval") / "tiny")
    proc = subprocess.run(["bash", RECIPE, tiny_model_dir, out, "--languages", "de sw", "--topics",
                           fixture["topics"], "--qrels", fixture["qrels"], "--corpus", fixture["corpus"],
                           "--pooling", "mean", "--normalize", "--query_prefix", "query: ", "--passage_prefix",
                           "passage: ", "--encoder", "pyserini"],
                          capture_output=True, text=True, env=recipe_env(), timeout=600)
    return proc, out


def test_miracl_recipe_end_to_end(miracl_eval):
    proc, out = miracl_eval
    assert proc.returncode == 0, proc.stderr[-5000:]
    results = json.load(open(os.path.join(out, "results", "results.json"), encoding="utf-8"))
    assert list(results["per_language"]) == ["de", "sw"]
    for lang, v in results["per_language"].items():
        assert v["queries"] == MIRACL_QUERIES and v["documents"] == MIRACL_DOCS
        assert 0.0 <= v["ndcg_cut_10"] <= 1.0 and 0.0 < v["recall_100"] <= 1.0
        # trec_eval's numbers = pytrec_eval on the same run (top 100, all judged queries)
        run = T.read_run(os.path.join(out, "runs", f"{lang}.trec"))
        assert len(run) == MIRACL_QUERIES and all(len(hits) == 100 for hits in run.values())
        import pytrec_eval

        qrels = T.read_qrels(os.path.join(out, "inputs", "qrels", f"{lang}.txt"))
        per_q = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
        for key in ("ndcg_cut_10", "recall_100"):
            assert v[key] == pytest.approx(sum(q[key] for q in per_q.values()) / len(qrels), abs=1e-4), (lang, key)
    avg = results["average"]
    assert avg["ndcg_cut_10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in results["per_language"].values()) / 2)
    table = open(os.path.join(out, "results", "results.md"), encoding="utf-8").read()
    assert "| de | 8 | 120 |" in table and "| **avg** |" in table
    commands = open(os.path.join(out, "commands.sh"), encoding="utf-8").read()
    assert commands.count("python -m pyserini.search.faiss") == 2 and "--hits 100" in commands
    assert "python -m pyserini.eval.trec_eval -c -M 100 -m ndcg_cut.10 inputs/qrels/de.txt runs/de.trec" in commands
    assert "python -m pyserini.eval.trec_eval -c -m recall.100 inputs/qrels/sw.txt runs/sw.trec" in commands
    assert "--prefix passage:" in commands and "--prefx query:" in commands
    # the converted corpus: Pyserini JSONL, contents = title + text
    first = json.loads(open(os.path.join(out, "inputs", "corpus", "de.jsonl"), encoding="utf-8").readline())
    assert set(first) == {"id", "contents"} and first["id"] == "0#0" and len(first["contents"].split()) == 14
    assert "nDCG@10" in proc.stdout and f"results:   {out}/results/results.json" in proc.stdout
    assert not [n for n in os.listdir(os.path.dirname(out)) if ".tmp." in n]


def test_pyserini_names_resolve_offline_from_pyserini_cache(fixture, tmp_path):
    """Topics/qrels by their Pyserini names: Anserini reads ~/.cache/pyserini/topics-and-qrels/ when the files
    are there (here a fixture copy under a separate user.home) and only downloads them when they are not."""
    home = tmp_path / "home"
    cache = home / ".cache" / "pyserini" / "topics-and-qrels"
    cache.mkdir(parents=True)
    topics = open(fixture["topics"].replace("{lang}", "de"), encoding="utf-8").read()
    (cache / "topics.miracl-v1.0-de-dev.tsv").write_text(topics, encoding="utf-8")
    (cache / "qrels.miracl-v1.0-de-dev.tsv").write_text(
        open(fixture["qrels"].replace("{lang}", "de"), encoding="utf-8").read(), encoding="utf-8")
    out = tmp_path / "inputs"
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.eval.benchmarks.miracl",
                           "prepare", "--languages", "de",
                           "--output_dir", str(out), "--corpus", fixture["corpus"]],
                          capture_output=True, text=True, env=recipe_env(JAVA_TOOL_OPTIONS=f"-Duser.home={home}"),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.load(open(out / "manifest.json", encoding="utf-8"))
    assert manifest["sources"]["de"]["topics"] == "pyserini topics miracl-v1.0-de-dev"
    assert manifest["sources"]["de"]["qrels"].startswith("pyserini qrels miracl-v1.0-de-dev")
    assert (out / "topics" / "de.tsv").read_text(encoding="utf-8") == topics
    plan = json.load(open(out / "plan.json", encoding="utf-8"))
    assert plan["trec_eval_args"] == [["-c", "-M", "100", "-m", "ndcg_cut.10"], ["-c", "-m", "recall.100"]]
    assert [s["hits"] for s in plan["searches"]] == [100]


def test_hf_corpus_offline_is_a_clear_error(fixture, tmp_path):
    out = tmp_path / "inputs"
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.eval.benchmarks.miracl",
                           "prepare", "--languages", "sw",
                           "--output_dir", str(out), "--topics", fixture["topics"], "--qrels", fixture["qrels"]],
                          capture_output=True, text=True, timeout=300,
                          env=recipe_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
                                   HF_HUB_CACHE=str(tmp_path / "hf" / "hub")))
    assert proc.returncode == 2
    assert "cannot fetch miracl-corpus-v1.0-sw/ from the Hugging Face dataset miracl/miracl-corpus" in proc.stderr
    assert "pass --corpus with a local copy" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not [n for n in os.listdir(tmp_path) if ".tmp" in n]


def test_corpus_of_the_wrong_language_is_caught(fixture, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text('{"docid": "x#1", "title": "t", "text": "a b"}\n', encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match="none of the .* relevant documents .* is in the corpus"):
        miracl.prepare(["de"], str(tmp_path / "inputs"), topics=fixture["topics"], qrels=fixture["qrels"],
                       corpus=str(other))
    assert sorted(os.listdir(tmp_path)) == ["other.jsonl"]


def test_convert_corpus_title_text_and_errors(tmp_path):
    src = tmp_path / "docs.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"docid": "7#0", "title": "Albedo", "text": "is the\nmeasure\t of  light"}) + "\n")
        f.write(json.dumps({"docid": "7#1", "title": "", "text": "second"}) + "\n")
    n, ids = miracl.convert_corpus([str(src)], str(tmp_path / "out.jsonl"))
    lines = [json.loads(x) for x in open(tmp_path / "out.jsonl", encoding="utf-8")]
    assert n == 2 and ids == {"7#0", "7#1"}
    assert lines == [{"id": "7#0", "contents": "Albedo is the measure of light"}, {"id": "7#1", "contents": "second"}]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"docid": "a", "text": "x"}\n{"docid": "a", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match=r"dup.jsonl:2: duplicate docid a"):
        miracl.convert_corpus([str(dup)], str(tmp_path / "o2.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match="bad.jsonl:1: expected a record with 'docid' and 'text'"):
        miracl.convert_corpus([str(bad)], str(tmp_path / "o3.jsonl"))


def test_local_sources_must_exist(fixture, tmp_path):
    with pytest.raises(miracl.MiraclError, match="topics file not found: .*/nope.de.tsv"):
        miracl.prepare(["de"], str(tmp_path / "a"), topics=str(tmp_path / "nope.{lang}.tsv"), qrels=fixture["qrels"],
                       corpus=fixture["corpus"])
    with pytest.raises(miracl.MiraclError, match="corpus not found"):
        miracl.prepare(["de"], str(tmp_path / "b"), topics=fixture["topics"], qrels=fixture["qrels"],
                       corpus=str(tmp_path / "no-corpus"))
    with pytest.raises(miracl.MiraclError, match="'miracl-v9-de' is neither a topics file nor a Pyserini topics"):
        miracl.prepare(["de"], str(tmp_path / "c"), topics="miracl-v9-{lang}", qrels=fixture["qrels"],
                       corpus=fixture["corpus"])
    assert os.listdir(tmp_path) == []


def test_recipe_needs_languages_and_cleans_up(tiny_model_dir, fixture, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", RECIPE, tiny_model_dir, str(out)], capture_output=True, text=True, env=recipe_env())
    assert proc.returncode != 0 and "--languages is required" in proc.stderr
    proc = subprocess.run(["bash", RECIPE, tiny_model_dir, str(out), "--languages", "de", "--topics",
                           str(tmp_path / "missing.{lang}.tsv"), "--qrels", fixture["qrels"], "--corpus",
                           fixture["corpus"], "--pooling", "cls", "--no-normalize", "--encoder", "pyserini"],
                          capture_output=True, text=True, env=recipe_env(), timeout=300)
    assert proc.returncode != 0 and "topics file not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not [n for n in os.listdir(tmp_path) if ".tmp." in n]
