"""Evaluation CLI and reports on real retrieval runs over a small XQuAD-R / MLQA-R slice."""

import json
import os
import zlib

import pytest
from helpers import exit_line

from hybrid_tevatron.eval import trec as T
from hybrid_tevatron.eval.benchmarks.lareqa import build, load_lareqa
from hybrid_tevatron.eval.reports import evaluate, report
from hybrid_tevatron.eval.reports import metrics as M

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


def _write_ranks(root, manifest, work, dim=256, settings=None):
    """Flat-IP indexes (one per language and the merged ``all``) and encoded queries of trigram embeddings, then the
    exact ranks of the manifest's searches (all, or those of ``settings``) into ``work/ranks``."""
    import numpy as np
    import pandas as pd

    from hybrid_tevatron.eval.pipeline.ranks import rank_plan
    from hybrid_tevatron.eval.pipeline.search_plan import plan_from_manifest

    every_ids, every_vecs = [], []
    for lang, corpus in manifest["corpora"].items():
        with open(os.path.join(root, corpus["path"]), encoding="utf-8") as f:
            recs = [json.loads(line) for line in f]
        vecs = _trigram_embed([r["contents"] for r in recs], dim)
        _index(os.path.join(work, "index", "lang", lang), [r["id"] for r in recs], vecs)
        every_ids += [r["id"] for r in recs]
        every_vecs.append(vecs)
        with open(os.path.join(root, manifest["topics"][lang]["path"]), encoding="utf-8") as f:
            topics = [line.rstrip("\n").split("\t") for line in f]
        os.makedirs(os.path.join(work, "queries", lang), exist_ok=True)
        pd.DataFrame({"id": [t[0] for t in topics], "text": [t[1] for t in topics],
                      "embedding": list(_trigram_embed([t[1] for t in topics], dim))}).to_pickle(
            os.path.join(work, "queries", lang, "embedding.pkl"))
    _index(os.path.join(work, "index", "all"), every_ids, np.concatenate(every_vecs))
    plan = plan_from_manifest(manifest)
    plan = plan.at(root)
    only = [s.name for s in plan.searches if settings is None or s.setting in settings]
    rank_plan(plan, os.path.join(work, "index"), os.path.join(work, "queries"), os.path.join(work, "ranks"),
              only=only)
    return os.path.join(work, "ranks")


def _index(folder, ids, x):
    import faiss

    os.makedirs(folder, exist_ok=True)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    faiss.write_index(index, os.path.join(folder, "index"))
    with open(os.path.join(folder, "docid"), "w", encoding="utf-8") as f:
        f.writelines(d + "\n" for d in ids)


@pytest.fixture(scope="module")
def xquad_eval(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    root = str(base / "lareqa")
    manifest = build(load_lareqa(os.path.join(shared_data, "xquad-r"), languages=LANGS, max_questions=60), root)
    _write_ranks(root, manifest, str(base / "t256"))
    _write_ranks(root, manifest, str(base / "t32"), dim=32)
    return root, manifest, base


def test_evaluate_cli_writes_results_report_and_heatmap(xquad_eval, capsys):
    root, manifest, base = xquad_eval
    out = base / "out-full"
    rc = evaluate.main(["--manifest", root, "--ranks_dir", str(base / "t256" / "ranks"), "--output_dir", str(out),
                        "--name", "trigram", "--seen_languages", "en", "de"])
    assert rc == 0
    printed = capsys.readouterr()
    assert f"json: {out / 'results.json'}" in printed.out and "[20/20] multi.zh" in printed.err
    res = report.load_results(str(out))
    assert res["name"] == "trigram" and res["dataset"] == "xquad-r" and res["languages"] == LANGS

    # the numbers are the means of the per-query metrics from the ranks, macro-averaged as documented
    mono_en = evaluate.search_metrics(evaluate.read_ranks(str(base / "t256" / "ranks" / "mono.en.tsv")),
                                      T.read_qrels(f"{root}/qrels/mono.en.txt"))
    assert res["settings"]["mono"]["per_language"]["en"]["map"] == pytest.approx(M.mean(mono_en, "map"))
    pairs = res["settings"]["cross"]["per_pair"]
    assert len(pairs) == 12
    de_row = [pairs[f"de-{y}"]["map"] for y in ("en", "es", "zh")]
    assert res["settings"]["cross"]["per_query_language"]["de"]["map"] == pytest.approx(sum(de_row) / 3)
    assert res["summary"]["cross.map"] == pytest.approx(sum(p["map"] for p in pairs.values()) / 12)
    multi = res["settings"]["multi"]["per_language"]
    assert res["summary"]["rank_distance"] == pytest.approx(sum(v["rank_distance"] for v in multi.values()) / 4)
    assert all(v["unretrieved_relevant"] == 0 for v in multi.values())
    assert all(info["queries_missing"] == 0 for info in res["searches"].values()) and res["notes"] == []
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


def test_missing_ranks_are_named(xquad_eval, tmp_path, capsys):
    root, manifest, base = xquad_eval
    ranks = _write_ranks(root, manifest, str(tmp_path / "w"), settings={"mono"})
    exit_line(evaluate.main, ["--manifest", root, "--ranks_dir", ranks, "--output_dir", str(tmp_path / "o")])
    assert "no ranks for 16 of 20 searches, e.g. cross.en-de" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert evaluate.main(["--manifest", root, "--ranks_dir", ranks, "--output_dir", str(tmp_path / "o"),
                          "--settings", "mono"]) == 0
    res = report.load_results(str(tmp_path / "o" / "results.json"))
    assert set(res["settings"]) == {"mono"} and os.path.exists(tmp_path / "o" / "cross_map.png")
    os.rename(os.path.join(ranks, "mono.en.tsv"), os.path.join(ranks, "mono.en.tsv.tmp"))
    with pytest.raises(T.EvalError, match="mono.en.tsv: ranks not found"):
        evaluate.evaluate_pool(root, ranks, settings=["mono"])
    os.rename(os.path.join(ranks, "mono.en.tsv.tmp"), os.path.join(ranks, "mono.en.tsv"))
    with open(os.path.join(ranks, "mono.de.tsv"), "a", encoding="utf-8") as f:
        f.write("q1-de\tde-1\tfirst\t0.5\n")
    with pytest.raises(T.EvalError, match=r"mono.de.tsv:\d+: rank 'first' is not an integer"):
        evaluate.evaluate_pool(root, ranks, settings=["mono"])


def test_compare_cli_side_by_side(xquad_eval, shared_data, tmp_path, capsys):
    root, manifest, base = xquad_eval
    a = evaluate.evaluate_pool(root, str(base / "t256" / "ranks"), name="full")
    b = evaluate.evaluate_pool(root, str(base / "t32" / "ranks"), name="cut")
    mroot = str(tmp_path / "mlqa")
    mmanifest = build(load_lareqa(os.path.join(shared_data, "mlqa-r"), max_questions=40), mroot)
    c = evaluate.evaluate_pool(mroot, _write_ranks(mroot, mmanifest, str(tmp_path / "mw")), name="full")
    paths = []
    for r in (a, b, c):
        paths.append(evaluate.write_reports(r, str(tmp_path / f"{r['dataset']}-{r['name']}"))["json"])
    out = tmp_path / "cmp"
    assert report.main(["--compare", *paths, "--names", "zero-shot", "trigram-32", "zero-shot",
                        "--output", str(out)]) == 0
    assert f"plot: {out / 'compare.png'}" in capsys.readouterr().out
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "### xquad-r" in md and "### mlqa-r" in md
    assert f"| trigram-32 | {b['summary']['mono.map']:.3f} | {b['summary']['cross.map']:.3f} | " \
           f"{b['summary']['multi.map']:.3f} | {b['summary']['rank_distance']:.1f} |" in md
    rows = json.loads((out / "compare.json").read_text(encoding="utf-8"))["rows"]
    assert [r["name"] for r in rows] == ["zero-shot", "trigram-32", "zero-shot"]
    assert rows[2]["dataset"] == "mlqa-r" and rows[2]["multi.map"] == pytest.approx(c["summary"]["multi.map"])
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    exit_line(report.main, ["--compare", *paths, "--names", "x", "--output", str(tmp_path / "bad")])
    assert "--names gives 1 names for 3 results files" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{}", encoding="utf-8")
    with pytest.raises(report.ReportError, match="junk.json: not a hybrid_tevatron.lareqa-results/1 results file"):
        report.load_results(str(tmp_path / "junk.json"))
