"""Training through the real Tevatron classes (tiny local model, parallel fixture data), per backend.

Runs go through the CLI's parser (``driver.train.parse_args``) and ``training.train`` in-process; one test runs
the CLI as a subprocess (``--help``). The ``main`` backend cases skip where Tevatron main is not installed.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import BACKENDS, skip_unavailable_backend

from hybrid_tevatron.backends import (
    BackendError,
    available_backends,
    backend_available,
    resolve_backend_name,
    select_backend,
)
from hybrid_tevatron.driver.train import main, parse_args
from hybrid_tevatron.encoding import ENCODING_FILE
from hybrid_tevatron.modeling import embed
from hybrid_tevatron.run_folder import PLAN_LOG
from hybrid_tevatron.trainer import HybridTrainerMixin, HybridTrainingArgumentsMixin
from hybrid_tevatron.training import train

LANGS = ["en", "de", "es", "zh"]


def argv(model, data, out, backend, *extra):
    return [
        "--backend", backend, "--model_name_or_path", model, "--train_files", data, "--output_dir", str(out),
        "--per_device_train_batch_size", "4", "--train_group_size", "3", "--max_steps", "4",
        "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu",
        "--disable_tqdm", "true", "--seed", "7", *extra,
    ]  # fmt: skip


def run(args, callbacks=None):
    backend, model_args, data_args, training_args = parse_args(args)
    return train(backend, model_args, data_args, training_args, callbacks=callbacks)


def plan_log(out, rank=0):
    with open(os.path.join(out, PLAN_LOG.format(rank=rank)), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def train_logs(trainer):
    return [h for h in trainer.state.log_history if "loss" in h]


def max_weight_diff(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


# ------------------------------------------------------------------------------------------------ regimes
@pytest.mark.parametrize("regime", ["hybrid", "mono", "cross", "xx"])
def test_regime_trains_and_logs_modes(backend, regime, tiny_model_dir, parallel_dir, tmp_path):
    from transformers import AutoModel

    out = tmp_path / "out"
    trainer = run(argv(tiny_model_dir, parallel_dir, out, backend, "--regime", regime, "--max_steps", "5"))

    base = AutoModel.from_pretrained(tiny_model_dir)
    assert max_weight_diff(base, AutoModel.from_pretrained(str(out))) > 0, "training did not change the weights"

    log = plan_log(out)
    assert [r["global_step"] for r in log] == list(range(5))
    expected = {"hybrid": {"mono", "cross"}, "mono": {"mono"}, "cross": {"cross"}, "xx": {"xx"}}[regime]
    for r in log:
        # the mode is the plan's, a function of (seed, epoch, step)
        assert r["mode"] == trainer.plan.mode(r["epoch"], r["plan_step"])[1]
        assert r["mode"] in expected
        assert len(r["query_ids"]) == 4 and len(set(r["query_ids"])) == 4
        pairs = list(zip(r["query_langs"], r["passage_langs"]))
        if r["mode"] == "mono":
            assert {q for q, _ in pairs} == {p for _, p in pairs} == {r["language"]}
        elif r["mode"] == "cross":
            assert all(q != p for q, p in pairs)
        else:
            assert all(q == p for q, p in pairs)

    logs = train_logs(trainer)
    assert len(logs) == 5
    for entry, r in zip(logs, log):  # logging_steps 1: each log is one plan step
        mode = r["mode"]
        assert entry[f"{mode}_fraction"] == 1.0
        assert entry[f"loss_{mode}"] == pytest.approx(entry["loss"], rel=1e-5)
        assert not any(f"loss_{m}" in entry for m in ("mono", "cross", "xx") if m != mode)


def test_gradient_accumulation_one_plan_step_per_micro_batch(backend, tiny_model_dir, parallel_dir, tmp_path):
    out = tmp_path / "out"
    trainer = run(argv(tiny_model_dir, parallel_dir, out, backend, "--gradient_accumulation_steps", "2",
                       "--max_steps", "2"))  # fmt: skip
    log = plan_log(out)
    assert [r["global_step"] for r in log] == [0, 0, 1, 1]
    assert [r["plan_step"] for r in log] == [0, 1, 2, 3]
    for entry, pair in zip(train_logs(trainer), (log[:2], log[2:])):
        modes = [r["mode"] for r in pair]
        assert entry["mono_fraction"] == modes.count("mono") / 2
        assert entry["cross_fraction"] == modes.count("cross") / 2


# ------------------------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module", params=BACKENDS)
def trained(request, tiny_model_dir, parallel_dir, tmp_path_factory):
    """A 4-step run with mean pooling, normalisation, prefixes and a checkpoint at step 2."""
    name = skip_unavailable_backend(request.param)
    out = tmp_path_factory.mktemp(f"trained-{name}") / "out"
    trainer = run(argv(tiny_model_dir, parallel_dir, out, name, "--pooling", "mean", "--normalize",
                       "--temperature", "0.05", "--query_prefix", "query: ", "--passage_prefix", "passage: ",
                       "--save_strategy", "steps", "--save_steps", "2"))  # fmt: skip
    return trainer, str(out), name


def test_checkpoints_are_plain_hf_folders(trained):
    from transformers import AutoModel, AutoTokenizer

    trainer, out, name = trained
    for folder in (out, os.path.join(out, "checkpoint-2")):
        files = set(os.listdir(folder))
        assert {"config.json", "model.safetensors", "tokenizer_config.json", ENCODING_FILE} <= files, files
        assert not {"query_model", "passage_model", "pooler.pt"} & files
        AutoModel.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)
        with open(os.path.join(folder, ENCODING_FILE)) as f:
            meta = json.load(f)
        assert meta["pooling"] == "mean" and meta["normalize"] is True and meta["temperature"] == 0.05
        assert (meta["query_prefix"], meta["passage_prefix"]) == ("query: ", "passage: ")
        assert (meta["query_max_len"], meta["passage_max_len"]) == (32, 128)
        assert meta["backend"] == name and meta["regime"] == "hybrid"


def test_reloaded_checkpoint_encodes_like_the_trained_model(trained):
    from hybrid_tevatron.collator import EncodeCollator
    from hybrid_tevatron.pyserini.encoders import TextEncoder

    trainer, out, _ = trained
    queries = ["the cat river 3", "der hund 17", "猫狗 5"]
    passages = ["the old red house by the river", "el perro azul", "书水树红蓝"]
    reloaded = {side: TextEncoder.from_pretrained(out, side, device="cpu") for side in ("query", "passage")}

    model = trainer.model.eval()
    tok = trainer.processing_class
    with torch.no_grad():
        _, q = EncodeCollator(tok, 32, "query: ")([(str(i), t) for i, t in enumerate(queries)])
        _, p = EncodeCollator(tok, 128, "passage: ")([(str(i), t) for i, t in enumerate(passages)])
        q_mem = model(query=dict(q)).q_reps  # the Tevatron model's own encode path
        p_mem = model(passage=dict(p)).p_reps
        assert torch.allclose(embed(model.encoder, dict(q), "mean", True), q_mem, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(reloaded["query"].encode(queries)), q_mem, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(reloaded["passage"].encode(passages)), p_mem, atol=1e-5, rtol=1e-5)
    assert torch.allclose(q_mem.norm(dim=-1), torch.ones(len(queries)), atol=1e-5)


def test_pyserini_auto_encoder_loads_checkpoint(trained):
    pytest.importorskip("pyserini")
    from pyserini.encode import AutoDocumentEncoder

    _, out, _ = trained
    passages = ["the old red house by the river", "el perro azul"]
    # Pyserini joins prefix and text with a space: "passage:" + " " + text == our "passage: " + text
    from hybrid_tevatron.pyserini.encoders import TextEncoder

    ours = torch.from_numpy(TextEncoder.from_pretrained(out, "passage", device="cpu").encode(passages))
    for folder in (out, os.path.join(out, "checkpoint-2")):
        enc = AutoDocumentEncoder(folder, device="cpu", pooling="mean", l2_norm=True, prefix="passage:")
        theirs = torch.from_numpy(enc.encode(passages, max_length=128))
        if folder == out:
            torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
        assert theirs.shape == ours.shape


# ------------------------------------------------------------------------------------------------ resume
def test_resume_continues_the_identical_plan(backend, tiny_model_dir, parallel_dir, tmp_path):
    """An interrupted run resumed from its checkpoint trains the same plan steps to the same weights."""
    from transformers import AutoModel, TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                control.should_training_stop = True

    # batch 8 -> 5 plan steps per epoch: 7 steps cross an epoch boundary. Interrupted one step after the
    # step-3 checkpoint: the resume retrains that step, and its plan log keeps only the steps before the checkpoint.
    common = ("--per_device_train_batch_size", "8", "--max_steps", "7", "--save_strategy", "steps", "--save_steps", "3")
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run(argv(tiny_model_dir, parallel_dir, full, backend, *common))
    run(argv(tiny_model_dir, parallel_dir, resumed, backend, *common), callbacks=[StopAt()])
    assert [r["global_step"] for r in plan_log(resumed)] == [0, 1, 2, 3]
    run(argv(tiny_model_dir, parallel_dir, resumed, backend, *common, "--resume_from_checkpoint", "last"))

    log_full, log_resumed = plan_log(full), plan_log(resumed)
    assert log_resumed == log_full
    assert [(r["epoch"], r["plan_step"]) for r in log_full] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1)]
    assert log_full[5]["query_ids"] != log_full[0]["query_ids"]  # set_epoch reached the sampler
    assert max_weight_diff(AutoModel.from_pretrained(str(full)), AutoModel.from_pretrained(str(resumed))) < 1e-6


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_help_documents_flags():
    res = subprocess.run([sys.executable, "-m", "hybrid_tevatron.driver.train", "--help"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = res.stdout
    for flag in ("--backend", "--model_name_or_path", "--pooling", "--normalize", "--temperature", "--train_files",
                 "--regime", "--alpha", "--train_group_size", "--query_prefix", "--output_dir",
                 "--warmup_ratio", "--overwrite_output_dir", "--resume_from_checkpoint"):  # fmt: skip
        assert flag in text, flag
    for hidden in ("--untie_encoder", "--add_pooler", "--grad_cache", "--do_encode", "--lora", "--is_bidirectional",
                   "--pooling_strategy", "--distil_temperature"):  # refused: tests/driver/test_train_errors.py
        assert hidden not in text, hidden


def test_cli_json_config(backend, tiny_model_dir, parallel_dir, tmp_path):
    out = tmp_path / "out"
    config = {
        "backend": backend, "model_name_or_path": tiny_model_dir, "train_files": [parallel_dir],
        "output_dir": str(out), "regime": "mono", "languages": ["en", "de"], "per_device_train_batch_size": 4,
        "train_group_size": 2, "max_steps": 2, "save_strategy": "no", "report_to": "none", "use_cpu": True,
        "pooling": "mean", "normalize": True, "temperature": 0.02,
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    main([str(path)])
    with open(out / ENCODING_FILE) as f:
        meta = json.load(f)
    settings = (meta["regime"], meta["pooling"], meta["temperature"], meta["languages"])
    assert settings == ("mono", "mean", 0.02, ["en", "de"])
    assert {r["language"] for r in plan_log(out)} <= {"en", "de"}


def test_warmup_ratio_maps_to_warmup_steps(backend, tmp_path):
    base = ["--backend", backend, "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    assert parse_args(base)[3].warmup_steps == 0.1  # Tevatron's default ratio
    assert parse_args(base + ["--warmup_ratio", "0.25"])[3].warmup_steps == 0.25
    assert parse_args(base + ["--warmup_ratio", "0.25", "--warmup_steps", "5"])[3].warmup_steps == 5


def test_a_repeated_list_flag_keeps_every_occurrence(backend, tmp_path):
    """``--extra_sources a:X --extra_sources b:Y`` is ``--extra_sources a:X b:Y`` (argparse alone keeps the last),
    for every list flag, in order, in the ``--flag v`` and ``--flag=v`` forms and under the dashed alias."""
    base = ["--backend", backend, "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    _, _, data_args, training_args = parse_args(base + [
        "--extra_sources", "a:X", "--languages", "en", "de", "--extra_sources=b:Y", "--language_weights", "1",
        "--extra-sources", "c:Z", "d:W", "--language_weights=2", "--label_names", "x", "--label_names", "y"])
    assert data_args.extra_sources == ["a:X", "b:Y", "c:Z", "d:W"]
    assert (data_args.languages, data_args.language_weights) == (["en", "de"], [1.0, 2.0])
    assert training_args.label_names == ["x", "y"]
    _, _, data_args, _ = parse_args(base + ["--extra_sources", "a:X"])  # once: the value replaces the default
    assert data_args.extra_sources == ["a:X"]
    assert parse_args(base)[2].extra_sources == []


def test_training_draws_from_every_repeated_extra_source(backend, tiny_model_dir, parallel_dir, tmp_path):
    """The real command with ``--extra_sources`` given twice trains on both sources (round robin: one step each)."""
    from hybrid_tevatron.testing import write_parallel_jsonl

    for name in ("a", "b"):
        write_parallel_jsonl(str(tmp_path / name), languages=["en", "de"], n_queries=8, seed=ord(name))
    out = tmp_path / "out"
    main(argv(tiny_model_dir, parallel_dir, out, backend, "--extra_sources", f"a:{tmp_path / 'a'}",
              "--extra_sources", f"b:{tmp_path / 'b'}", "--source_sampling", "round_robin", "--max_steps", "3",
              "--train_group_size", "2"))
    assert [r["source"] for r in plan_log(out)] == [os.path.basename(parallel_dir), "a", "b"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--regime", "mixed"], "--regime must be one of"),
        (["--pooling", "max"], "--pooling must be one of"),
        (["--temperature", "0"], "--temperature must be positive"),
        (["--extra_sources", "x:en=/nonexistent/en.jsonl"], "/nonexistent/en.jsonl"),
        (["--languages", "en", "fr"], "fr"),
        (["--per_device_train_batch_size", "64"], "64"),
        (["--resume_from_checkpoint", "last"], "no complete checkpoint"),
        (["--negatives_x_device"], "--negatives_x_device"),
        (["--train_sampling_strategy", "group_by_length"], "--train_sampling_strategy"),
    ],
)
def test_bad_input_gives_clear_error(backend, extra, message, tiny_model_dir, parallel_dir, tmp_path):
    args = argv(tiny_model_dir, parallel_dir, tmp_path / "out", backend, *extra)
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2 and str(err.value).startswith("error: ") and message in str(err.value), err.value


def test_non_empty_output_dir_needs_resume_or_overwrite(backend, tiny_model_dir, parallel_dir, tmp_path):
    out = tmp_path / "out"
    (out / "checkpoint-9").mkdir(parents=True)
    (out / PLAN_LOG.format(rank=0)).write_text("stale\n")
    args = argv(tiny_model_dir, parallel_dir, out, backend, "--max_steps", "1")
    with pytest.raises(SystemExit) as err:
        main(args)
    assert err.value.code == 2 and "is not empty" in str(err.value)
    main(args + ["--overwrite_output_dir"])
    assert not (out / "checkpoint-9").exists() and len(plan_log(out)) == 1


def test_backend_selection():
    assert resolve_backend_name("auto") == ("main" if backend_available("main") else "pypi")
    with pytest.raises(BackendError, match="unknown backend"):
        select_backend("jax")
    if not backend_available("main"):
        with pytest.raises(BackendError, match="tevatron.retriever"):
            select_backend("main")
    for name in available_backends():
        backend = select_backend(name)
        assert backend.name == name and issubclass(backend.trainer_class, HybridTrainerMixin)
        assert issubclass(backend.training_arguments, HybridTrainingArgumentsMixin)


def test_weights_are_float32_whatever_the_checkpoint_dtype(backend, tiny_model_dir, parallel_dir, tmp_path):
    """A checkpoint saved in bfloat16 trains in float32 weights (mixed precision is --bf16's job)."""
    from transformers import AutoModel, AutoTokenizer

    from hybrid_tevatron.training import build_trainer

    bf16_dir = tmp_path / "bf16"
    AutoModel.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(bf16_dir)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(bf16_dir)
    assert AutoModel.from_pretrained(bf16_dir).dtype == torch.bfloat16  # transformers 5 keeps the saved dtype
    trainer = build_trainer(*parse_args(argv(str(bf16_dir), parallel_dir, tmp_path / "out", backend)))
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
