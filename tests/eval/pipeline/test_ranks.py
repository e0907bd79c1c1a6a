"""Exact whole-pool ranks from the vectors (hybrid_tevatron.eval.pipeline.ranks) equal trec_eval's on full rankings.

Pools built to have exact ties (small integer vectors: float32 products are exact, so Faiss and the float64 sum
agree to the bit), an excluded own caption, relevant items at the very bottom of the pool, a query with no relevant
item, a query of the qrels without a topic, graded relevance, and docids whose string order is not their numeric
order. The oracle is the real thing: Pyserini's Faiss search over the whole pool, then Pyserini's trec_eval.
"""

import os
import subprocess
import sys

import faiss
import numpy as np
import pandas as pd
import pytest
from helpers import recipe_env

from hybrid_tevatron.eval import trec as T
from hybrid_tevatron.eval.pipeline.ranks import SAMPLE_QRELS, SAMPLE_RUN, rank_plan, sample_size, score_text
from hybrid_tevatron.eval.pipeline.search_plan import SearchPlan
from hybrid_tevatron.eval.reports import metrics as M
from hybrid_tevatron.eval.reports.evaluate import read_ranks, search_metrics

ARGS = ["-c", "-q", "-m", "map", "-m", "recall.1,10", "-m", "ndcg_cut.10"]


def _index(folder, ids, vectors):
    os.makedirs(folder, exist_ok=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, os.path.join(folder, "index"))
    with open(os.path.join(folder, "docid"), "w", encoding="utf-8") as f:
        f.writelines(d + "\n" for d in ids)


def _queries(folder, ids, vectors):
    os.makedirs(folder, exist_ok=True)
    pd.DataFrame({"id": ids, "text": [f"text of {q}" for q in ids],
                  "embedding": list(np.asarray(vectors, dtype=np.float32))}).to_pickle(os.path.join(folder,
                                                                                                   "embedding.pkl"))


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """Two languages a, b of 30 docs each (values in quarters: many exact ties), queries in a; searches cross.a-b
    (pool b) and multi.a (pool a + b, the query's own doc a-i excluded)."""
    root = tmp_path_factory.mktemp("pools")
    rng = np.random.default_rng(3)
    n = 30
    docs = {lang: rng.integers(-2, 3, size=(n, 4)).astype(np.float32) / 4 for lang in "ab"}
    docs["b"][7] = -docs["b"][6]  # b-7 opposite of b-6
    ids = {lang: [f"{lang}-{i}" for i in range(n)] for lang in "ab"}
    for lang in "ab":
        _index(str(root / "index" / "lang" / lang), ids[lang], docs[lang])
    _index(str(root / "index" / "all"), ids["a"] + ids["b"], np.concatenate([docs["a"], docs["b"]]))
    qvec = docs["a"][:8].copy()  # query i is doc a-i (its own caption): the exclusion matters
    qvec[5] = -np.abs(docs["b"]).max(axis=0)  # a query whose relevant docs sit at the bottom
    qids = [f"q{i}" for i in range(8)]
    _queries(str(root / "queries" / "a"), qids, qvec)
    inputs = root / "inputs"
    (inputs / "qrels").mkdir(parents=True)
    (inputs / "topics").mkdir()
    (inputs / "exclude").mkdir()
    (inputs / "topics" / "a.tsv").write_text("".join(f"{q}\ttext of {q}\n" for q in qids[:7]), encoding="utf-8")
    scores_b = qvec @ docs["b"].T
    cross, multi = [], []
    for i, q in enumerate(qids):
        if i == 3:  # judged, nothing relevant
            cross.append(f"{q} 0 b-1 0\n")
            multi.append(f"{q} 0 a-1 0\n")
            continue
        order = np.argsort(scores_b[i])
        bottom = [f"b-{j}" for j in order[:2]]
        tied = [f"b-{j}" for j in np.flatnonzero(scores_b[i] == np.median(scores_b[i]))[:3]]
        rel = bottom if i == 5 else tied + ["b-10", "b-9"]
        for d in dict.fromkeys(rel):
            cross.append(f"{q} 0 {d} {2 if d == 'b-10' else 1}\n")
            multi.append(f"{q} 0 {d} 1\n")
        multi.append(f"{q} 0 a-{(i + 1) % n} 1\n")
        multi.append(f"{q} 0 a-{i} 0\n")  # its own caption, judged non-relevant, excluded anyway
    (inputs / "qrels" / "cross.a-b.txt").write_text("".join(cross), encoding="utf-8")
    (inputs / "qrels" / "multi.a.txt").write_text("".join(multi), encoding="utf-8")
    (inputs / "exclude" / "multi.a.txt").write_text("".join(f"{q} a-{i}\n" for i, q in enumerate(qids)),
                                                     encoding="utf-8")
    plan = SearchPlan.from_json({
        "corpora": {"lang/a": {"path": "corpus/a.jsonl", "size": n}, "lang/b": {"path": "corpus/b.jsonl", "size": n}},
        "merged": {"all": ["lang/a", "lang/b"]}, "queries": {"a": "topics/a.tsv"}, "trec_eval_args": [ARGS],
        "searches": [
            {"name": "cross.a-b", "setting": "cross", "index": "lang/b", "queries": "a", "topics": "topics/a.tsv",
             "qrels": "qrels/cross.a-b.txt", "hits": 10, "pool_size": n, "ranks": True, "run": "cross.a-b.trec",
             "exclude": None},
            {"name": "multi.a", "setting": "multi", "index": "all", "queries": "a", "topics": "topics/a.tsv",
             "qrels": "qrels/multi.a.txt", "hits": 10, "pool_size": 2 * n, "ranks": True, "run": "multi.a.trec",
             "exclude": "exclude/multi.a.txt"}]}, root=str(inputs))
    meta = rank_plan(plan, str(root / "index"), str(root / "queries"), str(root / "ranks"))
    return root, plan, meta


def _pyserini(cwd, module, *args):
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=recipe_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _full_run(root, search, hits, exclude=None):
    """Pyserini's Faiss search over the whole pool, the excluded docid dropped: the full ranking trec_eval sees."""
    raw = root / f"{search.name}.full.trec"
    _pyserini(root, "pyserini.search.faiss", "--index", f"index/{search.index}", "--topics", "inputs/topics/a.tsv",
              "--encoded-queries", "queries/a", "--output", raw.name, "--hits", hits)
    lines = raw.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not exclude or exclude.get(line.split()[0]) != line.split()[2]]
    out = root / f"{search.name}.kept.trec"
    out.write_text("".join(kept), encoding="utf-8")
    return out


def test_ranks_and_metrics_equal_trec_eval_on_full_rankings(pools):
    root, plan, meta = pools
    assert meta["searches"]["multi.a"]["host"] == "all" and meta["searches"]["cross.a-b"]["host"] == "all"
    assert meta["searches"]["cross.a-b"]["columns"] == [30, 60]  # lang/b read from the product with `all`
    for s in plan.searches:
        exclude = None
        if s.exclude:
            exclude = dict(line.split() for line in open(root / "inputs" / s.exclude, encoding="utf-8"))
        run = _full_run(root, s, s.pool_size, exclude)
        qrels = T.read_qrels(str(root / "inputs" / s.qrels))
        theirs = T.parse_trec_eval(_pyserini(root, "pyserini.eval.trec_eval", *ARGS, root / "inputs" / s.qrels,
                                             run))
        ranks = read_ranks(str(root / "ranks" / f"{s.name}.tsv"))
        ours = search_metrics(ranks, qrels, with_rank_distance=s.setting == "multi")
        assert set(ours) == set(qrels) and len(ours) == 8
        assert M.compare_with_trec_eval(ours, theirs, tol=1e-4) == [], s.name
        # every rank is the relevant docid's place in trec_eval's order of the full run
        full = T.read_run(str(run))
        tied = sum(1 for qid, found in ranks.items() for d, _r in found
                   if sum(v == full[qid][d] for v in full[qid].values()) > 1)
        assert tied >= 5, s.name  # relevant docids that share their score with another docid
        for qid, found in ranks.items():
            order = {d: i + 1 for i, d in enumerate(T.trec_order(full[qid]))}
            assert all(order[d] == rank for d, rank in found), (s.name, qid)
            if s.setting == "multi":
                assert ours[qid]["rank_distance"] == max(r for _d, r in found) - min(r for _d, r in found)
    # the cases the pools were built for
    cross = read_ranks(str(root / "ranks" / "cross.a-b.tsv"))
    assert max(r for _d, r in cross["q5"]) == 30 and "q3" not in cross and "q7" not in cross
    assert meta["searches"]["cross.a-b"]["queries_unranked"] == 1  # q7: in the qrels, no topic
    assert meta["searches"]["multi.a"]["excluded"] == 7
    multi = read_ranks(str(root / "ranks" / "multi.a.tsv"))
    assert all(d != f"a-{q[1:]}" for q, found in multi.items() for d, _r in found)
    assert max(r for _d, r in multi["q5"]) == 59  # the bottom of a 60-item pool less the own doc


def test_the_sample_is_the_full_ranking_trec_eval_scores(pools):
    """Small pools: every query of the qrels is in the sample; its full rankings score like ours in trec_eval."""
    root, plan, meta = pools
    for s in plan.searches:
        assert meta["searches"][s.name]["sample"] == sorted(T.read_qrels(str(root / "inputs" / s.qrels)))
    theirs = T.parse_trec_eval(_pyserini(root, "pyserini.eval.trec_eval", *ARGS, root / "ranks" / SAMPLE_QRELS,
                                         root / "ranks" / SAMPLE_RUN))
    for s in plan.searches:
        qrels = T.read_qrels(str(root / "inputs" / s.qrels))
        ours = search_metrics(read_ranks(str(root / "ranks" / f"{s.name}.tsv")), qrels)
        mine = {f"{s.name}:{q}": v for q, v in ours.items()}
        assert M.compare_with_trec_eval(mine, {q: v for q, v in theirs.items() if q.startswith(s.name + ":")},
                                        tol=1e-4) == []
    lines = (root / "ranks" / SAMPLE_RUN).read_text(encoding="utf-8").splitlines()
    multi_q0 = [line for line in lines if line.startswith("multi.a:q0 ")]
    assert len(multi_q0) == 59 and not any(line.split()[2] == "a-0" for line in multi_q0)


def test_sample_size_and_score_text():
    assert sample_size(20, 100, 5000) == 20  # fits: every query
    assert sample_size(1000, 11000, 8000) == 2  # at least SAMPLE_MIN_QUERIES
    assert sample_size(1000, 1000, 50_000) == 50
    assert sample_size(3, 11000, 0) == 2
    assert [score_text(k) for k in (0, 1, 1_500_000, -1, -2_000_001)] == \
        ["0.000000", "0.000001", "1.500000", "-0.000001", "-2.000001"]


def test_query_metrics_match_trec_eval_definitions():
    # relevant at ranks 2 and 3 of 2 relevant: AP (1/2 + 2/3) / 2
    m = M.query_metrics([(2, 1), (3, 1)], [1, 1], with_rank_distance=True)
    assert m["map"] == pytest.approx((1 / 2 + 2 / 3) / 2) and m["recall_1"] == 0 and m["recall_10"] == 1
    assert m["rank_distance"] == 1
    # graded: gains 2 and 1 found at ranks 2 and 1
    m = M.query_metrics([(2, 2), (1, 1)], [2, 1])
    assert m["ndcg_cut_10"] == pytest.approx((1 + 2 / np.log2(3)) / (2 + 1 / np.log2(3)))
    # a relevant docid the pool lacks still counts in the denominators
    assert M.query_metrics([(1, 1)], [1, 1])["map"] == 0.5
    assert M.query_metrics([], [], with_rank_distance=True) == {"map": 0.0, "recall_1": 0.0, "recall_10": 0.0,
                                                                "ndcg_cut_10": 0.0, "rank_distance": None}


def test_our_trec_eval_command_prints_what_pyserinis_wrapper_prints(pools):
    """python -m hybrid_tevatron.eval.pipeline.trec_eval runs the binary Pyserini's wrapper runs, without its pandas
    pass: the same output; unlike the wrapper, a missing run is an error."""
    root, _plan, _meta = pools
    files = [root / "ranks" / SAMPLE_QRELS, root / "ranks" / SAMPLE_RUN]
    ours = _pyserini(root, "hybrid_tevatron.eval.pipeline.trec_eval", *ARGS, *files)
    assert T.parse_trec_eval(ours) == T.parse_trec_eval(_pyserini(root, "pyserini.eval.trec_eval", *ARGS, *files))
    assert len(T.parse_trec_eval(ours)) == 15  # 7 ranked queries of two searches (q7 has no topic) and "all"
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.eval.pipeline.trec_eval", *ARGS, str(files[0]),
                           str(root / "missing.trec")], env=recipe_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "error: trec_eval: run file not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_order_keys_tie_scores_as_trec_eval_reads_them(tmp_path):
    """trec_eval reads scores into a C float: above 16, neighbouring 6-decimal scores share one float32 and tie
    (then docid descending). The ranks from order_keys equal trec_eval's on such a run."""
    import torch

    from hybrid_tevatron.eval.pipeline.ranks import order_keys

    written = torch.tensor([31_999_900 + i for i in range(40)] + [-31_999_900 - i for i in range(40)])
    keys = order_keys(written, torch).tolist()
    tied = [i for i in range(39) if keys[i] == keys[i + 1]]
    assert len(tied) >= 10 and keys[0] < keys[39]  # tied in float32, ordered across float32 steps
    assert keys[40] > keys[79] and max(keys[40:]) < min(keys[:40])
    docids = [f"d{(7 * i) % 80}" for i in range(80)]  # docid order unrelated to score order
    position = {d: p for p, d in enumerate(sorted(docids))}
    comp = [k * 80 + position[d] for k, d in zip(keys, docids)]
    relevant = {docids[i]: 1 for i in (tied[0], tied[3] + 1, tied[5], 50)}
    ranks = [(1 + sum(c > comp[i] for c in comp), 1) for i, d in enumerate(docids) if d in relevant]
    ours = {"q": M.query_metrics(ranks, [1] * len(relevant))}
    (tmp_path / "run").write_text("".join(f"q Q0 {d} {i + 1} {score_text(w)} t\n"
                                          for i, (d, w) in enumerate(zip(docids, written.tolist()))),
                                  encoding="utf-8")
    (tmp_path / "qrels").write_text("".join(f"q 0 {d} 1\n" for d in relevant), encoding="utf-8")
    theirs = T.parse_trec_eval(_pyserini(tmp_path, "hybrid_tevatron.eval.pipeline.trec_eval", *ARGS, "qrels", "run"))
    assert M.compare_with_trec_eval(ours, theirs, tol=1e-4) == []
    # the 6-decimal order alone (no float32 ties) would disagree
    naive = [(1 + sum((w, p) > (written[i].item(), position[d]) for w, p in
                      zip(written.tolist(), (position[x] for x in docids))), 1)
             for i, d in enumerate(docids) if d in relevant]
    assert M.compare_with_trec_eval({"q": M.query_metrics(naive, [1] * len(relevant))}, theirs, tol=1e-4) != []
