"""Batch-plan build time and memory at scale: goal < 10 s and < 1 GiB for the plan.

Ours: ``BatchPlan`` over a synthetic CSR-free source of N query ids × 9 languages (positive of q = doc q,
negatives = 7 arithmetic neighbours, every language available, no texts), so only the plan's own
allocations are measured (tracemalloc sees numpy buffers; time and memory come from separate runs). The source has
no texts, so the plan's data check for self-paired sources (query text == positive text, a pass over the texts
that a real corpus pays once when its plan is built) is switched off here. Timed:
construction + the first packed step (the query order is a keyed permutation computed on demand, so there is
no shuffle to build), then the next 100 steps. Baseline: the naive plan a loader would build with
Python's ``random`` — shuffle a list of ids and materialise the whole epoch as Python lists of
(query, query language, passage language, passages) — measured at a smaller N in the same run and
extrapolated linearly to N.

    # 40 M ids × 9 languages (~1 min; the baseline's traced run peaks near 1 GiB RSS)
    python benchmarks/plan_build.py
    python benchmarks/plan_build.py --queries 1000000
"""

import argparse
import random
import time
import tracemalloc

import numpy as np

from hybrid_tevatron import sampling
from hybrid_tevatron.sampling import BatchPlan

LANGUAGES = ["ar", "de", "en", "es", "fr", "hi", "ru", "vi", "zh"]
NEIGHBOURS = np.arange(1, 8)
GIB = 1024**3


class SyntheticSource:
    """Query q: positive doc q, negatives q+1..q+7 (mod N), every language available."""

    name = "synthetic"

    def __init__(self, size: int, languages):
        self.size, self.languages = size, list(languages)

    def __len__(self):
        return self.size

    def positives(self, q):
        return np.array([q])

    def negatives(self, q, lang):
        return (q + NEIGHBOURS) % self.size


def measure(fn):
    """(seconds of one untraced run, peak bytes traced during a second run): tracemalloc slows Python down."""
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def naive_plan(n, batch_size, group_size, alpha, seed):
    """The whole epoch materialised as Python lists, hybrid regime, negatives sampled per example."""
    rng = random.Random(seed)
    order = list(range(n))
    rng.shuffle(order)
    neighbours = NEIGHBOURS.tolist()
    steps = []
    for start in range(0, n - batch_size + 1, batch_size):
        mono_language = rng.choice(LANGUAGES) if rng.random() < alpha else None
        step = []
        for q in order[start : start + batch_size]:
            query_lang, passage_lang = (mono_language,) * 2 if mono_language else rng.sample(LANGUAGES, 2)
            negatives = [(q + d) % n for d in rng.sample(neighbours, group_size - 1)]
            step.append((q, query_lang, passage_lang, [q] + negatives))
        steps.append(step)
    return steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=40_000_000)
    parser.add_argument("--batch_size", type=int, default=128, help="global plan-step size")
    parser.add_argument("--group_size", type=int, default=8)
    parser.add_argument("--baseline_queries", type=int, default=500_000)
    args = parser.parse_args()
    source = SyntheticSource(args.queries, LANGUAGES)
    sampling.self_paired_example = lambda corpus: None  # no texts to compare (see the module docstring)

    def build():
        plan = BatchPlan([source], args.batch_size, args.group_size, regime="hybrid", alpha=0.5, seed=0)
        plan.step(0, 0)
        return plan

    plan, build_s, build_peak = measure(build)
    start = time.perf_counter()
    for k in range(1, 101):
        plan.step(0, k)
    hundred_s = time.perf_counter() - start
    epoch_pack_s = hundred_s / 100 * len(plan)

    _, base_s, base_peak = measure(
        lambda: naive_plan(args.baseline_queries, args.batch_size, args.group_size, 0.5, 0)
    )
    scale = args.queries / args.baseline_queries
    base_s, base_peak = base_s * scale, base_peak * scale

    print(f"{args.queries:,} query ids × {len(LANGUAGES)} languages, plan step {args.batch_size}, "
          f"group {args.group_size}: {len(plan):,} steps per epoch")
    print(f"ours      build + first step : {build_s:8.2f} s   peak {build_peak / GIB:7.3f} GiB")
    print(f"ours      next 100 steps     : {hundred_s:8.3f} s   ({hundred_s * 10:.2f} ms/step; packing the whole "
          f"epoch lazily, spread over training: {epoch_pack_s / 60:.1f} min)")
    print(f"baseline  whole epoch up front: {base_s:8.2f} s   peak {base_peak / GIB:7.3f} GiB   "
          f"(measured at {args.baseline_queries:,} ids, ×{scale:g} linear)")
    print(f"ratio baseline/ours (build): time {base_s / build_s:.0f}×, memory {base_peak / build_peak:.0f}×")
    print(f"whole epoch, total work: ours {epoch_pack_s:.0f} s spread over the training steps (conflict checks, "
          f"hashed negatives) vs baseline {base_s:.0f} s before the first step ({epoch_pack_s / base_s:.1f}×)")
    print(f"goal < 10 s  : {'MET' if build_s < 10 else 'MISSED'} ({build_s / 10:.1%} of the budget)")
    print(f"goal < 1 GiB : {'MET' if build_peak < GIB else 'MISSED'} ({build_peak / GIB:.1%} of the budget)")


if __name__ == "__main__":
    main()
