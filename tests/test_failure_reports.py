"""Nothing silently wrong (issue 27): a data report lists its problems, an interrupt is one line however early it
comes, an interrupted evaluation says what was kept, atomic writes get a plain write's permissions, and the studies'
files give one ``error:`` line.

The commands run as users run them (``python -m ...`` as processes, signals sent to real processes) with the tiny
local model; each case asserts the message, the exit status and that nothing half-written is left.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import TRAINING_SETTINGS, error_lines, hidden, one_error, recipe_env, study_env

PY = sys.executable


def _record(qid: str) -> str:
    return json.dumps({"query_id": qid, "query": f"question {qid}", "positive_passages": [{"docid": f"d{qid}",
                       "text": f"passage {qid}"}], "negative_passages": [{"docid": "dx", "text": "other"}]})


# ------------------------------------------------------------------------------------------------ data reports
@pytest.mark.parametrize("bad_lines", [2, 14])
def test_data_report_lists_its_errors_capped(tiny_model_dir, tmp_path, bad_lines):
    """An empty language file and malformed lines in the other: the report's head, then its entries with file and
    line, at most 10 of them and a count of the rest."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "en.jsonl").write_text("", encoding="utf-8")
    lines = [_record("q1")] + ["{oops"] * bad_lines
    (data / "de.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([PY, "-m", "hybrid_tevatron.driver.train", "--model_name_or_path", tiny_model_dir,
                           "--train_files", str(data), "--output_dir", str(out), "--per_device_train_batch_size", "2",
                           "--max_steps", "1", "--use_cpu", "--report_to", "none"],
                          capture_output=True, text=True, timeout=600, env=recipe_env(), cwd=tmp_path)
    head = one_error(proc)
    count = int(re.fullmatch(r"error: source 'data': (\d+) data errors:", head)[1])
    assert count == bad_lines + 2  # + the empty file, + q1 missing in en
    listed = proc.stderr.split(head + "\n", 1)[1].splitlines()
    entries = [line for line in listed if line.startswith("  - ")]
    assert len(entries) == min(count, 10), proc.stderr[-3000:]
    assert entries[0] == (f"  - {data}/de.jsonl:2: malformed JSON (Expecting property name enclosed in double "
                          "quotes at column 2)")
    assert f"  - {data}/en.jsonl: empty (no records) for language 'en' of source 'data'" in entries or count > 10
    more = [line for line in listed if line.startswith("  ... and ")]
    assert more == ([f"  ... and {count - 10} more"] if count > 10 else []), proc.stderr[-3000:]
    assert not out.exists() and hidden(tmp_path) == []


def test_message_text_caps_lists_only():
    from hybrid_tevatron.errors import HybridTevatronError, message_text

    assert message_text("one line") == "one line"
    assert message_text(ValueError("first\nsecond")) == "first"  # not ours: its first line
    err = HybridTevatronError("3 problems:\n" + "\n".join(f"  - {i}" for i in range(12)))
    assert message_text(err).splitlines() == ["3 problems:", *[f"  - {i}" for i in range(10)], "  ... and 2 more"]


# ------------------------------------------------------------------------------------------------ interrupts
def _study_processes(root) -> list[str]:
    """Command lines of the processes still running with ``root`` in them (the study's steps)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmd:
            found.append(f"{pid}: {cmd}")
    return found


def _start_reproduction(tiny_model_dir, tmp_path, **extra):
    """``reproduction run`` in its own process group (a terminal's job: the group gets the terminal's signals)
    whose first step is a training, started once ``commands.sh`` exists."""
    root = tmp_path / "repro"
    (root / "data" / "xquad-train").mkdir(parents=True)
    (root / "data" / "xquad-train" / "stats.json").write_text("{}", encoding="utf-8")  # the data step is done
    (tmp_path / "xquad-r").mkdir()
    env = recipe_env(MODEL=tiny_model_dir, XQUAD_R=str(tmp_path / "xquad-r"), SEEDS="1", REGIMES="mono",
                     ZERO_SHOT="0", MLQA_SEEDS="", STEPS="2", BATCH="4", **extra)
    proc = subprocess.Popen([PY, "-m", "hybrid_tevatron.studies.reproduction", "run", "--root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            process_group=0)
    deadline = time.time() + 300
    while not (root / "commands.sh").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    return root, proc


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_interrupt_while_a_step_imports_is_the_study_s_one_line(tiny_model_dir, tmp_path, how):
    """Ctrl-C (SIGINT to the terminal's process group) or ``kill`` (SIGTERM to the study) half a second into a
    training step, while it still imports torch: the study's one line, no traceback of the step, and the step is
    gone."""
    root, proc = _start_reproduction(tiny_model_dir, tmp_path)
    try:
        time.sleep(0.5)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    signame, code = ("SIGINT", 130) if how == "ctrl-c" else ("SIGTERM", 143)
    assert proc.returncode == code and "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert error_lines(err) == [f"error: stopped by {signame}; kept in {root}: the finished trainings "
                                "(models/*/DONE) and evaluations (eval/*/*/results); rerun the same command to "
                                "resume"], err[-3000:]
    assert _study_processes(root) == []
    assert not (root / "models" / "mono-s1" / "DONE").exists() and hidden(tmp_path) == []


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (``SigCgt`` of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line.split()[1] for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) >> (signum - 1) & 1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_a_training_imports_is_one_line(tmp_path, signum):
    """A training run by hand, stopped while it still imports torch: one line, no traceback. (An evaluation imports
    torch only inside its output folder's interrupt handling: test_interrupted_evaluation_says_what_was_kept.)"""
    what = "the training"
    proc = subprocess.Popen([PY, "-m", "hybrid_tevatron.driver.train", "--help"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=recipe_env())
    deadline = time.time() + 60
    while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)  # until quiet_start (its first lines) took SIGTERM, which Python itself leaves alone
    assert proc.poll() is None, "the command finished its imports too soon for this test"
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum and "Traceback" not in err, err[-3000:]
    assert err == f"error: stopped by {name} while {what} was starting; nothing was written\n"
    assert os.listdir(tmp_path) == []


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_ctrl_z_pauses_the_step_with_the_study(tmp_path):
    """Ctrl-Z (SIGTSTP to the terminal's process group) stops the study and its step; SIGCONT (``fg``) continues
    both; Ctrl-C then ends the study with its one line."""
    root = tmp_path / "da"
    proc = subprocess.Popen([PY, "-m", "hybrid_tevatron.studies.domain_study", "run", "--root", str(root),
                             "--records", str(tmp_path / "records")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=study_env(tmp_path, 120), process_group=0)  # a job: not orphaned, Ctrl-Z stops it
    try:
        deadline = time.time() + 120
        while not (root / "commands.sh").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            step = int(f.read().split()[0])
        os.killpg(proc.pid, signal.SIGTSTP)
        time.sleep(0.5)
        assert (_state(proc.pid), _state(step)) == ("T", "T")
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.5)
        assert _state(proc.pid) != "T" and _state(step) != "T"
        os.killpg(proc.pid, signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert len(error_lines(err)) == 1 and error_lines(err)[0].startswith("error: stopped by SIGINT; kept in ")
    assert _study_processes(root) == [] and hidden(tmp_path) == []


# ------------------------------------------------------------------------------------------------ evaluation
def test_an_interrupt_passes_a_library_s_except_exception():
    """A signal that lands inside a library's ``try: ... except Exception: pass`` (transformers wraps its optional
    imports so) still stops the run: :class:`Interrupted` is no ``Exception``. (As one, a Ctrl-C at the start of an
    evaluation's encode stage was once swallowed there and the evaluation went on to exit 0.)"""
    from hybrid_tevatron.errors import Interrupted, signals_interrupt

    swallowed = []
    with pytest.raises(Interrupted) as err, signals_interrupt((signal.SIGUSR1,)):
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(5)
        except Exception as e:  # noqa: BLE001 - the library's catch-all
            swallowed.append(e)
    assert swallowed == [] and err.value.exit_code == 128 + signal.SIGUSR1


    assert swallowed == [] and err.value.exit_code == 128 + signal.SIGUSR1


def test_an_ignored_sigint_stays_ignored():
    """A command started with SIGINT ignored (a script's background job) keeps ignoring it inside our handling, as
    Python does; the same command started plainly is stopped by it."""
    code = ("import os, signal, time\nfrom hybrid_tevatron.errors import signals_interrupt\n"
            "with signals_interrupt():\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(0.5)\nprint('kept')")
    ignored = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=recipe_env(), timeout=60,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert ignored.returncode == 0 and ignored.stdout == "kept\n", ignored.stderr[-2000:]
    plain = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=recipe_env(), timeout=60)
    assert plain.returncode == 1 and "Interrupted: stopped by SIGINT" in plain.stderr and plain.stdout == ""


@pytest.fixture(scope="module")
def trained_model(tiny_model_dir, tmp_path_factory):
    """The tiny model with the trainer's hybrid_tevatron.json (the evaluation needs no encoding flags)."""
    path = tmp_path_factory.mktemp("models") / "tiny-trained"
    shutil.copytree(tiny_model_dir, path)
    (path / "hybrid_tevatron.json").write_text(json.dumps(TRAINING_SETTINGS), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_interrupted_evaluation_says_what_was_kept(trained_model, shared_data, tmp_path, signame):
    """Ctrl-C (to the process group) or SIGTERM while a corpus is encoded (our encode command, in-process): exit
    128 + N and one line saying that nothing was written and that the same command starts again; no work folder,
    no lock, no OUTPUT."""
    out = tmp_path / "out"
    proc = subprocess.Popen([PY, "-m", "hybrid_tevatron.eval", "lareqa", trained_model,
                             os.path.join(shared_data, "xquad-r"), str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=recipe_env(), process_group=0)
    err = []
    try:
        for line in proc.stderr:
            err.append(line)
            if " documents of inputs/corpus/" in line:  # the encode command has read its corpus
                break
        if signame == "SIGINT":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        err = "".join(err) + proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + getattr(signal, signame), err[-3000:]
    assert "Traceback" not in err and "command failed" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and lines[0].endswith(f"error: stopped by {signame}; nothing was written to {out}; "
                                                 "rerun the same command to evaluate again"), err[-3000:]
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


# ------------------------------------------------------------------------------------------------ permissions
def _modes(folder) -> dict[str, str]:
    """``{relative path: octal mode}`` of ``folder`` and everything under it (symlinks left out)."""
    out = {".": oct(os.stat(folder).st_mode & 0o7777)}
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                out[os.path.relpath(path, folder)] = oct(os.lstat(path).st_mode & 0o7777)
    return out


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_outputs_get_a_plain_write_s_permissions(tiny_model_dir, parallel_dir, shared_data, tmp_path, umask):
    """A training's model folder (weights, hybrid_tevatron.json, written atomically) and an evaluation's OUTPUT
    (renamed from its work folder; encoding.json, indexes, results): files 0666 & ~umask, folders 0777 & ~umask, as
    a plain write gives, not the 0600 / 0700 of temporary files."""
    env = recipe_env(OMP_NUM_THREADS="1")
    model, out = tmp_path / "model", tmp_path / "eval"
    runs = [["hybrid_tevatron.driver.train", "--model_name_or_path", tiny_model_dir, "--train_files", parallel_dir,
             "--output_dir", str(model), "--per_device_train_batch_size", "4", "--train_group_size", "2",
             "--max_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm",
             "true"],
            ["hybrid_tevatron.eval", "lareqa", str(model), os.path.join(shared_data, "xquad-r"), str(out),
             "--languages", "de en", "--max_questions", "4"]]
    for argv in runs:
        proc = subprocess.run([PY, "-m", *argv], capture_output=True, text=True, timeout=600, env=env,
                              preexec_fn=lambda: os.umask(umask))
        assert proc.returncode == 0, proc.stderr[-3000:]
    file_mode, folder_mode = oct(0o666 & ~umask), oct(0o777 & ~umask)
    for folder in (model, out):
        modes = _modes(folder)
        wrong = {p: m for p, m in modes.items()
                 if m != (folder_mode if os.path.isdir(os.path.join(folder, p)) else file_mode)}
        assert wrong == {}, (file_mode, folder_mode, wrong)
    assert {"model.safetensors", "hybrid_tevatron.json"} <= set(_modes(model))
    assert {"encoding.json", "results/results.json", "index/lang/de/index"} <= set(_modes(out))
    assert hidden(tmp_path) == []


def test_atomic_writes_follow_the_umask(tmp_path):
    """Under umask 027: 0640 files and 0750 folders, also where the writer replaces the temporary file by a private
    one of its own (safetensors' save_file)."""
    import torch
    from safetensors.torch import save_file

    from hybrid_tevatron.atomic import atomic_dir, atomic_path, atomic_write_text, current_umask

    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        atomic_write_text(str(tmp_path / "f.txt"), "x")
        with atomic_dir(str(tmp_path / "d")) as tmp:
            atomic_write_text(os.path.join(tmp, "g.txt"), "y")
        with atomic_path(str(tmp_path / "w.safetensors")) as tmp:
            save_file({"w": torch.zeros(2)}, tmp)
    finally:
        os.umask(old)
    assert _modes(tmp_path) == {".": _modes(tmp_path)["."], "f.txt": "0o640", "d": "0o750", "d/g.txt": "0o640",
                                "w.safetensors": "0o640"}


# ------------------------------------------------------------------------------------------------ study files
def _study(module, *args, cwd, **env):
    return subprocess.run([PY, "-m", f"hybrid_tevatron.studies.{module}", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=recipe_env(**env), cwd=cwd)


@pytest.mark.parametrize("text, problem", [
    ("", "config.json:1:1: not valid JSON (Expecting value)"),
    ('{"model": "m",', "config.json:1:15: not valid JSON (Expecting property name enclosed in double quotes)"),
    ("[1, 2]", "config.json: expected a JSON object, got a list"),
], ids=["empty", "cut-off", "a-list"])
def test_bad_config_json_of_a_study_root_is_one_line(tmp_path, text, problem):
    """``reproduction run`` on a root whose config.json is empty, cut off or not an object: one line naming it,
    exit 2, the file left as it was and nothing else written."""
    root = tmp_path / "repro"
    root.mkdir()
    (root / "config.json").write_text(text, encoding="utf-8")
    (tmp_path / "xquad-r").mkdir()
    proc = _study("reproduction", "run", "--root", root, cwd=tmp_path, MODEL="m", XQUAD_R=str(tmp_path / "xquad-r"),
                  MLQA_SEEDS="", ZERO_SHOT="0", SEEDS="1", REGIMES="mono")
    assert one_error(proc) == f"error: {root}/{problem}; restore it, or choose another OUT"
    assert os.listdir(root) == ["config.json"] and (root / "config.json").read_text(encoding="utf-8") == text
    assert hidden(tmp_path) == []


GOOD_STAT = {"mean": 0.5, "std": 0.0, "n": 1, "values": [0.5], "seeds": [1]}
MAKE = "write it with: python -m hybrid_tevatron.studies.reproduction summarize --root ROOT"


@pytest.mark.parametrize("text, problem", [
    ("", ":1:1: not valid JSON (Expecting value)"),
    ('{"meta": ', ":1:10: not valid JSON (Expecting value)"),
    ("[]", ": not a summary of this study (a list, not an object)"),
    ("{}", ': not a summary of this study ("meta" is missing or not an object)'),
    (json.dumps({"meta": {"plan": []}}), ": not a summary of this study (meta.plan is not an object)"),
    (json.dumps({"meta": {"timings": [{"stage": "x"}]}}),
     ': not a summary of this study (meta.timings is not a list of {"stage", "seconds"})'),
    (json.dumps({"meta": {}, "xquad-r": {"mono": {"mono.map": 0.5}}}),
     ': not a summary of this study ("xquad-r"."mono"."mono.map" is not {mean, std, n, values, seeds})'),
], ids=["empty", "cut-off", "a-list", "no-meta", "bad-plan", "bad-timings", "bad-stat"])
def test_bad_summary_for_the_doc_is_one_line(tmp_path, text, problem):
    """``reproduction doc --summary BAD``: one line naming the summary and how to write it again, exit 2, the doc
    left as it was."""
    summary, doc = tmp_path / "summary.json", tmp_path / "doc.md"
    summary.write_text(text, encoding="utf-8")
    doc.write_text("prose\n<!-- BEGIN GENERATED: xquad-r -->\n<!-- END GENERATED: xquad-r -->\n", encoding="utf-8")
    before = doc.read_text(encoding="utf-8")
    proc = _study("reproduction", "doc", "--summary", summary, "--doc", doc, cwd=tmp_path)
    assert one_error(proc) == f"error: {summary}{problem}; {MAKE}"
    assert doc.read_text(encoding="utf-8") == before and hidden(tmp_path) == []


def test_reproduction_files_are_one_line(tmp_path):
    """A good summary is rendered; a missing summary or doc, results that are not an object and a root without
    results are one line each."""
    summary, doc = tmp_path / "summary.json", tmp_path / "doc.md"
    summary.write_text(json.dumps({"meta": {}, "xquad-r": {"mono": {"mono.map": GOOD_STAT}}}), encoding="utf-8")
    doc.write_text("<!-- BEGIN GENERATED: xquad-r -->\n<!-- END GENERATED: xquad-r -->\n", encoding="utf-8")
    assert _study("reproduction", "doc", "--summary", summary, "--doc", doc, cwd=tmp_path).returncode == 0
    assert "| mono (n=1) |" in doc.read_text(encoding="utf-8")
    proc = _study("reproduction", "doc", "--summary", tmp_path / "none.json", "--doc", doc, cwd=tmp_path)
    assert one_error(proc) == f"error: {tmp_path / 'none.json'}: no summary ({MAKE})"
    proc = _study("reproduction", "doc", "--summary", summary, "--doc", tmp_path / "none.md", cwd=tmp_path)
    assert one_error(proc) == f"error: {tmp_path / 'none.md'}: cannot read the doc (No such file or directory)"
    root = tmp_path / "repro"
    (root / "eval" / "xquad-r" / "mono-s1" / "results").mkdir(parents=True)
    (root / "eval" / "xquad-r" / "mono-s1" / "results" / "results.json").write_text("[]", encoding="utf-8")
    proc = _study("reproduction", "summarize", "--root", root, cwd=tmp_path)
    assert one_error(proc) == (f"error: {root}/eval/xquad-r/mono-s1/results/results.json: expected a JSON object, "
                               "got a list; evaluate the run again (remove its folder and rerun the study)")
    proc = _study("reproduction", "summarize", "--root", tmp_path / "none", cwd=tmp_path)
    assert one_error(proc) == f"error: {tmp_path / 'none'}/eval: no evaluation results yet (run recipes/reproduce.sh)"
    assert not (root / "summary.json").exists() and hidden(tmp_path) == []


def test_seeds_that_are_not_numbers_are_one_line(tmp_path):
    message = "error: SEEDS must be whole numbers, space- or comma-separated (e.g. SEEDS=\"1 2 3\"), got '1 abc'"
    assert one_error(_study("domain_study", "plan", cwd=tmp_path, SEEDS="1 abc")) == message
    (tmp_path / "xquad-r").mkdir()
    proc = _study("reproduction", "run", "--root", tmp_path / "repro", cwd=tmp_path, MODEL="m", SEEDS="1 abc",
                  XQUAD_R=str(tmp_path / "xquad-r"), MLQA_SEEDS="")
    assert one_error(proc) == message
    assert os.listdir(tmp_path) == ["xquad-r"]
