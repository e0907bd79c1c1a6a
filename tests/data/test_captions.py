"""Caption converters (hybrid_tevatron.data.captions, its caption_files and caption_training; the pools of
hybrid_tevatron.eval.benchmarks.captions): the data root's files (../shared/data or the look-alikes in
tests/resources/data: the same shapes, fewer lines), validation, training JSONL,
evaluation pools, and a real training run on a caption source mixed with a question/passage source."""

import gzip
import json
import os
import re
import subprocess
import sys

import pytest
from helpers import exit_line, write_captions

from hybrid_tevatron.data.caption_files import load_caption_files, load_xtd10, multi30k_files, xtd10_files
from hybrid_tevatron.data.caption_training import write_training
from hybrid_tevatron.data.captions import main
from hybrid_tevatron.data.errors import DataError
from hybrid_tevatron.data.readers import load_jsonl_source
from hybrid_tevatron.eval.benchmarks.captions import POOL_FORMAT, write_translation_pool
from hybrid_tevatron.sampling import BatchPlan


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ------------------------------------------------------------------------------------------------ real files
def test_multi30k_shapes_and_training_jsonl(shared_data, tmp_path):
    """val (1,014 images in the real files) in en/de/fr/cs; the converted files load as one parallel source,
    query == positive."""
    files = multi30k_files(os.path.join(shared_data, "multi30k"), "val")
    assert list(files) == ["cs", "de", "en", "fr"]
    with gzip.open(files["en"], "rt", encoding="utf-8") as f:
        n_images = len(f.read().splitlines())  # 1,014 in the real files
    examples = 300 if n_images > 300 else n_images * 2 // 3
    captions = load_caption_files("multi30k-val", files, id_prefix="val-")
    assert len(captions) == n_images and captions.image_ids[:2] == ["val-1", "val-2"]
    stats = write_training(captions, str(tmp_path / "train"), negatives=5, seed=1, max_examples=examples)
    assert stats["queries"] == examples and stats["images_in_files"] == n_images and stats["min_negatives"] == 5
    assert stats["relation"] == "translation"  # task 2's descriptions: tests/data/test_descriptions.py
    source = load_jsonl_source("flickr", {l: str(tmp_path / "train" / f"{l}.jsonl") for l in files}, group_size=6)
    assert len(source) == examples
    rows = {l: read_jsonl(tmp_path / "train" / f"{l}.jsonl") for l in files}
    for records in rows.values():
        for r in records:
            positive = r["positive_passages"][0]
            assert r["query"] == positive["text"] and positive["docid"] == r["query_id"]
            negs = [p["docid"] for p in r["negative_passages"]]
            assert len(set(negs)) == 5 and r["query_id"] not in negs
    ids = {r["query_id"] for r in rows["en"]}
    assert all({p["docid"] for p in r["negative_passages"]} <= ids for r in rows["en"])  # among the kept images
    assert [[p["docid"] for p in r["negative_passages"]] for r in rows["de"]] == \
        [[p["docid"] for p in r["negative_passages"]] for r in rows["en"]]  # same images in every language
    with gzip.open(files["de"], "rt", encoding="utf-8") as f:
        de_lines = f.read().split("\n")
    first = rows["de"][0]
    assert first["query"] == de_lines[int(first["query_id"].split("-")[1]) - 1].strip()  # id = line of the image
    with pytest.raises(ValueError, match="flickr.*--cross_only_sources flickr"):
        BatchPlan([source], 8, 3)  # mono steps would pair a caption with itself


def test_multi30k_missing_language_file(shared_data):
    message = r"test_2017_mscoco\.cs\.gz: no caption file for language 'cs' \(present: de, en, fr\)"
    with pytest.raises(DataError, match=message):
        multi30k_files(os.path.join(shared_data, "multi30k"), "test_2017_mscoco", ["en", "cs"])


def test_xtd10_pool_on_the_files(shared_data, tmp_path):
    folder = os.path.join(shared_data, "xtd10")
    with open(os.path.join(folder, "test_image_names.txt"), encoding="utf-8") as f:
        names = f.read().split()  # 1,000 in the real files, the first COCO_train2014_000000061844.jpg
    files = xtd10_files(folder)
    assert len(files) == 11 and "jp" in files
    captions = load_xtd10(folder)
    assert captions.paths == files and len(captions) == len(names) and captions.image_ids[0] == names[0][:-4]
    manifest = write_translation_pool(captions, str(tmp_path / "pool"))
    assert manifest["format"] == POOL_FORMAT and manifest["counts"]["pool_all"] == 11 * len(names)
    assert manifest["relation"] == "mixed" and "jp (STAIR)" in manifest["relation_note"]
    assert len([s for s in manifest["searches"] if s["setting"] == "cross"]) == 110
    assert len([s for s in manifest["searches"] if s["setting"] == "multi"]) == 11
    root = tmp_path / "pool"
    with open(root / "corpus" / "es.jsonl", encoding="utf-8") as f:
        es = [json.loads(line) for line in f]
    assert "\r" not in es[0]["contents"] and es[1]["id"] == "es-1"  # the es file has CRLF line ends


# ------------------------------------------------------------------------------------------------ pools
def test_pool_qrels_and_exclusions(tmp_path):
    files = write_captions(tmp_path / "caps", n=12)
    captions = load_caption_files("toy", files, id_prefix="img")
    manifest = write_translation_pool(captions, str(tmp_path / "pool"))
    assert manifest["relation"] == "translation" and "relation_note" not in manifest
    root = tmp_path / "pool"
    corpus = {}
    for lang in files:
        for doc in read_jsonl(root / "corpus" / f"{lang}.jsonl"):
            corpus[doc["id"]] = (lang, doc["contents"])
    assert sum(len(read_jsonl(root / "corpus" / f"{lang}.jsonl")) for lang in files) == 36
    assert manifest["corpora"] == {lang: {"path": f"corpus/{lang}.jsonl", "size": 12} for lang in files}
    by_name = {s["name"]: s for s in manifest["searches"]}
    assert set(by_name) == {f"cross.{x}-{y}" for x in files for y in files if x != y} | {f"multi.{x}" for x in files}

    def qrels(name):
        out = {}
        with open(root / by_name[name]["qrels"], encoding="utf-8") as f:
            for line in f:
                qid, _, doc, rel = line.split()
                assert rel == "1" and doc in corpus
                out.setdefault(qid, []).append(doc)
        return out

    topics = dict(line.rstrip("\n").split("\t") for line in open(root / "topics" / "de.tsv", encoding="utf-8"))
    assert topics["img3-de"] == corpus["de-2"][1]  # image img3 = line 3 = docid n 2
    assert qrels("cross.de-en") == {f"img{i}-de": [f"en-{i - 1}"] for i in range(1, 13)}
    assert qrels("multi.de")["img3-de"] == ["en-2", "fr-2"]  # the other languages' captions of the same image
    with open(root / "exclude" / "multi.de.txt", encoding="utf-8") as f:
        assert [line.split() for line in f][2] == ["img3-de", "de-2"]  # its own caption, dropped before scoring
    assert by_name["cross.de-en"]["exclude"] is None and by_name["multi.de"]["pool_size"] == 36


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("damage, message", [
    ("short", r"de\.txt: 29 captions, but .*en\.txt has 30 \(line i must be the same image"),
    ("empty", r"de\.txt:4: empty caption \(language 'de'\)"),
    ("latin1", r"de\.txt:2: not UTF-8"),
    ("missing", r"de\.txt: no such file \(captions of language 'de'\)"),
])
def test_bad_caption_files_are_one_line_errors(damage, message, tmp_path, capsys):
    files = write_captions(tmp_path / "caps")
    path = files["de"]
    lines = open(path, encoding="utf-8").read().split("\n")
    if damage == "short":
        lines = lines[1:]
    elif damage == "empty":
        lines[3] = "   "
    if damage == "missing":
        os.remove(path)
    elif damage == "latin1":
        with open(path, "wb") as f:
            f.write(("\n".join(lines)).encode("utf-8").replace(b"\n", b"\nGr\xfc\xdfe ", 1))
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    out = tmp_path / "out"
    args = ["--files", *(f"{l}={p}" for l, p in files.items()), "--output_dir", str(out)]
    exit_line(main, ["train", *args])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err), err
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".out")]  # nothing half-written


def test_image_names_are_checked(tmp_path):
    files = write_captions(tmp_path / "caps", n=4)
    names = tmp_path / "names.txt"
    names.write_text("a.jpg\nb.jpg\na.jpg\nc.jpg\n")
    with pytest.raises(DataError, match=r"names\.txt:3: duplicate image 'a' \(first at .*names\.txt:1\)"):
        load_caption_files("toy", files, image_names=str(names))
    names.write_text("a.jpg\nb.jpg\n")
    with pytest.raises(DataError, match=r"names\.txt: 2 image names, but .*en\.txt has 4 captions"):
        load_caption_files("toy", files, image_names=str(names))


def test_sample_and_negatives_are_deterministic_in_the_seed(tmp_path):
    files = write_captions(tmp_path / "caps", n=40, gz=True)
    captions = load_caption_files("toy", files)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_training(captions, str(tmp_path / name), negatives=6, seed=seed, max_examples=25)
    read = lambda name: open(tmp_path / name / "fr.jsonl", encoding="utf-8").read()  # noqa: E731
    assert read("a") == read("b") != read("c")
    assert len(read("a").splitlines()) == 25
    ids = [r["query_id"] for r in read_jsonl(tmp_path / "a" / "fr.jsonl")]
    assert ids == sorted(ids, key=int)  # file order kept


def test_duplicate_captions_are_never_negatives_of_each_other(tmp_path):
    files = write_captions(tmp_path / "caps", n=10)
    lines = open(files["en"], encoding="utf-8").read().splitlines()
    lines[5] = lines[2]  # images 3 and 6 share their English caption
    open(files["en"], "w", encoding="utf-8").write("\n".join(lines) + "\n")
    stats = write_training(load_caption_files("toy", files), str(tmp_path / "out"), negatives=8)
    assert stats["images_with_duplicate_caption"] == {"en": 2, "de": 0, "fr": 0}
    rows = {r["query_id"]: [p["docid"] for p in r["negative_passages"]]
            for r in read_jsonl(tmp_path / "out" / "de.jsonl")}
    assert "6" not in rows["3"] and "3" not in rows["6"] and len(rows["3"]) == 8 and len(rows["1"]) == 9 - 1


# ------------------------------------------------------------------------------------------------ training
def test_training_on_captions_and_a_question_source(backend, tiny_model_dir, parallel_dir, tmp_path):
    """The real trainer on the converted caption source (cross-only, weighted) mixed with a question/passage source
    under an α schedule: the plan log follows the plan, caption steps are all cross, α is logged per step."""
    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.run_folder import PLAN_LOG
    from hybrid_tevatron.training import train

    caps = tmp_path / "flickr"
    assert main(["train", "--files", *(f"{l}={p}" for l, p in write_captions(tmp_path / "raw", n=32).items()),
                 "--name", "flickr", "--negatives", "4", "--output_dir", str(caps)]) == 0
    out = tmp_path / "out"
    args = [
        "--backend", backend, "--model_name_or_path", tiny_model_dir, "--train_files", parallel_dir,
        "--extra_sources", f"flickr:{caps}", "--cross_only_sources", "flickr",
        "--source_weights", "parallel0=1,flickr=1", "--alpha_schedule", "piecewise:0:1,4:0",
        "--output_dir", str(out), "--per_device_train_batch_size", "4", "--train_group_size", "3",
        "--max_steps", "8", "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu",
        "--disable_tqdm", "true", "--seed", "5",
    ]  # fmt: skip
    name = os.path.basename(parallel_dir)  # the --train_files source is named after its directory
    args[args.index("parallel0=1,flickr=1")] = f"{name}=1,flickr=1"
    backend_, model_args, data_args, training_args = parse_args(args)
    trainer = train(backend_, model_args, data_args, training_args)
    plan = trainer.plan
    assert plan.names == [name, "flickr"] and plan.cross_only == [False, True]
    assert plan.steps_per_source == [9, 9]  # 40 // 4 + 32 // 4 = 18 steps, split 1:1
    with open(out / PLAN_LOG.format(rank=0), encoding="utf-8") as f:
        log = [json.loads(line) for line in f]
    assert [r["global_step"] for r in log] == list(range(8))
    for r in log:
        source, mode, language = plan.mode(r["epoch"], r["plan_step"])
        assert (r["source"], r["mode"], r["language"]) == (plan.names[source], mode, language)
        assert r["alpha"] == (1.0 if r["plan_step"] < 4 else 0.0)
        if r["source"] == "flickr":
            assert r["mode"] == "cross" and all(q != p for q, p in zip(r["query_langs"], r["passage_langs"]))
        else:
            assert r["mode"] == ("mono" if r["plan_step"] < 4 else "cross")
    assert {r["source"] for r in log} == {name, "flickr"}
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["alpha"] for h in logs] == [r["alpha"] for r in log]
    with open(out / "hybrid_tevatron.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert (saved["alpha"], saved["alpha_schedule"], saved["cross_only_sources"]) == (None, "piecewise:0:1,4:0",
                                                                                      ["flickr"])

    # two-stage adaptation: the in-domain stage starts from the general stage's output folder
    from transformers import AutoModel

    stage2 = tmp_path / "stage2"
    second = parse_args(["--backend", backend, "--model_name_or_path", str(out), "--train_files", str(caps),
                         "--regime", "cross", "--output_dir", str(stage2), "--per_device_train_batch_size", "4",
                         "--train_group_size", "3", "--max_steps", "2", "--save_strategy", "no", "--report_to",
                         "none", "--use_cpu", "--disable_tqdm", "true", "--seed", "5"])
    train(*second)
    with open(stage2 / "hybrid_tevatron.json", encoding="utf-8") as f:
        assert json.load(f)["base_model"] == str(out)
    first_sd, second_sd = (AutoModel.from_pretrained(str(d)).state_dict() for d in (out, stage2))
    base_sd = AutoModel.from_pretrained(tiny_model_dir).state_dict()
    diff = lambda a, b: max((a[k].float() - b[k].float()).abs().max().item() for k in a)  # noqa: E731
    assert 0 < diff(first_sd, second_sd) < diff(base_sd, second_sd)  # moved on from stage 1, not from the base


def test_cli_writes_training_files(tmp_path):
    files = write_captions(tmp_path / "caps", n=8)
    res = subprocess.run([sys.executable, "-m", "hybrid_tevatron.data.captions", "train", "--files",
                          *(f"{l}={p}" for l, p in files.items()), "--output_dir", str(tmp_path / "o"),
                          "--max_examples", "5", "--negatives", "2"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "captions: 5 of 8 images, 3 languages (en de fr), 2 negatives each" in res.stdout
    assert sorted(os.listdir(tmp_path / "o")) == ["de.jsonl", "en.jsonl", "fr.jsonl", "stats.json"]


def test_cli_refuses_one_language_at_conversion(tmp_path):
    """Translated captions in one language would pair each caption with itself: refused before anything is
    written, with one line and exit 2 (training would refuse the set only later)."""
    files = write_captions(tmp_path / "caps", n=4)
    res = subprocess.run([sys.executable, "-m", "hybrid_tevatron.data.captions", "train", "--files",
                          f"en={files['en']}", "--output_dir", str(tmp_path / "o")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "need at least two languages for a training pair" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "o").exists()
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]


# ------------------------------------------------------------------------------------------------ one source, one pool
def test_the_source_flags_are_one_declaration_with_one_check():
    """The caption CLI and the image data CLI take the same flags, and refuse anything but one source with the
    same line."""
    import argparse

    from hybrid_tevatron.data.caption_sources import CaptionSource, add_source_arguments, source_from_args

    every = "--multi30k DIR --split S, --multi30k_task2 DIR --split S, --xtd10 DIR, --files LANG=PATH"
    images = "--multi30k DIR --split S, --xtd10 DIR, --files LANG=PATH"
    for sources, usage in ((("multi30k", "multi30k_task2", "xtd10", "files"), every),
                           (("multi30k", "xtd10", "files"), images)):
        p = argparse.ArgumentParser()
        add_source_arguments(p, sources)
        for argv, got in (([], "none"), (["--xtd10", "X", "--multi30k", "Y"], "--multi30k --xtd10")):
            with pytest.raises(DataError) as err:
                source_from_args(p.parse_args(argv), sources)
            assert str(err.value) == f"give exactly one of {usage} ... (got {got})"
    p = argparse.ArgumentParser()
    add_source_arguments(p)
    args = p.parse_args(["--files", "en=a.txt", "de=b.txt", "--image_names", "n.txt"])
    source = source_from_args(args, languages=["de"], name="toy")
    assert source == CaptionSource("files", files=("en=a.txt", "de=b.txt"), image_names="n.txt", languages=("de",),
                                   name="toy")
    assert source_from_args(args, files=["en=c.txt"]).files == ("en=c.txt",)  # the eval program splits its own
    multi30k = source_from_args(p.parse_args(["--multi30k", "m", "--split", "val"]))
    assert multi30k == CaptionSource("multi30k", "m", "val")


def test_the_pool_call_writes_what_the_pool_command_writes(shared_data, tmp_path, capsys):
    """``write_caption_pool`` (what the evaluation calls) and ``python -m hybrid_tevatron.data.captions pool`` with
    ``pool_argv``'s arguments write the same files, manifest bytes included."""
    from hybrid_tevatron.data.caption_sources import CaptionSource
    from hybrid_tevatron.eval.benchmarks.captions import pool_argv, pool_summary, write_caption_pool

    for n, source in enumerate((CaptionSource("xtd10", os.path.join(shared_data, "xtd10"), languages=("en", "de")),
                                CaptionSource("multi30k_task2", os.path.join(shared_data, "multi30k-task2"),
                                              "test_2016"))):
        called, command = tmp_path / f"called{n}" / "pool", tmp_path / f"command{n}" / "pool"
        manifest = write_caption_pool(source, str(called), max_images=6)
        assert main(pool_argv(source, str(command), 6)) == 0
        assert capsys.readouterr().out == pool_summary(manifest, str(command)) + "\n"
        for folder, _, names in os.walk(called):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as a, open(os.path.join(command, os.path.relpath(path, called)), "rb") as b:
                    assert a.read() == b.read(), path
    assert list(manifest) == ["format", "dataset", "relation", "descriptions_per_image", "files", "image_names",
                              "proxy", "parallel", "languages", "pairs", "counts", "exclude_rule", "corpora",
                              "topics", "searches"]
    assert manifest["counts"]["images"] == 6
