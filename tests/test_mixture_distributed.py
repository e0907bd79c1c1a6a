"""A real 2-process run (``torchrun --nproc_per_node 2``, CPU/gloo) of a mixture: a question/passage source and a
cross-only caption source, per-source weights and a piecewise α schedule. Both ranks must agree on every step's
source, mode, language and α, train disjoint halves of the plan's step, and never see a mono caption step."""

import json
import os
import subprocess
import sys

from helpers import write_captions

from hybrid_tevatron.run_folder import PLAN_LOG

STEPS = 6


def test_two_ranks_agree_on_a_weighted_scheduled_mixture(backend, tiny_model_dir, parallel_dir, tmp_path):
    from hybrid_tevatron.data.captions import main as captions_main

    caps = tmp_path / "flickr"
    assert captions_main(["train", "--files", *(f"{l}={p}" for l, p in write_captions(tmp_path / "raw", n=32).items()),
                          "--negatives", "4", "--output_dir", str(caps)]) == 0
    name = os.path.basename(parallel_dir)
    mixture = ["--extra_sources", f"flickr:{caps}", "--cross_only_sources", "flickr",
               "--source_weights", f"{name}=1,flickr=2", "--alpha_schedule", "piecewise:0:1,3:0.5"]
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "hybrid_tevatron.driver.train", "--backend", backend,
        "--model_name_or_path", tiny_model_dir, "--train_files", parallel_dir, *mixture, "--output_dir", str(out),
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

    from hybrid_tevatron.data.readers import load_sources
    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.sampling import BatchPlan

    _, _, data_args, _ = parse_args(["--backend", backend, "--model_name_or_path", tiny_model_dir, "--train_files",
                                     parallel_dir, *mixture, "--train_group_size", "3", "--output_dir", str(out)])
    plan = BatchPlan.from_args(load_sources(data_args), data_args, batch_size=4, seed=3)
    assert plan.steps_per_source == [6, 12]  # 40 // 4 + 32 // 4 = 18 steps, split 1:2
    for r0, r1 in zip(*logs):
        for key in ("global_step", "epoch", "plan_step", "mode", "language", "source", "alpha"):
            assert r0[key] == r1[key], key
        assert not set(r0["query_ids"]) & set(r1["query_ids"])
        step = plan.step(r0["epoch"], r0["plan_step"])
        corpus = plan.sources[step.source]
        assert r0["query_ids"] + r1["query_ids"] == [corpus.query_ids[e.query] for e in step.entries]
        assert (r0["source"], r0["mode"]) == (corpus.name, step.mode)
        assert r0["alpha"] == (1.0 if r0["plan_step"] < 3 else 0.5) == plan.alpha_at(r0["epoch"], r0["plan_step"])
        if r0["source"] == "flickr":
            assert r0["mode"] == "cross"
    assert "flickr" in {r["source"] for r in logs[0]}
