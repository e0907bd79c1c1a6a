"""Search plans as typed records (hybrid_tevatron.eval.pipeline.search_plan): plan.json keeps its keys, their
order and its null values through load_plan / write_plan (a LAReQA pool plan and MIRACL's), and readers get
attributes."""

import json

import pytest
from helpers import write_miracl_fixture

from hybrid_tevatron.eval.benchmarks import miracl
from hybrid_tevatron.eval.pipeline.search_plan import PLAN_FORMAT, Search, SearchPlan, load_plan, select, write_plan
from hybrid_tevatron.eval.pipeline.search_plan import plan_from_manifest as from_manifest
from hybrid_tevatron.eval.runner import StepError

LAREQA_ARGS = ["-c", "-q", "-m", "map", "-m", "recall.1,10", "-m", "ndcg_cut.10"]


def _text(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _manifest() -> dict:
    """A two-language pool manifest (LAReQA's shape; the multi searches with a caption pool's ``exclude``)."""
    searches = []
    for x in ("en", "de"):
        for y in ("en", "de"):
            searches.append({"name": f"cross.{x}-{y}", "setting": "cross", "query_lang": x, "pool": y,
                             "topics": f"topics/{x}.tsv", "qrels": f"qrels/cross.{x}-{y}.txt", "pool_size": 5,
                             "queries": 3, "relevant": 3, "run": f"cross.{x}-{y}.trec"})
        searches.append({"name": f"multi.{x}", "setting": "multi", "query_lang": x, "pool": "all",
                         "topics": f"topics/{x}.tsv", "qrels": f"qrels/multi.{x}.txt", "pool_size": 12,
                         "queries": 3, "relevant": 6, "exclude": f"exclude/multi.{x}.txt", "run": f"multi.{x}.trec"})
    return {"format": "hybrid_tevatron.lareqa/1", "dataset": "xquad-r", "languages": ["en", "de"],
            "corpora": {"en": {"path": "corpus/en.jsonl", "size": 5}, "de": {"path": "corpus/de.jsonl", "size": 7}},
            "topics": {"en": {"path": "topics/en.tsv", "queries": 3}, "de": {"path": "topics/de.tsv", "queries": 3}},
            "searches": searches}


def _pool_plan_json(manifest: dict) -> dict:
    """plan.json of a pool manifest as plan_from_manifest has always written it (keys in this order)."""
    return {"format": PLAN_FORMAT, "kind": manifest["format"], "dataset": manifest["dataset"],
            "corpora": {"lang/en": {"path": "corpus/en.jsonl", "size": 5},
                        "lang/de": {"path": "corpus/de.jsonl", "size": 7}},
            "merged": {"all": ["lang/de", "lang/en"]},
            "queries": {"en": "topics/en.tsv", "de": "topics/de.tsv"},
            "trec_eval_args": [LAREQA_ARGS],
            "searches": [{"name": s["name"], "setting": s["setting"],
                          "index": "all" if s["pool"] == "all" else f"lang/{s['pool']}", "queries": s["query_lang"],
                          "topics": s["topics"], "qrels": s["qrels"], "hits": min(10, s["pool_size"]),
                          "pool_size": s["pool_size"], "ranks": True, "run": s["run"], "exclude": s.get("exclude")}
                         for s in manifest["searches"]]}


def test_pool_plan_round_trips_unchanged(tmp_path):
    manifest = _manifest()
    plan = from_manifest(manifest)
    path = tmp_path / "plan.json"
    write_plan(plan, str(path))
    text = path.read_text(encoding="utf-8")
    assert text == _text(_pool_plan_json(manifest))  # the same bytes as ever, "exclude": null included
    loaded = load_plan(str(tmp_path))
    assert loaded.root == str(tmp_path) and loaded.kind == "hybrid_tevatron.lareqa/1"
    assert loaded.to_json() == json.loads(text) and list(loaded.to_json()) == list(json.loads(text))
    assert loaded == plan.at(str(tmp_path))
    write_plan(loaded, str(tmp_path / "again.json"))
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == text
    # attributes
    cross = loaded.searches[0]
    assert (cross.name, cross.index, cross.queries, cross.hits, cross.pool_size, cross.ranks, cross.exclude) == \
        ("cross.en-en", "lang/en", "en", 5, 5, True, None)
    assert loaded.searches[2].exclude == "exclude/multi.en.txt" and loaded.searches[2].run_file == "multi.en.trec"
    assert loaded.corpora["lang/de"].size == 7 and loaded.merged == {"all": ("lang/de", "lang/en")}
    assert [s.name for s in select(loaded, ["multi.de", "cross.en-de"])] == ["cross.en-de", "multi.de"]
    with pytest.raises(StepError, match="nope"):
        select(loaded, ["nope"])


def test_miracl_plan_round_trips_unchanged(tmp_path):
    files = write_miracl_fixture(tmp_path / "fixture")
    out = tmp_path / "inputs"
    miracl.prepare(["de", "sw"], str(out), topics=files["topics"], qrels=files["qrels"], corpus=files["corpus"])
    text = (out / "plan.json").read_text(encoding="utf-8")
    expected = {"format": PLAN_FORMAT, "kind": "miracl",
                "corpora": {lang: {"path": f"corpus/{lang}.jsonl", "size": 120} for lang in ("de", "sw")},
                "merged": {}, "queries": {lang: f"topics/{lang}.tsv" for lang in ("de", "sw")},
                "trec_eval_args": [["-c", "-M", "100", "-m", "ndcg_cut.10"], ["-c", "-m", "recall.100"]],
                "searches": [{"name": lang, "index": lang, "queries": lang, "topics": f"topics/{lang}.tsv",
                              "qrels": f"qrels/{lang}.txt", "hits": 100, "run": f"{lang}.trec"}
                             for lang in ("de", "sw")]}
    assert text == _text(expected)  # no dataset, no pool keys
    plan = load_plan(str(out / "plan.json"))
    assert plan.root == str(out) and plan.dataset is None
    assert plan.to_json() == expected and _text(plan.to_json()) == text
    write_plan(plan, str(tmp_path / "again.json"))
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == text
    s = plan.searches[1]
    assert (s.name, s.hits, s.ranks, s.setting, s.pool_size, s.exclude, s.run_file) == \
        ("sw", 100, None, None, None, None, "sw.trec")
    assert plan.trec_eval_args[1] == ("-c", "-m", "recall.100")


def test_records_keep_unknown_keys_and_their_order():
    obj = {"name": "x", "hits": 3, "index": "i", "queries": "q", "topics": "t.tsv", "qrels": "r.txt",
           "note": {"kept": [1, 2]}, "exclude": None}
    s = Search.from_json(obj)
    assert s.to_json() == obj and list(s.to_json()) == list(obj) and s.extra == {"note": {"kept": [1, 2]}}
    assert s.run is None and s.run_file == "x.trec"
    plan = {"format": PLAN_FORMAT, "searches": [obj], "queries": {}, "corpora": {}, "trec_eval_args": [],
            "extra_key": 1}
    assert list(SearchPlan.from_json(plan).to_json()) == list(plan)


def test_a_search_without_qrels_is_a_clear_error(tmp_path):
    plan = _pool_plan_json(_manifest())
    del plan["searches"][1]["qrels"]
    (tmp_path / "plan.json").write_text(_text(plan), encoding="utf-8")
    with pytest.raises(StepError, match="plan search 2: no qrels"):
        load_plan(str(tmp_path))
