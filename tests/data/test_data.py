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


def test_missing_negatives_key(tmp_path):
    en = [{"query_id": "7", "query": "x", "positive_passages": [{"docid": "70", "text": "p"}]}]
    c = load_jsonl_source("s", {"en": write(tmp_path / "en.jsonl", en)})
    assert c.query_ids == ["7"] and c.doc_ids == ["70"] and len(c.negatives(0)) == 0


# ------------------------------------------------------------------------------------------------ errors
def err(tmp_path, en, de, match, group_size=1):
    files = pair(tmp_path, en, de)
    with pytest.raises(DataError, match=match) as e:
        load_jsonl_source("s", files, group_size=group_size)
    return str(e.value)


def test_integer_query_id_is_a_type_error(tmp_path):
    """An integer id is refused where it is, not turned into a string and reported as missing elsewhere."""
    de = good("de")
    de[1]["query_id"] = 2
    msg = err(tmp_path, good("en"), de, "'query_id' must be a non-empty string, got a number 2")
    assert msg == f"{tmp_path / 'de.jsonl'}:2: 'query_id' must be a non-empty string, got a number 2"


def test_integer_docid_is_a_type_error(tmp_path):
    en = good("en")
    en[0]["negative_passages"][1]["docid"] = 3
    msg = err(tmp_path, en, good("de"), "'docid' must be a non-empty string, got a number 3")
    assert msg.startswith(f"{tmp_path / 'en.jsonl'}:1: negative_passages[1] of query id 'q1'")


def test_non_utf8_line_names_file_and_line(tmp_path):
    files = pair(tmp_path, good("en"), good("de"))
    line = json.dumps(rec("q3", "drei", [("d3", "p3")])).encode("utf-8").replace(b"drei", b"dr\xe9i")  # Latin-1 é
    with open(files["de"], "ab") as f:
        f.write(line + b"\n")
    with pytest.raises(DataError) as e:
        load_jsonl_source("s", files)
    at = line.index(b"\xe9") + 1
    assert str(e.value) == f"{files['de']}:3: not UTF-8 (byte 0xe9 at byte {at} of the line)"


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


def test_trailing_queries_without_negatives(tmp_path):
    en = [rec("q1", "x", [("d1", "p")], [("d2", "n")]), rec("q2", "y", [("d3", "p3")])]
    files = {"en": write(tmp_path / "en.jsonl", en)}
    load_jsonl_source("s", files, group_size=1)
    with pytest.raises(DataError, match="query id 'q2' has no negative passage"):
        load_jsonl_source("s", files, group_size=2)


def test_load_sources_group_size_checks_negatives(tmp_path):
    en = write(tmp_path / "en.jsonl", [rec("q1", "x", [("d1", "p")])])
    load_sources(HybridDataArguments(train_files=[f"en={en}"], train_group_size=1))
    with pytest.raises(DataError, match="no negative passage"):
        load_sources(HybridDataArguments(train_files=[f"en={en}"], train_group_size=2))


def test_non_object_record_and_wrong_types(tmp_path):
    msg = err(tmp_path, good("en") + ["[1, 2]"], good("de"), "must be a JSON object")
    assert "en.jsonl:3" in msg
    bad = good("de")
    bad[0]["positive_passages"] = "d1"
    msg = err(tmp_path, good("en"), bad, "'positive_passages' must be a list")
    assert "de.jsonl:1" in msg and "'q1'" in msg
    bad = good("de")
    bad[1]["query_id"] = None
    assert "de.jsonl:2" in err(tmp_path, good("en"), bad, "'query_id' must be a non-empty string")
    bad = good("en")
    bad[0]["positive_passages"] = []
    assert "en.jsonl:1" in err(tmp_path, bad, good("de"), "no positive passage for query id 'q1'")


def test_duplicate_docids_in_a_record_are_merged(tmp_path):
    en = [rec("q1", "x", [("d1", "p1"), ("d1", "p1")], [("d2", "p2"), ("d2", "p2"), ("d3", "p3")])]
    c = load_jsonl_source("s", {"en": write(tmp_path / "en.jsonl", en)})
    assert list(c.positives(0)) == [0] and [c.doc_ids[d] for d in c.negatives(0)] == ["d2", "d3"]


# ------------------------------------------------------------------------------------------------ property
def test_union_and_availability_property():
    """Random parallel data where each language lists a random subset of the negatives: the corpus holds the
    union (first-seen order) and ``negatives(q, lang)`` keeps exactly those with text in ``lang``."""
    import tempfile

    from hypothesis import given, settings
    from hypothesis import strategies as st

    langs = ["en", "de", "es"]

    @settings(max_examples=30, deadline=None)
    @given(st.data())
    def check(data):
        n_q = data.draw(st.integers(1, 5))
        lists = {}
        for lang in langs:
            lists[lang] = [data.draw(st.lists(st.integers(5, 12), max_size=5, unique=True)) for _ in range(n_q)]
        with tempfile.TemporaryDirectory() as d:
            files = {}
            for lang in langs:
                rows = [rec(f"q{q}", f"{lang} q{q}", [(f"p{q}", f"{lang} p{q}")],
                            [(f"n{x}", f"{lang} n{x}") for x in lists[lang][q]]) for q in range(n_q)]
                files[lang] = write(os.path.join(d, f"{lang}.jsonl"), rows)
            c = load_jsonl_source("s", files)
        for q in range(n_q):
            union = []
            for lang in langs:
                union += [x for x in lists[lang][q] if x not in union]
            assert [c.doc_ids[i] for i in c.negatives(q)] == [f"n{x}" for x in union]
            for lang in langs:
                have = {x for l in lists[lang] for x in l}
                got = [c.doc_ids[i] for i in c.negatives(q, lang)]
                assert got == [f"n{x}" for x in union if x in have]
                assert all(c.passage_text(lang, c.doc_ids.index(g)) == f"{lang} {g}" for g in got)

    check()


# ------------------------------------------------------------------------------------------------ HF datasets
def write_hf_dataset(root, files, split="train"):
    """A local dataset directory with one config per language (what ``load_dataset(root, lang)`` reads)."""
    os.makedirs(root, exist_ok=True)
    lines = ["---", "configs:"]
    for lang, path in files.items():
        os.makedirs(os.path.join(root, lang), exist_ok=True)
        with open(path, encoding="utf-8") as src, open(os.path.join(root, lang, f"{split}.jsonl"), "w",
                                                        encoding="utf-8") as dst:
            dst.write(src.read())
        lines += [f"- config_name: {lang}", "  data_files:", f"  - split: {split}", f"    path: {lang}/{split}.jsonl"]
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines + ["---", ""]))
    return str(root)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return str(tmp_path / "hf-cache")


def test_hf_source_equals_jsonl_source(parallel_dir, tmp_path, hf_cache):
    files = parse_train_files([parallel_dir])
    root = write_hf_dataset(tmp_path / "ds", files)
    langs = ["zh", "en", "de"]
    h = load_hf_source("hf", root, langs, "train", group_size=3, cache_dir=hf_cache)
    j = load_jsonl_source("js", {l: files[l] for l in langs}, group_size=3)
    assert h.name == "hf" and h.languages == langs
    assert h.query_ids == j.query_ids and h.doc_ids == j.doc_ids
    assert h.queries == j.queries and h.passages == j.passages
    for a in ("pos_offsets", "pos_docs", "neg_offsets", "neg_docs"):
        np.testing.assert_array_equal(getattr(h, a), getattr(j, a))

    args = HybridDataArguments(dataset_name=root, languages=["es", "en"], train_group_size=2)
    (s,) = load_sources(args)
    assert s.name == root and s.languages == ["es", "en"] and len(s) == 40


def test_hf_source_errors(parallel_dir, tmp_path, hf_cache):
    files = parse_train_files([parallel_dir])
    rows = [json.loads(l) for l in open(files["de"], encoding="utf-8")]
    rows[6]["query"] = ""
    bad = {"en": files["en"], "de": write(tmp_path / "de-bad.jsonl", rows)}
    root = write_hf_dataset(tmp_path / "ds", bad)
    with pytest.raises(DataError, match=r"config de, split train\] row 6: empty query text \(query id 'q6'\)"):
        load_hf_source("hf", root, ["en", "de"], cache_dir=hf_cache)
    with pytest.raises(DataError, match=r"config fr, split train\]: cannot load"):
        load_hf_source("hf", root, ["en", "fr"], cache_dir=hf_cache)
    with pytest.raises(DataError, match="--languages"):
        load_hf_source("hf", root, [], cache_dir=hf_cache)
    with pytest.raises(DataError, match="not both"):
        load_sources(HybridDataArguments(dataset_name=root, languages=["en"], train_files=[parallel_dir]))


# ------------------------------------------------------------------------------------------------ converters
def test_reads_xquad_converter_output(shared_data, tmp_path):
    from hybrid_tevatron.data import xquad_train

    out = str(tmp_path / "xq")
    stats = xquad_train.convert(os.path.join(shared_data, "xquad-r"), out, languages=["en", "de", "zh"])
    c = load_sources(HybridDataArguments(train_files=[out], train_group_size=8))[0]
    assert c.name == "xq" and c.languages == ["de", "en", "zh"]
    assert len(c) == stats["queries"] and c.num_docs == stats["positive_docids"]
    rows = [json.loads(l) for l in open(os.path.join(out, "zh.jsonl"), encoding="utf-8")]
    for q in (0, len(rows) // 2, len(rows) - 1):
        r = rows[q]
        assert c.query_ids[q] == r["query_id"] and c.query_text("zh", q) == r["query"]
        assert c.passage_text("zh", int(c.positives(q)[0])) == r["positive_passages"][0]["text"]
        assert [c.doc_ids[d] for d in c.negatives(q, "zh")] == [p["docid"] for p in r["negative_passages"]]


def test_reads_mmarco_converter_output(tmp_path):
    from hybrid_tevatron.data import mmarco

    root = tmp_path / "mmarco"
    texts = {"english": ("what is {}", "passage {} in english"), "german": ("was ist {}", "Passage {} auf Deutsch")}
    for name, (qfmt, pfmt) in texts.items():
        qdir = root / "data" / "google" / "queries" / "train"
        cdir = root / "data" / "google" / "collections"
        qdir.mkdir(parents=True, exist_ok=True)
        cdir.mkdir(parents=True, exist_ok=True)
        (qdir / f"{name}_queries.train.tsv").write_text("".join(f"{q}\t{qfmt.format(q)}\n" for q in range(10, 16)))
        (cdir / f"{name}_collection.tsv").write_text("".join(f"{p}\t{pfmt.format(p)}\n" for p in range(12)))
    (root / "data" / "triples.train.ids.small.tsv").write_text(
        "".join(f"{q}\t{q - 10}\t{(q - 10 + k) % 12}\n" for q in range(10, 16) for k in (1, 2, 3)))
    out = str(tmp_path / "mm")
    mmarco.convert(str(root), out, languages=["en", "de"], negatives=3)
    (c,) = load_sources(HybridDataArguments(train_files=[out], train_group_size=4))
    assert c.name == "mm" and len(c) == 6 and c.languages == ["de", "en"]
    for q, qid in enumerate(c.query_ids):
        assert c.query_text("de", q) == f"was ist {qid}"
        (p,) = c.positives(q)
        assert c.passage_text("en", int(p)) == f"passage {int(qid) - 10} in english"
        assert len(c.negatives(q, "de")) == 3


def test_memory_layout(parallel_dir):
    c = load_jsonl_source("fx", parse_train_files([parallel_dir]))
    assert len(set(c.doc_ids)) == c.num_docs and len(set(c.query_ids)) == len(c)
    for arr in (c.pos_offsets, c.pos_docs, c.neg_offsets, c.neg_docs):
        assert isinstance(arr, np.ndarray) and arr.dtype == np.int64
    assert len(c.pos_offsets) == len(c.neg_offsets) == len(c) + 1
    assert all(type(c.queries[l]) is list and len(c.queries[l]) == len(c) for l in c.languages)
    assert all(type(c.passages[l]) is list and len(c.passages[l]) == c.num_docs for l in c.languages)


# ------------------------------------------------------------------------------------------------ aggregation
def test_errors_are_collected_up_to_max_errors(tmp_path):
    en = good("en") + ["{broken", rec("q3", " ", [("d1", "en p1")]), rec("q4", "four", [("d4", "")])]
    de = good("de") + [rec("q4", "vier", [("d4", "de p4")]), good("de")[0]]
    msg = err(tmp_path, en, de, "source 's': 4 data errors:")
    lines = msg.splitlines()[1:]
    assert len(lines) == 4 and all(l.startswith("  - ") for l in lines)
    assert "en.jsonl:3: malformed JSON" in lines[0]
    assert "en.jsonl:4: empty query text (query id 'q3')" in lines[1]
    assert "en.jsonl:5: positive_passages[0] of query id 'q4': empty passage text (docid 'd4')" in lines[2]
    assert "de.jsonl:4: duplicate query id 'q1' (first at" in lines[3] and "de.jsonl:1)" in lines[3]
    # q3/q4 failed in English: no cascading "missing" errors for them in German
    assert "missing" not in msg

    files = pair(tmp_path, en, de)
    with pytest.raises(DataError, match="stopped at 2 data errors") as e:
        load_jsonl_source("s", files, max_errors=2)
    assert len(str(e.value).splitlines()) == 3


def test_missing_queries_are_counted(tmp_path):
    en = good("en") + [rec(f"q{i}", f"query {i}", [(f"d{i}", f"p{i}")]) for i in range(3, 8)]
    msg = err(tmp_path, en, good("de"), r"query id 'q3' \(at .*en.jsonl:3\) is missing in language 'de' "
              r"\(and 4 more, e.g. \['q4', 'q5', 'q6', 'q7'\]\)")
    assert "de.jsonl" in msg


def test_cross_language_checks_name_the_line(tmp_path):
    en, de = good("en"), good("de")
    en[1]["negative_passages"] = []
    de[1]["negative_passages"] = [{"docid": "d9", "text": "nur deutsch"}]
    msg = err(tmp_path, en, de, "'q2' has no negative passage with text in language 'en'", group_size=2)
    assert "en.jsonl:2" in msg
    de = good("de")
    de[1]["negative_passages"].append({"docid": "d2", "text": "de p2"})  # q2's positive, as a German negative
    msg = err(tmp_path, good("en"), de, "docid 'd2' is both positive and negative for query id 'q2'")
    assert "en.jsonl:2" in msg


def test_extra_docs_of_later_languages_are_merged(tmp_path):
    en = good("en")
    de = good("de")
    de[0]["positive_passages"].append({"docid": "d7", "text": "de p7"})
    en[1]["negative_passages"].append({"docid": "d7", "text": "en p7"})  # gives d7 English text
    de[1]["negative_passages"] = [{"docid": "d8", "text": "de p8"}] + de[1]["negative_passages"]
    c = load_jsonl_source("s", pair(tmp_path, en, de))
    ids = lambda ds: [c.doc_ids[d] for d in ds]  # noqa: E731
    assert ids(c.positives(0)) == ["d1", "d7"] and ids(c.positives(1)) == ["d2"]
    assert ids(c.negatives(0)) == ["d2", "d3"] and ids(c.negatives(1)) == ["d1", "d7", "d8"]
    assert ids(c.negatives(1, "en")) == ["d1", "d7"] and ids(c.negatives(1, "de")) == ["d1", "d7", "d8"]
