"""Plain names shared by the test files: the repository's paths, a subprocess's environment, one-error-line checks,
backend choice and small data writers. Test files import them from here (``from helpers import ...``: pytest's
default "prepend" import mode puts tests/ on ``sys.path`` for the root conftest.py) and never from each other;
fixtures and hooks are in conftest.py."""

import gzip
import json
import os
import random
import sys

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)  # the checkout
RESOURCES = os.path.join(TESTS, "resources")
RESOURCE_DATA = os.path.join(RESOURCES, "data")  # the data root on a plain clone (see its README)
SHARED_DATA = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))  # the real data, beside the checkout


# ------------------------------------------------------------------------------------------------ processes
def recipe_env(**extra) -> dict:
    """Environment for a recipe or CLI run as a subprocess: this interpreter's bin first on PATH (its python and
    Pyserini), PYTHON set to it, the Hub offline; ``extra`` on top."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHON"] = sys.executable
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


def exit_line(main, argv) -> str:
    """The one ``error: ...`` line a command-line ``main(argv)`` ends with (exit 2); fails on anything else."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2, err.value.code
    message = str(err.value)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def error_lines(stderr: str):
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def one_error(proc, code=2) -> str:
    """The single ``error:`` line of a finished process that exited with ``code``, without a traceback."""
    lines = error_lines(proc.stderr)
    assert proc.returncode == code and len(lines) == 1 and "Traceback" not in proc.stderr, \
        (proc.returncode, proc.stderr[-3000:])
    return lines[0]


def hidden(folder):
    """Hidden leftovers (lock files, ``.NAME.tmp.*`` folders) in ``folder``."""
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def study_env(tmp_path, fake_seconds):
    """The environment of ``domain_study run`` with a zero-shot cell and one caption set; its steps run a fake
    ``python`` that sleeps ``fake_seconds`` and fails, so the study holds its lock for that long."""
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\nsleep {fake_seconds}\nexit 1\n")
    fake.chmod(0o755)
    for name in ("xtd10", "multi30k", "multi30k-task2", "xquad"):
        (tmp_path / name).mkdir(exist_ok=True)
    values = dict(MODEL="m", STEPS="2", BATCH="4", GROUP_SIZE="2", QUERY_MAX_LEN="8", PASSAGE_MAX_LEN="8", LR="1e-4",
                  WARMUP_RATIO="0", TEMPERATURE="0.05", ALPHA="0.5", EVAL_QUERY_MAX_LEN="8",
                  EVAL_PASSAGE_MAX_LEN="8", XQUAD_R=str(tmp_path / "xquad"), XTD10=str(tmp_path / "xtd10"),
                  MULTI30K=str(tmp_path / "multi30k"), MULTI30K_TASK2=str(tmp_path / "multi30k-task2"),
                  CELLS="zero-shot", EVAL_SETS="xtd10", SEEDS="1", PYTHON=str(fake))
    return recipe_env(**values)


# ------------------------------------------------------------------------------------------------ backends
BACKENDS = ["pypi", "main"]
_MISSING = {"pypi": "Tevatron 0.1.0 (tevatron.modeling/tevatron.trainer) is not importable",
            "main": "Tevatron main (tevatron.retriever) is not importable"}


def skip_unavailable_backend(name):
    """``name``, or skip the test when that backend's Tevatron is not installed."""
    from hybrid_tevatron.backends import backend_available

    if not backend_available(name):
        pytest.skip(f"backend {name!r} not installed: {_MISSING[name]}")
    return name


def installed_backend() -> str:
    """A backend whose Tevatron is installed (:data:`BACKENDS` order), for a test about something else than the
    backend; skips the test where none is."""
    from hybrid_tevatron.backends import backend_available

    for name in BACKENDS:
        if backend_available(name):
            return name
    pytest.skip("no Tevatron installed: " + "; ".join(_MISSING.values()))


# ------------------------------------------------------------------------------------------------ batch plans
def make_source(
    n=48, languages=("en", "de", "es", "zh"), negatives=6, name="src", missing=None, seed=0, extra_positives=False
):
    """Query i has positive doc i (and doc n + i with ``extra_positives``) and ``negatives`` other docs;
    ``missing`` = {lang: docs without text}."""
    from hybrid_tevatron.data.corpus import ParallelCorpus, csr

    rng = np.random.default_rng(seed)
    n_docs = 2 * n
    positives = [[i, n + i] if extra_positives else [i] for i in range(n)]
    neg_lists = [[int(d) for d in rng.choice([d for d in range(n_docs) if d not in positives[i]], negatives,
                                             replace=False)] for i in range(n)]
    pos_off, pos = csr(positives)
    neg_off, neg = csr(neg_lists)
    missing = missing or {}
    passages = {l: [None if d in missing.get(l, ()) else f"{l}-{d}" for d in range(n_docs)] for l in languages}
    return ParallelCorpus(
        name, list(languages), [f"q{i}" for i in range(n)], [f"d{d}" for d in range(n_docs)],
        {l: [f"{l}-q{i}" for i in range(n)] for l in languages}, passages, pos_off, pos, neg_off, neg,
    )


def all_steps(plan, epoch=0):
    return [plan.step(epoch, k) for k in range(len(plan))]


def check_step(plan, step):
    """Every invariant of one packed step."""
    from hybrid_tevatron.sampling import CROSS, MONO, XX

    assert len(step.entries) == plan.batch_size
    queries = [(e.source, e.query) for e in step.entries]
    assert len(set(queries)) == len(queries), "a query occurs twice in a step"
    owner = {}
    for i, e in enumerate(step.entries):  # every positive of a query belongs to its example only
        for d in plan.sources[e.source].positives(e.query).tolist():
            owner[d] = i
    for i, e in enumerate(step.entries):
        source = plan.sources[e.source]
        assert e.source == step.source and e.mode == step.mode and (e.epoch, e.step) == (step.epoch, step.step)
        assert len(e.passages) == plan.group_size
        assert e.passages[0] in set(source.positives(e.query).tolist())
        allowed = set(source.negatives(e.query, e.passage_lang).tolist())
        assert set(e.passages[1:]) <= allowed, "negative not from the query's own negatives in Lp"
        for d in set(e.passages):
            assert owner.setdefault(d, i) == i, f"doc {d} in two examples of a step"
        if step.mode == MONO:
            assert e.query_lang == e.passage_lang == step.language
        elif step.mode == CROSS:
            assert e.query_lang != e.passage_lang
            if plan.pivot_language:
                assert e.passage_lang == plan.pivot_language
        else:
            assert step.mode == XX and e.query_lang == e.passage_lang
    assert plan.mode(step.epoch, step.step) == (step.source, step.mode, step.language)
    items = plan.sources[step.source].doc_items()
    if items is not None:  # an item source (several descriptions per image): one image in one example only
        source = plan.sources[step.source]
        item_owner = {}
        for i, e in enumerate(step.entries):
            own = set(source.same_item(e.query).tolist())
            assert e.passages[0] not in own, "a caption paired with itself"
            assert source.query_text(e.query_lang, e.query) != source.passage_text(e.passage_lang, e.passages[0])
            for d in (*source.positives(e.query).tolist(), *own, *e.passages):
                assert item_owner.setdefault(int(items[d]), i) == i, f"the image of doc {d} in two examples"


# ------------------------------------------------------------------------------------------------ files
TRAINING_SETTINGS = {"pooling": "mean", "normalize": True, "query_prefix": "query: ", "passage_prefix": "passage: ",
                     "query_max_len": 32, "passage_max_len": 128}
ENCODING = ["--pooling", "mean", "--normalize", "--device", "cpu"]


def write_corpus(path, n_docs, seed=1):
    """A Pyserini JSONL corpus of ``n_docs`` texts of varied lengths in four languages; return the ids in order."""
    from hybrid_tevatron.testing import LANGUAGES, random_sentence

    rng = random.Random(seed)
    ids = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n_docs):
            lang = LANGUAGES[i % len(LANGUAGES)]
            ids.append(f"{lang}-{i}")
            f.write(json.dumps({"id": ids[-1], "contents": random_sentence(rng, lang, 3 + (i * 7) % 17)},
                               ensure_ascii=False) + "\n")
    return ids


def docids(index_dir):
    with open(os.path.join(index_dir, "docid"), encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


_CAPTION_WORDS = {"en": "the cat dog house river red blue small".split(),
                  "de": "der die katze hund haus fluss rot".split(),
                  "fr": "le la chat chien maison rouge bleu".split()}


def write_captions(folder, n=30, languages=("en", "de", "fr"), gz=False):
    """``{lang}.txt`` (or ``.txt.gz``) with caption i on line i, distinct per image; returns ``{lang: path}``."""
    os.makedirs(folder, exist_ok=True)
    files = {}
    for lang in languages:
        words = _CAPTION_WORDS[lang]
        lines = [f"{words[i % len(words)]} {words[(i * 3 + 1) % len(words)]} {i}" for i in range(n)]
        path = os.path.join(folder, f"{lang}.txt" + (".gz" if gz else ""))
        data = ("\n".join(lines) + "\n").encode("utf-8")
        with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
            f.write(data)
        files[lang] = path
    return files


_MIRACL_WORDS = {
    "de": "der die das katze hund haus fluss stadt frage antwort buch wasser baum rot blau klein".split(),
    "sw": "paka mbwa nyumba mto mji swali jibu kitabu maji mti nyekundu bluu ndogo kubwa".split(),
}
MIRACL_DOCS, MIRACL_QUERIES = 120, 8  # per language


def write_miracl_fixture(root) -> dict:
    """MIRACL-shaped files: corpus/miracl-corpus-v1.0-{lang}/docs-0.jsonl.gz (a local copy of the HF repository's
    layout), topics.{lang}.tsv and qrels.{lang}.txt (1-2 relevant + 1 judged non-relevant per query)."""
    rng = random.Random(0)
    root = str(root)
    for lang, words in _MIRACL_WORDS.items():
        folder = os.path.join(root, "corpus", f"miracl-corpus-v1.0-{lang}")
        os.makedirs(folder)
        docs = [(f"{i // 3}#{i % 3}", " ".join(rng.choice(words) for _ in range(2)),
                 " ".join(rng.choice(words) for _ in range(12))) for i in range(MIRACL_DOCS)]
        with gzip.open(os.path.join(folder, "docs-0.jsonl.gz"), "wt", encoding="utf-8") as f:
            for docid, title, text in docs:
                f.write(json.dumps({"docid": docid, "title": title, "text": text}, ensure_ascii=False) + "\n")
        with open(os.path.join(root, f"topics.{lang}.tsv"), "w", encoding="utf-8") as t, \
                open(os.path.join(root, f"qrels.{lang}.txt"), "w", encoding="utf-8") as q:
            for i in range(MIRACL_QUERIES):
                t.write(f"{100 + i}\t{' '.join(docs[5 * i][2].split()[:4])}\n")
                q.write(f"{100 + i} Q0 {docs[5 * i][0]} 1\n")
                if i % 2:
                    q.write(f"{100 + i} Q0 {docs[5 * i + 1][0]} 1\n")
                q.write(f"{100 + i} Q0 {docs[5 * i + 2][0]} 0\n")
    return {"topics": os.path.join(root, "topics.{lang}.tsv"), "qrels": os.path.join(root, "qrels.{lang}.txt"),
            "corpus": os.path.join(root, "corpus")}
