"""Image–text retrieval (hybrid_tevatron.images): data, frozen tower -> Faiss index, plan, training, evaluation.

Real transformers (a tiny random CLIP saved to a folder), real Faiss and Pyserini; nothing mocked.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, exit_line, installed_backend

import hybrid_tevatron  # noqa: F401  (the Pyserini/Java hook)
from hybrid_tevatron.images import testing as img_testing

N_IMAGES = 12


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return img_testing.build_tiny_clip(str(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def raw_images(tmp_path_factory):
    return img_testing.write_tiny_images(str(tmp_path_factory.mktemp("raw-images")), N_IMAGES)


@pytest.fixture(scope="session")
def image_set(raw_images, tmp_path_factory):
    from hybrid_tevatron.images.data import main

    out = str(tmp_path_factory.mktemp("image-set") / "set")
    files = [f"{lang}={raw_images[lang]}" for lang in img_testing.LANGS]
    assert main(["--files", *files, "--image_names", raw_images["names"], "--images", raw_images["images"],
                 "--name", "tiny", "--output_dir", out]) == 0
    return out


@pytest.fixture(scope="session")
def image_index(tiny_clip, image_set, tmp_path_factory):
    from hybrid_tevatron.images.encode import encode_images

    out = str(tmp_path_factory.mktemp("image-index") / "index")
    encode_images(tiny_clip, image_set, out, batch_size=5)
    return out


def run_cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


# ------------------------------------------------------------------------------------------------ data
def test_image_set_layout(image_set, raw_images):
    from hybrid_tevatron.images.data import read_image_data

    rows = [json.loads(line) for line in open(os.path.join(image_set, "corpus.jsonl"), encoding="utf-8")]
    assert [r["docid"] for r in rows] == [f"img{i}" for i in range(N_IMAGES)]
    assert all(os.path.isfile(r["image"]) and r["text"] == "" for r in rows)
    data = read_image_data(image_set)
    assert data.languages == list(img_testing.LANGS)
    assert data.captions["de"][3] == img_testing.caption("de", 3)
    with open(os.path.join(image_set, "captions", "es.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == [img_testing.caption("es", i) for i in range(N_IMAGES)]


def _bad_input(tmp_path, raw_images, mutate):
    """Copy the raw images, apply ``mutate(folder paths)``, run the converter; return (rc, stderr, output)."""
    import shutil

    src = str(tmp_path / "raw")
    shutil.copytree(os.path.dirname(raw_images["names"]), src)
    root = os.path.dirname(raw_images["names"])
    paths = {k: os.path.join(src, os.path.relpath(v, root)) for k, v in raw_images.items()}
    mutate(paths)
    out = str(tmp_path / "out")
    proc = run_cli("hybrid_tevatron.images.data", "--files", *[f"{l}={paths[l]}" for l in img_testing.LANGS],
                   "--image_names", paths["names"], "--images", paths["images"], "--output_dir", out)
    return proc.returncode, proc.stderr, out, paths


def test_missing_image_is_one_error_naming_it(tmp_path, raw_images):
    rc, err, out, paths = _bad_input(tmp_path, raw_images, lambda p: os.remove(os.path.join(p["images"], "img5.png")))
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert os.path.join(paths["images"], "img5.png") in err and "no such image" in err
    assert not os.path.exists(out) and not [n for n in os.listdir(tmp_path) if n.startswith(".out")]


def test_non_image_file_is_one_error_naming_it(tmp_path, raw_images):
    def corrupt(p):
        with open(os.path.join(p["images"], "img2.png"), "w") as f:
            f.write("not an image\n")

    rc, err, out, paths = _bad_input(tmp_path, raw_images, corrupt)
    assert rc == 2 and err.count("\n") == 1
    assert os.path.join(paths["images"], "img2.png") in err and "not a readable image" in err
    assert not os.path.exists(out)


def test_mismatched_caption_count_is_one_error_naming_the_file(tmp_path, raw_images):
    def drop_line(p):
        lines = open(p["de"], encoding="utf-8").read().splitlines()[:-1]
        open(p["de"], "w", encoding="utf-8").write("\n".join(lines) + "\n")

    rc, err, out, paths = _bad_input(tmp_path, raw_images, drop_line)
    assert rc == 2 and err.count("\n") == 1 and "error: " in err
    assert paths["de"] in err or paths["names"] in err
    assert str(N_IMAGES - 1) in err and not os.path.exists(out)


# ------------------------------------------------------------------------------------------------ tower + index
def test_tower_embeds_distinct_normalised_rows(tiny_clip, image_set):
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.tower import ImageTower

    tower = ImageTower(tiny_clip, device="cpu", batch_size=5)
    data = read_image_data(image_set)
    vectors = tower.encode(data.image_paths)
    assert vectors.shape == (N_IMAGES, 12) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert len({tuple(np.round(v, 5)) for v in vectors}) == N_IMAGES  # distinct colours, distinct embeddings
    np.testing.assert_allclose(tower.encode(data.image_paths[3:4]), vectors[3:4], atol=1e-5)  # batch-independent


def test_image_index_is_searched_by_pyserini(image_index, tiny_clip, image_set):
    import hashlib

    import faiss
    from pyserini.search.faiss import FaissSearcher

    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.tower import ImageTower

    with open(os.path.join(image_index, "docid"), encoding="utf-8") as f:
        assert f.read().split() == [f"img{i}" for i in range(N_IMAGES)]
    index = faiss.read_index(os.path.join(image_index, "index"))
    assert index.ntotal == N_IMAGES and index.d == 12
    record = json.load(open(os.path.join(image_index, "tower.json"), encoding="utf-8"))
    assert record["tower"] == os.path.abspath(tiny_clip) and record["dimension"] == 12
    weights_file = os.path.join(tiny_clip, "model.safetensors")
    with open(weights_file, "rb") as f:
        weights = {"size": os.path.getsize(weights_file), "sha256": hashlib.sha256(f.read()).hexdigest()}
    assert record["tower_digest"]["weights"] == {"model.safetensors": weights}
    assert len(record["tower_digest"]["config_sha256"]) == 64
    vectors = ImageTower(tiny_clip, device="cpu").encode(read_image_data(image_set).image_paths)
    searcher = FaissSearcher(image_index, None)
    for i in (0, 7):
        hits = searcher.search(vectors[i : i + 1], k=3)  # a pre-encoded query vector
        assert hits[0].docid == f"img{i}"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        expected = np.argsort(-(vectors @ vectors[i]), kind="stable")[:3]
        assert [h.docid for h in hits] == [f"img{j}" for j in expected]


def test_sharded_image_encoding_merges_to_the_same_index(tiny_clip, image_set, image_index, tmp_path):
    import faiss

    shards, merged = str(tmp_path / "shards"), str(tmp_path / "merged")
    for k in range(3):
        proc = run_cli("hybrid_tevatron.images.encode", "--tower", tiny_clip, "--corpus", image_set, "--output", shards,
                       "--num_shards", "3", "--shard_id", str(k))
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("hybrid_tevatron.pyserini.merge", "--shards", shards, "--output", merged)
    assert proc.returncode == 0, proc.stderr
    a, b = (faiss.read_index(os.path.join(d, "index")) for d in (image_index, merged))
    np.testing.assert_allclose(a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal), atol=1e-6)
    assert open(os.path.join(merged, "docid")).read() == open(os.path.join(image_index, "docid")).read()


# ------------------------------------------------------------------------------------------------ the batch plan
@pytest.fixture(scope="session")
def images_source(image_set, image_index):
    from hybrid_tevatron.eval.pipeline.ranks import read_index
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.source import image_source

    return image_source(read_image_data(image_set), read_index(image_index), negatives=4)


def check_step(step, plan, group):
    """The invariants of every image step: one language (mono) or several (mixed), no image twice, fixed groups."""
    source = plan.sources[step.source]
    langs = [e.query_lang for e in step.entries]
    if step.mode == "mono":
        assert set(langs) == {step.language}
    else:
        assert step.mode == "xx" and len(set(langs)) >= 2
    images = [d for e in step.entries for d in e.passages]
    assert len(images) == len(set(images)) == len(step.entries) * group  # no image twice in a step
    assert len({e.query for e in step.entries}) == len(step.entries)
    for e in step.entries:
        assert e.passages[0] == source.positives(e.query)[0]  # the caption's own image first
    return step.mode


@pytest.mark.parametrize("regime,alpha,modes", [("mono", 1.0, {"mono"}), ("xx", 0.0, {"xx"}),
                                                ("cross", 0.0, {"xx"}), ("hybrid", 0.5, {"mono", "xx"})])
def test_image_steps_keep_their_invariants(images_source, regime, alpha, modes):
    from hybrid_tevatron.images.source import ImageBatchPlan

    plan = ImageBatchPlan([images_source], batch_size=4, group_size=2, regime=regime, alpha=alpha, seed=5)
    seen = [check_step(plan.step(e, k), plan, 2) for e in range(8) for k in range(len(plan))]
    assert set(seen) == modes
    again = ImageBatchPlan([images_source], batch_size=4, group_size=2, regime=regime, alpha=alpha, seed=5)
    assert again.step(3, 1) == plan.step(3, 1)  # a pure function of (seed, epoch, step)


def test_mixed_steps_are_never_one_language(images_source):
    """Two-example mixed steps over three languages often draw one language twice; the plan never keeps that."""
    from hybrid_tevatron.images.source import ImageBatchPlan

    plan = ImageBatchPlan([images_source], batch_size=2, group_size=1, regime="xx", seed=0)
    for e in range(30):
        for k in range(len(plan)):
            assert len({x.query_lang for x in plan.step(e, k).entries}) == 2


def test_alpha_schedule_and_weights_mix_images_with_text(images_source, parallel_dir):
    from hybrid_tevatron.data.readers import load_jsonl_source
    from hybrid_tevatron.images.source import ImageBatchPlan
    from hybrid_tevatron.sampling import BatchPlan

    files = {l: os.path.join(parallel_dir, f"{l}.jsonl") for l in ("en", "de", "es", "zh")}
    text = load_jsonl_source("qa", files, group_size=2)
    kwargs = dict(batch_size=4, group_size=2, regime="hybrid", seed=9, alpha_schedule="piecewise:0:1,6:0")
    plan = ImageBatchPlan([text, images_source], source_weights="qa=1,images=1", **kwargs)
    assert plan.steps_per_source == [7, 6]  # 40 // 4 + 12 // 4 = 13 steps, split 1:1
    for k in range(len(plan)):
        step = plan.step(0, k)
        if plan.sources[step.source] is images_source:
            assert check_step(step, plan, 2) == ("mono" if k < 6 else "xx")
        else:
            assert step.mode == ("mono" if k < 6 else "cross")
    # without an image source the plan is the text plan, step for step
    text_only = ImageBatchPlan([text], **kwargs), BatchPlan([text], **kwargs)
    assert [text_only[0].step(1, k) for k in range(10)] == [text_only[1].step(1, k) for k in range(10)]


# ------------------------------------------------------------------------------------------------ training
def _train_argv(model, out, *extra):
    return ["--backend", installed_backend(), "--model_name_or_path", model, "--pooling", "mean", "--temperature",
            "0.1", "--output_dir", str(out), "--per_device_train_batch_size", "4", "--train_group_size", "2",
            "--logging_steps", "5", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
            "--use_cpu", "--seed", "1", *extra]


def whole_set_loss(model, tokenizer, data, embeddings):
    """The bidirectional image-text loss over all images, one problem per language (captions in that language)."""
    import torch

    from hybrid_tevatron.collator import EncodeCollator

    collator = EncodeCollator(tokenizer, max_length=32)
    model.eval()
    with torch.no_grad():
        losses = [model(query=collator([(str(i), c) for i, c in enumerate(data.captions[lang])])[1],
                        passage=torch.from_numpy(embeddings)).loss.item() for lang in data.languages]
    model.train()
    return float(np.mean(losses))


def test_short_training_lowers_the_image_text_loss(tiny_model_dir, image_set, image_index, tmp_path):
    import torch

    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.model import HEAD_FILE, CaptionEncoder
    from hybrid_tevatron.images.train import ImageArguments, build_image_trainer

    out = tmp_path / "run"
    backend, model_args, data_args, training_args = parse_args(_train_argv(
        tiny_model_dir, out, "--max_steps", "90", "--learning_rate", "5e-3", "--regime", "hybrid"))
    trainer = build_image_trainer(backend, model_args, data_args, training_args,
                                  image_args=ImageArguments(image_data=image_set, image_index=image_index,
                                                            image_negatives=4))
    data = read_image_data(image_set)
    embeddings = trainer.data_collator.embeddings["images"]
    before = whole_set_loss(trainer.model, trainer.processing_class, data, embeddings)
    trainer.train()
    after = whole_set_loss(trainer.model, trainer.processing_class, data, embeddings)
    assert after < 0.6 * before, (before, after)
    modes = {m for log in trainer.state.log_history for m in ("mono", "xx") if f"loss_{m}" in log}
    assert modes == {"mono", "xx"}  # hybrid: both kinds of image step were trained

    trainer.save_model()
    assert os.path.isfile(out / HEAD_FILE) and os.path.isfile(out / "model.safetensors")
    trained = {k: v.clone() for k, v in trainer.model.head.state_dict().items()}
    with torch.no_grad():
        trainer.model.head.weight.zero_()
    trainer._load_from_checkpoint(str(out))  # what a resume does: encoder and head come back
    for k, v in trainer.model.head.state_dict().items():
        assert torch.equal(v, trained[k]), k
    meta = json.load(open(out / "hybrid_tevatron.json", encoding="utf-8"))
    assert meta["image_tower"]["head_in"] == 32 and meta["image_tower"]["head_out"] == 12
    assert meta["regime"] == "hybrid" and meta["pooling"] == "mean"
    assert meta["image_tower"]["tower"] == json.load(open(os.path.join(image_index, "tower.json")))["tower"]
    # the saved checkpoint encodes captions exactly as the trained model does
    encoder = CaptionEncoder.from_checkpoint(str(out), device="cpu")
    from hybrid_tevatron.collator import EncodeCollator

    collate = EncodeCollator(trainer.processing_class, max_length=32)
    batch = collate([(str(i), c) for i, c in enumerate(data.captions["de"])])[1]
    trainer.model.eval()  # no dropout
    with torch.no_grad():
        expected = trainer.model.encode_captions(dict(batch)).numpy()
    np.testing.assert_allclose(encoder.encode(data.captions["de"]), expected, atol=1e-5)


def test_two_ranks_agree_on_image_and_text_steps(tiny_model_dir, parallel_dir, image_set, image_index, tmp_path):
    """torchrun, 2 CPU processes (gloo), captions and images shared across ranks: both ranks agree on every step's
    source, mode, language and α, train disjoint halves, and every image step keeps its invariants."""
    from hybrid_tevatron.data.readers import load_sources
    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.eval.pipeline.ranks import read_index
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.source import ImageBatchPlan, image_source
    from hybrid_tevatron.run_folder import PLAN_LOG

    steps, out = 8, tmp_path / "out"
    name = os.path.basename(parallel_dir)
    mixture = ["--train_files", parallel_dir, "--source_weights", f"{name}=1,images=2",
               "--alpha_schedule", "piecewise:0:1,4:0", "--regime", "hybrid"]
    args = _train_argv(tiny_model_dir, out, *mixture, "--max_steps", str(steps), "--per_device_train_batch_size", "2",
                       "--logging_steps", "1", "--seed", "3")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hybrid_tevatron.images.train", "--image_data", image_set, "--image_index", image_index,
           "--image_negatives", "4", *args, "--ddp_backend", "gloo", "--negatives_x_device"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.getcwd()}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    logs = [[json.loads(line) for line in open(out / PLAN_LOG.format(rank=r), encoding="utf-8")] for r in (0, 1)]
    assert [len(log) for log in logs] == [steps, steps]

    _, _, data_args, _ = parse_args(args)
    images = image_source(read_image_data(image_set), read_index(image_index), negatives=4, seed=3)
    plan = ImageBatchPlan.from_args(load_sources(data_args) + [images], data_args, batch_size=4, seed=3)
    for r0, r1 in zip(*logs):
        for key in ("global_step", "epoch", "plan_step", "mode", "language", "source", "alpha"):
            assert r0[key] == r1[key], key
        step = plan.step(r0["epoch"], r0["plan_step"])
        corpus = plan.sources[step.source]
        assert r0["query_ids"] + r1["query_ids"] == [corpus.query_ids[e.query] for e in step.entries]
        assert r0["query_langs"] + r1["query_langs"] == [e.query_lang for e in step.entries]
        assert (r0["source"], r0["mode"]) == (corpus.name, step.mode)
        if corpus is images:
            check_step(step, plan, 2)
            assert r0["mode"] == ("mono" if r0["plan_step"] < 4 else "xx")  # α 1, then 0: mixed steps
            assert (len(set(r0["query_langs"] + r1["query_langs"])) == 1) == (r0["mode"] == "mono")
    assert {r["source"] for r in logs[0]} == {name, "images"}
    assert {r["mode"] for r in logs[0] if r["source"] == "images"} == {"mono", "xx"}
    assert os.path.isfile(out / "image_head.safetensors")


# ------------------------------------------------------------------------------------------------ evaluation
@pytest.fixture(scope="session")
def trained_image_model(tiny_model_dir, image_set, image_index, tmp_path_factory):
    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.images.train import ImageArguments, build_image_trainer

    out = tmp_path_factory.mktemp("image-model") / "run"
    trainer = build_image_trainer(*parse_args(_train_argv(tiny_model_dir, out, "--max_steps", "20", "--learning_rate",
                                                          "3e-3", "--query_prefix", "query: ")),
                                  image_args=ImageArguments(image_data=image_set, image_index=image_index,
                                                            image_negatives=4))
    trainer.train()
    trainer.save_model()
    return str(out)


def brute_force_ranks(queries, query_ids, pool, pool_ids, relevant):
    """{qid: sorted ranks of its relevant pool ids}: trec_eval's order on 6-decimal scores read as float32
    (score descending, then docid descending), by sorting every query's whole pool."""
    scores = (queries.astype(np.float64) @ pool.astype(np.float64).T).round(6).astype(np.float32)
    out = {}
    for i, q in enumerate(query_ids):
        order = sorted(range(len(pool_ids)), key=lambda j: (scores[i, j], pool_ids[j]), reverse=True)
        rank_of = {pool_ids[j]: r for r, j in enumerate(order, 1)}
        out[q] = sorted(rank_of[d] for d in relevant[q])
    return out


def test_image_evaluation_equals_brute_force(trained_image_model, image_set, image_index, tmp_path):
    from hybrid_tevatron.eval.__main__ import main
    from hybrid_tevatron.eval.pipeline.ranks import read_index
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.evaluate import read_ranks
    from hybrid_tevatron.images.model import CaptionEncoder

    out = tmp_path / "ev"
    assert main(["images", trained_image_model, str(out), "--image_data", image_set, "--image_index", image_index]) == 0
    results = json.load(open(out / "results" / "results.json", encoding="utf-8"))
    data = read_image_data(image_set)
    index = read_index(image_index)
    images = index.matrix
    encoder = CaptionEncoder.from_checkpoint(trained_image_model, device="cpu")
    captions = {lang: encoder.encode(data.captions[lang]) for lang in data.languages}
    ids = data.image_ids
    assert index.ids == ids
    for lang in data.languages:
        qids = [f"{lang}-{d}" for d in ids]
        t2i = brute_force_ranks(captions[lang], qids, images, ids, {q: [d] for q, d in zip(qids, ids)})
        assert read_ranks(str(out / "ranks" / f"t2i.{lang}.tsv")) == t2i
        for k in (1, 5, 10):
            got = results["searches"][f"t2i.{lang}"][f"recall_{k}"]
            assert got == pytest.approx(np.mean([r[0] <= k for r in t2i.values()]))
        i2t = brute_force_ranks(images, ids, captions[lang], qids, {d: [q] for q, d in zip(qids, ids)})
        assert read_ranks(str(out / "ranks" / f"i2t.{lang}.tsv")) == i2t
    pool_ids = [f"{lang}-{d}" for lang in data.languages for d in ids]
    pool = np.concatenate([captions[lang] for lang in data.languages])
    multi = brute_force_ranks(images, ids, pool, pool_ids, {d: [f"{lang}-{d}" for lang in data.languages] for d in ids})
    assert read_ranks(str(out / "ranks" / "i2t.multi.tsv")) == multi
    summary = results["searches"]["i2t.multi"]
    assert summary["map"] == pytest.approx(np.mean([np.mean([(j + 1) / r for j, r in enumerate(rs)])
                                                    for rs in multi.values()]))
    assert summary["rank_distance"] == pytest.approx(np.mean([rs[-1] - rs[0] for rs in multi.values()]))
    assert results["average"]["t2i"]["recall_10"] == pytest.approx(
        np.mean([results["searches"][f"t2i.{lang}"]["recall_10"] for lang in data.languages]))
    assert "text→image R@10" in open(out / "results" / "results.md", encoding="utf-8").read()
    check = json.load(open(out / "results" / "crosscheck.json", encoding="utf-8"))
    assert check["agrees"] and check["sample"]["queries"] > 0  # trec_eval agrees on the full-ranking sample
    # Pyserini's top-10 run over the tower's index: where our rank is 1, its first hit is the caption's image
    from hybrid_tevatron.eval.trec import read_run, trec_order

    run = read_run(str(out / "runs" / "t2i.en.trec"))
    firsts = {q for q, ranks in read_ranks(str(out / "ranks" / "t2i.en.tsv")).items() if ranks == [1]}
    assert firsts and all(len(hits) == 10 for hits in run.values()) and len(run) == N_IMAGES
    assert all(trec_order(run[q])[0] == q.split("-", 1)[1] for q in firsts)
    assert "pyserini.search.faiss" in open(out / "commands.sh", encoding="utf-8").read()


def test_image_evaluation_refuses_a_text_only_model(tiny_model_dir, image_set, image_index, tmp_path, capsys):
    from hybrid_tevatron.eval.__main__ import main

    out = tmp_path / "ev"
    exit_line(main, ["images", tiny_model_dir, str(out), "--image_data", image_set, "--image_index", image_index])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image_head.safetensors" in err[0] and tiny_model_dir in err[0]
    assert not os.path.exists(out)


@pytest.mark.parametrize("kind,dim", [("siglip", 16), ("clip-vision", 10)])
def test_other_tower_kinds_embed_with_their_own_head(kind, dim, raw_images, tmp_path):
    """SigLIP (get_image_features) and a vision-only CLIP checkpoint (its projected image_embeds, not the pooler)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from hybrid_tevatron.images.tower import ImageTower

    folder = img_testing.build_tiny_tower(str(tmp_path / kind), kind, projection_dim=10)
    tower = ImageTower(folder, device="cpu")
    paths = [os.path.join(raw_images["images"], f"img{i}.png") for i in range(4)]
    vectors = tower.encode(paths)
    assert tower.dimension == dim and vectors.shape == (4, dim)
    pixels = tower.processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = tower.model.get_image_features(pixel_values=pixels).pooler_output if kind == "siglip" else \
            tower.model(pixel_values=pixels).image_embeds
    np.testing.assert_allclose(vectors, F.normalize(out, dim=-1).numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------------ real caption layouts
def _images_named(folder, names):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (3, 2), img_testing.colour(i)).save(os.path.join(folder, name),
                                                             format="JPEG" if name.endswith(".jpg") else "PNG")


def test_xtd10_captions_with_mscoco_images(shared_data, tmp_path):
    """The XTD10 caption files and image list of the data root; generated stand-ins for its (1,000) MSCOCO images."""
    from hybrid_tevatron.images.data import main, read_image_data

    xtd10 = os.path.join(shared_data, "xtd10")
    names = open(os.path.join(xtd10, "test_image_names.txt"), encoding="utf-8").read().split()
    _images_named(str(tmp_path / "coco"), names)
    assert main(["--xtd10", xtd10, "--images", str(tmp_path / "coco"), "--languages", "en", "jp", "de",
                 "--output_dir", str(tmp_path / "out")]) == 0
    data = read_image_data(str(tmp_path / "out"))
    assert len(data) == len(names) and data.image_ids[0] == names[0].rsplit(".", 1)[0]
    assert data.image_paths[1] == str(tmp_path / "coco" / names[1]) and data.languages == ["en", "jp", "de"]
    english = open(os.path.join(xtd10, "test_1kcaptions_en.txt"), encoding="utf-8").read().splitlines()
    assert data.captions["en"][1] == english[1].strip()
    assert json.load(open(tmp_path / "out" / "manifest.json"))["relation"] == "mixed"  # jp is not a translation


def test_multi30k_captions_with_flickr_image_splits(shared_data, tmp_path):
    """The data root's Multi30K test_2016_flickr captions; an image_splits folder listing as many (1,000 in the
    real files) Flickr-style names."""
    import gzip

    from hybrid_tevatron.images.data import main, read_image_data

    def count(split):
        with gzip.open(os.path.join(shared_data, "multi30k", f"{split}.en.gz"), "rt", encoding="utf-8") as f:
            return len(f.read().splitlines())

    n_test, n_val = count("test_2016_flickr"), count("val")  # 1,000 and 1,014 in the real files
    names = [f"{1000092795 + i}.jpg" for i in range(n_test)]
    splits = tmp_path / "image_splits"
    splits.mkdir()
    (splits / "test_2016_flickr.txt").write_text("".join(n + "\n" for n in names))
    _images_named(str(tmp_path / "flickr"), names)
    argv = ["--multi30k", os.path.join(shared_data, "multi30k"), "--split", "test_2016_flickr", "--image_splits",
            str(splits), "--images", str(tmp_path / "flickr")]
    assert main(argv + ["--output_dir", str(tmp_path / "out")]) == 0
    data = read_image_data(str(tmp_path / "out"))
    assert len(data) == n_test and data.languages == ["cs", "de", "en", "fr"] and data.image_ids[5] == "1000092800"
    # the wrong split's list: a count mismatch naming the list file
    (splits / "val.txt").write_text("".join(n + "\n" for n in names))
    proc = run_cli("hybrid_tevatron.images.data", *argv[:3], "val", *argv[4:], "--output_dir", str(tmp_path / "val"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert str(splits / "val.txt") in proc.stderr and f"{n_test} image names" in proc.stderr
    assert str(n_val) in proc.stderr


# ------------------------------------------------------------------------------------------------ the recipe
def test_image_text_recipe_end_to_end(tiny_model_dir, tiny_clip, raw_images, tmp_path):
    """recipes/image_text.sh with tiny models and Multi30K/XTD10-shaped folders of tiny images."""
    import gzip
    import shutil

    names = open(raw_images["names"]).read().split()
    multi30k, splits, xtd10 = tmp_path / "multi30k", tmp_path / "splits", tmp_path / "xtd10"
    for d in (multi30k, splits, xtd10):
        d.mkdir()
    for lang in img_testing.LANGS:
        with gzip.open(multi30k / f"train.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write(open(raw_images[lang], encoding="utf-8").read())
        shutil.copy(raw_images[lang], xtd10 / f"test_1kcaptions_{lang}.txt")
    (splits / "train.txt").write_text("".join(n + "\n" for n in names))
    shutil.copy(raw_images["names"], xtd10 / "test_image_names.txt")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": REPO, "FLICKR_IMAGES": raw_images["images"],
           "COCO_IMAGES": raw_images["images"], "IMAGE_SPLITS": str(splits), "MULTI30K": str(multi30k),
           "XTD10": str(xtd10), "TOWER": tiny_clip, "MODEL": tiny_model_dir, "STEPS": "6", "BATCH": "4",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(["bash", os.path.join(REPO, "recipes", "image_text.sh"), str(out)], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.load(open(out / "eval" / "xtd10" / "results" / "results.json", encoding="utf-8"))
    assert results["images"] == N_IMAGES and results["languages"] == sorted(img_testing.LANGS)  # as found in XTD10
    meta = json.load(open(out / "model" / "hybrid_tevatron.json", encoding="utf-8"))
    assert meta["image_tower"]["tower"] == tiny_clip and meta["regime"] == "hybrid"
    assert "text→image R@1" in proc.stdout


def test_image_text_loss_is_the_mean_of_both_directions():
    import torch
    import torch.nn.functional as F

    from hybrid_tevatron.images.model import image_text_loss

    torch.manual_seed(0)
    captions = F.normalize(torch.randn(3, 5), dim=-1)
    images = F.normalize(torch.randn(6, 5), dim=-1)  # group of 2 per caption, positive first: rows 0, 2, 4
    t = 0.1
    t2i = -np.mean([F.log_softmax(captions[i] @ images.T / t, dim=0)[2 * i].item() for i in range(3)])
    i2t = -np.mean([F.log_softmax(images[2 * i] @ captions.T / t, dim=0)[i].item() for i in range(3)])
    assert image_text_loss(captions, images, t).item() == pytest.approx((t2i + i2t) / 2, rel=1e-5)


def test_image_evaluation_can_encode_the_images_itself(trained_image_model, image_set, image_index, tiny_clip,
                                                       tmp_path):
    from hybrid_tevatron.images.evaluate import evaluate

    a = evaluate(trained_image_model, image_set, str(tmp_path / "a"), image_index=image_index, device="cpu")
    b = evaluate(trained_image_model, image_set, str(tmp_path / "b"), tower=tiny_clip, device="cpu")
    for name in ("t2i.en", "i2t.multi"):
        ranks_a, ranks_b = (open(os.path.join(d, "ranks", f"{name}.tsv")).read() for d in (a, b))
        assert ranks_a == ranks_b
    for d in (a, b):  # the model's tower, checked by its digests
        check = json.load(open(os.path.join(d, "results", "results.json"), encoding="utf-8"))["tower_check"]
        assert check["status"] == "same" and check["model_tower"]["tower"] == tiny_clip


def test_image_training_flags_from_a_json_config(tiny_model_dir, image_set, image_index, tmp_path):
    from hybrid_tevatron.images.train import parse_image_args

    out = str(tmp_path / "out")
    config = {"image_data": image_set, "image_index": image_index, "image_negatives": 3, "backend": installed_backend(),
              "model_name_or_path": tiny_model_dir, "pooling": "mean", "temperature": 0.1, "regime": "mono",
              "output_dir": out, "per_device_train_batch_size": 4, "use_cpu": True}
    argv = [x for k, v in config.items() for x in ([f"--{k}"] if v is True else [f"--{k}", str(v)])]
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(config))
    from_flags, from_json = parse_image_args(argv), parse_image_args([str(path)])
    assert from_json[0] == from_flags[0] and from_json[0].image_negatives == 3
    assert from_json[2].temperature == from_flags[2].temperature == 0.1
    assert from_json[3].regime == from_flags[3].regime == "mono"
    assert from_json[4].output_dir == from_flags[4].output_dir == out and from_json[4].use_cpu


def test_images_sharing_a_caption_never_meet_in_a_step(image_set, image_index):
    """A duplicate caption (here: image 5's German caption is image 2's) would make each image a false negative of
    the other's caption: they are never each other's negatives and never share a step."""
    from hybrid_tevatron.eval.pipeline.ranks import read_index
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.source import ImageBatchPlan, image_source

    data = read_image_data(image_set)
    data.captions["de"][5] = data.captions["de"][2]
    source = image_source(data, read_index(image_index), negatives=6)
    assert 5 not in source.negatives(2).tolist() and 2 not in source.negatives(5).tolist()
    plan = ImageBatchPlan([source], batch_size=4, group_size=2, regime="hybrid", seed=1)
    met = []
    for e in range(20):
        for k in range(len(plan)):
            step = plan.step(e, k)
            check_step(step, plan, 2)
            docs = {d for x in step.entries for d in x.passages}
            met.append(bool({2, 5} & docs))
            assert not {2, 5} <= docs
    assert any(met)  # one of them is often in a step, never both
    plain = image_source(read_image_data(image_set), read_index(image_index), negatives=6)
    assert plain.doc_items() is None  # without duplicates: the plain doc rule


# ------------------------------------------------------------------------------------------------ which tower
@pytest.fixture(scope="session")
def text_model_with_image_processor(tiny_model_dir, tiny_clip, tmp_path_factory):
    """A text model folder with a CLIP image processor beside it: loads as an image processor, has no vision part."""
    import shutil

    folder = str(tmp_path_factory.mktemp("text-as-tower") / "xlmr")
    shutil.copytree(tiny_model_dir, folder)
    shutil.copy(os.path.join(tiny_clip, "preprocessor_config.json"), folder)
    return folder


def _one_error_line(err: str) -> str:
    """The one ``error:`` line, the last of stderr (transformers' weight-loading progress bar may come before it)."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    return errors[0]


def test_text_model_as_image_tower_is_refused_at_load(text_model_with_image_processor, image_set, image_index,
                                                      trained_image_model, tmp_path, capsys):
    from hybrid_tevatron.eval.__main__ import main

    folder = text_model_with_image_processor
    out = tmp_path / "index"
    proc = run_cli("hybrid_tevatron.images.encode", "--tower", folder, "--corpus", image_set, "--output", str(out))
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2 and f"{folder}: its XLMRobertaModel (xlm-roberta) has no vision part" in line
    assert "CLIP/SigLIP model with a vision part" in line and "vision-only CLIP" in line
    assert not out.exists() and "Traceback" not in proc.stderr
    ev = tmp_path / "ev"
    exit_line(main, ["images", trained_image_model, str(ev), "--image_data", image_set, "--tower", folder])
    assert "has no vision part" in _one_error_line(capsys.readouterr().err) and not ev.exists()


def test_tower_records_tell_towers_apart(tiny_clip, tmp_path, monkeypatch):
    """A copy elsewhere is the same tower; other weights of the same shape, or another config, are not."""
    import shutil

    from hybrid_tevatron.images.tower import describe_tower, tower_differences, tower_record

    ours = tower_record(tiny_clip)
    copy = shutil.copytree(tiny_clip, tmp_path / "copy")
    assert tower_record(str(copy))["tower_digest"] == ours["tower_digest"] and tower_differences(
        ours, tower_record(str(copy))) == []
    reseeded = img_testing.build_tiny_clip(str(tmp_path / "reseeded"), seed=1)  # the same config, other weights
    assert tower_differences(ours, tower_record(reseeded)) == ["weights"]
    patches = img_testing.build_tiny_clip(str(tmp_path / "patches"), image_size=16)  # the same size, other config
    assert tower_differences(ours, tower_record(patches)) == ["config", "weights"]
    assert tower_differences({**ours, "dimension": 12}, {**tower_record(patches), "dimension": 16})[0] == \
        "embedding size"
    # records without digests (older ones) compare by name; a relative path is recorded absolute
    assert tower_differences({"tower": tiny_clip}, ours) == [] and tower_differences({"tower": "x"}, ours) == [
        "name (no config digest on both sides to compare)"]
    monkeypatch.chdir(tmp_path)
    assert tower_record("copy")["tower"] == str(copy)
    digest = ours["tower_digest"]
    assert describe_tower({**ours, "dimension": 12}) == (f"{tiny_clip} (12 dimensions, config "
        f"{digest['config_sha256'][:12]}, weights {digest['weights']['model.safetensors']['sha256'][:12]})")


@pytest.fixture(scope="session")
def other_clip(tmp_path_factory):
    """Another tower of tiny_clip's shape and embedding size (12): the same config, other weights."""
    return img_testing.build_tiny_clip(str(tmp_path_factory.mktemp("other-clip") / "clip"), seed=1)


def _train_error(argv) -> str:
    from hybrid_tevatron.images.train import main

    return exit_line(main, argv)


def test_image_training_checks_the_tower_against_the_index(tiny_model_dir, tiny_clip, other_clip,
                                                          text_model_with_image_processor, image_set, image_index,
                                                          tmp_path, monkeypatch):
    """--image_tower must be the index's tower (tower.json: config and weights digests) and of its size;
    --allow_other_tower takes another of the same size and says so in hybrid_tevatron.json."""
    import shutil

    siglip = img_testing.build_tiny_tower(str(tmp_path / "siglip"), "siglip")  # 16 dimensions; the index has 12
    out = tmp_path / "model"
    image = ["--image_data", image_set, "--image_index", image_index, "--image_negatives", "4"]

    message = _train_error([*image, "--image_tower", siglip, *_train_argv(tiny_model_dir, out)])
    assert f"--image_tower {siglip} (16 dimensions, config " in message and "embeds in 16 dimensions" in message
    assert f"--image_index {image_index} holds 12-dimension vectors (its tower.json: {tiny_clip} (12 dim" in message
    message = _train_error([*image, "--image_tower", other_clip, *_train_argv(tiny_model_dir, out)])
    assert message.startswith(f"error: --image_index {image_index} was encoded with tower {tiny_clip} (12 dim")
    assert f"but --image_tower is {other_clip} (12 dimensions" in message and "they differ in weights;" in message
    assert "--allow_other_tower" in message
    message = _train_error([*image, "--image_tower", text_model_with_image_processor,
                            *_train_argv(tiny_model_dir, out)])
    assert f"{text_model_with_image_processor}: its XLMRobertaModel (xlm-roberta) has no vision part" in message
    merged = tmp_path / "merged"  # an index without tower.json (sharded, then merged): the size is still checked
    merged.mkdir()
    for name in ("index", "docid"):
        shutil.copy(os.path.join(image_index, name), merged)
    message = _train_error(["--image_data", image_set, "--image_index", str(merged), "--image_tower", siglip,
                            *_train_argv(tiny_model_dir, out)])
    assert message.endswith(f"embeds in 16 dimensions but --image_index {merged} holds 12-dimension vectors; "
                            "give the tower that encoded the index")
    assert not out.exists()

    # the override: recorded, with the tower as an absolute path (given relative)
    from hybrid_tevatron.images.train import main

    monkeypatch.chdir(os.path.dirname(other_clip))
    main([*image, "--image_tower", os.path.basename(other_clip), "--allow_other_tower",
          *_train_argv(tiny_model_dir, out, "--max_steps", "1")])
    entry = json.load(open(out / "hybrid_tevatron.json", encoding="utf-8"))["image_tower"]
    assert entry["tower"] == other_clip and entry["tower_digest"]["weights"]
    check = entry["tower_check"]
    assert check["status"] == "other tower allowed" and check["differences"] == ["weights"]
    assert check["index_tower"]["tower"] == tiny_clip


@pytest.fixture(scope="session")
def other_index(other_clip, image_set, tmp_path_factory):
    from hybrid_tevatron.images.encode import encode_images

    out = str(tmp_path_factory.mktemp("other-index") / "index")
    encode_images(other_clip, image_set, out, batch_size=5)
    return out


def test_image_evaluation_refuses_another_tower(trained_image_model, tiny_clip, other_clip, other_index, image_set,
                                                tmp_path, capsys):
    """CLIP ViT-B/32 and ViT-B/16 both embed in 512 dimensions: the digests tell them apart, not the size."""
    from hybrid_tevatron.eval.__main__ import main

    siglip = img_testing.build_tiny_tower(str(tmp_path / "towers" / "siglip"), "siglip")  # 16 dimensions
    capsys.readouterr()  # the fixtures' progress bars
    out = tmp_path / "ev"
    model = f"{trained_image_model} was trained against tower {tiny_clip} (12 dimensions, config "
    for images, says in ((["--image_index", other_index], f"but --image_index {other_index} was encoded with tower "
                                                          f"{other_clip} (12 dimensions, config "),
                         (["--tower", other_clip], f"but --tower is {other_clip} (12 dimensions, config ")):
        exit_line(main, ["images", trained_image_model, str(out), "--image_data", image_set, *images])
        line = _one_error_line(capsys.readouterr().err)
        assert model in line and says in line and "they differ in weights; " in line, line
        assert line.endswith("or give --allow_other_tower to score anyway (recorded in results.json)")
        assert sorted(os.listdir(tmp_path)) == ["towers"]  # no OUTPUT, no work folder, no lock
    # another embedding size: no override
    exit_line(main, ["images", trained_image_model, str(out), "--image_data", image_set, "--tower", siglip,
                     "--allow_other_tower"])
    line = _one_error_line(capsys.readouterr().err)
    assert f"but --tower is {siglip} (16 dimensions" in line and "they differ in embedding size, config, weights;" \
        in line and line.endswith("evaluate with the model's tower") and not out.exists()
    # the override scores, and results.json says so
    assert main(["images", trained_image_model, str(out), "--image_data", image_set, "--image_index", other_index,
                 "--allow_other_tower"]) == 0
    check = json.load(open(out / "results" / "results.json", encoding="utf-8"))["tower_check"]
    assert check["status"] == "other tower allowed" and check["differences"] == ["weights"]
    assert check["model_tower"]["tower"] == tiny_clip and check["images_tower"]["tower"] == other_clip


def test_image_evaluation_says_when_it_cannot_check_the_tower(trained_image_model, image_index, image_set, tmp_path,
                                                              caplog):
    """An index without tower.json (sharded, then merged) cannot be checked: the evaluation runs, warns, and
    results.json says unchecked."""
    import logging
    import shutil

    from hybrid_tevatron.eval.__main__ import main

    merged = tmp_path / "merged"
    merged.mkdir()
    for name in ("index", "docid"):
        shutil.copy(os.path.join(image_index, name), merged)
    out = tmp_path / "ev"
    with caplog.at_level(logging.WARNING):
        assert main(["images", trained_image_model, str(out), "--image_data", image_set, "--image_index",
                     str(merged)]) == 0
    check = json.load(open(out / "results" / "results.json", encoding="utf-8"))["tower_check"]
    assert check == {"status": "unchecked", "reason": f"{merged} has no tower.json"}
    assert f"not checked against the model's: {merged} has no tower.json" in caplog.text
