"""XQuAD-R article split and parallel training conversion, on the real LAReQA files or tests/resources/data's slice
(every article, fewer questions: 128 training and 16 test questions instead of 816 and 374)."""

import json
import os
import shutil

import pytest

from hybrid_tevatron.data import xquad_train as xt

QUESTIONS = {"shared": {"train": 816, "test": 374}, "resources": {"train": 128, "test": 16}}


@pytest.fixture(scope="module")
def xquad_dir(shared_data):
    return os.path.join(shared_data, "xquad-r")


@pytest.fixture(scope="module")
def questions(data_kind):
    return QUESTIONS[data_kind]


@pytest.fixture(scope="module")
def train_out(xquad_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("xq-train"))
    stats = xt.convert(xquad_dir, out)
    return out, stats


def _read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_split_rule_and_pinned_titles(xquad_dir):
    data = xt.load_xquad(xquad_dir, ["en", "th"])
    titles = [a["title"] for a in data["en"]]
    train, test = xt.split_articles(titles)
    assert tuple(test) == xt.TEST_ARTICLES
    assert len(train) == 32 and len(test) == 16
    assert not set(train) & set(test) and set(train) | set(test) == set(titles)
    assert test == [titles[i] for i in range(2, 48, 3)]
    with pytest.raises(ValueError, match="offset"):
        xt.split_articles(titles, every=3, offset=3)


def test_validation_split_is_carved_from_training_articles(xquad_dir, tmp_path):
    titles = [a["title"] for a in xt.load_xquad(xquad_dir, ["en"])["en"]]
    train, test = xt.split_articles(titles)
    kept, val = xt.split_validation(train, 8)
    assert val == [train[j] for j in (7, 15, 23, 31)] and kept == [t for t in train if t not in val]
    assert xt.split_validation(train, 0) == (train, [])
    with pytest.raises(ValueError, match="val_every"):
        xt.split_validation(train, 1)
    out = tmp_path / "wiki"
    stats = xt.convert(xquad_dir, str(out), languages=["en", "de"], val_every=8)
    assert stats["articles"] == 28 and (out / "val_articles.txt").read_text().split("\n")[:-1] == val
    split = json.loads((out / "split.json").read_text())
    assert split["val"] == val and split["test"] == test and not set(split["train"]) & set(val)
    trained = {row["query_id"] for row in _read(out / "en.jsonl")}
    held = {qa["id"] for a in xt.load_xquad(xquad_dir, ["en"])["en"] if a["title"] in val
            for p in a["paragraphs"] for qa in p["qas"]}
    assert held and not trained & held


def test_train_files_counts_and_alignment(train_out, questions):
    out, stats = train_out
    n = questions["train"]
    assert sorted(f for f in os.listdir(out) if f.endswith(".jsonl")) == [f"{l}.jsonl" for l in xt.TRAIN_LANGUAGES]
    assert not any(f.endswith(".tmp") for f in os.listdir(out))
    assert stats["queries"] == n and stats["articles"] == 32
    split = json.load(open(os.path.join(out, "split.json")))
    assert tuple(split["test"]) == xt.TEST_ARTICLES and split["written"] == "train"
    written = open(os.path.join(out, "test_articles.txt"), encoding="utf-8").read().split("\n")[:-1]
    assert tuple(written) == xt.TEST_ARTICLES
    assert open(os.path.join(out, "train_articles.txt"), encoding="utf-8").read().split("\n")[:-1] == split["train"]
    rows = {lang: _read(os.path.join(out, f"{lang}.jsonl")) for lang in xt.TRAIN_LANGUAGES}
    ref = rows["en"]
    assert len(ref) == n and len({r["query_id"] for r in ref}) == n
    for lang, rs in rows.items():
        assert [r["query_id"] for r in rs] == [r["query_id"] for r in ref], lang
        for r, e in zip(rs, ref):
            assert [p["docid"] for p in r["positive_passages"]] == [p["docid"] for p in e["positive_passages"]]
            assert [p["docid"] for p in r["negative_passages"]] == [p["docid"] for p in e["negative_passages"]]
    assert len({r["positive_passages"][0]["docid"] for r in ref}) == stats["positive_docids"]


def test_positives_are_gold_sentences_and_negatives_never_hold_them(train_out, xquad_dir):
    out, _ = train_out
    data = xt.load_xquad(xquad_dir, list(xt.TRAIN_LANGUAGES))
    for lang in xt.TRAIN_LANGUAGES:
        answers = {q["id"]: q["answers"][0]["text"] for a in data[lang] for p in a["paragraphs"] for q in p["qas"]}
        rows = _read(os.path.join(out, f"{lang}.jsonl"))
        text_of = {}
        contained = 0
        for r in rows:
            pos = r["positive_passages"][0]
            contained += answers[r["query_id"]] in pos["text"]
            negs = r["negative_passages"]
            assert len(negs) >= 3, r["query_id"]
            assert pos["docid"] not in {n["docid"] for n in negs}
            assert pos["text"] not in {n["text"] for n in negs}, (lang, r["query_id"])
            for p in [pos] + negs:  # a docid has one text per language
                assert text_of.setdefault(p["docid"], p["text"]) == p["text"], (lang, p["docid"])
        # LAReQA counts the sentence holding answer_start; a few answers run past that sentence's end
        assert contained / len(rows) > 0.98, lang  # tr: 805 of 816


def test_no_test_article_text_in_training_output(train_out, xquad_dir, questions):
    out, _ = train_out
    data = xt.load_xquad(xquad_dir, list(xt.ALL_LANGUAGES))
    test_text, test_ids = set(), set()
    for lang in xt.ALL_LANGUAGES:
        for a in data[lang]:
            if a["title"] in xt.TEST_ARTICLES:
                for p in a["paragraphs"]:
                    test_text.update(p["sentences"])
                    test_text.update(q["question"] for q in p["qas"])
                    test_ids.update(q["id"] for q in p["qas"])
    assert len(test_ids) == questions["test"]
    for lang in xt.TRAIN_LANGUAGES:
        for r in _read(os.path.join(out, f"{lang}.jsonl")):
            assert r["query_id"] not in test_ids
            texts = [r["query"]] + [p["text"] for p in r["positive_passages"] + r["negative_passages"]]
            leaked = [t for t in texts if t in test_text]
            assert not leaked, (lang, r["query_id"], leaked)
            docs = [p["docid"] for p in r["positive_passages"] + r["negative_passages"]]
            assert not [d for d in docs if d.split("/p")[0] in xt.TEST_ARTICLES]


def test_test_split_and_language_filter(xquad_dir, questions, tmp_path):
    stats = xt.convert(xquad_dir, str(tmp_path), languages=["en", "el"], split="test")
    assert stats["queries"] == questions["test"] and stats["languages"] == ["en", "el"]
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".jsonl")) == ["el.jsonl", "en.jsonl"]
    with pytest.raises(ValueError, match="unknown XQuAD-R languages"):
        xt.convert(xquad_dir, str(tmp_path), languages=["xx"])


def test_errors_name_file_and_question(xquad_dir, tmp_path):
    for lang in ("en", "de"):
        shutil.copy(os.path.join(xquad_dir, f"{lang}.json"), tmp_path / f"{lang}.json")
    de = json.load(open(tmp_path / "de.json", encoding="utf-8"))
    qa = de["data"][0]["paragraphs"][1]["qas"][0]
    qa["answers"][0]["answer_start"] = 10**6
    json.dump(de, open(tmp_path / "de.json", "w", encoding="utf-8"))
    with pytest.raises(ValueError, match=rf"de.json article 0 \(Super_Bowl_50\) paragraph 1: question {qa['id']}"):
        xt.convert(str(tmp_path), str(tmp_path / "out"), languages=["en", "de"])
    qa["id"] = "renamed"
    json.dump(de, open(tmp_path / "de.json", "w", encoding="utf-8"))
    with pytest.raises(ValueError, match=r"de.json: article 0 \(Super_Bowl_50\) paragraph 1: question ids differ"):
        xt.load_xquad(str(tmp_path), ["en", "de"])
    with pytest.raises(xt.DataError, match="zh.json"):
        xt.load_xquad(str(tmp_path), ["en", "zh"])


def test_cli_print_split(capsys):
    assert xt.main(["--print_split", "test"]) == 0
    assert tuple(capsys.readouterr().out.split()) == xt.TEST_ARTICLES
