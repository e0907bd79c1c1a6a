"""Mixture control of the batch plan (hybrid_tevatron.mixture): source weights, cross-only sources, α schedules.

Synthetic sources (helpers.make_source, as in test_sampling); a "caption" source pairs each query with itself
(query text == positive text in every language), as the caption converter writes it.
"""

from collections import Counter

import numpy as np
import pytest
from helpers import all_steps, check_step, make_source
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_tevatron.arguments import HybridDataArguments
from hybrid_tevatron.data.corpus import ParallelCorpus, csr
from hybrid_tevatron.mixture import AlphaSchedule, SourceSampling, apportion, parse_source_weights
from hybrid_tevatron.sampling import CROSS, MONO, BatchPlan, HybridBatchSampler


def caption_source(n=40, languages=("en", "de", "fr"), negatives=5, name="captions", seed=0):
    """Image i: caption i in each language; query = positive = the caption (docid = query id), negatives = other
    images' captions."""
    rng = np.random.default_rng(seed)
    pos_off, pos = csr([[i] for i in range(n)])
    neg_off, neg = csr([[int(d) for d in rng.choice([d for d in range(n) if d != i], negatives, replace=False)]
                        for i in range(n)])
    texts = {l: [f"{l} caption {i}" for i in range(n)] for l in languages}
    return ParallelCorpus(name, list(languages), [f"img{i}" for i in range(n)], [f"img{i}" for i in range(n)],
                          {l: list(t) for l, t in texts.items()}, texts, pos_off, pos, neg_off, neg)


# ------------------------------------------------------------------------------------------------ source weights
def test_apportion_is_exact_and_deterministic():
    assert apportion(16, np.array([1.0, 3.0])) == [4, 12]
    assert apportion(10, np.array([1.0, 1.0, 1.0])) == [4, 3, 3]  # tie: the earlier source gets the remainder
    assert apportion(7, np.array([0.0, 2.0, 5.0])) == [0, 2, 5]
    for total in range(0, 40):
        counts = apportion(total, np.array([0.3, 1.7, 2.0]))
        assert sum(counts) == total and all(abs(c - total * w / 4.0) < 1 for c, w in zip(counts, (0.3, 1.7, 2.0)))


@pytest.mark.parametrize("sampling", ["proportional", "round_robin"])
def test_source_weights_are_honoured_over_many_steps(sampling):
    """An epoch keeps its length (12 + 4 steps); weights 1:3 give the small source 3/4 of them, every epoch."""
    big, small = make_source(n=96, name="big"), make_source(n=32, name="small", seed=1)
    plan = BatchPlan([big, small], 8, 2, source_sampling=sampling, source_weights="big=1,small=3", seed=5)
    assert len(plan) == 16 and plan.steps_per_source == [4, 12]
    counts = Counter()
    for epoch in range(25):
        per_epoch = Counter(int(s) for s in plan.schedule(epoch))
        assert per_epoch == {0: 4, 1: 12}
        counts.update(per_epoch)
    assert counts[1] / sum(counts.values()) == 0.75
    for epoch in (0, 1):  # the small source is upsampled (12 steps x 8 > 32 queries): it cycles, steps stay valid
        for step in all_steps(plan, epoch):
            check_step(plan, step)
    if sampling == "round_robin":
        assert plan.schedule(0).tolist()[:8] == [0, 1] * 4 and plan.schedule(0).tolist()[8:] == [1] * 8
    else:
        assert plan.schedule(0).tolist() != plan.schedule(1).tolist()


def test_zero_weight_leaves_a_source_out_and_default_is_by_size():
    big, small = make_source(n=96, name="big"), make_source(n=32, name="small")
    assert BatchPlan([big, small], 8, 2, seed=0).steps_per_source == [12, 4]
    plan = BatchPlan([big, small], 8, 2, source_weights={"big": 0, "small": 1}, seed=0)
    assert set(plan.schedule(0).tolist()) == {1} and len(plan) == 16


def test_bad_source_weights_are_clear_errors():
    sources = [make_source(name="a"), make_source(name="b")]
    cases = [("a=1,c=2", "not sources"), ("a=1", "no weight for the sources \\['b'\\]"), ("a=1,b=x", "not a number"),
             ("a=-1,b=1", ">= 0"), ("a=0,b=0", "at least one"), ("a=1,a=2,b=1", "twice"), ("a,b=1", "NAME=WEIGHT"),
             ("a=inf,b=1", "finite")]
    for spec, message in cases:
        with pytest.raises(ValueError, match=message):
            BatchPlan(sources, 4, 2, source_weights=spec)
    with pytest.raises(ValueError, match="NAME=WEIGHT"):
        HybridDataArguments(source_weights=["a:1"])
    assert parse_source_weights(["a=1", "b=2.5"]) == {"a": 1.0, "b": 2.5}


def test_source_sampling_is_one_enum_checked_in_one_place():
    assert HybridDataArguments(source_sampling="round_robin").source_sampling is SourceSampling.round_robin
    for build in (lambda: HybridDataArguments(source_sampling="random"),
                  lambda: BatchPlan([make_source()], 4, 2, source_sampling="random")):
        with pytest.raises(ValueError, match="--source_sampling must be one of proportional, round_robin"):
            build()


# ------------------------------------------------------------------------------------------------ α schedules
def test_schedule_values_at_the_boundaries():
    linear = AlphaSchedule.parse("linear:0:0.2,100:0.8")
    assert [linear(t) for t in (0, 50, 99, 100, 5000)] == pytest.approx([0.2, 0.5, 0.794, 0.8, 0.8])
    piecewise = AlphaSchedule.parse("piecewise:0:0,500:1.0,800:0.25")
    assert [piecewise(t) for t in (0, 499, 500, 799, 800, 10**9)] == [0.0, 0.0, 1.0, 1.0, 0.25, 0.25]
    three = AlphaSchedule.parse("linear:0:1,10:0,20:1")
    assert [three(t) for t in (0, 5, 10, 15, 20, 21)] == pytest.approx([1, 0.5, 0, 0.5, 1, 1])
    assert AlphaSchedule.parse("constant:0.3")(12345) == 0.3
    assert AlphaSchedule.parse(" piecewise:0:0.0,500:1.0 ").spec() == "piecewise:0:0,500:1"


@pytest.mark.parametrize("spec, message", [
    ("", "expected constant:V"), ("ramp:0:1", "expected constant:V"), ("linear:", "expected constant:V"),
    ("linear:5:0.1,10:0.2", "first knot must be at step 0"), ("piecewise:0:0.1,10:0.2,10:0.3", "strictly increase"),
    ("piecewise:0:0.1,-3:0.2", "not STEP:VALUE"), ("linear:0:0.1,x:0.2", "not STEP:VALUE"),
    ("linear:0:1.5", "in \\[0, 1\\]"), ("constant:abc", "not a number"), ("piecewise:0", "not STEP:VALUE"),
])
def test_bad_schedules_are_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        AlphaSchedule.parse(spec)
    if spec:
        with pytest.raises(ValueError, match=message):
            HybridDataArguments(alpha_schedule=spec)


def test_schedule_only_in_the_hybrid_regime():
    for regime in ("mono", "cross", "xx"):
        with pytest.raises(ValueError, match="--alpha_schedule applies to --regime hybrid only"):
            HybridDataArguments(regime=regime, alpha_schedule="constant:0.5")
        with pytest.raises(ValueError, match="--alpha_schedule applies to --regime hybrid only"):
            BatchPlan([make_source()], 4, 2, regime=regime, alpha_schedule="constant:0.5")


def test_the_mode_follows_the_schedule_of_the_global_step():
    """piecewise:0:0,S:1 with S steps per epoch: epoch 0 is all cross, every later epoch all mono."""
    plan = BatchPlan([make_source()], 4, 2, alpha_schedule="piecewise:0:0,12:1", seed=3)
    assert len(plan) == 12
    assert {plan.mode(0, k)[1] for k in range(12)} == {CROSS}
    assert {plan.mode(e, k)[1] for e in (1, 2) for k in range(12)} == {MONO}
    assert plan.global_step(2, 5) == 29 and plan.alpha_at(0, 11) == 0.0 and plan.alpha_at(1, 0) == 1.0
    ramp = BatchPlan([make_source(n=400)], 2, 1, alpha_schedule="linear:0:0,1000:1", seed=4)
    fractions = [np.mean([ramp.mode(e, k)[1] == MONO for k in range(200)]) for e in range(5)]
    expected = [(200 * e + 100) / 1000 for e in range(5)]  # mean α over each epoch's 200 steps
    assert all(abs(f - x) < 0.13 for f, x in zip(fractions, expected)), fractions  # 200 draws: 4 sigma ≈ 0.14
    assert fractions[-1] > fractions[0] + 0.5


def test_constant_schedule_equals_alpha():
    a = BatchPlan([make_source()], 4, 2, alpha=0.3, seed=9)
    b = BatchPlan([make_source()], 4, 2, alpha=0.9, alpha_schedule="constant:0.3", seed=9)
    assert all_steps(a, 1) == all_steps(b, 1)


# ------------------------------------------------------------------------------------------------ cross-only
def test_undeclared_caption_source_is_refused_when_mono_is_possible():
    caps = caption_source()
    with pytest.raises(ValueError, match="source 'captions': query id 'img0' equals its positive passage in "
                                         "language 'en'.*--cross_only_sources captions"):
        BatchPlan([make_source(), caps], 4, 2, seed=0)
    for regime in ("mono", "xx"):
        with pytest.raises(ValueError, match=f"degenerate; it cannot feed the {regime} regime"):
            BatchPlan([caps], 4, 2, regime=regime)
    BatchPlan([caps], 4, 2, regime="cross")  # no mono step is possible: nothing to declare
    BatchPlan([make_source(), caps], 4, 2, alpha_schedule="constant:0")


def test_cross_only_sources_never_feed_a_mono_step():
    """α = 1 throughout: the general source is all mono, the caption source all cross, over several epochs."""
    general, caps = make_source(n=48), caption_source(n=40)
    plan = BatchPlan([general, caps], 4, 3, alpha=1.0, cross_only_sources=["captions"], seed=2)
    assert plan.cross_only == [False, True]
    modes = Counter()
    for epoch in range(3):
        for step in all_steps(plan, epoch):
            check_step(plan, step)
            modes[step.source, step.mode] += 1
            if step.source == 1:
                assert all(e.query_lang != e.passage_lang for e in step.entries)
    assert set(modes) == {(0, MONO), (1, CROSS)} and modes[1, CROSS] == 3 * 10
    assert "captions: 10 steps/epoch (cross-only)" in plan.describe()


def test_cross_only_errors():
    general, caps = make_source(), caption_source()
    with pytest.raises(ValueError, match="not sources"):
        BatchPlan([general], 4, 2, cross_only_sources=["nope"])
    for regime in ("mono", "xx"):
        with pytest.raises(ValueError, match=f"cross-only: it cannot feed the {regime} regime"):
            BatchPlan([general, caps], 4, 2, regime=regime, cross_only_sources=["captions"])
    with pytest.raises(ValueError, match="every source is cross-only.*use --regime cross"):
        BatchPlan([caps], 4, 2, cross_only_sources=["captions"], alpha_schedule="piecewise:0:0,100:0.5")
    with pytest.raises(ValueError, match="can feed no step"):
        BatchPlan([make_source(), caption_source(languages=("en",))], 4, 2, cross_only_sources=["captions"])
    only_cross = BatchPlan([caps], 4, 2, cross_only_sources=["captions"], alpha=0.0)
    assert {only_cross.mode(0, k)[1] for k in range(len(only_cross))} == {CROSS}
    assert HybridDataArguments(cross_only_sources=["a,b", "a"]).cross_only_sources == ["a", "b"]


# ------------------------------------------------------------------------------------------------ invariants
MIXTURES = st.fixed_dictionaries({
    "weights": st.sampled_from([None, "a=1,caps=1", "a=3,caps=1", "a=1,caps=4", "a=0,caps=1"]),
    "schedule": st.sampled_from([None, "linear:0:0,20:1", "piecewise:0:0,7:1,15:0.3", "constant:0.6"]),
    "sampling": st.sampled_from(["proportional", "round_robin"]),
    "seed": st.integers(0, 10_000),
})


def mixture_plan(m):
    return BatchPlan([make_source(n=40, name="a", seed=m["seed"] % 5), caption_source(n=24, seed=m["seed"] % 3,
                                                                                      name="caps")],
                     4, 3, source_weights=m["weights"], alpha_schedule=m["schedule"], source_sampling=m["sampling"],
                     cross_only_sources=["caps"], seed=m["seed"])


@settings(max_examples=20, deadline=None)
@given(m=MIXTURES)
def test_every_step_keeps_the_invariants_under_weights_and_schedules(m):
    plan = mixture_plan(m)
    assert len(plan) == 10 + 6
    for epoch in (0, 1):
        for step in all_steps(plan, epoch):
            check_step(plan, step)
            alpha = plan.alpha_at(epoch, step.step)
            if step.source == 1 or alpha == 0.0:
                assert step.mode == CROSS
            elif alpha == 1.0:
                assert step.mode == MONO


@settings(max_examples=10, deadline=None)
@given(m=MIXTURES, world_size=st.sampled_from([2, 4]))
def test_ranks_agree_and_resume_exactly_under_weights_and_schedules(m, world_size):
    """Each rank builds its own plan; a plan that starts at step k (a resumed run) gives the full plan's tail."""
    samplers = [HybridBatchSampler(mixture_plan(m), r, world_size) for r in range(world_size)]
    for s in samplers:
        s.set_epoch(1)
    full = all_steps(mixture_plan(m), 1)
    for k, shards in enumerate(zip(*samplers)):
        assert [e for shard in shards for e in shard] == list(full[k].entries)
        assert len({(s.plan.mode(1, k), s.plan.alpha_at(1, k)) for s in samplers}) == 1
    for k in (0, 5, len(full) - 1):
        resumed = mixture_plan(m)
        assert [resumed.step(1, j) for j in range(k, len(full))] == full[k:]
