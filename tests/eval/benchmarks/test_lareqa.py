"""LAReQA builder: counts on the XQuAD-R / MLQA-R files (the real ones in ../shared/data, or tests/resources/data's
slice and look-alike), gold-sentence logic, selections, bad inputs."""

import collections
import json
import os

import pytest
from helpers import exit_line

from hybrid_tevatron.eval.benchmarks import lareqa
from hybrid_tevatron.eval.benchmarks.lareqa import build, load_lareqa, load_manifest
from hybrid_tevatron.eval.benchmarks.pool import PoolError

# the counts of the data root's files: the real files (LAReQA's README) or tests/resources/data
COUNTS = {
    "shared": {
        "xquad_sentences": {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219,
                            "th": 852, "tr": 1167, "vi": 1209, "zh": 1196},
        "xquad_questions": 1190, "xquad_pool": 13014,
        "mlqa_questions": {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504},
        "mlqa_sentences": {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322},
        "mlqa_pool": 20534, "mlqa_relevant": {4: 820, 3: 263, 2: 65}, "ar-de": 207, "es-zh": 161,
    },
    "resources": {
        "xquad_sentences": {"ar": 162, "de": 161, "el": 161, "en": 161, "es": 161, "hi": 163, "ru": 161, "th": 164,
                            "tr": 161, "vi": 162, "zh": 161},
        "xquad_questions": 144, "xquad_pool": 1778,
        "mlqa_questions": {"ar": 41, "de": 58, "en": 134, "es": 38, "hi": 45, "vi": 47, "zh": 60},
        "mlqa_sentences": {"ar": 95, "de": 125, "en": 287, "es": 81, "hi": 93, "vi": 111, "zh": 121},
        "mlqa_pool": 913, "mlqa_relevant": {4: 36, 3: 83, 2: 15}, "ar-de": 12, "es-zh": 8,
    },
}
XQUAD_LANGUAGES = list(COUNTS["shared"]["xquad_sentences"])


@pytest.fixture(scope="module")
def counts(data_kind):
    return COUNTS[data_kind]

def _lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def _qrels(path):
    out = collections.defaultdict(set)
    for line in _lines(path):
        q, _, d, rel = line.split()
        assert rel == "1"
        out[q].add(d)
    return dict(out)


def _raw_answers(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {q["id"]: q["answers"][0]["text"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}


# ---------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def xquad(shared_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("lareqa") / "xquad-r")
    data = load_lareqa(os.path.join(shared_data, "xquad-r"))
    return data, build(data, out), out


def test_xquad_r_counts_match_lareqa(xquad, counts):
    data, manifest, out = xquad
    c = manifest["counts"]
    n, sentences = counts["xquad_questions"], counts["xquad_sentences"]
    assert manifest["dataset"] == "xquad-r" and manifest["parallel"] is True
    assert manifest["languages"] == XQUAD_LANGUAGES
    assert c["questions"] == {lang: n for lang in XQUAD_LANGUAGES}
    assert c["sentences"] == sentences
    assert c["pool_all"] == counts["xquad_pool"] == sum(sentences.values()) and c["unique_questions"] == n
    assert c["articles"] == {lang: 48 for lang in XQUAD_LANGUAGES}  # the slice keeps every article
    assert c["pairs"] == 110 and len(manifest["pairs"]) == 110
    assert len(manifest["searches"]) == 11 + 110 + 11
    assert c["queries"] == {"mono": 11 * n, "cross": 110 * n, "multi": 11 * n}
    # files on disk agree with the manifest
    all_ids = [json.loads(line)["id"] for lang in XQUAD_LANGUAGES
               for line in _lines(os.path.join(out, "corpus", f"{lang}.jsonl"))]
    assert len(all_ids) == len(set(all_ids)) == counts["xquad_pool"]
    for lang, size in sentences.items():
        assert len(_lines(os.path.join(out, "corpus", f"{lang}.jsonl"))) == size
        assert len(_lines(os.path.join(out, "topics", f"{lang}.tsv"))) == n
    multi = _qrels(os.path.join(out, "qrels", "multi.en.txt"))
    assert len(multi) == n and all(len(v) == 11 for v in multi.values())
    assert {d.split("-")[0] for d in multi["56beb4343aeaaa14008c925b-en"]} == set(XQUAD_LANGUAGES)
    # XQuAD-R is parallel: every cross search reuses the query language's full topic file
    assert all(s["topics"] == f"topics/{s['query_lang']}.tsv" for s in manifest["searches"])
    assert not [f for f in os.listdir(os.path.dirname(out)) if f.endswith(".tmp")]


def test_xquad_r_gold_sentences_hold_the_answers(xquad, shared_data, counts):
    data, manifest, out = xquad
    n = counts["xquad_questions"]
    corpus = {}
    for rec in (json.loads(line) for lang in XQUAD_LANGUAGES
                for line in _lines(os.path.join(out, "corpus", f"{lang}.jsonl"))):
        corpus[rec["id"]] = rec["contents"]
        assert "\t" not in rec["contents"] and "\n" not in rec["contents"] and "\ufeff" not in rec["contents"]
    for lang in XQUAD_LANGUAGES:
        answers = _raw_answers(os.path.join(shared_data, "xquad-r", f"{lang}.json"))
        mono = _qrels(os.path.join(out, "qrels", f"mono.{lang}.txt"))
        inside = sum(answers[q.rsplit("-", 1)[0]].strip() in corpus[next(iter(d))] for q, d in mono.items())
        # an answer can run past its sentence break (up to 20 of 1190 per language); an off-by-one gold would fail
        assert inside >= n - n * 25 // 1190, (lang, inside)
    assert "308" in corpus[next(iter(_qrels(os.path.join(out, "qrels", "mono.zh.txt"))["56beb4343aeaaa14008c925b-zh"]))]


def test_mlqa_r_counts_match_lareqa(shared_data, counts, tmp_path):
    data = load_lareqa(os.path.join(shared_data, "mlqa-r"))
    manifest = build(data, str(tmp_path / "mlqa-r"))
    c = manifest["counts"]
    questions, sentences = counts["mlqa_questions"], counts["mlqa_sentences"]
    assert manifest["parallel"] is False
    assert c["questions"] == questions and c["sentences"] == sentences
    assert c["pool_all"] == counts["mlqa_pool"] == sum(sentences.values()) and c["unique_questions"] == questions["en"]
    assert c["pairs"] == 42
    multi = _qrels(str(tmp_path / "mlqa-r" / "qrels" / "multi.en.txt"))
    assert collections.Counter(len(v) for v in multi.values()) == counts["mlqa_relevant"]
    cross = {s["name"]: s for s in manifest["searches"] if s["setting"] == "cross"}
    assert cross["cross.ar-de"]["queries"] == counts["ar-de"] and cross["cross.es-zh"]["queries"] == counts["es-zh"]
    assert cross["cross.ar-en"]["topics"] == "topics/ar.tsv"  # every ar question exists in en
    assert cross["cross.en-ar"]["topics"] == "topics/cross.en-ar.tsv"
    assert len(_lines(str(tmp_path / "mlqa-r" / "topics" / "cross.en-ar.tsv"))) == questions["ar"]
    first = manifest["searches"][0]
    assert len(manifest["searches"]) == 56 and {k: first[k] for k in ("name", "setting", "query_lang", "pool",
                                                                      "topics", "qrels", "pool_size")} == {
        "name": "mono.ar", "setting": "mono", "query_lang": "ar", "pool": "ar", "topics": "topics/ar.tsv",
        "qrels": "qrels/mono.ar.txt", "pool_size": sentences["ar"]}
    assert load_manifest(str(tmp_path / "mlqa-r"))["root"] == str(tmp_path / "mlqa-r")


def test_max_questions_slice_is_consistent(shared_data, tmp_path):
    full = load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en", "de", "zh"])
    part = load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en", "de", "zh"], max_questions=30)
    ids = {lang: list(p.questions) for lang, p in part.pools.items()}
    assert ids["en"] == ids["de"] == ids["zh"] == list(full.pools["en"].questions)[:30]
    held = {full.pools["en"].questions[q].article for q in ids["en"]}  # real files: article 0 holds all 30
    for lang, pool in part.pools.items():
        full_text = {c.docid: c.text for c in full.pools[lang].candidates}
        assert {c.article for c in pool.candidates} == held  # only the articles holding the 30 questions
        assert all(full_text[c.docid] == c.text for c in pool.candidates)  # docids are never renumbered
    wide = load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en", "de"], max_questions=30, full_pool=True)
    assert len(wide.pools["en"].candidates) == len(full.pools["en"].candidates)
    mlqa = load_lareqa(os.path.join(shared_data, "mlqa-r"), max_questions=70)
    union = {q for p in mlqa.pools.values() for q in p.questions}
    assert len(union) == 70 and all(p.questions for p in mlqa.pools.values())  # round-robin feeds every language
    assert build(mlqa, str(tmp_path / "m"))["selection"]["max_questions"] == 70


def test_article_selection_by_title_index_and_file(shared_data, counts, tmp_path):
    listing = tmp_path / "test_articles.txt"
    listing.write_text("# held out\nWarsaw\n\n2\n", encoding="utf-8")
    kept = load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en", "ar"], articles=[f"@{listing}"])
    titles = kept.pools["en"].titles
    assert {titles[c.article] for c in kept.pools["en"].candidates} == {"Warsaw", titles[2]}
    assert {c.article for c in kept.pools["ar"].candidates} == {1, 2}
    dropped = load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en", "ar"],
                          exclude_articles=["Warsaw", "2"])
    n_kept, n_dropped = len(kept.pools["en"].questions), len(dropped.pools["en"].questions)
    assert n_kept + n_dropped == counts["xquad_questions"]
    assert set(kept.pools["en"].questions).isdisjoint(dropped.pools["en"].questions)
    with pytest.raises(PoolError, match="found in no language file: No_such_article"):
        load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en"], articles=["No_such_article"])
    with pytest.raises(PoolError, match="found in no language file: 48"):
        load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en"], exclude_articles=["48"])
    with pytest.raises(PoolError, match="article list not found"):
        load_lareqa(os.path.join(shared_data, "xquad-r"), languages=["en"], articles=["@/nonexistent/list.txt"])


# ---------------------------------------------------------------- hand-made mini LAReQA files


def _para(context, sentences, qas):
    breaks, pos = [], 0
    for s in sentences:
        start = context.index(s, pos)
        breaks.append([start, start + len(s)])
        pos = start + len(s)
    return {"context": context, "sentences": sentences, "sentence_breaks": breaks, "qas": qas}


def _qa(qid, question, context, answer):
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}


def _write(folder, lang, articles):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lang}.json").write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")


@pytest.fixture
def mini(tmp_path):
    """Two languages; q1 in both, q2 only in en; q1's answer starts exactly at a sentence start."""
    d = tmp_path / "mini"
    en1 = "Cats sleep a lot. The sky is blue today. Rivers flow."
    en2 = "Paris is big.\tIt has a tower."
    _write(d, "en", [
        {"title": "A", "paragraphs": [_para(en1, ["Cats sleep a lot.", "The sky is blue today.", "Rivers flow."],
                                            [_qa("q1", "What colour\nis the sky?", en1, "The sky is blue")])]},
        {"title": "B", "paragraphs": [_para(en2, ["Paris is big.", "It has a tower."],
                                            [_qa("q2", "What does Paris have?", en2, "a tower")])]},
    ])
    de1 = "Katzen schlafen viel. Der Himmel ist heute blau."
    _write(d, "de", [
        {"title": "A-de", "paragraphs": [_para(de1, ["Katzen schlafen viel.", "Der Himmel ist heute blau."],
                                               [_qa("q1", "Welche Farbe hat der Himmel?", de1, "blau")])]},
    ])
    return d


def test_gold_sentences_topics_and_qrels_on_mini_files(mini, tmp_path):
    data = load_lareqa(str(mini), languages=["en", "de"])
    assert data.pools["en"].questions["q1"].gold == "en-1"  # answer_start == start of sentence 1
    assert data.pools["en"].questions["q2"].gold == "en-4"  # sentence 1 of the second article; ids run on
    assert data.pools["de"].questions["q1"].gold == "de-1"
    out = tmp_path / "out"
    manifest = build(data, str(out))
    assert [s["name"] for s in manifest["searches"]] == ["mono.en", "mono.de", "cross.en-de", "cross.de-en",
                                                         "multi.en", "multi.de"]
    assert _lines(out / "topics" / "en.tsv") == ["q1-en\tWhat colour is the sky?", "q2-en\tWhat does Paris have?"]
    assert _lines(out / "topics" / "cross.en-de.tsv") == ["q1-en\tWhat colour is the sky?"]
    assert _lines(out / "qrels" / "cross.en-de.txt") == ["q1-en 0 de-1 1"]
    assert _lines(out / "qrels" / "cross.de-en.txt") == ["q1-de 0 en-1 1"]
    assert _lines(out / "qrels" / "multi.en.txt") == ["q1-en 0 en-1 1", "q1-en 0 de-1 1", "q2-en 0 en-4 1"]
    assert _lines(out / "qrels" / "mono.de.txt") == ["q1-de 0 de-1 1"]
    assert json.loads(_lines(out / "corpus" / "en.jsonl")[4]) == {"id": "en-4", "contents": "It has a tower.",
                                                                   "lang": "en"}
    assert manifest["corpora"] == {"en": {"path": "corpus/en.jsonl", "size": 5},
                                   "de": {"path": "corpus/de.jsonl", "size": 2}}
    assert manifest["counts"]["pool_all"] == 7 and sorted(os.listdir(out / "corpus")) == ["de.jsonl", "en.jsonl"]
    assert manifest["pairs"] == [["en", "de"], ["de", "en"]]


def test_misaligned_ids_in_a_parallel_dataset(mini):
    with pytest.raises(PoolError, match=r"must be 2-way parallel: question id q2 \(in .*en.json\) is missing "
                                          r"from .*de.json"):
        load_lareqa(str(mini), languages=["en", "de"], dataset="xquad-r")


def test_missing_inputs(mini, tmp_path):
    with pytest.raises(PoolError, match="nope: data folder not found"):
        load_lareqa(str(tmp_path / "nope"))
    with pytest.raises(PoolError, match=r"fr.json: language file for 'fr' not found"):
        load_lareqa(str(mini), languages=["en", "fr"])
    missing = r"xquad-r/de.json: language file for 'de' not found \(and 9 more: .*zh.json\)"
    with pytest.raises(PoolError, match=missing):
        d = tmp_path / "xquad-r"
        _write(d, "ar", [])
        load_lareqa(str(d))


def test_malformed_files_are_named(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "en.json").write_text('{"data": [\n  {"title": "x",\n', encoding="utf-8")
    with pytest.raises(PoolError, match=r"en.json: malformed JSON at line 3"):
        load_lareqa(str(d), languages=["en"])
    ctx = "One. Two."
    para = _para(ctx, ["One.", "Two."], [_qa("q1", "?", ctx, "Two")])
    para["qas"][0]["answers"][0]["answer_start"] = 4  # the space between the sentences
    _write(d, "en", [{"title": "t", "paragraphs": [para]}])
    with pytest.raises(PoolError, match=r"data\[0\].paragraphs\[0\].qas\[0\] \(id q1\): answer_start 4 lies in 0"):
        load_lareqa(str(d), languages=["en"])
    para = _para(ctx, ["One.", "Two."], [_qa("q1", "?", ctx, "Two"), _qa("q1", "?", ctx, "One")])
    _write(d, "en", [{"title": "t", "paragraphs": [para]}])
    with pytest.raises(PoolError, match=r"qas\[1\] \(id q1\): duplicate question id"):
        load_lareqa(str(d), languages=["en"])
    para = _para(ctx, ["One.", "Two."], [_qa("q1", "?", ctx, "Two")])
    para["sentence_breaks"].pop()
    _write(d, "en", [{"title": "t", "paragraphs": [para]}])
    with pytest.raises(PoolError, match=r"paragraphs\[0\]: 2 sentences but 1 sentence_breaks"):
        load_lareqa(str(d), languages=["en"])


def test_empty_pool(tmp_path):
    d = tmp_path / "empty"
    _write(d, "en", [{"title": "t", "paragraphs": [{"context": "", "sentences": [], "sentence_breaks": [],
                                                     "qas": []}]}])
    with pytest.raises(PoolError, match=r"en.json: pool: no candidate sentences \(empty pool\)"):
        load_lareqa(str(d), languages=["en"])


def test_output_is_replaced_only_with_overwrite(mini, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--data_dir", str(mini), "--output_dir", str(out), "--languages", "en", "de"]
    assert lareqa.main(argv) == 0
    assert f"manifest: {out / 'manifest.json'}" in capsys.readouterr().out
    (out / "stray.txt").write_text("x")
    exit_line(lareqa.main, argv)
    assert "folder exists and is not empty (pass --overwrite" in capsys.readouterr().err
    assert lareqa.main(argv + ["--languages", "en", "--overwrite"]) == 0
    assert not (out / "stray.txt").exists()
    assert load_manifest(str(out))["languages"] == ["en"]
    assert sorted(os.listdir(tmp_path)) == ["mini", "out"]  # no temporary folders left behind
    exit_line(lareqa.main, ["--data_dir", str(mini), "--output_dir", str(tmp_path / "o2"), "--languages", "fr"])
    assert "fr.json: language file for 'fr' not found" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_pyserini_reads_topics_and_corpus_as_written(mini, tmp_path):
    from hybrid_tevatron._pyserini_env import configure

    configure()
    from pyserini.encode import JsonlCollectionIterator
    from pyserini.query_iterator import DefaultQueryIterator

    out = tmp_path / "out"
    build(load_lareqa(str(mini), languages=["en", "de"]), str(out))
    topics = list(DefaultQueryIterator.from_topics(str(out / "topics" / "en.tsv")))
    assert topics == [("q1-en", "What colour is the sky?"), ("q2-en", "What does Paris have?")]
    corpus = JsonlCollectionIterator(str(out / "corpus" / "en.jsonl"), fields=["text"])
    assert corpus.all_info["id"] == ["en-0", "en-1", "en-2", "en-3", "en-4"]
    assert corpus.all_info["text"][3] == "Paris is big."
