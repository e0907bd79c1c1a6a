"""Training data pipeline throughput: ours (plan -> dataset -> TrainCollator) vs Tevatron 0.1.0 (TrainDataset +
QPCollator).

    python benchmarks/data_pipeline.py [--tokenizer /tmp/models/me5-small] [--steps 40] [--workers 0]
                                       [--train_step_json out/train_step.json | --gpu_step_s 0.12]

Same data for both: the XQuAD-R training split converted by ``python -m hybrid_tevatron.data.xquad_train``
(9 languages x 816 parallel questions, real sentences; or ``--data DIR`` of {lang}.jsonl), the same tokenizer
(multilingual-e5-small's, i.e. XLM-R's SentencePiece), 64 queries x 8 passages per step, max lengths 32/128, the
same number of DataLoader workers.

* **ours**: ``load_jsonl_source`` -> ``BatchPlan`` (hybrid, alpha 0.5) -> ``HybridBatchSampler`` ->
  ``HybridTrainDataset`` -> ``TrainCollator`` (tokenises each text the first time it occurs and keeps its ids,
  pads to the batch's longest), in a ``DataLoader`` exactly as ``HybridTrainerMixin.get_train_dataloader``
  builds it. Timed twice: the first pass from a fresh collator (one Tevatron epoch's worth of examples: every
  text is new, so this includes all tokenisation), then ``--steps`` steps after it (texts seen before come from
  the token cache; the count of texts still tokenised in that window is printed).
* **Tevatron 0.1.0**: its ``TrainPreProcessor`` (offline tokenisation to ids through ``datasets.map``, as its
  ``HFTrainDataset`` does; all languages' rows together, since it has no notion of parallel data) ->
  ``TrainDataset`` -> ``QPCollator`` (pads to the max lengths) in a shuffled ``DataLoader``, as its trainer does.
  Two documented shims: transformers 5 removed ``tokenizer.encode_plus``, which ``TrainDataset`` calls on token
  ids; the shim does what transformers 4 did for an id list (truncate to ``max_length`` minus the special tokens,
  add ``<s> ... </s>`` as XLM-R's ``build_inputs_with_special_tokens``) and is checked against ``tokenizer(text)``
  on real sentences before timing. ``TrainDataset`` reads ``trainer.state.epoch`` and ``trainer.args.seed`` from
  its trainer: a namespace with those two values stands in for the trainer.

Printed: examples/s of each loop (Tevatron's after one warm-up step; ours after the first pass), their ratio, the
offline preprocessing time of the baseline (ours has none: tokenisation is inside the first pass), the end-to-end
time of one Tevatron epoch from raw JSONL for each, padded tokens per step (what the GPU then computes),
and our examples/s against what one GPU training step consumes (``--train_step_json`` from
``benchmarks/train_step.py --json``, or ``--gpu_step_s``, else a stated assumption).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import tempfile
import time
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

# An XLM-R-base step of 64 x 8 (p_len 128) on one H100 in bf16, used only when no measurement is given: about
# 6 x 86 M non-embedding params x ~70 k tokens ~ 3.6e13 FLOP forward+backward, at ~40 % of 989 TFLOP/s.
ASSUMED_GPU_STEP_S = 0.10


def prepare_data(args) -> dict:
    """``{lang: path}`` of Tevatron-format JSONL files (converting XQuAD-R when no --data is given)."""
    data_dir = args.data
    if data_dir is None:
        from hybrid_tevatron.data.xquad_train import convert

        data_dir = tempfile.mkdtemp(prefix="data_pipeline.")
        convert(args.xquad_dir, data_dir)
    files = {os.path.basename(p)[: -len(".jsonl")]: p for p in sorted(glob.glob(os.path.join(data_dir, "*.jsonl")))}
    if not files:
        raise SystemExit(f"no {{lang}}.jsonl files in {data_dir}")
    return files


# ------------------------------------------------------------------------------------------------ ours
def build_ours(files, tokenizer, args):
    from hybrid_tevatron.collator import TrainCollator
    from hybrid_tevatron.data.readers import load_jsonl_source
    from hybrid_tevatron.dataset import HybridTrainDataset
    from hybrid_tevatron.sampling import BatchPlan, HybridBatchSampler

    t0 = time.perf_counter()
    source = load_jsonl_source("xquad", files)
    plan = BatchPlan([source], batch_size=args.batch_size, group_size=args.group_size, regime="hybrid",
                     alpha=0.5, seed=42)
    sampler = HybridBatchSampler(plan)
    dataset = HybridTrainDataset([source], args.query_prefix, args.passage_prefix)
    collator = TrainCollator(tokenizer, query_max_len=args.q_max_len, passage_max_len=args.p_max_len)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collator, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    return loader, sampler, time.perf_counter() - t0


def ours_batches(loader, sampler):
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


# ------------------------------------------------------------------------------------------------ Tevatron 0.1.0
def encode_plus_shim(tokenizer):
    """transformers 4's ``encode_plus(ids, truncation=, max_length=)`` for an id list (XLM-R special tokens)."""
    from transformers import BatchEncoding

    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    bos, eos = tokenizer.cls_token_id, tokenizer.sep_token_id

    def encode_plus(ids, truncation=True, max_length=None, padding=False, return_attention_mask=False,
                    return_token_type_ids=False, **kwargs):
        if not isinstance(ids, (list, tuple)) or (ids and not isinstance(ids[0], int)):
            raise TypeError("the shim covers Tevatron 0.1.0's use: a list of token ids")
        ids = list(ids)
        if truncation and max_length is not None:
            ids = ids[: max(max_length - n_special, 0)]
        out = {"input_ids": [bos] + ids + [eos]}
        if return_attention_mask:
            out["attention_mask"] = [1] * len(out["input_ids"])
        return BatchEncoding(out)

    return encode_plus


def check_shim(tokenizer, encode_plus, texts, max_length):
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        want = tokenizer(text, max_length=max_length, truncation=True)["input_ids"]
        got = encode_plus(ids, truncation="only_first", max_length=max_length)["input_ids"]
        if got != want:
            raise SystemExit(f"encode_plus shim differs from tokenizer(text) on {text!r}: {got} vs {want}")


def build_tevatron(files, tokenizer, args):
    import datasets
    from tevatron.arguments import DataArguments
    from tevatron.data import QPCollator, TrainDataset
    from tevatron.datasets.preprocessor import TrainPreProcessor

    datasets.disable_progress_bars()
    rows = []
    for path in files.values():
        with open(path, encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    raw = datasets.Dataset.from_list(rows)
    t0 = time.perf_counter()
    processed = raw.map(TrainPreProcessor(tokenizer, args.q_max_len, args.p_max_len, " "), batched=False,
                        num_proc=None, remove_columns=raw.column_names, load_from_cache_file=False,
                        desc="Tevatron TrainPreProcessor")
    preprocess_s = time.perf_counter() - t0
    data_args = DataArguments(train_n_passages=args.group_size, q_max_len=args.q_max_len, p_max_len=args.p_max_len)
    trainer = SimpleNamespace(state=SimpleNamespace(epoch=0.0), args=SimpleNamespace(seed=42))
    dataset = TrainDataset(data_args, processed, tokenizer, trainer=trainer)
    collator = QPCollator(tokenizer, max_q_len=args.q_max_len, max_p_len=args.p_max_len)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True, collate_fn=collator,
                        num_workers=args.workers, persistent_workers=args.workers > 0)
    return loader, preprocess_s, len(rows)


def tevatron_batches(loader):
    while True:
        yield from loader


# ------------------------------------------------------------------------------------------------ timing
def time_loop(batches, steps: int):
    """Examples/s over ``steps`` batches after one warm-up batch; mean padded tokens per step."""
    q, p = next(batches)
    tokens = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        q, p = next(batches)
        tokens += q["input_ids"].numel() + p["input_ids"].numel()
    seconds = time.perf_counter() - t0
    return seconds, tokens / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="/tmp/models/me5-small", help="HF tokenizer folder or id (XLM-R family)")
    ap.add_argument("--xquad_dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                         "xquad-r"))
    ap.add_argument("--data", help="folder of Tevatron-format {lang}.jsonl instead of converting XQuAD-R")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--group_size", type=int, default=8)
    ap.add_argument("--q_max_len", type=int, default=32)
    ap.add_argument("--p_max_len", type=int, default=128)
    ap.add_argument("--query_prefix", default="")
    ap.add_argument("--passage_prefix", default="")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per pipeline")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (both pipelines)")
    ap.add_argument("--train_step_json", help="output of benchmarks/train_step.py --json (GPU step time)")
    ap.add_argument("--gpu_step_s", type=float, help="seconds per GPU training step of batch_size examples")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)


    torch.manual_seed(0)
    random.seed(0)
    files = prepare_data(args)
    try:
        return _run(args, files)
    finally:
        if args.data is None:  # the converted XQuAD-R copy
            import shutil

            shutil.rmtree(os.path.dirname(next(iter(files.values()))), ignore_errors=True)


def _run(args, files) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    print(f"data: {len(files)} languages ({' '.join(files)}); tokenizer {args.tokenizer}; "
          f"{args.batch_size} queries x {args.group_size} passages per step, max len {args.q_max_len}/"
          f"{args.p_max_len}; {args.workers} DataLoader workers; {torch.get_num_threads()} torch threads; "
          f"{os.cpu_count()} CPUs")

    shim = encode_plus_shim(tokenizer)
    with open(next(iter(files.values())), encoding="utf-8") as f:
        sample = [json.loads(line) for _, line in zip(range(50), f)]
    check_shim(tokenizer, shim, [r["query"] for r in sample] + [r["positive_passages"][0]["text"] for r in sample],
               args.p_max_len)
    check_shim(tokenizer, shim, [r["query"] for r in sample], 8)
    tokenizer.encode_plus = shim  # the only change to the tokenizer; see the module docstring

    results = {}
    loader, preprocess_s, n_rows = build_tevatron(files, tokenizer, args)
    seconds, tokens = time_loop(tevatron_batches(loader), args.steps)
    results["tevatron_0.1.0"] = {"examples_per_s": args.steps * args.batch_size / seconds, "ms_per_step": 1e3 *
                                 seconds / args.steps, "padded_tokens_per_step": tokens,
                                 "preprocess_s": preprocess_s, "preprocessed_rows": n_rows}
    n = n_rows  # one Tevatron epoch of examples, delivered from scratch by each pipeline

    loader, sampler, setup_s = build_ours(files, tokenizer, args)
    batches = ours_batches(loader, sampler)
    first_steps = -(-n // args.batch_size)
    t0 = time.perf_counter()
    for _ in range(first_steps):
        next(batches)
    first_s = time.perf_counter() - t0
    caches = loader.collate_fn._caches
    cached_before = sum(len(c) for c in caches)
    seconds, tokens = time_loop(batches, args.steps)
    tokenised = sum(len(c) for c in caches) - cached_before if args.workers == 0 else None
    results["ours"] = {"examples_per_s": args.steps * args.batch_size / seconds, "ms_per_step": 1e3 * seconds /
                       args.steps, "padded_tokens_per_step": tokens, "setup_s": setup_s,
                       "first_pass_examples_per_s": first_steps * args.batch_size / first_s,
                       "first_pass_s": first_s, "texts_tokenised_in_timed_steps": tokenised}

    o, t = results["ours"], results["tevatron_0.1.0"]
    ratio = o["examples_per_s"] / t["examples_per_s"]
    print(f"\n{'pipeline':<24}{'examples/s':>12}{'ms/step':>10}{'padded tokens/step':>20}  setup")
    print(f"{'ours, first pass':<24}{o['first_pass_examples_per_s']:>12.1f}"
          f"{1e3 * first_s / first_steps:>10.1f}{'':>20}  {o['setup_s']:.1f}s load + plan; {first_steps} steps, "
          "every text tokenised here")
    print(f"{'ours, after it':<24}{o['examples_per_s']:>12.1f}{o['ms_per_step']:>10.1f}"
          f"{o['padded_tokens_per_step']:>20.0f}  texts tokenised in these {args.steps} steps: "
          f"{'n/a (workers)' if tokenised is None else tokenised}")
    print(f"{'tevatron 0.1.0':<24}{t['examples_per_s']:>12.1f}{t['ms_per_step']:>10.1f}"
          f"{t['padded_tokens_per_step']:>20.0f}  {t['preprocess_s']:.1f}s offline tokenisation of "
          f"{t['preprocessed_rows']} rows")
    print(f"\nloop throughput ours / tevatron 0.1.0: {ratio:.2f}x (goal >= 1x); first pass "
          f"{o['first_pass_examples_per_s'] / t['examples_per_s']:.2f}x")
    ratio = o["padded_tokens_per_step"] / t["padded_tokens_per_step"]
    print(f"padded tokens per step ours / tevatron 0.1.0: {ratio:.2f}"
          " (dynamic padding vs padding to the max lengths)")
    ours_e2e = o["setup_s"] + first_s
    tev_e2e = t["preprocess_s"] + n / t["examples_per_s"]
    print(f"end to end, {n} examples from raw JSONL (one Tevatron epoch, incl. its offline tokenisation): ours "
          f"{ours_e2e:.1f}s, tevatron 0.1.0 {tev_e2e:.1f}s -> {tev_e2e / ours_e2e:.2f}x")
    results.update(end_to_end_examples=n, ours_end_to_end_s=ours_e2e, tevatron_end_to_end_s=tev_e2e)

    if args.train_step_json:
        with open(args.train_step_json, encoding="utf-8") as f:
            step = json.load(f)
        gpu_step_s, where = step["ours"]["s_per_step"], f"measured ({args.train_step_json}, {step.get('device')})"
        gpu_batch = step.get("batch_size", args.batch_size)
    elif args.gpu_step_s:
        gpu_step_s, where, gpu_batch = args.gpu_step_s, "given (--gpu_step_s)", args.batch_size
    else:
        gpu_step_s, where, gpu_batch = ASSUMED_GPU_STEP_S, "ASSUMED (no GPU measurement given)", args.batch_size
    consumed = gpu_batch / gpu_step_s
    headroom = o["examples_per_s"] / consumed
    print(f"GPU step: {gpu_step_s * 1e3:.0f} ms for {gpu_batch} examples, {where} -> the GPU consumes "
          f"{consumed:.0f} examples/s")
    print(f"ours / GPU consumption: {headroom:.1f}x with {max(args.workers, 1)} process(es) (goal >= 10x)")
    results.update(ratio=ratio, gpu_step_s=gpu_step_s, gpu_step_source=where, headroom_vs_gpu=headroom,
                   workers=args.workers, batch_size=args.batch_size, group_size=args.group_size)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
