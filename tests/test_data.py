"""Readers: per-language Tevatron JSONL / HF datasets -> ParallelCorpus, CLI specs, validation errors."""

import json
import os

import numpy as np
import pytest

from hybrid_tevatron.arguments import HybridDataArguments
from hybrid_tevatron.data import (
    DataError,
    load_hf_source,
    load_jsonl_source,
    load_sources,
    parse_extra_source,
    parse_train_files,
)
from hybrid_tevatron.testing import LANGUAGES


def rec(qid, query, pos, neg=(), title=""):
    """A Tevatron record; pos/neg are lists of (docid, text)."""
    return {
        "query_id": qid,
        "query": query,
        "positive_passages": [{"docid": d, "title": title, "text": t} for d, t in pos],
        "negative_passages": [{"docid": d, "title": title, "text": t} for d, t in neg],
    }


def write(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return str(path)


def pair(tmp_path, en, de):
    return {"en": write(tmp_path / "en.jsonl", en), "de": write(tmp_path / "de.jsonl", de)}


def good(lang):
    return [
        rec("q1", f"{lang} query one", [("d1", f"{lang} p1")], [("d2", f"{lang} p2"), ("d3", f"{lang} p3")]),
        rec("q2", f"{lang} query two", [("d2", f"{lang} p2")], [("d1", f"{lang} p1")]),
    ]


# ------------------------------------------------------------------------------------------------ reading
def test_reads_parallel_fixture(parallel_dir):
    files = parse_train_files([parallel_dir])
    assert list(files) == sorted(LANGUAGES)
    c = load_jsonl_source("fx", files, group_size=5)
    assert len(c) == 40 and c.languages == sorted(LANGUAGES)
    rows = {lang: [json.loads(l) for l in open(p, encoding="utf-8")] for lang, p in files.items()}
    for q in range(len(c)):
        qid = c.query_ids[q]
        for lang in c.languages:
            r = rows[lang][q]
            assert r["query_id"] == qid and c.query_text(lang, q) == r["query"]
            assert [c.doc_ids[d] for d in c.positives(q)] == [p["docid"] for p in r["positive_passages"]]
            assert [c.doc_ids[d] for d in c.negatives(q, lang)] == [p["docid"] for p in r["negative_passages"]]
            for p in r["positive_passages"] + r["negative_passages"]:
                assert c.passage_text(lang, c.doc_ids.index(p["docid"])) == p["text"]
    assert c.pos_docs.dtype == np.int64 and c.neg_offsets[-1] == 40 * 4


def test_alignment_union_order_and_title(tmp_path):
    en = [rec("q1", "one", [("d1", "p1")], [("d2", "p2")], title="T"),
          rec("q2", "two", [("d2", "p2")], [("d3", "p3")], title="T")]
    de = [rec("q2", "zwei", [("d2", "P2")], [("d4", "P4"), ("d3", "P3")], title="T"),
          rec("q1", "eins", [("d1", "P1")], [("d5", "P5")], title="T")]
    c = load_jsonl_source("s", pair(tmp_path, en, de), passage_field_separator=" | ")
    assert c.query_ids == ["q1", "q2"] and c.queries["de"] == ["eins", "zwei"]
    ids = lambda ds: [c.doc_ids[d] for d in ds]  # noqa: E731
    assert ids(c.negatives(0)) == ["d2", "d5"] and ids(c.negatives(1)) == ["d3", "d4"]
    assert ids(c.negatives(1, "en")) == ["d3"]  # d4 has no English text
    assert ids(c.negatives(0, "de")) == ["d2", "d5"]  # d2's German text comes from q2's record
    assert c.passage_text("en", c.doc_ids.index("d1")) == "T | p1"
    assert c.passage_text("en", c.doc_ids.index("d4")) is None


def test_integer_ids_and_missing_negatives_key(tmp_path):
    en = [{"query_id": 7, "query": "x", "positive_passages": [{"docid": 70, "text": "p"}]}]
    c = load_jsonl_source("s", {"en": write(tmp_path / "en.jsonl", en)})
    assert c.query_ids == ["7"] and c.doc_ids == ["70"] and len(c.negatives(0)) == 0


# ------------------------------------------------------------------------------------------------ errors
def err(tmp_path, en, de, match, group_size=1):
    files = pair(tmp_path, en, de)
    with pytest.raises(DataError, match=match) as e:
        load_jsonl_source("s", files, group_size=group_size)
    return str(e.value)


def test_malformed_json(tmp_path):
    msg = err(tmp_path, good("en")[:1] + ['{"query_id": "q2", '], good("de"), "malformed JSON")
    assert f"{tmp_path / 'en.jsonl'}:2" in msg


@pytest.mark.parametrize("key", ["query_id", "query", "positive_passages"])
def test_missing_key(tmp_path, key):
    bad = good("de")
    del bad[1][key]
    msg = err(tmp_path, good("en"), bad, f"missing key '{key}'")
    assert f"{tmp_path / 'de.jsonl'}:2" in msg


def test_missing_passage_text_key(tmp_path):
    bad = good("en")
    del bad[0]["negative_passages"][1]["text"]
    msg = err(tmp_path, bad, good("de"), "missing key 'text'")
    assert "en.jsonl:1" in msg and "'d3'" in msg and "'q1'" in msg


def test_empty_file(tmp_path):
    msg = err(tmp_path, good("en"), [], "empty")
    assert "de.jsonl" in msg
    write(tmp_path / "blank.jsonl", ["", "  "])
    with pytest.raises(DataError, match="blank.jsonl: empty"):
        load_jsonl_source("s", {"xx": str(tmp_path / "blank.jsonl")})


def test_empty_query_and_empty_passage(tmp_path):
    bad = good("de")
    bad[1]["query"] = "  "
    msg = err(tmp_path, good("en"), bad, "empty query text")
    assert "de.jsonl:2" in msg and "'q2'" in msg
    bad = good("en")
    bad[1]["positive_passages"][0]["text"] = ""
    msg = err(tmp_path, bad, good("de"), "empty passage text")
    assert "en.jsonl:2" in msg and "'d2'" in msg


def test_duplicate_query_id_names_both_lines(tmp_path):
    msg = err(tmp_path, good("en") + [good("en")[0]], good("de"), "duplicate query id 'q1'")
    assert "en.jsonl:3" in msg and "en.jsonl:1" in msg
    msg = err(tmp_path, good("en"), [good("de")[1]] + good("de"), "duplicate query id 'q2'")
    assert "de.jsonl:3" in msg and "de.jsonl:1" in msg


def test_query_missing_in_a_language(tmp_path):
    msg = err(tmp_path, good("en"), good("de")[:1], "query id 'q2'.*missing in language 'de'")
    assert "de.jsonl" in msg
    extra = good("de") + [rec("q9", "neun", [("d1", "de p1")])]
    msg = err(tmp_path, good("en"), extra, "query id 'q9' is in language 'de' but missing in language 'en'")
    assert "de.jsonl:3" in msg and "en.jsonl" in msg


def test_positive_without_text_in_a_language(tmp_path):
    en = good("en") + [rec("q3", "three", [("d9", "p9")])]
    de = good("de") + [rec("q3", "drei", [("d1", "de p1")])]  # German record lists another positive
    msg = err(tmp_path, en, de, "positive docid 'd9' of query id 'q3' has no text in language 'de'")
    assert "de.jsonl" in msg


def test_text_differs_within_language_names_both_lines(tmp_path):
    bad = good("en")
    bad[1]["negative_passages"][0]["text"] = "another p1"
    msg = err(tmp_path, bad, good("de"), "docid 'd1' has a different text in language 'en'")
    assert "en.jsonl:2" in msg and "en.jsonl:1" in msg


def test_positive_and_negative_conflict(tmp_path):
    de = good("de")
    de[0]["negative_passages"].append({"docid": "d1", "text": "de p1"})
    err(tmp_path, good("en"), de, "docid 'd1' is both positive and negative for query id 'q1'")


def test_zero_negatives_only_with_group_size_above_one(tmp_path):
    en = good("en")
    de = good("de")
    de[1]["negative_passages"] = []
    en[1]["negative_passages"] = [{"docid": "d8", "text": "only english"}]
    load_jsonl_source("s", pair(tmp_path, en, de), group_size=1)
    msg = err(tmp_path, en, de, "query id 'q2' has no negative passage with text in language 'de'", group_size=2)
    assert "de.jsonl" in msg


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: no such file"):
        load_jsonl_source("s", {"en": str(tmp_path / "nope.jsonl")})


# ------------------------------------------------------------------------------------------------ specs
def test_parse_specs(parallel_dir, tmp_path):
    en, de = os.path.join(parallel_dir, "en.jsonl"), os.path.join(parallel_dir, "de.jsonl")
    assert parse_train_files([f"de={de}", f"en={en}"]) == {"de": de, "en": en}
    assert parse_train_files([f"de={de},en={en}"]) == {"de": de, "en": en}
    assert parse_extra_source(f"x:en={en},de={de}") == ("x", {"en": en, "de": de})
    assert parse_extra_source(f"y:{parallel_dir}")[1] == parse_train_files([parallel_dir])
    for bad in ([en], [f"en={en}", f"en={de}"], [f"en={tmp_path}/missing.jsonl"], [str(tmp_path)], []):
        with pytest.raises(DataError):
            parse_train_files(bad)
    for bad in (f"en={en}", f":en={en}", "x:", f"x:{tmp_path}/nodir", f"x:en={en},en={de}"):
        with pytest.raises(DataError):
            parse_extra_source(bad)


def test_directory_ignores_other_files(tmp_path):
    write(tmp_path / "en.jsonl", good("en"))
    (tmp_path / "stats.json").write_text("{}")
    (tmp_path / "en.jsonl.tmp").write_text("junk")
    (tmp_path / "train_articles.txt").write_text("A\n")
    assert parse_train_files([str(tmp_path)]) == {"en": str(tmp_path / "en.jsonl")}


# ------------------------------------------------------------------------------------------------ load_sources
def test_load_sources_names_and_language_filter(parallel_dir, tmp_path):
    en = write(tmp_path / "en.jsonl", good("en"))
    args = HybridDataArguments(train_files=[parallel_dir], extra_sources=[f"small:en={en}"], train_group_size=2)
    main, small = load_sources(args)
    assert main.name == os.path.basename(parallel_dir) and small.name == "small"
    assert main.languages == sorted(LANGUAGES) and small.languages == ["en"]

    args = HybridDataArguments(train_files=[parallel_dir], extra_sources=[f"small:en={en}"],
                               languages=["zh", "en"])
    main, small = load_sources(args, group_size=1)
    assert main.languages == ["en", "zh"] and set(main.queries) == {"en", "zh"} and set(main.passages) == {"en", "zh"}
    assert small.languages == ["en"]

    files = [f"{l}={os.path.join(parallel_dir, l + '.jsonl')}" for l in ("es", "de")]
    (c,) = load_sources(HybridDataArguments(train_files=files))
    assert c.name == "main" and c.languages == ["es", "de"]

    with pytest.raises(DataError, match=r"\['fr'\] are in no training source"):
        load_sources(HybridDataArguments(train_files=[parallel_dir], languages=["en", "fr"]))
    with pytest.raises(DataError, match="source 'small' has none of --languages"):
        load_sources(HybridDataArguments(train_files=[parallel_dir], extra_sources=[f"small:en={en}"],
                                         languages=["de"]))
    with pytest.raises(DataError, match="no training data"):
        load_sources(HybridDataArguments())
    with pytest.raises(DataError, match="unique"):
        load_sources(HybridDataArguments(extra_sources=[f"a:en={en}", f"a:en={en}"]))


def test_load_sources_group_size_checks_negatives(tmp_path):
    en = write(tmp_path / "en.jsonl", [rec("q1", "x", [("d1", "p")])])
    load_sources(HybridDataArguments(train_files=[f"en={en}"], train_group_size=1))
    with pytest.raises(DataError, match="no negative passage"):
        load_sources(HybridDataArguments(train_files=[f"en={en}"], train_group_size=2))
