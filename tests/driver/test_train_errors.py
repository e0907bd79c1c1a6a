"""Training's expected failures: one ``error: ...`` line naming the cause and the remedy, before anything is loaded,
and checkpoints that a kill cannot leave half-written.

Runs go through the CLI entry point (``driver.train.main``) in-process, which prints ``error: ...`` on stderr and
ends with ``ErrorExit`` (a ``SystemExit`` of status 2 whose ``str()`` is that line); one case runs the CLI as a
subprocess to show the whole output, and the checkpoint case SIGKILLs a real training process while it saves.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from helpers import exit_line, recipe_env

from hybrid_tevatron.backends.flags import NEW_FIELD_REASON, FlagError, not_offered, offer_only, refuse_not_offered
from hybrid_tevatron.driver.train import main, parse_args
from hybrid_tevatron.model_files import (
    TOKENIZER_CONFIG_FILE,
    ModelFolderError,
    check_model,
    check_model_folder,
)
from hybrid_tevatron.run_folder import CHECKPOINT_STAGING, PLAN_LOG, last_checkpoint
from hybrid_tevatron.training import train


def argv(model, data, out, *extra, backend="auto"):
    return [
        "--backend", backend, "--model_name_or_path", str(model), "--train_files", str(data),
        "--output_dir", str(out), "--per_device_train_batch_size", "4", "--train_group_size", "3",
        "--max_steps", "2", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
        "--seed", "3", *extra,
    ]  # fmt: skip


def error_of(args) -> str:
    return exit_line(main, args)


def partial_model(tiny_model_dir, folder, *names):
    """A copy of the tiny model with only config + weights, plus ``names`` from it."""
    os.makedirs(folder)
    for name in ("config.json", "model.safetensors") + names:
        shutil.copy(os.path.join(tiny_model_dir, name), folder)
    return str(folder)


# ------------------------------------------------------------------------------------------------ model folder
@pytest.mark.parametrize("extra", [(), (TOKENIZER_CONFIG_FILE,)], ids=["no-tokenizer", "tokenizer-config-only"])
def test_model_without_tokenizer_vocabulary_is_refused_before_training(backend, extra, tiny_model_dir,
                                                                         parallel_dir, tmp_path):
    model = partial_model(tiny_model_dir, tmp_path / "model", *extra)
    out = tmp_path / "out"
    message = error_of(argv(model, parallel_dir, out, backend=backend))
    assert message.startswith(f"error: --model_name_or_path: {model}: incomplete model folder, no tokenizer "
                              "vocabulary (one of tokenizer.json, ")
    assert "tokenizer.save_pretrained" in message and "--tokenizer_name" in message
    assert not out.exists()  # refused before the trainer existed
    # the tokenizer may come from elsewhere
    main(argv(model, parallel_dir, out, "--tokenizer_name", tiny_model_dir, "--max_steps", "1", backend=backend))
    assert os.path.isfile(out / "tokenizer.json")


def test_check_model_folder(tiny_model_dir, tmp_path):
    check_model_folder(tiny_model_dir)
    check_model(tiny_model_dir)
    bare = partial_model(tiny_model_dir, tmp_path / "bare")
    check_model_folder(bare, tokenizer=False)
    with pytest.raises(ModelFolderError, match="no tokenizer vocabulary"):
        check_model_folder(bare)
    os.remove(os.path.join(bare, "model.safetensors"))
    with pytest.raises(ModelFolderError, match=r"no weights \(one of model.safetensors"):
        check_model_folder(bare, tokenizer=False)
    with pytest.raises(ModelFolderError, match="^model folder not found: /no/such/model$"):
        check_model_folder("/no/such/model")
    with pytest.raises(ModelFolderError, match="a file, not a model folder"):
        check_model_folder(os.path.join(tiny_model_dir, "config.json"))


def test_missing_model_folder(tiny_model_dir, parallel_dir, tmp_path):
    message = error_of(argv("/no/such/path", parallel_dir, tmp_path / "out"))
    assert message == "error: --model_name_or_path: model folder not found: /no/such/path"


def test_hub_id_offline_says_what_to_do(parallel_dir, tmp_path):
    """A Hub id that is neither cached nor downloadable: one line, exit 2, no traceback (the CLI as a process)."""
    args = argv("no-such-owner/no-such-model", parallel_dir, tmp_path / "out")
    res = subprocess.run([sys.executable, "-m", "hybrid_tevatron.driver.train", *args], capture_output=True,
                         text=True, timeout=600, env=recipe_env(HF_HUB_OFFLINE="1"), cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: --model_name_or_path: no-such-owner/no-such-model: not a local folder, "
                               "not in the Hugging Face cache, and it cannot be downloaded")
    assert "pass a local model folder" in lines[0] and "python -m hybrid_tevatron.models.me5_small DIR" in lines[0]


# ------------------------------------------------------------------------------------------------ paths
def test_train_files_folder_not_found(tiny_model_dir, tmp_path):
    message = error_of(argv(tiny_model_dir, "/no/such/dir", tmp_path / "out"))
    assert message == "error: --train_files: folder not found: /no/such/dir"
    message = error_of(argv(tiny_model_dir, "en=/no/such/en.jsonl", tmp_path / "out"))
    assert message == "error: --train_files: file not found: /no/such/en.jsonl (language 'en')"


def test_output_dir_that_is_a_file(tiny_model_dir, parallel_dir, tmp_path):
    out = tmp_path / "out"
    out.write_text("keep me\n")
    message = error_of(argv(tiny_model_dir, parallel_dir, out))
    assert message == f"error: --output_dir {out} is a file; give a folder (new or empty) for the run"
    assert out.read_text() == "keep me\n"


@pytest.mark.parametrize("problem", ["not-utf8", "integer-id"])
def test_bad_data_is_one_line(problem, tiny_model_dir, parallel_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(parallel_dir, data)
    de = data / "de.jsonl"
    lines = de.read_bytes().splitlines(keepends=True)
    if problem == "not-utf8":
        lines[4] = lines[4].replace(b'"query": "', b'"query": "\xfc', 1)
        expected = f"error: {de}:5: not UTF-8 (byte 0xfc at byte "
    else:
        record = json.loads(lines[4])
        record["query_id"] = 4
        lines[4] = json.dumps(record).encode() + b"\n"
        expected = f"error: {de}:5: 'query_id' must be a non-empty string, got a number 4"
    de.write_bytes(b"".join(lines))
    assert error_of(argv(tiny_model_dir, data, tmp_path / "out")).startswith(expected)  # no "missing in de" after it


# ------------------------------------------------------------------------------------------------ Tevatron flags
def test_every_tevatron_flag_is_honoured_or_refused(backend):
    """Each field Tevatron declares is a flag of ours (honoured) or hidden and refused by name with a reason."""
    from transformers import TrainingArguments

    from hybrid_tevatron.backends import select_backend

    b = select_backend(backend)
    hidden = not_offered(b.model_arguments, b.training_arguments)
    hf = {f.name for f in dataclasses.fields(TrainingArguments)}
    ours = [b.model_arguments, b.training_arguments]
    tevatron = [next(c for c in cls.__mro__[1:] if c.__module__.startswith("tevatron")) for cls in ours]
    for cls, base in zip(ours, tevatron):
        offered = {f.name for f in dataclasses.fields(cls) if f.init}
        for f in dataclasses.fields(base):
            if f.name in hf:
                continue
            assert (f.name in offered) != (f.name in hidden), f.name
    base = ["--backend", backend, "--model_name_or_path", "m", "--output_dir", "o"]
    assert "untie_encoder" in hidden  # declared by both Tevatrons
    for name, reason in hidden.items():
        with pytest.raises(FlagError) as err:
            parse_args(base + [f"--{name}", "1"])
        assert str(err.value) == f"--{name} is not supported with --backend {b.name}: {reason}"
    with pytest.raises(FlagError, match="--untie_encoder is not supported"):
        parse_args(base + ["--untie_encoder=true"])


def test_a_new_tevatron_field_is_refused_by_default():
    """A field that a later Tevatron adds is hidden and refused until a backend declares it handled."""
    from transformers import HfArgumentParser

    @dataclasses.dataclass
    class TevatronArgs:  # stands for Tevatron's ModelArguments
        model_name_or_path: str = dataclasses.field(default="m")
        pooling: str = "cls"
        brand_new_knob: int = 3  # a field this package has never heard of

    @dataclasses.dataclass
    @offer_only(TevatronArgs, handled=("model_name_or_path", "pooling"))
    class Ours(TevatronArgs):
        temperature: float = 1.0

    assert not_offered(Ours) == {"brand_new_knob": NEW_FIELD_REASON}
    assert Ours().brand_new_knob == 3  # Tevatron's code still reads its default
    parser = HfArgumentParser(Ours)
    assert "--brand_new_knob" not in parser.format_help() and "--pooling" in parser.format_help()
    with pytest.raises(FlagError, match=f"--brand_new_knob is not supported with --backend x: {NEW_FIELD_REASON}"):
        refuse_not_offered(["--pooling", "--brand_new_knob=4"], not_offered(Ours), "x")
    with pytest.raises(FlagError):
        refuse_not_offered(["brand_new_knob"], not_offered(Ours), "x")  # a key of a JSON config


def test_refused_flag_in_json_config(backend, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"backend": backend, "model_name_or_path": "m", "output_dir": str(tmp_path),
                                "untie_encoder": True}))
    assert error_of([str(path)]).startswith("error: --untie_encoder is not supported with --backend ")


# ------------------------------------------------------------------------------------------------ checkpoints
_KILL_WHILE_SAVING = r'''
import os, signal, sys
from hybrid_tevatron.trainer import HybridTrainerMixin

save = HybridTrainerMixin._save

def save_then_die(self, output_dir=None, state_dict=None):
    save(self, output_dir, state_dict)  # the weights are written; optimizer, RNG and trainer state are not
    if os.path.basename(output_dir or "") == "checkpoint-4":
        os.kill(os.getpid(), signal.SIGKILL)

HybridTrainerMixin._save = save_then_die
from hybrid_tevatron.driver.train import main
main(sys.argv[1:])
'''


def plan_log(out):
    with open(os.path.join(out, PLAN_LOG.format(rank=0)), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_sigkill_while_saving_leaves_no_checkpoint_and_last_resumes_from_the_complete_one(
        tiny_model_dir, parallel_dir, tmp_path, caplog):
    """A training process SIGKILLed in the middle of writing checkpoint-4 leaves checkpoint-2 and no checkpoint-4;
    ``last`` resumes from checkpoint-2 (skipping an empty checkpoint-12 such as an older version left) and trains
    the same plan to the same weights as an uninterrupted run."""
    from transformers import AutoModel

    common = ("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1")
    full, out = tmp_path / "full", tmp_path / "out"
    train(*parse_args(argv(tiny_model_dir, parallel_dir, full, *common)))

    script = tmp_path / "kill_while_saving.py"
    script.write_text(_KILL_WHILE_SAVING)
    res = subprocess.run([sys.executable, str(script), *argv(tiny_model_dir, parallel_dir, out, *common)],
                         capture_output=True, text=True, timeout=600, env=recipe_env(), cwd=tmp_path)  # fmt: skip
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == ["checkpoint-2"]
    assert os.path.isdir(out / CHECKPOINT_STAGING / "checkpoint-4")  # the unfinished save, under its temporary name
    (out / "checkpoint-12").mkdir()  # what a kill left before checkpoints were renamed into place

    with caplog.at_level("WARNING", logger="hybrid_tevatron.run_folder"):
        assert last_checkpoint(str(out)) == str(out / "checkpoint-2")
        trainer = train(*parse_args(argv(tiny_model_dir, parallel_dir, out, *common, "--resume_from_checkpoint",
                                         "last")))  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("skipping the incomplete checkpoint" in w and "checkpoint-12" in w for w in warnings), warnings
    assert any(CHECKPOINT_STAGING in w and "unfinished checkpoint save" in w for w in warnings), warnings
    assert not (out / CHECKPOINT_STAGING).exists()
    assert trainer.state.global_step == 6
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == [
        "checkpoint-12", "checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert plan_log(out) == plan_log(full)
    a, b = AutoModel.from_pretrained(str(full)).state_dict(), AutoModel.from_pretrained(str(out)).state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
