"""Evaluation CLI and reports on real retrieval runs over a small XQuAD-R / MLQA-R slice."""

import json
import os
import zlib

import pytest

from hybrid_tevatron.eval import evaluate, report
from hybrid_tevatron.eval import metrics as M
from hybrid_tevatron.eval.lareqa import build, load_lareqa

LANGS = ["en", "de", "es", "zh"]


def _trigram_embed(texts, dim=256):
    """Hashed character-trigram counts, L2-normalised: a real (if weak) lexical retriever, deterministic."""
    import numpy as np

    x = np.zeros((len(texts), dim), dtype="float32")
    for i, t in enumerate(texts):
        t = f"  {t.lower()}  "
        for j in range(len(t) - 2):
            x[i, zlib.crc32(t[j:j + 3].encode()) % dim] += 1
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def _write_runs(root, manifest, runs_dir, hits=None, only=None):
    """Faiss flat-IP search for every search of the manifest; ``{search}.trec`` in Pyserini's format."""
    import faiss

    os.makedirs(runs_dir, exist_ok=True)
    indexes, every = {}, []
    for pool, corpus in manifest["corpora"].items():
        with open(os.path.join(root, corpus["path"]), encoding="utf-8") as f:
            recs = [json.loads(line) for line in f]
        every += recs
        for name, part in ((pool, recs), ("all", every)):  # "all": the union of the language pools
            index = faiss.IndexFlatIP(256)
            index.add(_trigram_embed([r["contents"] for r in part]))
            indexes[name] = (index, [r["id"] for r in part])
    for s in manifest["searches"]:
        if only and s["setting"] not in only:
            continue
        with open(os.path.join(root, s["topics"]), encoding="utf-8") as f:
            topics = [line.rstrip("\n").split("\t") for line in f]
        index, ids = indexes[s["pool"]]
        scores, idx = index.search(_trigram_embed([t[1] for t in topics]), min(hits or s["pool_size"], s["pool_size"]))
        with open(os.path.join(runs_dir, s["run"]), "w", encoding="utf-8") as f:
            for (qid, _), row, irow in zip(topics, scores, idx):
                for rank, (score, i) in enumerate(zip(row, irow), 1):
                    f.write(f"{qid} Q0 {ids[i]} {rank} {score:.6f} Faiss\n")


@pytest.fixture(scope="module")
def xquad_eval(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    root = str(base / "lareqa")
    manifest = build(load_lareqa(os.path.join(shared_data, "xquad-r"), languages=LANGS, max_questions=60), root)
    _write_runs(root, manifest, str(base / "runs" / "full"))
    _write_runs(root, manifest, str(base / "runs" / "cut"), hits=10)
    return root, manifest, base


def test_evaluate_cli_writes_results_report_and_heatmap(xquad_eval, capsys):
    root, manifest, base = xquad_eval
    out = base / "out-full"
    rc = evaluate.main(["--manifest", root, "--runs_dir", str(base / "runs" / "full"), "--output_dir", str(out),
                        "--name", "trigram", "--seen_languages", "en", "de"])
    assert rc == 0
    printed = capsys.readouterr()
    assert f"json: {out / 'results.json'}" in printed.out and "[20/20] multi.zh" in printed.err
    res = report.load_results(str(out))
    assert res["name"] == "trigram" and res["dataset"] == "xquad-r" and res["languages"] == LANGS

    # the numbers are the pytrec_eval means of the run files, macro-averaged as documented
    mono_en = M.evaluate_run(str(base / "runs" / "full" / "mono.en.trec"), M.read_qrels(f"{root}/qrels/mono.en.txt"))
    assert res["settings"]["mono"]["per_language"]["en"]["map"] == pytest.approx(M.mean(mono_en["per_query"], "map"))
    pairs = res["settings"]["cross"]["per_pair"]
    assert len(pairs) == 12
    de_row = [pairs[f"de-{y}"]["map"] for y in ("en", "es", "zh")]
    assert res["settings"]["cross"]["per_query_language"]["de"]["map"] == pytest.approx(sum(de_row) / 3)
    assert res["summary"]["cross.map"] == pytest.approx(sum(p["map"] for p in pairs.values()) / 12)
    multi = res["settings"]["multi"]["per_language"]
    assert res["summary"]["rank_distance"] == pytest.approx(sum(v["rank_distance"] for v in multi.values()) / 4)
    assert all(v["unretrieved_relevant"] == 0 for v in multi.values())
    assert all(info["full_ranking"] for info in res["searches"].values()) and res["notes"] == []
    # a lexical retriever: same-language search is much easier than cross-language
    assert res["summary"]["mono.map"] > res["summary"]["cross.map"] > 0
    su = res["seen_unseen"]
    assert su["seen"] == ["en", "de"] and set(su["cross"]) == {"seen→seen", "seen→unseen", "unseen→seen",
                                                              "unseen→unseen"}
    assert su["cross"]["seen→seen"]["pairs"] == 2

    md = (out / "results.md").read_text(encoding="utf-8")
    assert f"| trigram | {res['summary']['mono.map']:.3f} | {res['summary']['cross.map']:.3f} |" in md
    assert f"{res['summary']['rank_distance']:.1f}" in md
    assert f"| de | {pairs['de-en']['map']:.3f} | {res['settings']['mono']['per_language']['de']['map']:.3f} |" in md
    png = (out / "cross_map.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_cut_runs_are_flagged_and_rank_distance_uses_expected_ranks(xquad_eval):
    root, manifest, base = xquad_eval
    res = evaluate.evaluate_lareqa(root, str(base / "runs" / "cut"), settings=["multi"])
    assert set(res["settings"]) == {"multi"} and "mono.map" not in res["summary"]
    multi = res["settings"]["multi"]["per_language"]
    assert all(v["unretrieved_relevant"] > 0 for v in multi.values())
    assert any("not full rankings (fewest hits per query: 10)" in n for n in res["notes"])
    full = evaluate.evaluate_lareqa(root, str(base / "runs" / "full"), settings=["multi"])
    # cut at 10: R@10 is unchanged, mAP can only drop
    for lang in LANGS:
        assert multi[lang]["recall_10"] == pytest.approx(full["settings"]["multi"]["per_language"][lang]["recall_10"])
        assert multi[lang]["map"] <= full["settings"]["multi"]["per_language"][lang]["map"] + 1e-12
    out = evaluate.write_reports(res, str(base / "out-cut"))
    assert "heatmap" not in out  # no mono/cross results, no matrix
    assert "not full rankings" in open(out["markdown"], encoding="utf-8").read()


def test_missing_runs_are_named(xquad_eval, tmp_path, capsys):
    root, manifest, base = xquad_eval
    runs = tmp_path / "runs"
    _write_runs(root, manifest, str(runs), hits=5, only={"mono"})
    rc = evaluate.main(["--manifest", root, "--runs_dir", str(runs), "--output_dir", str(tmp_path / "o")])
    assert rc == 2
    assert "16 of 20 run files missing, e.g. cross.en-de.trec" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert evaluate.main(["--manifest", root, "--runs_dir", str(runs), "--output_dir", str(tmp_path / "o"),
                          "--settings", "mono"]) == 0
    res = report.load_results(str(tmp_path / "o" / "results.json"))
    assert set(res["settings"]) == {"mono"} and os.path.exists(tmp_path / "o" / "cross_map.png")
    os.rename(runs / "mono.en.trec", runs / "mono.en.trec.tmp")
    with pytest.raises(M.EvalError, match="1 of 4 run files missing, e.g. mono.en.trec"):
        evaluate.evaluate_lareqa(root, str(runs), settings=["mono"])


def test_compare_cli_side_by_side(xquad_eval, shared_data, tmp_path, capsys):
    root, manifest, base = xquad_eval
    a = evaluate.evaluate_lareqa(root, str(base / "runs" / "full"), name="full")
    b = evaluate.evaluate_lareqa(root, str(base / "runs" / "cut"), name="cut")
    mroot = str(tmp_path / "mlqa")
    mmanifest = build(load_lareqa(os.path.join(shared_data, "mlqa-r"), max_questions=40), mroot)
    _write_runs(mroot, mmanifest, str(tmp_path / "mruns"))
    c = evaluate.evaluate_lareqa(mroot, str(tmp_path / "mruns"), name="full")
    paths = []
    for r in (a, b, c):
        paths.append(evaluate.write_reports(r, str(tmp_path / f"{r['dataset']}-{r['name']}"))["json"])
    out = tmp_path / "cmp"
    assert report.main(["--compare", *paths, "--names", "zero-shot", "zero-shot@10", "zero-shot",
                        "--output", str(out)]) == 0
    assert f"plot: {out / 'compare.png'}" in capsys.readouterr().out
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "### xquad-r" in md and "### mlqa-r" in md
    assert f"| zero-shot@10 | {b['summary']['mono.map']:.3f} | {b['summary']['cross.map']:.3f} | " \
           f"{b['summary']['multi.map']:.3f} | {b['summary']['rank_distance']:.1f} |" in md
    rows = json.loads((out / "compare.json").read_text(encoding="utf-8"))["rows"]
    assert [r["name"] for r in rows] == ["zero-shot", "zero-shot@10", "zero-shot"]
    assert rows[2]["dataset"] == "mlqa-r" and rows[2]["multi.map"] == pytest.approx(c["summary"]["multi.map"])
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert report.main(["--compare", *paths, "--names", "x", "--output", str(tmp_path / "bad")]) == 2
    assert "--names gives 1 names for 3 results files" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{}", encoding="utf-8")
    with pytest.raises(report.ReportError, match="junk.json: not a hybrid_tevatron.lareqa-results/1 results file"):
        report.load_results(str(tmp_path / "junk.json"))
