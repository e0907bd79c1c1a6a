"""Real multi-process runs of ``python -m hybrid_tevatron.driver.train`` on CPU (gloo).

* ``torchrun --standalone --nproc_per_node 2``: with ``--negatives_x_device`` the two ranks form one contrastive
  problem per plan step, so they must agree on the step's mode and language and train disjoint halves of the
  plan's examples (checked from the per-rank plan logs).
* ``torchrun --nnodes 2 --nproc_per_node 1 --rdzv_backend c10d`` with two local agents (two "nodes" on one
  machine, started at once): the same plan logs, line for line, as the one-node 2-process run.
* Sharded optimizer states (``--fsdp``, ``--deepspeed`` with the configs in ``recipes/configs``): refused with one
  error line without GPUs (on CPU neither would shard anything); on 2+ GPUs a short run saves plain HF checkpoints
  (gathered weights, tokenizer, ``hybrid_tevatron.json``) that load with ``AutoModel`` — skipped without them.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
from helpers import REPO, skip_unavailable_backend

from hybrid_tevatron.run_folder import PLAN_LOG

STEPS = 4
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


CPU = ("--use_cpu", "--ddp_backend", "gloo")
CONFIGS = os.path.join(REPO, "recipes", "configs")
SHARDING = {  # the sharded-optimizer flags, with the configs shipped in recipes/configs
    "fsdp": ["--fsdp", "full_shard", "--fsdp_config", os.path.join(CONFIGS, "fsdp_xlmr.json")],
    "deepspeed": ["--deepspeed", os.path.join(CONFIGS, "ds_zero3_xlmr_large.json")],
}


def train_cmd(launcher, backend, model, data, out, device=CPU, extra=()):
    """``python -m torch.distributed.run LAUNCHER... -m hybrid_tevatron.driver.train`` with the test's flags."""
    return [
        sys.executable, "-m", "torch.distributed.run", *launcher,
        "-m", "hybrid_tevatron.driver.train", "--backend", backend,
        "--model_name_or_path", model, "--train_files", data, "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--train_group_size", "3", "--max_steps", str(STEPS),
        "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
        *device, "--negatives_x_device", "--seed", "3", *extra,
    ]  # fmt: skip


def plan_logs(out, ranks=2):
    logs = []
    for rank in range(ranks):
        with open(os.path.join(out, PLAN_LOG.format(rank=rank)), encoding="utf-8") as f:
            logs.append([json.loads(line) for line in f])
    return logs


@pytest.fixture(scope="module")
def one_node_runs(tmp_path_factory):
    """``backend -> (output_dir, torchrun result)`` of the one-node 2-process run, each run once per module."""
    runs = {}

    def get(backend, model, data):
        if backend not in runs:
            out = tmp_path_factory.mktemp(f"one-node-{backend}") / "out"
            launcher = ["--standalone", "--nproc_per_node", "2"]
            res = subprocess.run(train_cmd(launcher, backend, model, data, out), capture_output=True, text=True,
                                 timeout=600, env=ENV)
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
            runs[backend] = (out, res)
        return runs[backend]

    return get


def test_two_ranks_share_modes_and_split_examples(backend, tiny_model_dir, parallel_dir, one_node_runs):
    out, res = one_node_runs(backend, tiny_model_dir, parallel_dir)
    logs = plan_logs(out)
    assert [len(log) for log in logs] == [STEPS, STEPS]

    from hybrid_tevatron.arguments import HybridDataArguments
    from hybrid_tevatron.data.readers import load_sources
    from hybrid_tevatron.sampling import BatchPlan

    data_args = HybridDataArguments(train_files=[parallel_dir], train_group_size=3)
    plan = BatchPlan.from_args(load_sources(data_args), data_args, batch_size=4, seed=3)
    for r0, r1 in zip(*logs):
        assert (r0["rank"], r1["rank"]) == (0, 1)
        for key in ("global_step", "epoch", "plan_step", "mode", "language", "source"):
            assert r0[key] == r1[key], key
        assert not set(r0["query_ids"]) & set(r1["query_ids"])
        # the two shards are the halves of the plan's step, in order
        step = plan.step(r0["epoch"], r0["plan_step"])
        corpus = plan.sources[step.source]
        assert r0["query_ids"] + r1["query_ids"] == [corpus.query_ids[e.query] for e in step.entries]
        assert r0["mode"] == step.mode

    # one set of final files, written by rank 0
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "hybrid_tevatron.json"} <= set(os.listdir(out))
    assert "loss_" in res.stdout + res.stderr  # per-mode losses reach the logs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_c10d_rendezvous_train_the_one_node_plan(tiny_model_dir, parallel_dir, one_node_runs, tmp_path):
    """Two torchrun agents (one process each) meet at a c10d rendezvous, as two machines would; no --node_rank."""
    backend = skip_unavailable_backend("pypi")
    out = tmp_path / "out"
    launcher = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_id", "two-nodes",
                "--rdzv_endpoint", f"127.0.0.1:{_free_port()}", "--local_addr", "127.0.0.1"]
    cmd = train_cmd(launcher, backend, tiny_model_dir, parallel_dir, out)
    agents = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
              for _ in range(2)]
    try:
        outputs = [agent.communicate(timeout=600)[0] for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
    for agent, output in zip(agents, outputs):
        assert agent.returncode == 0, output[-5000:]
    one_node_out, _ = one_node_runs(backend, tiny_model_dir, parallel_dir)
    assert plan_logs(out) == plan_logs(one_node_out)
    assert {"config.json", "model.safetensors", "hybrid_tevatron.json"} <= set(os.listdir(out))


@pytest.mark.parametrize("sharding", sorted(SHARDING))
def test_sharded_optimizer_refused_without_gpus(sharding, backend, tiny_model_dir, parallel_dir, tmp_path):
    """Under each installed backend (the ``backend`` fixture skips the other one, saying which is missing)."""
    from hybrid_tevatron.distributed import accelerator_available
    from hybrid_tevatron.driver.train import main

    if accelerator_available():
        pytest.skip("an accelerator is present: the flags are accepted here")
    out = tmp_path / "out"
    argv = train_cmd([], backend, tiny_model_dir, parallel_dir, out, device=(), extra=SHARDING[sharding])
    with pytest.raises(SystemExit, match=f"^error: --{sharding} needs (GPUs|the deepspeed package)") as err:
        main(argv[argv.index("hybrid_tevatron.driver.train") + 1:])
    assert "\n" not in str(err.value) and not out.exists()


@pytest.mark.parametrize("sharding", sorted(SHARDING))
def test_sharded_optimizer_on_gpus_saves_plain_checkpoints(sharding, tiny_model_dir, parallel_dir, tmp_path):
    """Needs 2 CUDA GPUs (and deepspeed for ZeRO): FSDP and ZeRO-3 do not run on CPU (see test above)."""
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA GPUs: FSDP/DeepSpeed shard nothing on CPU (accelerate/HF Trainer)")
    if sharding == "deepspeed":
        pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (pip install deepspeed)")
    backend = skip_unavailable_backend("pypi")
    out = tmp_path / "out"
    cmd = train_cmd(["--standalone", "--nproc_per_node", "2"], backend, tiny_model_dir, parallel_dir, out,
                    device=(), extra=[*SHARDING[sharding], "--save_strategy", "steps", "--save_steps", "2"])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    from transformers import AutoModel, AutoTokenizer

    initial = AutoModel.from_pretrained(tiny_model_dir).state_dict()
    for folder in (out, out / "checkpoint-2"):
        assert {"config.json", "model.safetensors", "hybrid_tevatron.json"} <= set(os.listdir(folder))
        AutoTokenizer.from_pretrained(folder)
        weights = AutoModel.from_pretrained(folder).state_dict()
        assert weights.keys() == initial.keys()  # the whole encoder, gathered from the shards
        assert all(w.shape == initial[k].shape and torch.isfinite(w).all() for k, w in weights.items())
        assert any(not torch.equal(w, initial[k]) for k, w in weights.items())  # trained
