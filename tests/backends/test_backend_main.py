"""Tests specific to the Tevatron main backend (``tevatron.retriever``, a source install of texttron/tevatron).

The training tests shared by both backends (regimes, checkpoints, resume, CLI) are in ``test_train.py`` and
``test_distributed.py``; here: that the real Tevatron main classes are used, how our flags map onto them
(attention kernel, hidden flags), that Tevatron main's shape-derived InfoNCE target agrees with our batch layout,
that the plan a run trains is the backend-independent ``BatchPlan``, and the compatibility fixes (gradient
checkpointing). Everything skips where Tevatron main is not installed (CI installs Tevatron 0.1.0 from PyPI).
"""

import json
import os

import pytest
import torch

from hybrid_tevatron.backends import backend_available

pytestmark = [
    pytest.mark.tevatron_main,
    pytest.mark.skipif(
        not backend_available("main"),
        reason="Tevatron main not installed (tevatron.retriever is not importable; it is installed from source: "
        "pip install -e <clone of github.com/texttron/tevatron>)",
    ),
]


def argv(model, data, out, *extra):
    return [
        "--backend", "main", "--model_name_or_path", model, "--train_files", data, "--output_dir", str(out),
        "--per_device_train_batch_size", "4", "--train_group_size", "3", "--max_steps", "3",
        "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu",
        "--disable_tqdm", "true", "--seed", "11", *extra,
    ]  # fmt: skip


def parse(args):
    from hybrid_tevatron.driver.train import parse_args

    return parse_args(args)


def run(args):
    from hybrid_tevatron.training import train

    return train(*parse(args))


def test_real_tevatron_main_classes(tiny_model_dir, tmp_path):
    from tevatron.retriever.arguments import ModelArguments, TevatronTrainingArguments
    from tevatron.retriever.modeling import DenseModel, EncoderModel
    from tevatron.retriever.trainer import TevatronTrainer
    from transformers import XLMRobertaModel

    from hybrid_tevatron.backends import select_backend
    from hybrid_tevatron.trainer import HybridTrainerMixin

    backend = select_backend("main")
    assert backend.name == "main"
    assert issubclass(backend.trainer_class, TevatronTrainer) and issubclass(backend.trainer_class, HybridTrainerMixin)
    # our checkpointing replaces TevatronTrainer._save (on transformers 5 it saves no tokenizer into checkpoints)
    assert backend.trainer_class._save is HybridTrainerMixin._save
    assert issubclass(backend.model_arguments, ModelArguments)
    assert issubclass(backend.training_arguments, TevatronTrainingArguments)

    _, model_args, data_args, training_args = parse(
        ["--backend", "main", "--model_name_or_path", tiny_model_dir, "--output_dir", str(tmp_path / "o"),
         "--use_cpu", "--pooling", "mean", "--normalize", "--temperature", "0.05"]  # fmt: skip
    )
    model = backend.build_model(model_args, data_args, training_args)
    assert isinstance(model, DenseModel) and isinstance(model, EncoderModel)
    assert type(model.encoder) is XLMRobertaModel
    assert (model.pooling, model.normalize, model.temperature) == ("mean", True, 0.05)
    assert model.encoder.config._attn_implementation == "sdpa"
    assert next(model.parameters()).dtype == torch.float32
    assert model.is_ddp is False  # single process: no gathering


def test_attn_implementation_defaults_to_sdpa_for_encoders(tiny_model_dir, tmp_path):
    from transformers import AutoConfig, BertConfig

    from hybrid_tevatron.backends.tevatron_main import model_dtype, resolve_attn_implementation
    from hybrid_tevatron.run_folder import SetupError

    base = ["--backend", "main", "--model_name_or_path", tiny_model_dir, "--output_dir", str(tmp_path / "o")]
    model_args, _, training_args = parse(base)[1:]
    assert model_args.attn_implementation == "auto"  # not Tevatron main's flash_attention_2
    assert resolve_attn_implementation("auto", AutoConfig.from_pretrained(tiny_model_dir)) == "sdpa"
    assert resolve_attn_implementation(None, BertConfig()) == "sdpa"
    assert resolve_attn_implementation("eager", BertConfig()) == "eager"
    assert parse(base + ["--attn_implementation", "eager"])[1].attn_implementation == "eager"
    assert model_dtype("sdpa", training_args) == torch.float32
    with pytest.raises(SetupError, match="--bf16"):
        model_dtype("flash_attention_2", training_args)


def test_flags_main_cannot_honour_are_not_accepted(tiny_model_dir, tmp_path):
    from hybrid_tevatron.backends.flags import FlagError

    base = ["--backend", "main", "--model_name_or_path", tiny_model_dir, "--output_dir", str(tmp_path / "o")]
    hidden = (["--lora"], ["--lora_r", "8"], ["--grad_cache"], ["--dtype", "bfloat16"], ["--distil_temperature", "1"],
              ["--untie_encoder"], ["--is_bidirectional"], ["--pooling_strategy", "mean"])
    for flag in hidden:
        with pytest.raises(FlagError, match=f"^{flag[0]} is not supported with --backend main: "):
            parse(base + flag)
    assert "SPLADE" in str(pytest.raises(FlagError, parse, base + ["--is_bidirectional"]).value)
    # shared with --backend pypi: accepted (and checked at build time)
    assert parse(base + ["--negatives_x_device"])[3].negatives_x_device is True


def test_tevatron_main_target_matches_our_batch_layout(tiny_model_dir, parallel_dir, tmp_path):
    """Tevatron main's loss on one of our collated plan steps equals InfoNCE with target = index × G."""
    from torch.nn import functional as F

    from hybrid_tevatron.backends import select_backend
    from hybrid_tevatron.modeling import embed
    from hybrid_tevatron.training import build_trainer

    _, model_args, data_args, training_args = parse(
        argv(tiny_model_dir, parallel_dir, tmp_path / "o", "--pooling", "mean", "--normalize", "--temperature", "0.05")
    )
    trainer = build_trainer(select_backend("main"), model_args, data_args, training_args)
    batch = next(iter(trainer.get_train_dataloader()))
    query, passage = batch
    group = data_args.train_group_size
    assert passage["input_ids"].shape[0] == query["input_ids"].shape[0] * group
    model = trainer.model.train()
    torch.manual_seed(0)  # dropout: same masks in both forward passes
    loss = model(query=dict(query), passage=dict(passage)).loss
    torch.manual_seed(0)
    q = embed(model.encoder, dict(query), "mean", True)
    p = embed(model.encoder, dict(passage), "mean", True)
    target = torch.arange(q.shape[0]) * group
    expected = F.cross_entropy(q @ p.T / 0.05, target)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_run_trains_exactly_the_batch_plan(tiny_model_dir, parallel_dir, tmp_path):
    """The steps the main backend trains are the backend-independent BatchPlan's, entry for entry."""
    from hybrid_tevatron.data.readers import load_sources
    from hybrid_tevatron.run_folder import PLAN_LOG
    from hybrid_tevatron.sampling import BatchPlan

    out = tmp_path / "out"
    args = argv(tiny_model_dir, parallel_dir, out, "--max_steps", "6", "--regime", "hybrid")
    _, _, data_args, training_args = parse(args)
    run(args)

    sources = load_sources(data_args)
    plan = BatchPlan.from_args(sources, data_args, batch_size=4, seed=training_args.seed)
    with open(out / PLAN_LOG.format(rank=0), encoding="utf-8") as f:
        log = [json.loads(line) for line in f]
    assert len(log) == 6
    for record in log:
        step = plan.step(record["epoch"], record["plan_step"])
        entries = step.shard(0, 1)
        assert record["mode"] == step.mode
        assert record["query_ids"] == [sources[e.source].query_ids[e.query] for e in entries]
        assert record["query_langs"] == [e.query_lang for e in entries]
        assert record["passage_langs"] == [e.passage_lang for e in entries]


def test_gradient_checkpointing_works_for_xlmr(tiny_model_dir, parallel_dir, tmp_path):
    """Tevatron main's EncoderModel.gradient_checkpointing_enable only handles decoder LLMs; ours any encoder."""
    from dataclasses import fields

    from transformers import AutoModel, TrainingArguments

    names = {f.name for f in fields(TrainingArguments)}  # transformers 5 renamed the flag
    flag = "--activation_checkpointing" if "activation_checkpointing" in names else "--gradient_checkpointing"
    out = tmp_path / "out"
    trainer = run(argv(tiny_model_dir, parallel_dir, out, "--max_steps", "2", flag))
    encoder = trainer.model.encoder
    assert getattr(encoder, "is_activation_checkpointing", None) or encoder.is_gradient_checkpointing
    base, tuned = AutoModel.from_pretrained(tiny_model_dir), AutoModel.from_pretrained(str(out))
    diff = max((a - b).abs().max().item() for a, b in zip(base.state_dict().values(), tuned.state_dict().values()))
    assert diff > 0
    assert os.path.isfile(out / "tokenizer_config.json")


_GATHER_SCRIPT = r'''
import json, sys
import torch
import torch.distributed as dist
from torch.nn import functional as F

from hybrid_tevatron.driver.train import parse_args
from hybrid_tevatron.modeling import embed
from hybrid_tevatron.training import build_trainer

backend, model_args, data_args, training_args = parse_args(sys.argv[1:])
trainer = build_trainer(backend, model_args, data_args, training_args)
model = trainer.model.train()
query, passage = next(iter(trainer.get_train_dataloader()))
torch.manual_seed(0)  # same dropout masks in the model's forward and in the reference below
loss = model(query=dict(query), passage=dict(passage)).loss
torch.manual_seed(0)
q = embed(model.encoder, dict(query), model_args.pooling, model_args.normalize).detach()
p = embed(model.encoder, dict(passage), model_args.pooling, model_args.normalize).detach()
world = dist.get_world_size()
qs, ps = [torch.empty_like(q) for _ in range(world)], [torch.empty_like(p) for _ in range(world)]
dist.all_gather(qs, q)
dist.all_gather(ps, p)
Q, P = torch.cat(qs), torch.cat(ps)
target = torch.arange(Q.shape[0]) * data_args.train_group_size
joint = F.cross_entropy(Q @ P.T / model_args.temperature, target)
print("RESULT " + json.dumps({
    "rank": dist.get_rank(), "world": world, "is_ddp": model.is_ddp, "local_queries": q.shape[0],
    "loss": loss.item(), "joint_times_world": (joint * world).item(), "joint": joint.item(),
}), flush=True)
'''


def test_two_ranks_form_one_contrastive_problem(tiny_model_dir, parallel_dir, tmp_path):
    """Under torchrun the model is built after the process group: Tevatron main gathers both ranks' embeddings."""
    import subprocess
    import sys

    script = tmp_path / "gather_check.py"
    script.write_text(_GATHER_SCRIPT)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
        "--backend", "main", "--model_name_or_path", tiny_model_dir, "--train_files", parallel_dir,
        "--output_dir", str(tmp_path / "out"), "--per_device_train_batch_size", "2", "--train_group_size", "3",
        "--pooling", "mean", "--normalize", "--temperature", "0.05", "--report_to", "none", "--use_cpu",
        "--ddp_backend", "gloo", "--seed", "5",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    results = sorted(
        (json.loads(line.split("RESULT ", 1)[1]) for line in res.stdout.splitlines() if "RESULT " in line),
        key=lambda r: r["rank"],
    )
    assert [r["rank"] for r in results] == [0, 1]
    for r in results:
        assert r["world"] == 2 and r["is_ddp"] is True and r["local_queries"] == 2
        # Tevatron's loss is the InfoNCE of the joint 4-query problem, scaled by the world size
        # (TevatronTrainer.training_step divides it back)
        assert r["loss"] == pytest.approx(r["joint_times_world"], rel=1e-4, abs=1e-5)
    assert results[0]["joint"] == pytest.approx(results[1]["joint"], rel=1e-5)
