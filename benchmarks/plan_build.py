"""Batch-plan build time and memory at scale (issue "Fast", item d): goal < 10 s and < 1 GB.

Ours: BatchPlan over a synthetic source of N query ids × L languages (arithmetic positives/negatives, no
texts, so only the plan's own allocations are measured), timed to the first packed step (which builds the
epoch permutation) and then over the next 100 steps. Baseline: the naive plan a loader would build by
materialising the whole epoch as Python lists of (query, query language, passage language) per step,
measured at a smaller N in the same run and extrapolated linearly to N.

    python benchmarks/plan_build.py                  # 40 M ids × 9 languages
    python benchmarks/plan_build.py --queries 1000000
"""

import argparse
import time
import tracemalloc

import numpy as np

from hybrid_tevatron.sampling import BatchPlan

LANGUAGES = ["ar", "de", "en", "es", "fr", "hi", "ru", "vi", "zh"]


class SyntheticSource:
    """Query q: positive doc q, negatives q+1..q+7 (mod N), every language available."""

    name = "synthetic"

    def __init__(self, size: int, languages):
        self.size, self.languages = size, list(languages)

    def __len__(self):
        return self.size

    def positives(self, q):
        return np.array([q])

    def negatives(self, q, lang=None):
        return (q + np.arange(1, 8)) % self.size


def measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def naive_plan(n, batch_size, languages, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(n).tolist()
    steps = []
    for start in range(0, n - batch_size + 1, batch_size):
        mono = rng.random() < 0.5
        steps.append([(q, *(rng.choice(languages, 2, replace=not mono))) for q in order[start:start + batch_size]])
    return steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=40_000_000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--group_size", type=int, default=8)
    parser.add_argument("--baseline_queries", type=int, default=200_000)
    args = parser.parse_args()

    source = SyntheticSource(args.queries, LANGUAGES)

    def build():
        plan = BatchPlan([source], args.batch_size, args.group_size, seed=0)
        plan.step(0, 0)
        return plan

    plan, build_s, build_peak = measure(build)
    start = time.perf_counter()
    for k in range(1, 101):
        plan.step(0, k)
    per_step_ms = (time.perf_counter() - start) * 10

    _, base_s, base_peak = measure(lambda: naive_plan(args.baseline_queries, args.batch_size, LANGUAGES, 0))
    scale = args.queries / args.baseline_queries

    gib = 1024**3
    print(f"ids: {args.queries:,} × {len(LANGUAGES)} languages, batch {args.batch_size}, group {args.group_size}")
    print(f"ours     build+first step: {build_s:7.2f} s   peak memory {build_peak / gib:6.3f} GiB   "
          f"then {per_step_ms:.2f} ms/step")
    print(f"baseline (naive, measured at {args.baseline_queries:,} ids, ×{scale:.0f} linear): "
          f"{base_s * scale:7.2f} s   peak memory {base_peak * scale / gib:6.3f} GiB")
    print(f"ratio baseline/ours: time {base_s * scale / build_s:.1f}×, memory {base_peak * scale / build_peak:.1f}×")
    print(f"goal: < 10 s -> {'MET' if build_s < 10 else 'MISSED'} ({build_s / 10:.2f} of budget); "
          f"< 1 GiB -> {'MET' if build_peak < gib else 'MISSED'} ({build_peak / gib:.2f} of budget)")


if __name__ == "__main__":
    main()
