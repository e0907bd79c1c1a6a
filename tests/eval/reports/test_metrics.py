"""Metrics: agreement with Pyserini's trec_eval (JVM) on real Faiss runs, trec_eval's tie order, rank distance."""

import functools
import json
import os
import random
import subprocess
import sys

import pytest
from helpers import recipe_env

from hybrid_tevatron.eval import trec as T
from hybrid_tevatron.eval.benchmarks.lareqa import build, load_lareqa
from hybrid_tevatron.eval.reports import metrics as M

# ---------------------------------------------------------------- metrics from ranks


def run_metrics(run: dict, qrels: dict, with_rank_distance=False) -> dict:
    """Per-query metrics of a run through query_metrics: each relevant docid's place in trec_eval's order of it."""
    out = {}
    for qid, judged in qrels.items():
        order = {d: i + 1 for i, d in enumerate(T.trec_order(run.get(qid, {})))}
        found = [(order[d], r) for d, r in judged.items() if r > 0 and d in order]
        out[qid] = M.query_metrics(found, [r for r in judged.values() if r > 0], with_rank_distance=with_rank_distance)
    return out


def test_trec_order_and_rank_distance():
    tied = {"a": 1.0, "b": 1.0, "c": 0.5}
    assert T.trec_order(tied) == ["b", "a", "c"]  # ties: docid descending, as trec_eval
    assert T.trec_order({"en-10": 0.5, "en-9": 0.5, "de-2": 0.5}) == ["en-9", "en-10", "de-2"]  # string order
    assert run_metrics({"q": tied}, {"q": {"a": 1, "c": 1}}, True)["q"]["rank_distance"] == 1.0
    assert run_metrics({"q": tied}, {"q": {"b": 1}}, True)["q"]["rank_distance"] is None  # fewer than 2 relevant


def test_missing_queries_and_relevant_docids_count_as_zero():
    run = {"q1": {"a": 0.9, "b": 0.9, "c": 0.1}}
    qrels = {"q1": {"a": 1, "c": 1, "z": 1}, "q2": {"a": 1, "b": 1}}
    res = run_metrics(run, qrels, True)
    q1, q2 = res["q1"], res["q2"]
    # order b, a, c: relevant a@2, c@3, z never ranked
    assert q1["rank_distance"] == 1.0
    assert q1["map"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert q1["recall_1"] == 0.0 and q1["recall_10"] == pytest.approx(2 / 3)
    assert q2 == {"map": 0.0, "recall_1": 0.0, "recall_10": 0.0, "ndcg_cut_10": 0.0, "rank_distance": None}
    assert M.mean(res, "map") == pytest.approx(q1["map"] / 2)
    assert M.macro([0.5, None, 0.25]) == 0.375 and M.macro([None]) is None
    with pytest.raises(T.EvalError, match="not computed from ranks"):
        M.query_metrics([], [1], measures=("P.5",))


# ---------------------------------------------------------------- run / qrels / trec_eval parsing


def test_bad_runs_and_qrels_name_the_line(tmp_path):
    cases = {
        "q1 Q0 a 1 0.5 t\nq2 Q0 a 1 0.5 t\nq1 Q0 b 2 0.4 t\n": r"bad.trec:3: query q1 appears again",
        "q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n": r"bad.trec:2: docid a listed twice for query q1",
        "q1 Q0 a 1 high t\n": r"bad.trec:1: score 'high' is not a number",
        "q1 Q0 a 1 0.5\n": r"bad.trec:1: expected 'qid Q0 docid rank score tag'",
    }
    for text, message in cases.items():
        (tmp_path / "bad.trec").write_text(text, encoding="utf-8")
        with pytest.raises(T.EvalError, match=message):
            T.read_run(str(tmp_path / "bad.trec"))
    with pytest.raises(T.EvalError, match="missing.trec: file not found"):
        T.read_run(str(tmp_path / "missing.trec"))
    (tmp_path / "bad.qrels").write_text("q1 0 a 1\nq1 0 b x\n", encoding="utf-8")
    with pytest.raises(T.EvalError, match=r"bad.qrels:2: relevance 'x' is not an integer"):
        T.read_qrels(str(tmp_path / "bad.qrels"))
    (tmp_path / "empty.qrels").write_text("\n", encoding="utf-8")
    with pytest.raises(T.EvalError, match="empty qrels"):
        T.read_qrels(str(tmp_path / "empty.qrels"))


def test_parse_trec_eval_output():
    text = "runid                 \tall\tFaiss\nmap                   \tq1\t0.5000\n" \
           "recall_1              \tq1\t0.0000\n" \
           "map                   \tall\t0.2500\nnum_q                 \tall\t2\n"
    assert T.parse_trec_eval(text) == {"q1": {"map": 0.5, "recall_1": 0.0}, "all": {"map": 0.25, "num_q": 2.0}}
    with pytest.raises(T.EvalError, match="line 2: cannot parse"):
        T.parse_trec_eval("map\tq1\t0.5\ngarbage\n")
    ours = {"q1": {"map": 0.5, "recall_1": 0.0}, "q2": {"map": 0.0, "recall_1": 0.0}}
    assert M.compare_with_trec_eval(ours, T.parse_trec_eval(text)) == []
    ours["q1"]["map"] = 0.51
    assert M.compare_with_trec_eval(ours, T.parse_trec_eval(text)) == [
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
    return T.parse_trec_eval(proc.stdout)


@pytest.mark.parametrize("search", ["multi.en", "cross.de-zh", "mono.zh"])
def test_metrics_agree_with_pyserini_trec_eval(faiss_runs, search):
    """query_metrics on each relevant docid's place in a run = trec_eval on that run: a full-pool run (multi), a
    run cut at 7 hits with a query missing (cross), coarse scores full of ties (mono)."""
    root, runs, searches = faiss_runs
    s = searches[search]
    qrels_path, run_path = os.path.join(root, s["qrels"]), os.path.join(runs, s["run"])
    run, qrels = T.read_run(run_path), T.read_qrels(qrels_path)
    ours = run_metrics(run, qrels, with_rank_distance=s["setting"] == "multi")
    theirs = trec_eval(qrels_path, run_path)
    assert set(theirs["all"]) >= {"map", "recall_1", "recall_10", "ndcg_cut_10"}
    assert M.compare_with_trec_eval(ours, theirs) == []
    assert len(ours) == 40
    assert 0.0 < M.mean(ours, "map") < 1.0
    if search == "cross.de-zh":
        assert len(run) == 39 and max(len(h) for h in run.values()) == 7
    if search == "multi.en":
        assert all(0 < v["rank_distance"] < s["pool_size"] for v in ours.values())
    if search == "mono.zh":
        tied = sum(len(set(sc.values())) < len(sc) for sc in run.values())
        assert tied > 10


def test_gzipped_run_and_random_ties_match_trec_eval(tmp_path):
    """trec_order on random coarse scores reproduces trec_eval's AP; the other tie order would not."""
    import gzip

    rng = random.Random(3)
    docs = [f"d{i}" for i in range(30)]
    qrels = {f"q{q}": {d: 1 for d in rng.sample(docs, 4)} for q in range(20)}
    (tmp_path / "qrels").write_text("".join(f"{q} 0 {d} 1\n" for q, ds in qrels.items() for d in ds),
                                    encoding="utf-8")
    with gzip.open(tmp_path / "run.trec.gz", "wt", encoding="utf-8") as f:
        for q in qrels:
            for r, d in enumerate(rng.sample(docs, 25), 1):
                f.write(f"{q} Q0 {d} {r} {rng.choice([0.1, 0.2, 0.3])} t\n")
    run = T.read_run(str(tmp_path / "run.trec.gz"))
    (tmp_path / "run.trec").write_text(gzip.open(tmp_path / "run.trec.gz", "rt").read(), encoding="utf-8")
    theirs = trec_eval(str(tmp_path / "qrels"), str(tmp_path / "run.trec"))
    assert M.compare_with_trec_eval(run_metrics(run, qrels), theirs) == []
    differ = 0
    for q, scores in run.items():
        reverse = sorted(scores, key=lambda d: (-scores[d], d))  # the other tie order
        hits = [i + 1 for i, d in enumerate(reverse) if d in qrels[q]]
        differ += abs(sum((k + 1) / r for k, r in enumerate(hits)) / 4 - theirs[q]["map"]) > 1e-4
    assert differ > 0
