"""Nothing silently wrong (issue 22): locks for training, the study and evaluation outputs; a model-folder check and
shard records for ``pyserini.encode``; duplicate docids refused by the merge and by a one-index encoding (issue 27);
one ``error:`` line and exit status 2 for every expected failure, one line and 128 + N for a signal.

The commands run as they are given to users (``python -m ...`` as processes, or their ``main`` in-process), with the
tiny local model; concurrent cases are real concurrent processes started together. Each case asserts the one line,
the exit status, and that nothing half-written is left (no lock file, no ``.tmp`` folder, no mixed checkpoint).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import recipe_env
from test_sharded_encode import ENCODING, docids, write_corpus

from hybrid_tevatron.eval.output import OutputError, OutputFolder
from hybrid_tevatron.locks import FolderLock, LockError, normalize_path
from hybrid_tevatron.pyserini.shards import shard_name

PY = sys.executable


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


# ------------------------------------------------------------------------------------------------ the lock itself
def test_folder_lock_names_the_holder_and_is_one_per_spelling(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert normalize_path(f"{tmp_path}/real/") == normalize_path(str(tmp_path / "link")) == str(tmp_path / "real")
    holder = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import sys, time
        from hybrid_tevatron.locks import FolderLock
        with FolderLock({str(tmp_path / 'real')!r}, "a test holder"):
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for spelling in (f"{tmp_path}/real/", str(tmp_path / "link"), f"{tmp_path}/./real"):
            with pytest.raises(LockError, match=rf"^{tmp_path}/real is in use by a test holder, pid {holder.pid} "):
                FolderLock(spelling, "a second").acquire()
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0 and hidden(tmp_path) == []  # released: the lock file is gone
    with FolderLock(str(tmp_path / "real"), "now free"):
        pass


# ------------------------------------------------------------------------------------------------ training
def train_argv(model, data, out, seed, steps=2, *extra):
    return [PY, "-m", "hybrid_tevatron.driver.train", "--model_name_or_path", str(model), "--train_files", str(data),
            "--output_dir", str(out), "--per_device_train_batch_size", "4", "--train_group_size", "3",
            "--max_steps", str(steps), "--save_strategy", "no", "--report_to", "none", "--use_cpu",
            "--disable_tqdm", "true", "--logging_steps", "1", "--seed", str(seed), *map(str, extra)]


def test_two_trainings_into_one_output_dir_one_runs_the_other_is_refused(tiny_model_dir, parallel_dir, tmp_path):
    """Started together into the same absent --output_dir with different seeds: exactly one trains (its checkpoint
    carries its own seed, its plan log is JSON throughout), the other is refused at once naming the holder."""
    out = tmp_path / "out"
    env = recipe_env(OMP_NUM_THREADS="1")
    procs = {seed: subprocess.Popen(train_argv(tiny_model_dir, parallel_dir, out, seed, 30), env=env, text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for seed in (3, 4)}
    results = {seed: p.communicate(timeout=600)[1] for seed, p in procs.items()}
    codes = {seed: p.returncode for seed, p in procs.items()}
    assert sorted(codes.values()) == [0, 2], {s: (codes[s], results[s][-2000:]) for s in codes}
    winner = next(s for s, c in codes.items() if c == 0)
    loser = 7 - winner
    lines = error_lines(results[loser])
    assert len(lines) == 1 and "Traceback" not in results[loser], results[loser][-3000:]
    assert lines[0].startswith(f"error: {out} is in use by a training, pid {procs[winner].pid} on "), lines[0]
    assert torch.load(out / "training_args.bin", weights_only=False).seed == winner
    plan = [json.loads(line) for line in open(out / "plan_log.rank0.jsonl", encoding="utf-8")]
    assert [r["global_step"] for r in plan] == list(range(30))
    assert hidden(tmp_path) == [] and hidden(out) == []  # no lock file, no staging folder


def test_ctrl_c_during_training_is_one_line_saying_what_was_kept(tiny_model_dir, parallel_dir, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(train_argv(tiny_model_dir, parallel_dir, out, 3, 100000, "--save_strategy", "steps",
                                       "--save_steps", "2"),
                            env=recipe_env(OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 300
        while not (out / "checkpoint-2").is_dir() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    [line] = error_lines(err)
    assert line.startswith(f"error: stopped by SIGINT; kept {out}/checkpoint-") and line.endswith(
        "(the newest complete checkpoint); rerun the same command with --resume_from_checkpoint last to continue "
        "from it"), line
    assert hidden(tmp_path) == []  # the lock is released and its file removed


def test_truncated_tokenizer_json_is_one_line_in_training(tiny_model_dir, parallel_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    text = (model / "tokenizer.json").read_text(encoding="utf-8")
    (model / "tokenizer.json").write_text(text[: len(text) // 2], encoding="utf-8")
    proc = subprocess.run(train_argv(model, parallel_dir, tmp_path / "out", 3), env=recipe_env(),
                          capture_output=True, text=True, timeout=600)
    line = one_error(proc)
    assert line.startswith(f"error: --model_name_or_path: {model}: cannot load the tokenizer: "), line
    assert not (tmp_path / "out").exists() and hidden(tmp_path) == []


def test_malformed_json_config_names_the_file_and_line(tmp_path):
    config = tmp_path / "flags.json"
    config.write_text('{\n  "output_dir": "x",\n  oops\n}\n', encoding="utf-8")
    proc = subprocess.run([PY, "-m", "hybrid_tevatron.driver.train", str(config)], env=recipe_env(),
                          capture_output=True, text=True, timeout=600)
    assert one_error(proc) == (f"error: {config}:3:3: not valid JSON (Expecting property name enclosed in double "
                               "quotes)")


# ------------------------------------------------------------------------------------------------ the study
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


def study(root, env):
    return subprocess.Popen([PY, "-m", "hybrid_tevatron.studies.domain_study", "run", "--root", str(root),
                             "--records", str(root) + "-records"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)


def test_two_studies_on_one_root_one_runs_the_other_is_refused(tmp_path):
    root = tmp_path / "da"
    env = study_env(tmp_path, 8)
    procs = [study(root, env) for _ in range(2)]
    for p in procs:  # both get their configuration at once
        p.stdin.write("{}")
        p.stdin.close()
    errs = [p.stderr.read() for p in procs]
    for p in procs:
        p.wait(timeout=300)
    lines = [error_lines(e) for e in errs]
    assert all(len(x) == 1 for x in lines) and not any("Traceback" in e for e in errs), errs
    refused = [i for i in (0, 1) if "is in use by the domain study" in lines[i][0]]
    assert len(refused) == 1, lines
    ran = 1 - refused[0]
    assert lines[refused[0]][0].startswith(f"error: {root} is in use by the domain study, pid {procs[ran].pid} ")
    assert lines[ran][0].startswith("error: eval:xtd10:zero-shot failed (exit 1)")  # the fake step
    assert procs[0].returncode == procs[1].returncode == 2
    assert hidden(tmp_path) == []


def test_ctrl_c_during_the_study_is_one_line(tmp_path):
    root = tmp_path / "da"
    proc = study(root, study_env(tmp_path, 120))
    proc.stdin.write("{}")
    proc.stdin.close()
    deadline = time.time() + 120
    while not (root / "commands.sh").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    [line] = error_lines(err)
    assert line == (f"error: stopped by SIGINT; kept in {root}: the finished trainings (models/*/DONE) and "
                    "evaluations (eval/*/*/results); rerun the same command to resume")
    assert hidden(tmp_path) == []


# ------------------------------------------------------------------------------------------------ encoding
def encode(*args):
    return subprocess.run([PY, "-m", "hybrid_tevatron.pyserini.encode", *ENCODING, *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=recipe_env(OMP_NUM_THREADS="1"))


@pytest.mark.parametrize("sharded", [False, True], ids=["one-index", "sharded"])
def test_encode_refuses_a_model_folder_without_tokenizer(tiny_model_dir, tmp_path, sharded):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        shutil.copy(os.path.join(tiny_model_dir, name), model)
    write_corpus(tmp_path / "c.jsonl", 6)
    proc = encode("--model", model, "--corpus", tmp_path / "c.jsonl", "--output", tmp_path / "out",
                  *(["--num_shards", 2] if sharded else []))
    assert one_error(proc).startswith(f"error: {model}: incomplete model folder, no tokenizer vocabulary (one of ")
    assert not (tmp_path / "out").exists() and hidden(tmp_path) == []


def test_encode_names_a_missing_corpus_and_the_real_bad_line(tiny_model_dir, tmp_path):
    proc = encode("--model", tiny_model_dir, "--corpus", tmp_path / "none.jsonl", "--output", tmp_path / "out")
    assert one_error(proc) == f"error: corpus not found: {tmp_path / 'none.jsonl'}"
    write_corpus(tmp_path / "c.jsonl", 12)
    lines = (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()
    lines[10] = '{"id": "x", "contents": '
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = encode("--model", tiny_model_dir, "--corpus", tmp_path / "c.jsonl", "--output", tmp_path / "out")
    assert one_error(proc).startswith(f"error: {tmp_path / 'c.jsonl'}:11: not a JSON object (")
    assert not (tmp_path / "out").exists() and hidden(tmp_path) == []


def test_a_rewritten_corpus_is_not_taken_for_the_encoded_one(tiny_model_dir, tmp_path):
    """Shards 0 and 1 of 3 encoded, the corpus rewritten at the same path and size: the rerun refuses the stale
    shards by name; a shard encoded from the new corpus beside them is refused by the merge."""
    from hybrid_tevatron.pyserini.merge import main as merge

    corpus, shards = tmp_path / "c.jsonl", tmp_path / "shards"
    write_corpus(corpus, 27, seed=1)
    for shard_id in (0, 1):
        assert encode("--model", tiny_model_dir, "--corpus", corpus, "--output", shards, "--num_shards", 3,
                      "--shard_id", shard_id).returncode == 0
    size = os.path.getsize(corpus)
    text = corpus.read_text(encoding="utf-8")
    corpus.write_text(text.replace('"en-0"', '"en-X"'), encoding="utf-8")  # same size, other ids and rows
    assert os.path.getsize(corpus) == size
    line = one_error(encode("--model", tiny_model_dir, "--corpus", corpus, "--output", shards, "--num_shards", 3))
    assert line.startswith(f"error: {shards / shard_name(0, 3)} holds a shard of another encoding (the corpus's "
                           "content differs: corpus_digest sha256:"), line
    assert sorted(os.listdir(shards)) == [shard_name(0, 3), shard_name(1, 3)]  # nothing new, no temporary folder
    assert encode("--model", tiny_model_dir, "--corpus", corpus, "--output", shards, "--num_shards", 3,
                  "--shard_id", 2).returncode == 0
    with pytest.raises(SystemExit, match=r"shard-00002-of-00003: another encoding than .*shard-00000-of-00003 "
                       r"\(the corpus's content differs") as err:
        merge(["--shards", str(shards), "--output", str(tmp_path / "merged")])
    assert err.value.code == 2 and not (tmp_path / "merged").exists() and hidden(tmp_path) == []
    # --overwrite re-encodes the stale shards; then the merge holds each docid once
    assert encode("--model", tiny_model_dir, "--corpus", corpus, "--output", shards, "--num_shards", 3,
                  "--overwrite").returncode == 0
    merge(["--shards", str(shards), "--output", str(tmp_path / "merged")])
    ids = docids(tmp_path / "merged")
    assert len(ids) == len(set(ids)) == 27 and "en-X" in ids


def test_merge_refuses_duplicate_docids_naming_them(tiny_model_dir, tmp_path):
    from hybrid_tevatron.pyserini.merge import main as merge

    corpus = tmp_path / "c.jsonl"
    write_corpus(corpus, 12)
    lines = corpus.read_text(encoding="utf-8").splitlines()
    lines[7] = lines[7].replace('"de-5"', '"en-0"').replace('"zh-7"', '"en-0"')  # row 7 repeats row 0's id
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert encode("--model", tiny_model_dir, "--corpus", corpus, "--output", tmp_path / "shards",
                  "--num_shards", 2).returncode == 0
    with pytest.raises(SystemExit, match=r"1 docids occur more than once \(en-0 in shard-00000-of-00002 and "
                       r"shard-00001-of-00002\)") as err:
        merge(["--shards", str(tmp_path / "shards"), "--output", str(tmp_path / "merged")])
    assert err.value.code == 2 and not (tmp_path / "merged").exists() and hidden(tmp_path) == []


def test_one_index_encoding_refuses_duplicate_docids_naming_their_lines(tiny_model_dir, tmp_path):
    """20 rows, 10 distinct ids: refused before anything is encoded (as the merge refuses such shards), naming the
    first ids and their lines; a corpus folder names the file. ``--limit 10`` encodes only unique rows: it runs."""
    from hybrid_tevatron.pyserini.encode import main as encode_main

    corpus = tmp_path / "c.jsonl"
    ids = write_corpus(corpus, 10)
    lines = corpus.read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines + lines) + "\n", encoding="utf-8")  # rows 10..19 repeat rows 0..9's ids
    out = tmp_path / "out"
    line = one_error(encode("--model", tiny_model_dir, "--corpus", corpus, "--output", out))
    assert line == (f"error: {corpus}: 10 docids occur more than once ({ids[0]} in c.jsonl:1 and c.jsonl:11; "
                    f"{ids[1]} in c.jsonl:2 and c.jsonl:12; {ids[2]} in c.jsonl:3 and c.jsonl:13; {ids[3]} in "
                    f"c.jsonl:4 and c.jsonl:14; {ids[4]} in c.jsonl:5 and c.jsonl:15 and 5 more); a docid must name "
                    "one document")
    assert not out.exists() and hidden(tmp_path) == []

    folder = tmp_path / "corpus"  # a folder corpus: the rows run on across its files
    folder.mkdir()
    (folder / "part.jsonl").write_text("\n".join(lines + [lines[0]] * 3) + "\n", encoding="utf-8")
    expected = f"{folder}: 1 docids occur more than once ({ids[0]} in part.jsonl:1 and part.jsonl:11 and " \
               "part.jsonl:12 (4 times))"
    with pytest.raises(SystemExit, match=re.escape(expected)) as err:
        encode_main(["--model", tiny_model_dir, "--corpus", str(folder), "--output", str(out), *ENCODING])
    assert err.value.code == 2 and not out.exists() and hidden(tmp_path) == []

    encode_main(["--model", tiny_model_dir, "--corpus", str(corpus), "--output", str(out), "--limit", "10",
                 *ENCODING])
    assert docids(out) == ids and hidden(tmp_path) == []


def test_encode_checks_the_topics_first_naming_file_and_line(tiny_model_dir, tmp_path):
    """A topics TSV line without a tab, or a missing topics file: one line naming it (not Pyserini's traceback),
    exit 2, no output; checked before the model loads. Lines Anserini's reader fails on or reads as an empty query
    are named too."""
    from hybrid_tevatron.pyserini.encode import main as encode_main

    topics, out = tmp_path / "topics.tsv", tmp_path / "queries"
    topics.write_text("q0\tthe cat\nq1\tder hund\nq2 no tab here\nq3\tel perro\n", encoding="utf-8")
    line = one_error(encode("--model", tiny_model_dir, "--topics", topics, "--output", out))
    assert line == f"error: {topics}:3: no tab (every line is qid<TAB>text)"
    assert not out.exists() and hidden(tmp_path) == []
    line = one_error(encode("--model", tiny_model_dir, "--topics", tmp_path / "none.tsv", "--output", out))
    assert line == f"error: topics file not found: {tmp_path / 'none.tsv'} (nor a Pyserini topics name)"
    assert not out.exists() and hidden(tmp_path) == []

    for text, problem in [("q0\tthe cat\n\nq2\tel perro\n", "2: an empty line"),
                          ("q0\tthe cat\nq1\t  \n", "2: an empty query id or text"),
                          ("q0\t\tthe cat\n", "1: an empty query id or text"),
                          ("q0\tthe cat\n\tel perro\n", "2: an empty query id or text")]:
        topics.write_text(text, encoding="utf-8")
        with pytest.raises(SystemExit, match=re.escape(f"{topics}:{problem} (every line is qid<TAB>text)")) as err:
            encode_main(["--model", str(tmp_path / "no-model"), "--topics", str(topics), "--output",
                         str(out / "q.pkl"), *ENCODING])  # the topics are named, not the missing model
        assert err.value.code == 2 and not out.exists() and hidden(tmp_path) == []
    with pytest.raises(SystemExit, match=re.escape(f"error: {tmp_path}: a folder, not a topics file")):
        encode_main(["--model", tiny_model_dir, "--topics", str(tmp_path), "--output", str(out), *ENCODING])
    assert not out.exists() and hidden(tmp_path) == []


# ------------------------------------------------------------------------------------------------ OUTPUT
def test_output_trailing_slash_is_the_same_folder_and_the_same_lock(tmp_path):
    with OutputFolder(f"{tmp_path}/ev/") as out:
        assert out.path == str(tmp_path / "ev")
        open(os.path.join(out.work, "r.txt"), "w").close()
    assert sorted(os.listdir(tmp_path / "ev")) == ["commands.sh", "r.txt", "timings.tsv"] and hidden(tmp_path) == []

    holder = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import sys
        from hybrid_tevatron.eval.output import OutputFolder
        with OutputFolder({str(tmp_path / 'ev2')!r}):
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=rf"^{tmp_path}/ev2 is in use by an evaluation, pid {holder.pid} "):
            OutputFolder(f"{tmp_path}/ev2/").__enter__()
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0 and hidden(tmp_path) == []


def test_symlinked_output_writes_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "old.txt").write_text("old")
    os.symlink(tmp_path / "target", tmp_path / "link")
    with OutputFolder(str(tmp_path / "link"), overwrite=True) as out:
        assert out.path == str(tmp_path / "target")
        open(os.path.join(out.work, "new.txt"), "w").close()
    assert os.path.islink(tmp_path / "link") and os.readlink(tmp_path / "link") == str(tmp_path / "target")
    assert sorted(os.listdir(tmp_path / "link")) == ["commands.sh", "new.txt", "timings.tsv"]
    assert hidden(tmp_path) == []


def test_a_folder_that_appears_mid_run_is_kept_and_the_work_folder_removed(tmp_path):
    with pytest.raises(OutputError, match="appeared while this evaluation ran"):
        with OutputFolder(str(tmp_path / "ev")):
            (tmp_path / "ev").mkdir()
            (tmp_path / "ev" / "theirs.txt").write_text("theirs")
    assert os.listdir(tmp_path / "ev") == ["theirs.txt"] and hidden(tmp_path) == []


@pytest.mark.parametrize("name", ["EVAL_IMAGES", "EVAL_QUESTIONS"])
def test_study_pool_caps_refuse_zero_and_spell_all(name):
    from hybrid_tevatron.studies.domain_study import StudyError, pool_caps

    with pytest.raises(StudyError, match=rf"^{name} must be a number >= 1 or 'all' \(the whole set\), got '0'$"):
        pool_caps({name: "0"})
    caps = pool_caps({name: "all"})
    assert caps[0 if name == "EVAL_IMAGES" else 1] is None
    assert pool_caps({name: "7"})[0 if name == "EVAL_IMAGES" else 1] == 7
