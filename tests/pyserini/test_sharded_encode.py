"""Sharded corpus encoding and merging (tiny local model; real torchrun, Faiss, Pyserini merge tool and search).

* ``torchrun --nproc_per_node 2 -m hybrid_tevatron.pyserini.encode`` (each rank picks its shard) + the merge equal
  one process: the same docids in the same order, bitwise the same vectors with ``--batch_size 1`` (no padding, so
  nothing depends on how texts are batched), and ``python -m pyserini.search.faiss`` runs identical byte for byte;
  searching each shard and merging the runs gives the same top k. The shards are Pyserini's own split.
* Batched encoding of all shards in one process equals the one-process index to fp32 rounding.
* A shard killed mid-encoding leaves only a temporary folder: the merge refuses the missing shard, and rerunning
  encodes only that shard (the finished one is untouched).
* Bad input (shard id out of range, mixed shard counts, a missing shard, another encoding's shard, a shard whose
  docids and vectors disagree, a bad run line) stops with one line naming the shard or file, and writes nothing.
* ``encode_corpus_processes`` (the evaluation's ``--encode_processes N``): torchrun with 2 CPU processes + the merge
  equal one process to fp32 rounding, both replayable command lines are recorded and the shards folder is removed;
  1 process runs the one-process encoder; a failing process raises one error naming the command, writing nothing.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import faiss
import numpy as np
import pytest
from helpers import ENCODING, docids, recipe_env, write_corpus

from hybrid_tevatron.pyserini.shards import SHARD_INFO, process_shards, shard_name, shard_range
from hybrid_tevatron.testing import LANGUAGES, random_sentence

N_DOCS = 23  # odd, so the last shard takes the remainder
def encode_cmd(model, *args):
    return [sys.executable, "-m", "hybrid_tevatron.pyserini.encode", "--model", model, *ENCODING, *map(str, args)]


def run(cmd, cwd):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd,
                         env=recipe_env(OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def vectors(index_dir):
    index = faiss.read_index(os.path.join(index_dir, "index"))
    return type(index), index.reconstruct_n(0, index.ntotal)


def leftovers(folder):
    return [p for p in os.listdir(folder) if p.startswith(".")]


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_model_dir):
    """A corpus and topics; the tiny model encodes the topics once (pre-encoded queries for every search)."""
    from hybrid_tevatron.pyserini.encode import main

    work = tmp_path_factory.mktemp("sharded")
    ids = write_corpus(work / "corpus.jsonl", N_DOCS)
    rng = random.Random(2)
    with open(work / "topics.tsv", "w", encoding="utf-8") as f:
        for i in range(8):
            f.write(f"q{i}\t{random_sentence(rng, LANGUAGES[i % 4], 4)}\n")
    main(["--model", tiny_model_dir, "--topics", str(work / "topics.tsv"), "--output", str(work / "queries"),
          *ENCODING])
    return work, ids


def search(work, index, output, hits):
    from hybrid_tevatron.eval.runner import CliRunner

    CliRunner("inprocess", cwd=str(work)).run("pyserini.search.faiss", [
        "--index", index, "--topics", "topics.tsv", "--encoded-queries", "queries", "--output", output,
        "--hits", hits, "--batch-size", "8"])  # fmt: skip
    return (work / output).read_text(encoding="utf-8")


def test_split_is_pyserinis(tmp_path):
    from pyserini.encode import JsonlCollectionIterator

    ids = write_corpus(tmp_path / "c.jsonl", N_DOCS)
    collection = JsonlCollectionIterator(str(tmp_path / "c.jsonl"), ["text"])
    for num_shards in (1, 2, 3, 5, 7, N_DOCS):
        ranges = [shard_range(N_DOCS, i, num_shards) for i in range(num_shards)]
        assert [r for rng in ranges for r in range(*rng)] == list(range(N_DOCS))  # contiguous, in order
        for shard_id, (start, stop) in enumerate(ranges):
            theirs = [i for batch in collection(N_DOCS, shard_id, num_shards) for i in batch["id"]]
            assert theirs == ids[start:stop], (num_shards, shard_id)


def test_process_shards_from_rank():
    assert process_shards(None, None, env={}) is None  # unsharded
    assert process_shards(3, None, env={}) == (3, [0, 1, 2])  # one process, every shard in turn
    assert process_shards(3, 1, env={}) == (3, [1])
    assert process_shards(None, None, env={"WORLD_SIZE": "2", "RANK": "1"}) == (2, [1])  # torchrun: one per rank
    assert process_shards(5, None, env={"WORLD_SIZE": "2", "RANK": "1"}) == (5, [1, 3])
    assert process_shards(5, None, env={"WORLD_SIZE": "2", "RANK": "0"}) == (5, [0, 2, 4])


def test_two_processes_equal_one(work, tiny_model_dir):
    from hybrid_tevatron.pyserini.merge import main as merge

    work, ids = work
    run(encode_cmd(tiny_model_dir, "--corpus", "corpus.jsonl", "--output", "single", "--batch_size", 1), work)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         *encode_cmd(tiny_model_dir, "--corpus", "corpus.jsonl", "--output", "shards", "--batch_size", 1)[1:]],
        work)  # fmt: skip
    names = [shard_name(i, 2) for i in range(2)]
    assert sorted(os.listdir(work / "shards")) == names  # one shard per rank, no temporary left
    for name, (start, stop) in zip(names, [(0, 11), (11, 23)]):
        assert sorted(os.listdir(work / "shards" / name)) == ["docid", "index", SHARD_INFO]
        assert docids(work / "shards" / name) == ids[start:stop]
        info = json.loads((work / "shards" / name / SHARD_INFO).read_text())
        assert (info["start"], info["stop"], info["corpus_size"], info["dimension"]) == (start, stop, N_DOCS, 32)

    merge(["--shards", str(work / "shards"), "--output", str(work / "merged")])
    assert sorted(os.listdir(work / "merged")) == ["docid", "index"]  # what a one-process encoding writes
    assert docids(work / "merged") == docids(work / "single") == ids
    (merged_type, merged), (single_type, single) = vectors(work / "merged"), vectors(work / "single")
    assert merged_type is single_type is faiss.IndexFlatIP
    assert np.array_equal(merged, single)
    assert search(work, "merged", "merged.trec", N_DOCS) == search(work, "single", "single.trec", N_DOCS)

    # per-shard search + exact top-k merge of the runs = the top k of the merged index
    k = 5
    for i, name in enumerate(names):
        search(work, f"shards/{name}", f"shard{i}.trec", k)
    merge(["--runs", str(work / "shard1.trec"), str(work / "shard0.trec"), "--hits", str(k),
           "--output", str(work / "topk.trec")])
    want = [line for line in (work / "single.trec").read_text().splitlines() if int(line.split()[3]) <= k]
    assert (work / "topk.trec").read_text().splitlines() == want
    assert not leftovers(work)


def test_batched_shards_in_one_process_and_resume_after_kill(tiny_model_dir, tmp_path):
    """One process, all shards, batches of 4: the merged index equals the unsharded one to fp32 rounding. A shard
    killed by SIGKILL is redone by rerunning the command; the finished shard is left as it is."""
    from hybrid_tevatron.pyserini.encode import main as encode
    from hybrid_tevatron.pyserini.merge import main as merge

    n_docs = 800
    ids = write_corpus(tmp_path / "corpus.jsonl", n_docs)
    common = ["--model", tiny_model_dir, "--corpus", str(tmp_path / "corpus.jsonl"), *ENCODING,
              "--batch_size", "4", "--sort_window", "64"]
    shards = tmp_path / "shards"
    encode([*common, "--output", str(shards), "--num_shards", "2", "--shard_id", "0"])
    first = shards / shard_name(0, 2)
    stamp = {name: os.stat(first / name).st_mtime_ns for name in os.listdir(first)}

    # shard 1 killed while encoding: only its temporary folder is left
    proc = subprocess.Popen(encode_cmd(tiny_model_dir, "--corpus", tmp_path / "corpus.jsonl", "--output", shards,
                                       "--num_shards", 2, "--shard_id", 1, "--batch_size", 1, "--sort_window", 8),
                            env=recipe_env(OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not leftovers(shards) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert leftovers(shards) and sorted(os.listdir(shards)) == sorted([first.name, *leftovers(shards)])

    with pytest.raises(SystemExit, match=r"1 of 2 shards missing \(shard-00001-of-00002\)"):
        merge(["--shards", str(shards), "--output", str(tmp_path / "merged")])
    assert not os.path.exists(tmp_path / "merged") and not leftovers(tmp_path)

    encode([*common, "--output", str(shards), "--num_shards", "2"])  # the same command: only shard 1 is encoded
    assert {name: os.stat(first / name).st_mtime_ns for name in os.listdir(first)} == stamp
    assert sorted(os.listdir(shards)) == [shard_name(0, 2), shard_name(1, 2)]  # temporary folder removed

    merge(["--shards", str(shards), "--output", str(tmp_path / "merged")])
    encode([*common, "--output", str(tmp_path / "single")])
    assert docids(tmp_path / "merged") == docids(tmp_path / "single") == ids
    np.testing.assert_allclose(vectors(tmp_path / "merged")[1], vectors(tmp_path / "single")[1], rtol=0, atol=2e-6)


def test_bad_input_one_line_nothing_written(tiny_model_dir, tmp_path, monkeypatch):
    from hybrid_tevatron.pyserini.encode import main as encode
    from hybrid_tevatron.pyserini.merge import main as merge

    write_corpus(tmp_path / "c.jsonl", N_DOCS)
    common = ["--model", tiny_model_dir, "--corpus", str(tmp_path / "c.jsonl"), *ENCODING]
    out = tmp_path / "shards"

    def refused(pattern, args, run=encode):
        with pytest.raises(SystemExit, match=pattern) as err:
            run(args)
        assert "\n" not in str(err.value)
        assert not leftovers(tmp_path)

    refused(r"--shard_id 2 is out of range for --num_shards 2 \(0\.\.1\)",
            [*common, "--output", str(out), "--num_shards", "2", "--shard_id", "2"])
    refused("--shard_id needs --num_shards", [*common, "--output", str(out), "--shard_id", "0"])
    refused("more than the corpus' 23 documents", [*common, "--output", str(out), "--num_shards", "24"])
    refused("topics are encoded by one process", ["--model", tiny_model_dir, "--topics", str(tmp_path / "t.tsv"),
                                                 "--output", str(tmp_path / "q"), "--num_shards", "2"])
    monkeypatch.setenv("WORLD_SIZE", "2")
    refused("taken from the rank under torchrun", [*common, "--output", str(out), "--num_shards", "2",
                                                   "--shard_id", "0"])
    monkeypatch.delenv("WORLD_SIZE")
    assert not os.path.exists(out)

    encode([*common, "--output", str(out), "--num_shards", "2", "--shard_id", "0"])
    # a finished shard of another encoding is not taken for this one
    refused(r"holds a shard of another encoding \(prefix 'passage: ' vs ''\); pass --overwrite",
            [*common, "--output", str(out), "--num_shards", "2", "--shard_id", "0", "--prefix", "passage: "])
    refused(r"1 of 2 shards missing \(shard-00001-of-00002\)",
            ["--shards", str(out), "--output", str(tmp_path / "m")], run=merge)
    encode([*common, "--output", str(out), "--num_shards", "3", "--shard_id", "1"])
    refused(r"shards of different --num_shards \(shard-00000-of-00002, shard-00001-of-00003\)",
            ["--shards", str(out), "--output", str(tmp_path / "m")], run=merge)
    refused("no shard-NNNNN-of-NNNNN folders", ["--shards", str(tmp_path), "--output", str(tmp_path / "m")],
            run=merge)
    assert not os.path.exists(tmp_path / "m")

    torn = tmp_path / "torn"  # a shard whose docid file does not match its index
    encode([*common, "--output", str(torn), "--num_shards", "2"])
    with open(torn / shard_name(1, 2) / "docid", "a", encoding="utf-8") as f:
        f.write("extra\n")
    refused(r"shard-00001-of-00002: 13 docids and 12 vectors for rows 11\.\.22",
            ["--shards", str(torn), "--output", str(tmp_path / "m")], run=merge)
    assert not os.path.exists(tmp_path / "m")

    (tmp_path / "a.trec").write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 two 0.4 tag\n")
    refused(r"a\.trec:2: not a TREC run line", ["--runs", str(tmp_path / "a.trec"), "--hits", "5", "--output",
                                                str(tmp_path / "r.trec")], run=merge)
    assert not os.path.exists(tmp_path / "r.trec")


def test_process_args_drop_a_cuda_device():
    """Every process takes cuda:LOCAL_RANK: a --device cuda... meant for one process is dropped, cpu is kept."""
    from hybrid_tevatron.pyserini.parallel import process_args

    assert process_args(["--model", "m", "--device", "cuda:0", "--batch_size", "8"]) == \
        ["--model", "m", "--batch_size", "8"]
    assert process_args(["--device=cuda", "--model", "m"]) == ["--model", "m"]
    assert process_args(["--device", "cpu", "--model", "m"]) == ["--device", "cpu", "--model", "m"]


def test_encode_corpus_processes(tiny_model_dir, tmp_path):
    """The evaluation's N-process encoding: torchrun with 2 CPU processes + the merge = the one-process index
    (docids in order, vectors to fp32 rounding), both command lines recorded, the shards folder removed; nproc 1
    runs the one-process encoder; a failing process raises one error naming the command, and nothing is written."""
    from hybrid_tevatron.errors import HybridTevatronError
    from hybrid_tevatron.pyserini.encode import main as encode
    from hybrid_tevatron.pyserini.parallel import EncodeProcessesError, encode_corpus_processes

    ids = write_corpus(tmp_path / "corpus.jsonl", N_DOCS)
    args = ["--model", tiny_model_dir, "--corpus", "corpus.jsonl", *ENCODING, "--batch_size", "4"]
    encode([*args[:3], str(tmp_path / "corpus.jsonl"), *args[4:], "--output", str(tmp_path / "single")])
    env = recipe_env(OMP_NUM_THREADS="1")

    lines = []
    encode_corpus_processes(args, "index", 2, record=lines.append, cwd=str(tmp_path), env=env)
    assert lines == [
        f"torchrun --standalone --nproc_per_node 2 -m hybrid_tevatron.pyserini.encode --model {tiny_model_dir} "
        "--corpus corpus.jsonl --pooling mean --normalize --device cpu --batch_size 4 --output index.shards",
        "python -m hybrid_tevatron.pyserini.merge --shards index.shards --output index"]
    assert sorted(os.listdir(tmp_path / "index")) == ["docid", "index"]
    assert not os.path.exists(tmp_path / "index.shards") and not leftovers(tmp_path)
    assert docids(tmp_path / "index") == docids(tmp_path / "single") == ids
    np.testing.assert_allclose(vectors(tmp_path / "index")[1], vectors(tmp_path / "single")[1], rtol=0, atol=2e-6)

    with pytest.raises(EncodeProcessesError, match="index exists and is not empty"):
        encode_corpus_processes(args, "index", 2, cwd=str(tmp_path), env=env)  # refused before anything runs
    with pytest.raises(EncodeProcessesError, match="leave --output out"):
        encode_corpus_processes([*args, "--output", "x"], "other", 2, cwd=str(tmp_path), env=env)

    lines = []
    encode_corpus_processes(args, "one", 1, record=lines.append, cwd=str(tmp_path), env=env)
    assert lines == [f"python -m hybrid_tevatron.pyserini.encode --model {tiny_model_dir} --corpus corpus.jsonl "
                     "--pooling mean --normalize --device cpu --batch_size 4 --output one"]
    assert docids(tmp_path / "one") == ids
    np.testing.assert_array_equal(vectors(tmp_path / "one")[1], vectors(tmp_path / "single")[1])

    lines = []
    bad = ["--model", tiny_model_dir, "--corpus", "missing.jsonl", *ENCODING]
    with pytest.raises(EncodeProcessesError, match=r"exit code \d+: torchrun --standalone --nproc_per_node 2 ") as err:
        encode_corpus_processes(bad, "failed", 2, record=lines.append, cwd=str(tmp_path), env=env)
    assert isinstance(err.value, HybridTevatronError) and "\n" not in str(err.value)
    assert len(lines) == 1 and lines[0] in str(err.value)
    assert not os.path.exists(tmp_path / "failed") and not leftovers(tmp_path)
