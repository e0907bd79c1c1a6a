"""Metrics: agreement with Pyserini's trec_eval (JVM) on real Faiss runs, trec_eval's tie order, rank distance."""

import functools
import json
import os
import random
import subprocess
import sys

import pytest

from conftest import recipe_env
from hybrid_tevatron.eval import metrics as M
from hybrid_tevatron.eval.lareqa import build, load_lareqa

# ---------------------------------------------------------------- rank distance by hand


def test_rank_distance_plain_and_ties():
    scores = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert M.rank_distance(scores, ["a", "c"]) == (2.0, 0)
    assert M.rank_distance(scores, ["b"]) == (None, 0)  # fewer than 2 relevant: left out
    tied = {"a": 1.0, "b": 1.0, "c": 0.5}
    assert M.trec_order(tied) == ["b", "a", "c"]  # ties: docid descending, as trec_eval
    assert M.relevant_ranks(tied, ["a", "b"]) == ([2.0, 1.0], 0)
    assert M.rank_distance(tied, ["a", "b"]) == (1.0, 0)
    assert M.rank_distance(tied, ["b", "c"]) == (2.0, 0)
    assert M.trec_order({"en-10": 0.5, "en-9": 0.5, "de-2": 0.5}) == ["en-9", "en-10", "de-2"]  # string order


def test_rank_distance_unretrieved_relevant_take_expected_ranks():
    scores = {"a": 3.0, "b": 2.0, "c": 1.0}  # 3 retrieved out of a pool of 10
    # one missing: the middle of ranks 4..10 = (3 + 10 + 1) / 2 = 7
    assert M.rank_distance(scores, ["a", "z"], pool_size=10) == (6.0, 1)
    # two missing: 3 + j * 8 / 3 for j = 1, 2 -> 5.667 and 8.333; distance from rank 2 (b)
    ranks, missing = M.relevant_ranks(scores, ["b", "y", "z"], pool_size=10)
    assert missing == 2 and ranks[0] == 2.0 and ranks[1:] == pytest.approx([3 + 8 / 3, 3 + 16 / 3])
    assert M.rank_distance(scores, ["b", "y", "z"], pool_size=10)[0] == pytest.approx(3 + 16 / 3 - 2)
    # nothing retrieved: spread over the whole pool
    assert M.relevant_ranks({}, ["x", "y"], pool_size=5)[0] == pytest.approx([2.0, 4.0])
    # full retrieval: the pool size is never needed
    assert M.rank_distance(scores, ["a", "b", "c"], pool_size=3) == (2.0, 0)
    with pytest.raises(M.EvalError, match="no pool size"):
        M.rank_distance(scores, ["a", "z"])
    with pytest.raises(M.EvalError, match="pool size 4 leaves 1 unretrieved positions for 2"):
        M.rank_distance(scores, ["a", "y", "z"], pool_size=4)


def test_evaluate_run_rank_distance_and_missing_queries(tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 a 1 0.9 t\nq1 Q0 b 2 0.9 t\nq1 Q0 c 3 0.1 t\n", encoding="utf-8")
    qrels = {"q1": {"a": 1, "c": 1, "z": 1}, "q2": {"a": 1, "b": 1}}
    res = M.evaluate_run(str(run), qrels, pool_size=10, with_rank_distance=True)
    q1, q2 = res["per_query"]["q1"], res["per_query"]["q2"]
    # order b, a, c: relevant a@2, c@3, z unretrieved -> (3 + 10 + 1) / 2 = 7
    assert q1["rank_distance"] == 5.0
    assert q1["map"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert q1["recall_1"] == 0.0 and q1["recall_10"] == pytest.approx(2 / 3)
    assert q2 == {"map": 0.0, "recall_1": 0.0, "recall_10": 0.0, "ndcg_cut_10": 0.0,
                  "rank_distance": pytest.approx(22 / 3 - 11 / 3)}  # ranks 11/3, 22/3 of 10
    assert res["stats"] == {"queries": 2, "queries_missing": 1, "extra_queries": 0, "retrieved_min": 3,
                            "retrieved_max": 3, "unretrieved_relevant": 3}
    assert M.mean(res["per_query"], "map") == pytest.approx(q1["map"] / 2)
    assert M.macro([0.5, None, 0.25]) == 0.375 and M.macro([None]) is None


# ---------------------------------------------------------------- run / qrels / trec_eval parsing


def test_bad_runs_and_qrels_name_the_line(tmp_path):
    qrels = {"q1": {"a": 1}}
    cases = {
        "q1 Q0 a 1 0.5 t\nq2 Q0 a 1 0.5 t\nq1 Q0 b 2 0.4 t\n": r"bad.trec:3: query q1 appears again",
        "q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n": r"bad.trec:2: docid a listed twice for query q1",
        "q1 Q0 a 1 high t\n": r"bad.trec:1: score 'high' is not a number",
        "q1 Q0 a 1 0.5\n": r"bad.trec:1: expected 'qid Q0 docid rank score tag'",
    }
    for text, message in cases.items():
        (tmp_path / "bad.trec").write_text(text, encoding="utf-8")
        with pytest.raises(M.EvalError, match=message):
            M.evaluate_run(str(tmp_path / "bad.trec"), qrels)
    with pytest.raises(M.EvalError, match="missing.trec: file not found"):
        M.read_run(str(tmp_path / "missing.trec"))
    (tmp_path / "bad.qrels").write_text("q1 0 a 1\nq1 0 b x\n", encoding="utf-8")
    with pytest.raises(M.EvalError, match=r"bad.qrels:2: relevance 'x' is not an integer"):
        M.read_qrels(str(tmp_path / "bad.qrels"))
    (tmp_path / "empty.qrels").write_text("\n", encoding="utf-8")
    with pytest.raises(M.EvalError, match="empty qrels"):
        M.read_qrels(str(tmp_path / "empty.qrels"))


def test_parse_trec_eval_output():
    text = "runid                 \tall\tFaiss\nmap                   \tq1\t0.5000\nrecall_1              \tq1\t0.0000\n" \
           "map                   \tall\t0.2500\nnum_q                 \tall\t2\n"
    assert M.parse_trec_eval(text) == {"q1": {"map": 0.5, "recall_1": 0.0}, "all": {"map": 0.25, "num_q": 2.0}}
    with pytest.raises(M.EvalError, match="line 2: cannot parse"):
        M.parse_trec_eval("map\tq1\t0.5\ngarbage\n")
    ours = {"q1": {"map": 0.5, "recall_1": 0.0}, "q2": {"map": 0.0, "recall_1": 0.0}}
    assert M.compare_with_trec_eval(ours, M.parse_trec_eval(text)) == []
    ours["q1"]["map"] = 0.51
    assert M.compare_with_trec_eval(ours, M.parse_trec_eval(text)) == [
        "q1 map: ours 0.510000, trec_eval 0.500000", "all map: ours 0.255000, trec_eval 0.250000"]


# ---------------------------------------------------------------- real retrieval vs trec_eval (JVM)


@functools.lru_cache(maxsize=2)
def _load(model_dir):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()


def _encode(model_dir, texts):
    """Mean-pooled, L2-normalised embeddings (cosine = inner product)."""
    import torch

    tok, model = _load(model_dir)
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tok(texts[i:i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            emb = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(emb, dim=-1))
    return torch.cat(out).numpy()


@pytest.fixture(scope="module")
def faiss_runs(shared_data, tiny_model_dir, tmp_path_factory):
    """A 40-question XQuAD-R slice (en, de, zh) searched with Faiss flat IP over tiny-model embeddings."""
    import faiss

    root = str(tmp_path_factory.mktemp("lareqa") / "slice")
    data = load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en", "de", "zh"], max_questions=40)
    manifest = build(data, root)
    runs = str(tmp_path_factory.mktemp("runs"))
    indexes, every = {}, []
    for pool, corpus in manifest["corpora"].items():
        with open(os.path.join(root, corpus["path"]), encoding="utf-8") as f:
            recs = [json.loads(line) for line in f]
        every += recs
        for name, part in ((pool, recs), ("all", every)):  # "all": the union of the language pools
            emb = _encode(tiny_model_dir, ["passage: " + r["contents"] for r in part])
            index = faiss.IndexFlatIP(emb.shape[1])
            index.add(emb)
            indexes[name] = (index, [r["id"] for r in part])
    for s in manifest["searches"]:
        if s["name"] not in ("multi.en", "cross.de-zh", "mono.zh"):
            continue
        with open(os.path.join(root, s["topics"]), encoding="utf-8") as f:
            topics = [line.rstrip("\n").split("\t") for line in f]
        index, ids = indexes[s["pool"]]
        hits = s["pool_size"] if s["setting"] == "multi" else 7  # full pool vs a cut ranking
        scores, idx = index.search(_encode(tiny_model_dir, ["query: " + t[1] for t in topics]), hits)
        digits = 2 if s["setting"] == "mono" else 6  # coarse scores: many ties for trec_eval to break
        with open(os.path.join(runs, s["run"]), "w", encoding="utf-8") as f:
            for n, ((qid, _), row, irow) in enumerate(zip(topics, scores, idx)):
                if s["setting"] == "cross" and n == 3:
                    continue  # a query absent from the run: 0 for every measure (trec_eval -c)
                for rank, (score, i) in enumerate(zip(row, irow), 1):
                    f.write(f"{qid} Q0 {ids[i]} {rank} {score:.{digits}f} Faiss\n")
    return root, runs, {s["name"]: s for s in manifest["searches"]}


def trec_eval(qrels_path: str, run_path: str) -> dict:
    """``python -m pyserini.eval.trec_eval -c -q`` (Java), parsed: the oracle."""
    proc = subprocess.run([sys.executable, "-m", "pyserini.eval.trec_eval", "-c", "-q", "-m", "map", "-m",
                           "recall.1,10", "-m", "ndcg_cut.10", qrels_path, run_path], capture_output=True, text=True,
                          env=recipe_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return M.parse_trec_eval(proc.stdout)


@pytest.mark.parametrize("search", ["multi.en", "cross.de-zh", "mono.zh"])
def test_metrics_agree_with_pyserini_trec_eval(faiss_runs, search):
    root, runs, searches = faiss_runs
    s = searches[search]
    qrels_path, run_path = os.path.join(root, s["qrels"]), os.path.join(runs, s["run"])
    ours = M.evaluate_run(run_path, M.read_qrels(qrels_path), pool_size=s["pool_size"],
                          with_rank_distance=s["setting"] == "multi", chunk_lines=500)
    theirs = trec_eval(qrels_path, run_path)
    assert set(theirs["all"]) >= {"map", "recall_1", "recall_10", "ndcg_cut_10"}
    assert M.compare_with_trec_eval(ours["per_query"], theirs) == []
    assert len(ours["per_query"]) == 40
    assert 0.0 < M.mean(ours["per_query"], "map") < 1.0
    if search == "cross.de-zh":
        assert ours["stats"]["queries_missing"] == 1 and ours["stats"]["retrieved_max"] == 7
    if search == "multi.en":
        assert ours["stats"]["unretrieved_relevant"] == 0  # full pool: every relevant passage has a rank
        assert all(0 < v["rank_distance"] < s["pool_size"] for v in ours["per_query"].values())
    if search == "mono.zh":
        # our rank order reproduces trec_eval's AP on a run full of score ties
        run = M.read_run(run_path)
        qrels = M.read_qrels(qrels_path)
        tied = sum(len(set(sc.values())) < len(sc) for sc in run.values())
        assert tied > 10
        for qid, scores in run.items():
            rel = [d for d in qrels[qid]]
            order = M.trec_order(scores)
            hits = [i + 1 for i, d in enumerate(order) if d in rel]
            ap = sum((k + 1) / r for k, r in enumerate(hits)) / len(rel)
            assert abs(ap - theirs[qid]["map"]) <= 1e-4, qid


def test_streaming_chunks_do_not_change_results(faiss_runs):
    root, runs, searches = faiss_runs
    s = searches["multi.en"]
    qrels = M.read_qrels(os.path.join(root, s["qrels"]))
    small = M.evaluate_run(os.path.join(runs, s["run"]), qrels, pool_size=s["pool_size"], with_rank_distance=True,
                           chunk_lines=1)
    big = M.evaluate_run(os.path.join(runs, s["run"]), qrels, pool_size=s["pool_size"], with_rank_distance=True)
    assert small == big


def test_gzipped_run_and_random_ties_match_pytrec_order(tmp_path):
    """trec_order on random coarse scores reproduces pytrec_eval's AP (same C code as trec_eval)."""
    import gzip

    rng = random.Random(3)
    docs = [f"d{i}" for i in range(30)]
    qrels = {f"q{q}": {d: 1 for d in rng.sample(docs, 4)} for q in range(20)}
    with gzip.open(tmp_path / "run.trec.gz", "wt", encoding="utf-8") as f:
        for q in qrels:
            for r, d in enumerate(rng.sample(docs, 25), 1):
                f.write(f"{q} Q0 {d} {r} {rng.choice([0.1, 0.2, 0.3])} t\n")
    run = M.read_run(str(tmp_path / "run.trec.gz"))
    res = M.evaluate_run(str(tmp_path / "run.trec.gz"), qrels)
    for q, scores in run.items():
        order = M.trec_order(scores)
        hits = [i + 1 for i, d in enumerate(order) if d in qrels[q]]
        assert sum((k + 1) / r for k, r in enumerate(hits)) / 4 == pytest.approx(res["per_query"][q]["map"])
        reverse = sorted(scores, key=lambda d: (-scores[d], d))  # the other tie order must disagree somewhere
        hits_r = [i + 1 for i, d in enumerate(reverse) if d in qrels[q]]
        res["per_query"][q]["_rev"] = sum((k + 1) / r for k, r in enumerate(hits_r)) / 4
    assert any(abs(v["_rev"] - v["map"]) > 1e-9 for v in res["per_query"].values())
