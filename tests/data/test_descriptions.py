"""Multi30K task 2 descriptions (hybrid_tevatron.data.descriptions) on the generated look-alike of the files
(tests/resources/data/multi30k-task2): reading and its refusals, description pairs as training data, the batch plan
on them, and the test_2016 evaluation pool's qrels. The expected names, texts and counts are read from the files."""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import RESOURCE_DATA, exit_line, recipe_env

from hybrid_tevatron.data.captions import main
from hybrid_tevatron.data.descriptions import load_task2, write_training
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.data.readers import load_jsonl_source
from hybrid_tevatron.eval.benchmarks.captions import POOL_FORMAT, write_description_pool
from hybrid_tevatron.sampling import MONO, BatchPlan

RESOURCE = os.path.join(RESOURCE_DATA, "multi30k-task2")
SPLIT = "test_2016"


def raw_rows(lang):
    """The five descriptions of each image in ``lang``, as the files hold them (one row per line)."""
    files = []
    for k in range(1, 6):
        with gzip.open(os.path.join(RESOURCE, "raw", f"{SPLIT}.{k}.{lang}.gz"), "rt", encoding="utf-8") as f:
            files.append(f.read().splitlines())
    return [list(row) for row in zip(*files, strict=True)]


with open(os.path.join(RESOURCE, "image_splits", f"{SPLIT}_images.txt"), encoding="utf-8") as _f:
    NAMES = [os.path.splitext(line)[0] for line in _f.read().splitlines()]  # image ids, in line order
IMAGES = len(NAMES)
ROWS = {lang: raw_rows(lang) for lang in ("de", "en")}
REPEATS = {lang: [NAMES[i] for i, row in enumerate(rows) if len(set(row)) < 5] for lang, rows in ROWS.items()}
(DUPLICATE,) = REPEATS["de"]  # the one image whose German descriptions 4 and 5 are the same text


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def image_of(doc_or_query_id):
    return doc_or_query_id.rsplit("-", 1)[0]


@pytest.fixture
def task2(tmp_path):
    """A writable copy of the slice."""
    folder = tmp_path / "task2"
    shutil.copytree(RESOURCE, folder)
    return folder


def rewrite(path, edit):
    with gzip.open(path, "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    with gzip.open(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in edit(lines)))


# ------------------------------------------------------------------------------------------------ reading
def test_reads_five_descriptions_in_two_languages():
    d = load_task2(RESOURCE, SPLIT)
    assert d.name == "multi30k-task2-test_2016" and d.relation == "description"
    assert d.languages == ["de", "en"] and d.per_image == 5 and len(d) == IMAGES
    assert d.image_ids == NAMES and d.lines == list(range(1, IMAGES + 1))
    assert d.captions == ROWS and d.captions["en"][0][0] != d.captions["en"][0][4] != d.captions["de"][0][0]
    assert all(len(row) == 5 for lang in d.languages for row in d.captions[lang])
    row = d.captions["de"][d.image_ids.index(DUPLICATE)]
    assert row[3] == row[4] and len(set(row)) == 4
    assert load_task2(RESOURCE, SPLIT, ["en"]).languages == ["en"]


@pytest.mark.parametrize("damage, message", [
    ("short", rf"raw/test_2016\.3\.de\.gz:{IMAGES}: missing description: the file ends after {IMAGES - 1} lines, "
              rf"but .*test_2016_images\.txt names {IMAGES} images"),
    ("long", rf"raw/test_2016\.5\.en\.gz:{IMAGES + 1}: one line too many: .*test_2016_images\.txt names {IMAGES} "
             "images"),
    ("empty", r"raw/test_2016\.2\.en\.gz:4: empty caption \(language 'en'\)"),
    ("latin1", r"raw/test_2016\.1\.de\.gz:2: not UTF-8"),
    ("no_file", r"raw/test_2016\.4\.de\.gz: no such file \(description 4 of language 'de'"),
    ("names", rf"image_splits/test_2016_images\.txt:3: duplicate image '{NAMES[0]}' \(first at .*:1\)"),
])
def test_bad_files_are_refused_by_file_and_line(damage, message, task2, capsys):
    raw = task2 / "raw"
    if damage == "short":
        rewrite(raw / "test_2016.3.de.gz", lambda lines: lines[:-1])
    elif damage == "long":
        rewrite(raw / "test_2016.5.en.gz", lambda lines: lines + [b"One more dog."])
    elif damage == "empty":
        rewrite(raw / "test_2016.2.en.gz", lambda lines: lines[:3] + [b"  "] + lines[4:])
    elif damage == "latin1":
        rewrite(raw / "test_2016.1.de.gz", lambda lines: lines[:1] + [b"Gr\xfc\xdfe"] + lines[2:])
    elif damage == "no_file":
        os.remove(raw / "test_2016.4.de.gz")
    else:
        names = task2 / "image_splits" / "test_2016_images.txt"
        lines = names.read_text().splitlines()
        names.write_text("\n".join(lines[:2] + [lines[0]] + lines[3:]) + "\n")
    with pytest.raises(DataError, match=message):
        load_task2(str(task2), SPLIT)
    out = task2.parent / "out"
    for command in ("train", "pool"):  # the CLI: one error line, exit 2, nothing written
        exit_line(main, [command, "--multi30k_task2", str(task2), "--split", SPLIT, "--output_dir", str(out)])
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(message, err), err
        assert not out.exists()


def test_a_split_needs_its_files_and_two_descriptions(task2):
    with pytest.raises(DataError, match=r"no caption files found"):
        load_task2(str(task2), "test_2017")  # image names, no descriptions (as in Multi30K)
    with pytest.raises(DataError, match=r"test_2016\.1\.fr\.gz: no such file \(description 1 of language 'fr'"):
        load_task2(str(task2), SPLIT, ["en", "fr"])
    for k in (2, 3, 4, 5):
        for lang in ("en", "de"):
            os.remove(task2 / "raw" / f"test_2016.{k}.{lang}.gz")
    with pytest.raises(DataError, match=r"1 description per image; a description pair needs at least two"):
        load_task2(str(task2), SPLIT)


# ------------------------------------------------------------------------------------------------ training data
def test_training_pairs_are_other_descriptions_of_the_same_image(task2, tmp_path):
    shared = (NAMES[0], NAMES[2])  # given a German description in common here: neither is a negative of the other
    rewrite(task2 / "raw" / f"{SPLIT}.1.de.gz", lambda lines: lines[:2] + lines[:1] + lines[3:])
    d = load_task2(str(task2), SPLIT)
    stats = write_training(d, str(tmp_path / "train"), negatives=4, seed=1)
    assert stats["relation"] == "description" and stats["queries"] == IMAGES * 5 and stats["min_negatives"] == 4
    assert stats["images_with_identical_descriptions"] == {lang: len(REPEATS[lang]) for lang in d.languages}
    rows = {lang: read_jsonl(tmp_path / "train" / f"{lang}.jsonl") for lang in d.languages}
    assert [r["query_id"] for r in rows["de"]] == [r["query_id"] for r in rows["en"]]
    for records in rows.values():
        for r in records:
            image, own = image_of(r["query_id"]), r["query_id"]
            positives = [p["docid"] for p in r["positive_passages"]]
            assert own not in positives and own in r["same_item_docids"]
            assert {image_of(p) for p in positives} == {image} and len(positives) >= 3
            assert r["query"] not in [p["text"] for p in r["positive_passages"]]  # never a caption with itself
            negatives = {image_of(p["docid"]) for p in r["negative_passages"]}
            assert image not in negatives and len(negatives) == 4
            if image in shared:
                assert not set(shared) & negatives  # the image sharing a description is no negative
    by_id = {r["query_id"]: r for r in rows["en"]}
    # de descriptions 4 and 5 of DUPLICATE are one text: that pair is withheld in every language
    assert [p["docid"] for p in by_id[f"{DUPLICATE}-4"]["positive_passages"]] == [f"{DUPLICATE}-{j}" for j in (1, 2, 3)]
    assert by_id[f"{DUPLICATE}-4"]["same_item_docids"] == [f"{DUPLICATE}-4", f"{DUPLICATE}-5"]
    assert by_id[f"{DUPLICATE}-1"]["same_item_docids"] == [f"{DUPLICATE}-1"]
    assert len(by_id[f"{DUPLICATE}-1"]["positive_passages"]) == 4
    assert [[p["docid"] for p in r["negative_passages"]] for r in rows["de"]] == \
        [[p["docid"] for p in r["negative_passages"]] for r in rows["en"]]  # the same docs in every language
    write_training(d, str(tmp_path / "all"), negatives=IMAGES - 2, seed=1)  # all images but its own and the other
    for r in read_jsonl(tmp_path / "all" / "en.jsonl"):
        if image_of(r["query_id"]) in shared:
            assert {image_of(p["docid"]) for p in r["negative_passages"]} == set(NAMES) - set(shared)


def test_training_is_deterministic_in_the_seed_and_samples_images(tmp_path):
    d = load_task2(RESOURCE, SPLIT)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        stats = write_training(d, str(tmp_path / name), negatives=3, seed=seed, max_examples=8)
    read = lambda name: open(tmp_path / name / "en.jsonl", encoding="utf-8").read()  # noqa: E731
    assert read("a") == read("b") != read("c")
    assert stats["images"] == 8 and stats["queries"] == 40 and stats["images_in_files"] == IMAGES
    records = read_jsonl(tmp_path / "a" / "en.jsonl")
    kept = {image_of(r["query_id"]) for r in records}
    assert len(kept) == 8 and all({image_of(p["docid"]) for p in r["negative_passages"]} <= kept for r in records)


def test_the_plan_feeds_mono_and_cross_steps_from_description_pairs(tmp_path):
    """The converted files load as one source that needs no --cross_only_sources; every step of several epochs
    keeps one image in one example and pairs two different descriptions."""
    d = load_task2(RESOURCE, SPLIT)
    write_training(d, str(tmp_path / "train"), negatives=7, seed=0)
    source = load_jsonl_source("descriptions", {l: str(tmp_path / "train" / f"{l}.jsonl") for l in d.languages},
                               group_size=4)
    assert len(source) == IMAGES * 5 and len(set(source.doc_items().tolist())) == IMAGES
    plan = BatchPlan([source], 3, 3, regime="hybrid", alpha=0.5, seed=2)  # up to 9 images a step
    modes = set()
    for epoch in range(3):
        for k in range(len(plan)):
            step = plan.step(epoch, k)
            modes.add(step.mode)
            owner = {}
            for i, e in enumerate(step.entries):
                query = source.query_ids[e.query]
                assert source.doc_ids[e.passages[0]] != query
                assert source.query_text(e.query_lang, e.query) != source.passage_text(e.passage_lang, e.passages[0])
                for name in [query] + [source.doc_ids[p] for p in e.passages]:
                    assert owner.setdefault(image_of(name), i) == i, f"image of {name} in two examples"
                if step.mode == MONO:
                    assert e.query_lang == e.passage_lang
                else:
                    assert e.query_lang != e.passage_lang
    assert modes == {"mono", "cross"}


def test_same_item_docids_are_checked_by_the_reader(tmp_path):
    d = load_task2(RESOURCE, SPLIT)
    write_training(d, str(tmp_path / "train"), negatives=2, seed=0)
    path = tmp_path / "train" / "de.jsonl"
    original = read_jsonl(path)
    files = {l: str(tmp_path / "train" / f"{l}.jsonl") for l in ("de", "en")}

    def refused(edit, message):
        records = json.loads(json.dumps(original))
        edit(records)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with pytest.raises(DataError, match=message):
            load_jsonl_source("descriptions", files, group_size=3)

    refused(lambda r: r[3]["same_item_docids"].append(r[3]["positive_passages"][0]["docid"]),
            rf"de\.jsonl:4: docid '{NAMES[0]}-1' is both a positive and a same-item docid of query id '{NAMES[0]}-4'")
    refused(lambda r: r[3]["same_item_docids"].append(r[3]["negative_passages"][0]["docid"]),
            rf"de\.jsonl:4: docid '.*' is both a negative and a same-item docid of query id '{NAMES[0]}-4'")
    refused(lambda r: r[5].update(same_item_docids=f"{NAMES[1]}-1"),
            rf"de\.jsonl:6: 'same_item_docids' must be a list of non-empty strings \(query id '{NAMES[1]}-1'\)")


# ------------------------------------------------------------------------------------------------ the pool
def test_pool_qrels_relevant_descriptions_and_own_caption_excluded(tmp_path):
    manifest = write_description_pool(load_task2(RESOURCE, SPLIT), str(tmp_path / "pool"))
    root = tmp_path / "pool"
    assert manifest["format"] == POOL_FORMAT and manifest["dataset"] == "multi30k-task2-test_2016"
    assert manifest["relation"] == "description" and manifest["descriptions_per_image"] == 5
    assert manifest["counts"]["images"] == IMAGES and manifest["counts"]["pool_all"] == IMAGES * 10
    assert manifest["corpora"] == {l: {"path": f"corpus/{l}.jsonl", "size": IMAGES * 5} for l in ("de", "en")}
    searches = {s["name"]: s for s in manifest["searches"]}
    assert set(searches) == {"mono.de", "mono.en", "cross.de-en", "cross.en-de", "multi.de", "multi.en"}
    for s in manifest["searches"]:  # the keys of every caption pool's searches
        assert set(s) == {"name", "setting", "query_lang", "pool", "topics", "qrels", "pool_size", "queries",
                          "relevant", "exclude", "run"}
    corpus = {doc["id"]: doc["contents"] for l in ("de", "en") for doc in read_jsonl(root / "corpus" / f"{l}.jsonl")}
    topics = {}
    for l in ("de", "en"):
        topics.update(line.rstrip("\n").split("\t") for line in open(root / "topics" / f"{l}.tsv", encoding="utf-8"))
    assert len(corpus) == len(topics) == IMAGES * 10

    line = {image: n for n, image in enumerate(load_task2(RESOURCE, SPLIT).image_ids)}  # docid {lang}-{n}-{k}

    def qrels(name):
        out = {}
        for row in open(root / searches[name]["qrels"], encoding="utf-8"):
            qid, _, doc, rel = row.split()
            assert rel == "1" and doc in corpus
            out.setdefault(qid, set()).add(doc)
        return out

    def exclude(name):
        return dict(line.split() for line in open(root / searches[name]["exclude"], encoding="utf-8"))

    q = f"{NAMES[1]}-2-de"  # image on line 2 (n = 1), German description 2
    assert topics[q] == corpus["de-1-2"] == ROWS["de"][1][1] != ROWS["de"][1][0]
    assert qrels("multi.de")[q] == {f"de-1-{k}" for k in (1, 3, 4, 5)} | {f"en-1-{k}" for k in range(1, 6)}
    assert qrels("cross.de-en")[q] == {f"en-1-{k}" for k in range(1, 6)}
    assert qrels("mono.de")[q] == {f"de-1-{k}" for k in (1, 3, 4, 5)}
    assert exclude("multi.de")[q] == exclude("mono.de")[q] == "de-1-2"
    assert searches["cross.de-en"]["exclude"] is None
    for name, s in searches.items():
        rel = qrels(name)
        assert len(rel) == s["queries"] == IMAGES * 5 and sum(map(len, rel.values())) == s["relevant"]
        assert {len(v) for v in rel.values()} == {{"mono": 4, "cross": 5, "multi": 9}[s["setting"]]}
        assert all({int(d.split("-")[1]) for d in docs} == {line[qid.split("-")[0]]} for qid, docs in rel.items())
        if s["exclude"]:
            own = exclude(name)
            assert len(own) == s["queries"] and all(own[qid] not in rel[qid] for qid in rel)
            assert all(corpus[own[qid]] == topics[qid] for qid in rel)  # the query's own caption
    assert searches["multi.en"]["pool_size"] == IMAGES * 10 and searches["mono.en"]["pool_size"] == IMAGES * 5


def test_pool_command_and_first_images(tmp_path, capsys):
    out = tmp_path / "pool"
    assert main(["pool", "--multi30k_task2", RESOURCE, "--split", SPLIT, "--max_images", "4", "--languages", "en",
                 "de", "--output_dir", str(out)]) == 0
    assert "multi30k-task2-test_2016: 4 images (description), 2 languages, 40 captions" in capsys.readouterr().out
    manifest = json.load(open(out / "manifest.json", encoding="utf-8"))
    assert manifest["languages"] == ["en", "de"] and manifest["counts"]["queries"] == {"mono": 40, "cross": 40,
                                                                                       "multi": 40}
    assert main(["train", "--multi30k_task2", RESOURCE, "--split", SPLIT, "--negatives", "2",
                 "--output_dir", str(tmp_path / "train")]) == 0
    assert f"{IMAGES * 5} queries (description)" in capsys.readouterr().out
    for command, flag in (("pool", "--max_images"), ("train", "--max_examples")):
        exit_line(main, [command, "--multi30k_task2", RESOURCE, "--split", SPLIT, flag, "0",
                         "--output_dir", str(tmp_path / "zero")])
        assert capsys.readouterr().err == f"error: {flag} must be >= 1, got 0\n"
    assert not (tmp_path / "zero").exists()


def test_caption_evaluation_reaches_the_task2_pool(tiny_model_dir, tmp_path):
    """python -m hybrid_tevatron.eval captions --multi30k_task2: the pool command, then the same stages as every
    caption pool (mono searches included)."""
    out = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "-m", "hybrid_tevatron.eval", "captions", str(tiny_model_dir), str(out),
                           "--multi30k_task2", RESOURCE, "--split", SPLIT, "--max_images", "6", "--pooling", "mean",
                           "--normalize"], capture_output=True, text=True, env=recipe_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    commands = open(out / "commands.sh", encoding="utf-8").read()
    assert "python -m hybrid_tevatron.data.captions pool --output_dir inputs --multi30k_task2" in commands
    results = json.load(open(out / "results" / "results.json", encoding="utf-8"))
    assert {"mono", "cross", "multi"} <= set(results["settings"])
    assert 0 < results["summary"]["mono.map"] <= 1
    assert results["relation"] == "description" and "to_en.recall_10" in results["summary"]


def test_training_on_description_pairs_mono_then_cross(backend, tiny_model_dir, tmp_path):
    """The real trainer on the converted descriptions, not declared cross-only: mono steps (α 1) then cross steps
    (α 0), each step's images distinct."""
    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.run_folder import PLAN_LOG
    from hybrid_tevatron.training import train

    data = tmp_path / "flickr-descriptions"
    assert main(["train", "--multi30k_task2", RESOURCE, "--split", SPLIT, "--negatives", "4",
                 "--output_dir", str(data)]) == 0
    out = tmp_path / "out"
    args = [
        "--backend", backend, "--model_name_or_path", tiny_model_dir, "--train_files", str(data),
        "--alpha_schedule", "piecewise:0:1,3:0", "--output_dir", str(out), "--per_device_train_batch_size", "3",
        "--train_group_size", "3", "--max_steps", "6", "--logging_steps", "1", "--save_strategy", "no",
        "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--seed", "5",
    ]  # fmt: skip
    trainer = train(*parse_args(args))
    assert trainer.plan.cross_only == [False] and trainer.plan.names == ["flickr-descriptions"]
    with open(out / PLAN_LOG.format(rank=0), encoding="utf-8") as f:
        log = [json.loads(line) for line in f]
    assert [r["mode"] for r in log] == ["mono"] * 3 + ["cross"] * 3
    for r in log:
        step = trainer.plan.step(r["epoch"], r["plan_step"])
        images = [image_of(trainer.plan.sources[0].query_ids[e.query]) for e in step.entries]
        assert len(set(images)) == len(images)
