"""Our Pyserini encoders vs Pyserini's own Auto encoders and encode/search CLIs (tiny local model, real Pyserini/Faiss).

* fp32 embeddings equal ``AutoDocumentEncoder`` / ``AutoQueryEncoder``'s (cosine >= 0.9999 per text, norms equal)
  for cls/mean pooling, with and without prefix and L2 normalisation, with texts of mixed lengths and a small
  batch so that length bucketing reorders them;
* on a small XQuAD-R slice (en+de paragraphs), ``python -m hybrid_tevatron.pyserini.encode`` writes index/docid
  and embedding.pkl files that ``python -m pyserini.search.faiss`` reads unchanged, and its runs rank as those
  of ``python -m pyserini.encode ... --to-faiss`` + ``python -m pyserini.encode.query``;
* ``HybridQueryEncoder`` plugs into ``FaissSearcher`` and gives the run's rankings.
"""

import json
import os
import re

import numpy as np
import pytest

from hybrid_tevatron._pyserini_env import configure

configure()

TEXTS = [
    "the cat",
    "der hund und die katze im haus am fluss in der alten stadt mit dem roten buch und dem blauen wasser",
    "el perro",
    "猫狗房子河城市问题答案书水树红蓝小大老新猫狗",
    "question answer book water tree red blue small large old new the cat dog house river city",
    "a",
    "la casa roja",
]


def _cosines(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("prefix", [None, "passage: "])
def test_document_embeddings_equal_pyserini_auto(tiny_model_dir, pooling, normalize, prefix):
    from pyserini.encode import AutoDocumentEncoder

    from hybrid_tevatron.pyserini.encoders import HybridDocumentEncoder

    ours = HybridDocumentEncoder(tiny_model_dir, device="cpu", pooling=pooling, l2_norm=normalize,
                                 prefix=prefix or "", batch_size=3)
    theirs = AutoDocumentEncoder(tiny_model_dir, device="cpu", pooling=pooling, l2_norm=normalize,
                                 prefix=prefix[:-1] if prefix else None)  # Pyserini adds the space itself
    a = ours.encode(TEXTS, max_length=64)
    b = theirs.encode(TEXTS, max_length=64)
    assert a.dtype == np.float32 and a.shape == b.shape
    assert _cosines(a, b).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1), rtol=1e-4)
    # titles are joined as Pyserini joins them ("title text"); with a prefix, ours goes before the title, as in
    # training (prefix + title + sep + text), while Pyserini's Auto encoder puts it between title and text
    t = ["t1", "t2"]
    if prefix is None:
        assert _cosines(ours.encode(TEXTS[:2], titles=t, max_length=64),
                        theirs.encode(TEXTS[:2], titles=t, max_length=64)).min() >= 0.9999


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("prefix", [None, "query: "])
def test_query_embeddings_equal_pyserini_auto(tiny_model_dir, pooling, normalize, prefix):
    from pyserini.encode import AutoQueryEncoder

    from hybrid_tevatron.pyserini.encoders import HybridQueryEncoder

    ours = HybridQueryEncoder(tiny_model_dir, device="cpu", pooling=pooling, l2_norm=normalize,
                              prefix=prefix or "", max_length=32, batch_size=2)
    theirs = AutoQueryEncoder(tiny_model_dir, device="cpu", pooling=pooling, l2_norm=normalize,
                              prefix=prefix[:-1] if prefix else None)
    batch = ours.encode_batch(TEXTS)
    single = np.stack([ours.encode(t) for t in TEXTS])
    ref = np.stack([theirs.encode(t, max_length=32) for t in TEXTS])
    assert batch.shape == ref.shape and single.shape == ref.shape
    assert _cosines(batch, ref).min() >= 0.9999
    assert _cosines(single, ref).min() >= 0.9999


def test_defaults_come_from_checkpoint_metadata(tiny_model_dir, tmp_path):
    import shutil

    from hybrid_tevatron.encoding import Encoding, EncodingError, write_encoding
    from hybrid_tevatron.pyserini.encoders import HybridDocumentEncoder, HybridQueryEncoder

    with pytest.raises(EncodingError, match=re.escape("--pooling cls|mean and --normalize or --no-normalize")):
        HybridDocumentEncoder(tiny_model_dir, device="cpu")  # no hybrid_tevatron.json: no silent default
    model = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, model)
    write_encoding(str(model), Encoding(pooling="mean", normalize=True, query_prefix="query: ",
                                        passage_prefix="passage: ", query_max_len=16, passage_max_len=48))
    d = HybridDocumentEncoder(str(model), device="cpu")
    q = HybridQueryEncoder(str(model), device="cpu")
    assert (d.pooling, d.l2_norm, d.prefix, d.max_length) == ("mean", True, "passage: ", 48)
    assert (q.pooling, q.l2_norm, q.prefix, q.max_length) == ("mean", True, "query: ", 16)
    np.testing.assert_allclose(np.linalg.norm(d.encode(TEXTS[:3]), axis=1), 1.0, rtol=1e-5)
    over = HybridDocumentEncoder(str(model), device="cpu", pooling="cls", l2_norm=False, prefix="")
    assert (over.pooling, over.l2_norm, over.prefix) == ("cls", False, "")


# ------------------------------------------------------------------------------ CLI files and rankings


def _xquad_slice(shared_data, out_dir, paragraphs=2):
    """Corpus JSONL ({"id","contents"}) of the sentences and a topics TSV of the questions, en + de."""
    corpus, topics = [], []
    for lang in ("en", "de"):
        with open(os.path.join(shared_data, "xquad-r", f"{lang}.json"), encoding="utf-8") as f:
            data = json.load(f)["data"]
        paras = [p for article in data for p in article["paragraphs"]][:paragraphs]
        for pi, para in enumerate(paras):
            for si, sentence in enumerate(para["sentences"]):
                corpus.append({"id": f"{lang}-{pi}-{si}", "contents": sentence})
            for qa in para["qas"][:4]:
                topics.append((f"{lang}-{qa['id']}", qa["question"].replace("\t", " ").replace("\n", " ")))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for row in corpus:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(os.path.join(out_dir, "topics.tsv"), "w", encoding="utf-8") as f:
        for qid, q in topics:
            f.write(f"{qid}\t{q}\n")
    return len(corpus), [q for q, _ in topics]


def _read_run(path):
    run = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            qid, _, docid, rank, score, _ = line.split()
            run.setdefault(qid, []).append((int(rank), docid, float(score)))
    return {q: sorted(v) for q, v in run.items()}


def test_cli_index_read_by_pyserini_search_and_ranks_like_pyserini(tiny_model_dir, shared_data, tmp_path):
    import faiss

    from hybrid_tevatron.eval.runner import CliRunner

    work = tmp_path
    os.symlink(tiny_model_dir, work / "model")  # Pyserini picks encoder classes from path substrings
    n_docs, qids = _xquad_slice(shared_data, str(work / "data"))
    run = CliRunner("inprocess", cwd=str(work)).run
    common = ["--pooling", "mean", "--device", "cpu"]

    run("pyserini.encode", ["input", "--corpus", "data/corpus.jsonl", "--fields", "text",
                            "output", "--embeddings", "theirs/index", "--to-faiss",
                            "encoder", "--encoder", "model", "--encoder-class", "auto", "--fields", "text",
                            "--dimension", "32", "--max-length", "128", "--batch-size", "8", "--l2-norm",
                            "--prefix", "passage:", *common])
    os.makedirs(work / "theirs" / "queries")
    run("pyserini.encode.query", ["--topics", "data/topics.tsv", "--encoder", "model", "--output",
                                  "theirs/queries/embedding.pkl", "--max-length", "32", "--l2-norm",
                                  "--prefx", "query:", *common])
    os.makedirs(work / "ours" / "queries")
    run("hybrid_tevatron.pyserini.encode", ["--model", "model", "--corpus", "data/corpus.jsonl", "--output",
                                            "ours/index", "--prefix", "passage: ", "--max_len", "128",
                                            "--batch_size", "8", "--normalize", "--dimension", "32", *common])
    run("hybrid_tevatron.pyserini.encode", ["--model", "model", "--topics", "data/topics.tsv",
                                            "--output", "ours/queries", "--prefix", "query: ", "--max_len", "32",
                                            "--normalize", *common])

    # same files: docid identical, index a flat IP index with the same vectors (to fp32 rounding)
    assert sorted(os.listdir(work / "ours" / "index")) == ["docid", "index"]
    assert not [p for p in os.listdir(work / "ours") if p.startswith(".")]  # no temporary left over
    assert (work / "ours/index/docid").read_text() == (work / "theirs/index/docid").read_text()
    ours_ix, theirs_ix = (faiss.read_index(str(work / d / "index" / "index")) for d in ("ours", "theirs"))
    assert type(ours_ix) is type(theirs_ix) and ours_ix.ntotal == theirs_ix.ntotal == n_docs
    a, b = ours_ix.reconstruct_n(0, n_docs), theirs_ix.reconstruct_n(0, n_docs)
    assert _cosines(a, b).min() >= 0.9999

    for side in ("ours", "theirs"):
        run("pyserini.search.faiss", ["--index", f"{side}/index", "--topics", "data/topics.tsv",
                                      "--encoded-queries", f"{side}/queries", "--output", f"{side}/run.trec",
                                      "--hits", str(n_docs), "--batch-size", "16"])
    ours_run, theirs_run = _read_run(work / "ours/run.trec"), _read_run(work / "theirs/run.trec")
    assert sorted(ours_run) == sorted(theirs_run) == sorted(qids)
    for qid in qids:
        o, t = ours_run[qid], theirs_run[qid]
        assert len(o) == len(t) == n_docs
        t_score = {d: s for _, d, s in t}
        assert max(abs(s - t_score[d]) for _, d, s in o) < 1e-4
        for (_, od, _), (_, td, ts) in zip(o, t):  # same order, up to ties within score rounding
            assert od == td or abs(t_score[od] - ts) < 2e-4, (qid, od, td)

    # our query encoder inside FaissSearcher gives the pre-encoded run
    from pyserini.search.faiss import FaissSearcher

    from hybrid_tevatron.pyserini.encoders import HybridQueryEncoder

    encoder = HybridQueryEncoder(str(work / "model"), device="cpu", pooling="mean", l2_norm=True,
                                 prefix="query: ", max_length=32)
    searcher = FaissSearcher(str(work / "ours" / "index"), encoder)
    with open(work / "data/topics.tsv", encoding="utf-8") as f:
        topics = [line.rstrip("\n").split("\t", 1) for line in f]
    hits = searcher.batch_search([q for _, q in topics], [i for i, _ in topics], k=5)
    for qid, _ in topics:
        got = [h.docid for h in hits[qid]]
        want = [d for _, d, _ in ours_run[qid][:5]]
        assert got == want or all(abs(h.score - s) < 1e-4 for h, (_, _, s) in zip(hits[qid], ours_run[qid]))
    single = searcher.search(topics[0][1], k=3)
    assert [h.docid for h in single] == [h.docid for h in hits[topics[0][0]][:3]]


def test_cli_refuses_nonempty_output(tiny_model_dir, tmp_path):
    from hybrid_tevatron.pyserini.encode import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "contents": "the cat"}\n{"id": "b", "contents": "der hund"}\n')
    out = tmp_path / "idx"
    out.mkdir()
    (out / "keep").write_text("x")
    with pytest.raises(SystemExit, match="not empty"):
        main(["--model", tiny_model_dir, "--corpus", str(corpus), "--output", str(out), "--device", "cpu",
              "--pooling", "cls", "--no-normalize"])
    assert os.listdir(out) == ["keep"]
    with pytest.raises(SystemExit, match=re.escape("pass them explicitly: --pooling cls|mean and --normalize or")):
        main(["--model", tiny_model_dir, "--corpus", str(corpus), "--output", str(out), "--device", "cpu",
              "--overwrite"])
    main(["--model", tiny_model_dir, "--corpus", str(corpus), "--output", str(out), "--device", "cpu",
          "--overwrite", "--limit", "1", "--pooling", "cls", "--no-normalize"])
    assert (out / "docid").read_text() == "a\n"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


@pytest.mark.parametrize("multiple", [None, 8])
def test_batches_equal_tokenizer_padding(tiny_model_dir, multiple):
    """One tokenisation per window + token-length sort + padding == the tokenizer's own on the same texts."""
    import dataclasses

    import torch

    from hybrid_tevatron.pyserini.encoders import TextEncoder

    enc = TextEncoder.from_pretrained(tiny_model_dir, "passage", device="cpu", prefix="passage: ", max_length=16,
                                      batch_size=3, pooling="cls", normalize=False)
    enc.collator = dataclasses.replace(enc.collator, pad_to_multiple_of=multiple)
    batches = enc.batches(TEXTS)
    assert sorted(i for idx, _ in batches for i in idx) == list(range(len(TEXTS)))
    lengths = [int(b["attention_mask"].sum(1).max()) for _, b in batches]
    assert lengths == sorted(lengths, reverse=True)  # longest first
    for idx, batch in batches:  # the reference: the tokenizer's own truncation and padding
        want = enc.tokenizer(["passage: " + TEXTS[i] for i in idx], max_length=16, truncation=True, padding=True,
                             pad_to_multiple_of=multiple, return_tensors="pt")
        assert set(batch) == {"input_ids", "attention_mask"}
        assert torch.equal(batch["input_ids"], want["input_ids"])
        assert torch.equal(batch["attention_mask"], want["attention_mask"])
    assert any(len(b["input_ids"][0]) == 16 for _, b in batches)  # truncation reached
    if multiple:  # rounding up to the multiple never passes the max length (the tokenizer refuses such a pair)
        from hybrid_tevatron.collator import pad_batch

        assert pad_batch([[5] * 11], 1, 8, cap=12)["input_ids"].shape == (1, 12)
        assert pad_batch([[5] * 11], 1, 8, cap=16)["input_ids"].shape == (1, 16)
    # windows smaller than the input give the same embeddings, in input order
    whole = enc.encode(TEXTS)
    enc.window = 2
    np.testing.assert_allclose(enc.encode(TEXTS), whole, rtol=1e-5, atol=1e-6)


def test_cpu_dtypes(tiny_model_dir):
    """CPU: fp32 by default; bf16 autocast on request where the CPU has bf16 instructions; fp16 refused."""
    import torch

    from hybrid_tevatron.pyserini.encoders import TextEncoder, autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cpu) is None
    with pytest.raises(ValueError, match="fp16 autocast is not supported on cpu"):
        autocast_dtype("fp16", cpu)
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        with pytest.raises(ValueError, match="no bf16 instructions"):
            autocast_dtype("bf16", cpu)
        return
    assert autocast_dtype("bf16", cpu) == torch.bfloat16
    fp32 = TextEncoder.from_pretrained(tiny_model_dir, "passage", device="cpu", pooling="mean", normalize=True)
    bf16 = TextEncoder.from_pretrained(tiny_model_dir, "passage", device="cpu", pooling="mean", normalize=True,
                                       dtype="bf16")
    a, b = fp32.encode(TEXTS), bf16.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32
    assert _cosines(a, b).min() > 0.99 and not np.array_equal(a, b)
