"""Training step time: our full pipeline (Trainer + plan + dataset + collator) vs the bare model step.

    python benchmarks/train_step.py                 # GPU: XLM-R-base-sized model, 64 queries x 8 passages
    python benchmarks/train_step.py --small --steps 5 --warmup 2   # CPU smoke check (tiny model)

Model: an XLM-R-base-sized encoder (``XLMRobertaConfig`` defaults: 12 layers, hidden 768; vocabulary = the
tokenizer's), random weights, built locally and saved as a plain HF folder; ``--small``: 2 layers, hidden 64.
Data: the XQuAD-R training split (``python -m hybrid_tevatron.data.xquad_train``, 9 languages), max lengths 32/128.

* **ours**: ``hybrid_tevatron.driver.train``'s own path — ``parse_args`` + ``training.build_trainer`` (batch plan,
  ``HybridTrainDataset``, ``TrainCollator``, the backend's model and trainer) and ``trainer.train()`` for
  ``warmup + steps`` optimizer steps; a callback synchronises the GPU and stamps the end of every step.
* **bare**: the same encoder and the trainer's own optimizer on ``steps`` batches that were collated and moved
  to the device beforehand: autocast forward of queries and passages, cls pooling, L2 norm, InfoNCE with in-batch
  negatives (target = index x group size), backward, gradient clipping (the trainer's ``max_grad_norm``),
  optimizer step. No data loading, no Trainer.

Printed: seconds per step after ``--warmup`` steps, and ours / bare (goal <= 1.05 on a GPU). ``--json`` writes
the figures (``benchmarks/data_pipeline.py --train_step_json`` reads the GPU step time from it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build_model(path: str, tokenizer_name: str, small: bool) -> str:
    """Random-weight XLM-R encoder (base-sized, or tiny with ``small``) + tokenizer saved at ``path``."""
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    tok = AutoTokenizer.from_pretrained(tokenizer_name)
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if small else {}
    config = XLMRobertaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                              eos_token_id=tok.eos_token_id, **size)
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


class StepClock:
    """A ``TrainerCallback`` stamping the end of every optimizer step (after a device synchronisation)."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            def __init__(self):
                self.stamps = []

            def on_step_end(self, args, state, control, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.stamps.append(time.perf_counter())

        return _Clock()


def per_step(stamps, warmup: int) -> float:
    timed = stamps[warmup - 1 :] if warmup > 0 else stamps
    return (timed[-1] - timed[0]) / (len(timed) - 1)


def bare_steps(trainer, batches, group_size: int, temperature: float, pooling: str, normalize: bool,
               warmup: int) -> float:
    """Seconds per bare step (see the module docstring) over ``batches`` already on the device."""
    from hybrid_tevatron.modeling import pool

    encoder = trainer.model.encoder
    encoder.train()
    optimizer = trainer.optimizer
    device = next(encoder.parameters()).device
    amp = torch.bfloat16 if trainer.args.bf16 else (torch.float16 if trainer.args.fp16 else None)
    max_norm = trainer.args.max_grad_norm

    def embed(batch):
        hidden = encoder(**batch, return_dict=True).last_hidden_state
        reps = pool(hidden, batch["attention_mask"], pooling)
        return F.normalize(reps, dim=-1) if normalize else reps

    stamps = []
    for q, p in batches:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            qr, pr = embed(q), embed(p)
            scores = qr @ pr.T / temperature
            target = torch.arange(qr.size(0), device=device) * group_size
            loss = F.cross_entropy(scores.float(), target)
        loss.backward()
        if max_norm:
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return per_step(stamps, warmup)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="tiny model (CPU smoke check)")
    ap.add_argument("--tokenizer", default="/tmp/models/me5-small", help="XLM-R-family tokenizer (folder or id)")
    ap.add_argument("--xquad_dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         "shared", "data", "xquad-r"))
    ap.add_argument("--data", help="folder of Tevatron-format {lang}.jsonl instead of converting XQuAD-R")
    ap.add_argument("--backend", default="pypi", help="pypi | main | auto")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--group_size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--workers", type=int, default=4, help="--dataloader_num_workers of ours")
    ap.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                    help="auto: bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        raise SystemExit("--warmup and --steps must be >= 1")

    from data_pipeline import prepare_data

    from hybrid_tevatron.driver.train import parse_args
    from hybrid_tevatron.training import build_trainer

    cuda = torch.cuda.is_available()
    dtype = args.dtype if args.dtype != "auto" else ("bf16" if cuda else "fp32")
    work = tempfile.mkdtemp(prefix="train_step.")
    try:
        files = prepare_data(argparse.Namespace(data=args.data, xquad_dir=args.xquad_dir))
        data_dir = os.path.dirname(next(iter(files.values())))
        model = build_model(os.path.join(work, "model"), args.tokenizer, args.small)
        flags = ["--backend", args.backend, "--model_name_or_path", model, "--train_files", data_dir,
                 "--output_dir", os.path.join(work, "out"), "--per_device_train_batch_size", str(args.batch_size),
                 "--train_group_size", str(args.group_size), "--max_steps", str(args.warmup + args.steps),
                 "--learning_rate", "1e-5", "--pooling", "cls", "--normalize", "--temperature", "0.02",
                 "--save_strategy", "no", "--report_to", "none", "--logging_steps", "1000000",
                 "--disable_tqdm", "true", "--seed", "42", "--dataloader_num_workers", str(args.workers)]
        flags += {"bf16": ["--bf16"], "fp16": ["--fp16"], "fp32": []}[dtype] + ([] if cuda else ["--use_cpu"])
        backend, model_args, data_args, training_args = parse_args(flags)
        clock = StepClock()
        trainer = build_trainer(backend, model_args, data_args, training_args, callbacks=[clock])
        trainer.train()
        ours = per_step(clock.stamps, args.warmup)

        device = next(trainer.model.encoder.parameters()).device
        loader = trainer.get_train_dataloader()
        batches = []
        while len(batches) < args.warmup + args.steps:
            for q, p in loader:
                batches.append(({k: v.to(device) for k, v in q.items()}, {k: v.to(device) for k, v in p.items()}))
                if len(batches) == args.warmup + args.steps:
                    break
        bare = bare_steps(trainer, batches, args.group_size, model_args.temperature, model_args.pooling,
                          model_args.normalize, args.warmup)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.data is None and "data_dir" in locals():
            shutil.rmtree(data_dir, ignore_errors=True)

    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    params = sum(p.numel() for p in trainer.model.encoder.parameters())
    ratio = ours / bare
    print(f"device: {name}; model: {'tiny (--small)' if args.small else 'XLM-R-base-sized'} ({params / 1e6:.0f} M "
          f"params, random weights), {dtype}; backend {backend.name}; {args.batch_size} queries x {args.group_size} "
          f"passages, max len {data_args.query_max_len}/{data_args.passage_max_len}; {args.workers} DataLoader "
          f"workers; {args.steps} timed steps after {args.warmup}")
    print(f"ours (Trainer + plan + dataset + collator): {ours * 1e3:.1f} ms/step")
    print(f"bare (pre-collated batches on the device):   {bare * 1e3:.1f} ms/step")
    print(f"ours / bare: {ratio:.3f} (goal <= 1.05 on a GPU{'' if cuda else '; CPU figures are a smoke check only'})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"device": name, "dtype": dtype, "small": args.small, "batch_size": args.batch_size,
                       "group_size": args.group_size, "backend": backend.name, "params": params,
                       "ours": {"s_per_step": ours}, "bare": {"s_per_step": bare}, "ratio": ratio}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
