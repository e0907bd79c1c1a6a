"""mMARCO converter on a small fixture written in the layout of the unicamp-dl/mmarco dataset repository."""

import json
import os

import pytest
from helpers import REPO, recipe_env

from hybrid_tevatron.data import mmarco

# qid -> query per language; pid -> passage per language (a few MS MARCO-like lines, hand-translated)
QUERIES = {
    "1185869": {"english": "what was the immediate impact of the manhattan project",
                "german": "was war die unmittelbare wirkung des manhattan projekts",
                "chinese": "曼哈顿计划的直接影响是什么"},
    "1185868": {"english": "_________ justice is designed to repair the harm to victim",
                "german": "_________ Gerechtigkeit soll den Schaden des Opfers beheben",
                "chinese": "_________ 正义旨在弥补对受害者的伤害"},
    "597651": {"english": "what color is amber urine",
               "german": "welche farbe hat bernsteinfarbener urin",
               "chinese": "琥珀色的尿液是什么颜色"},
    "403613": {"english": "is autoimmune hepatitis a bile acid synthesis disorder",
               "german": "ist autoimmunhepatitis eine störung der gallensäuresynthese",
               "chinese": ""},  # empty translation: the query must be dropped
}
PASSAGES = {
    "0": {"english": "The presence of communication amid scientific minds was equally important to the success "
                     "of the Manhattan Project as scientific intellect was.",
          "german": "Die Kommunikation unter den Wissenschaftlern war für den Erfolg des Manhattan-Projekts "
                    "ebenso wichtig wie der wissenschaftliche Intellekt.",
          "chinese": "科学家之间的交流对曼哈顿计划的成功与科学智慧同样重要。"},
    "1": {"english": "The Manhattan Project and its atomic bomb helped bring an end to World War II.",
          "german": "Das Manhattan-Projekt und seine Atombombe trugen zum Ende des Zweiten Weltkriegs bei.",
          "chinese": "曼哈顿计划及其原子弹帮助结束了第二次世界大战。"},
    "2": {"english": "Essay on The Manhattan Project - The Manhattan Project was to see if making an atomic "
                     "bomb was possible.",
          "german": "Aufsatz über das Manhattan-Projekt: Es sollte zeigen, ob eine Atombombe möglich war.",
          "chinese": "关于曼哈顿计划的论文：该计划旨在验证制造原子弹是否可能。"},
    "3": {"english": "Restorative justice aims to repair the harm done to victims.",
          "german": "Restaurative Gerechtigkeit will den Schaden der Opfer wiedergutmachen.",
          "chinese": "恢复性司法旨在弥补对受害者造成的伤害。"},
    "4": {"english": "Amber urine usually means dehydration.",
          "german": "Bernsteinfarbener Urin bedeutet meist Austrocknung.",
          "chinese": "琥珀色的尿液通常意味着脱水。"},
    "5": {"english": "Urine color ranges from pale yellow to deep amber.",
          "german": "Die Urinfarbe reicht von blassgelb bis tief bernsteinfarben.",
          "chinese": None},  # no Chinese line: the negative must be dropped everywhere
    "6": {"english": "Autoimmune hepatitis is inflammation of the liver.",
          "german": "Autoimmunhepatitis ist eine Entzündung der Leber.",
          "chinese": "自身免疫性肝炎是肝脏的炎症。"},
    "7": {"english": "A Tab\tinside the passage text is kept.",
          "german": "Ein Tab\tim Passagentext bleibt erhalten.",
          "chinese": "段落中的\t制表符被保留。"},
}
# MS MARCO-style triples: repeated positives, a duplicate negative, a pid that is positive for one query
TRIPLES = [
    ("1185869", "0", "1"), ("1185868", "3", "0"), ("1185869", "0", "2"), ("597651", "4", "5"),
    ("1185869", "0", "1"), ("1185869", "1", "7"), ("403613", "6", "4"), ("597651", "4", "7"),
    ("1185869", "0", "3"), ("1185868", "3", "4"),
]


def write_mmarco(root, languages=("english", "german", "chinese")):
    data = os.path.join(root, "data")
    os.makedirs(os.path.join(data, "google", "collections"), exist_ok=True)
    os.makedirs(os.path.join(data, "google", "queries", "train"), exist_ok=True)
    with open(os.path.join(data, "triples.train.ids.small.tsv"), "w", encoding="utf-8") as f:
        f.writelines("\t".join(t) + "\n" for t in TRIPLES)
    for name in languages:
        with open(os.path.join(data, "google", "collections", f"{name}_collection.tsv"), "w", encoding="utf-8") as f:
            f.writelines(f"{pid}\t{t[name]}\n" for pid, t in PASSAGES.items() if t[name] is not None)
        with open(os.path.join(data, "google", "queries", "train", f"{name}_queries.train.tsv"), "w",
                  encoding="utf-8") as f:
            f.writelines(f"{qid}\t{t[name]}\n" for qid, t in QUERIES.items())
    return root


def _read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def mmarco_dir(tmp_path):
    return write_mmarco(str(tmp_path / "mmarco"))


def test_convert_parallel_records(mmarco_dir, tmp_path):
    out = str(tmp_path / "out")
    stats = mmarco.convert(mmarco_dir, out, languages=["en", "german", "zh"], negatives=2)
    assert stats["languages"] == ["en", "de", "zh"]
    assert stats["queries"] == 3 and stats["dropped_queries"] == 1  # 403613 has no Chinese query text
    assert stats["dropped_negatives"] == 1  # pid 5 has no Chinese passage
    assert sorted(os.listdir(out)) == ["de.jsonl", "en.jsonl", "stats.json", "zh.jsonl"]
    rows = {lang: _read(os.path.join(out, f"{lang}.jsonl")) for lang in ("en", "de", "zh")}
    assert [r["query_id"] for r in rows["en"]] == ["1185869", "1185868", "597651"]  # first-occurrence order
    name = {"en": "english", "de": "german", "zh": "chinese"}
    for lang, rs in rows.items():
        for r in rs:
            assert r["query"] == QUERIES[r["query_id"]][name[lang]]
            for p in r["positive_passages"] + r["negative_passages"]:
                assert p["text"] == PASSAGES[p["docid"]][name[lang]] and p["title"] == ""
    en = {r["query_id"]: r for r in rows["en"]}

    def ids(ps):
        return [p["docid"] for p in ps]

    # positives deduplicated (0 repeated, 1 later promoted to positive and removed from the negatives)
    assert ids(en["1185869"]["positive_passages"]) == ["0", "1"]
    assert ids(en["1185869"]["negative_passages"]) == ["2", "7"]  # capped at 2, triples order, 1 excluded
    assert ids(en["1185868"]["negative_passages"]) == ["0", "4"]
    assert ids(en["597651"]["negative_passages"]) == ["7"]  # 5 dropped: no Chinese text
    assert "\t" in PASSAGES["7"]["german"] and rows["de"][0]["negative_passages"][1]["text"] == PASSAGES["7"]["german"]
    for lang in ("de", "zh"):
        for r, e in zip(rows[lang], rows["en"]):
            assert (r["query_id"], ids(r["positive_passages"]), ids(r["negative_passages"])) == (
                e["query_id"], ids(e["positive_passages"]), ids(e["negative_passages"]))


def test_max_queries_keeps_prefix_and_all_their_negatives(mmarco_dir, tmp_path):
    out = str(tmp_path / "out")
    stats = mmarco.convert(mmarco_dir, out, languages=["en", "de"], max_queries=2, negatives=5)
    rows = _read(os.path.join(out, "en.jsonl"))
    assert stats["queries"] == 2 and [r["query_id"] for r in rows] == ["1185869", "1185868"]
    assert [p["docid"] for p in rows[0]["negative_passages"]] == ["2", "7", "3"]
    assert [p["docid"] for p in rows[1]["negative_passages"]] == ["0", "4"]
    # without zh, the query with no Chinese text is kept
    assert mmarco.convert(mmarco_dir, out, languages=["en", "de"], negatives=0)["queries"] == 4
    assert all(r["negative_passages"] == [] for r in _read(os.path.join(out, "de.jsonl")))


def test_errors_name_file_and_line(mmarco_dir, tmp_path):
    coll = mmarco.collection_path(mmarco_dir, "de")
    with open(coll, "a", encoding="utf-8") as f:
        f.write("no-tab-here\n")
    n_lines = sum(1 for _ in open(coll, encoding="utf-8"))
    with pytest.raises(ValueError, match=rf"german_collection.tsv:{n_lines}: expected 2 tab-separated fields"):
        mmarco.convert(mmarco_dir, str(tmp_path / "out"), languages=["en", "de"])
    with pytest.raises(mmarco.MmarcoError, match="russian_collection.tsv|russian_queries.train.tsv"):
        mmarco.convert(mmarco_dir, str(tmp_path / "out"), languages=["en", "ru"])
    with pytest.raises(ValueError, match="unknown mMARCO language 'klingon'"):
        mmarco.convert(mmarco_dir, str(tmp_path / "out"), languages=["en", "klingon"])
    with pytest.raises(mmarco.MmarcoError, match="triples.train.ids.small.tsv"):
        mmarco.convert(str(tmp_path / "empty"), str(tmp_path / "out"), languages=["en"])


def test_cli(mmarco_dir, tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert mmarco.main(["--mmarco_dir", mmarco_dir, "--output_dir", out, "--languages", "english", "de",
                        "--max_queries", "1"]) == 0
    assert f"to {out}" in capsys.readouterr().err
    assert json.load(open(os.path.join(out, "stats.json")))["queries"] == 1
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_prepare_recipe_uses_local_copy(mmarco_dir, tmp_path):
    import subprocess

    out = str(tmp_path / "prepared")
    env = recipe_env(MMARCO_DIR=mmarco_dir, LANGS="en zh", MAX_QUERIES="2", NEGATIVES="1")
    proc = subprocess.run(["bash", os.path.join(REPO, "recipes", "prepare_mmarco.sh"), out], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{out}/train/" in proc.stdout and "wrote en.jsonl, zh.jsonl and stats.json" in proc.stderr
    assert "downloading" not in proc.stderr
    rows = _read(os.path.join(out, "train", "zh.jsonl"))
    assert [r["query_id"] for r in rows] == ["1185869", "1185868"]
    assert all(len(r["negative_passages"]) == 1 for r in rows)


def _train_paper(mmarco_dir, tmp_path, tiny_model_dir, ngpus):
    import subprocess

    out = str(tmp_path / "prepared")
    env = recipe_env(MMARCO_DIR=mmarco_dir, LANGS="en de zh")
    subprocess.run(["bash", os.path.join(REPO, "recipes", "prepare_mmarco.sh"), out], env=env, check=True,
                   capture_output=True, timeout=120)
    model_out = str(tmp_path / "model")
    env.update(MODEL=tiny_model_dir, BATCH="2", MAX_STEPS="2", NGPUS=str(ngpus), PRECISION="fp32",
               PASSAGE_MAX_LEN="64")  # the tiny model has 130 positions
    proc = subprocess.run(["bash", os.path.join(REPO, "recipes", "train_paper.sh"), out + "/train", model_out],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"model: {model_out}" in proc.stdout
    saved = json.load(open(os.path.join(model_out, "hybrid_tevatron.json")))
    assert (saved["regime"], saved["alpha"], saved["languages"]) == ("hybrid", 0.5, ["en", "de", "zh"])
    saved_settings = (saved["pooling"], saved["normalize"], saved["temperature"], saved["train_group_size"])
    assert saved_settings == ("mean", True, 0.05, 2)
    return proc


def test_train_paper_recipe_runs_on_converted_mmarco(mmarco_dir, tmp_path, tiny_model_dir):
    proc = _train_paper(mmarco_dir, tmp_path, tiny_model_dir, ngpus=0)
    assert "batch 2" in proc.stderr


def test_train_paper_recipe_torchrun_two_processes(mmarco_dir, tmp_path, tiny_model_dir):
    proc = _train_paper(mmarco_dir, tmp_path, tiny_model_dir, ngpus=2)
    assert "1 node(s) x 2 GPU(s), 1 per process, batch 2" in proc.stderr
