"""A real 2-process run: ``torchrun --nproc_per_node 2 -m hybrid_tevatron.driver.train`` on CPU (gloo).

With ``--negatives_x_device`` the two ranks form one contrastive problem per plan step, so they must agree on the
step's mode and language and train disjoint halves of the plan's examples (checked from the per-rank plan logs).
"""

import json
import os
import subprocess
import sys

import pytest

from hybrid_tevatron.training import PLAN_LOG

STEPS = 4


def test_two_ranks_share_modes_and_split_examples(backend, tiny_model_dir, parallel_dir, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "hybrid_tevatron.driver.train", "--backend", backend,
        "--model_name_or_path", tiny_model_dir, "--train_files", parallel_dir, "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--train_group_size", "3", "--max_steps", str(STEPS),
        "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
        "--use_cpu", "--ddp_backend", "gloo", "--negatives_x_device", "--seed", "3",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]

    logs = []
    for rank in (0, 1):
        with open(out / PLAN_LOG.format(rank=rank), encoding="utf-8") as f:
            logs.append([json.loads(line) for line in f])
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
