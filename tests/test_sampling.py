"""Invariants of the batch plan (hybrid_tevatron.sampling), checked on synthetic parallel sources."""

from collections import Counter

import numpy as np
import pytest
from helpers import all_steps, check_step, make_source
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_tevatron.arguments import HybridDataArguments
from hybrid_tevatron.data.corpus import ParallelCorpus, csr
from hybrid_tevatron.keyed_random import KeyedPermutation
from hybrid_tevatron.sampling import CROSS, MONO, XX, BatchPlan, HybridBatchSampler


def make_description_source(images=40, per_image=3, languages=("en", "de", "fr"), negatives=5, seed=0, name="desc"):
    """Several descriptions per image (like Multi30K task 2): doc = query = description k of image i (index
    i * per_image + k), with the same text on both sides; positives = the image's other descriptions, same-item =
    its own doc; negatives = descriptions of other images (several of one image may occur)."""
    rng = np.random.default_rng(seed)
    n = images * per_image
    image = lambda d: d // per_image  # noqa: E731
    positives = [[image(q) * per_image + j for j in range(per_image) if j != q % per_image] for q in range(n)]
    neg_lists = [[int(d) for d in rng.choice([d for d in range(n) if image(d) != image(q)], negatives, replace=False)]
                 for q in range(n)]
    pos_off, pos = csr(positives)
    neg_off, neg = csr(neg_lists)
    same_off, same = csr([[q] for q in range(n)])
    texts = {l: [f"{l}-img{image(d)}-{d % per_image}" for d in range(n)] for l in languages}
    return ParallelCorpus(name, list(languages), [f"img{image(q)}-{q % per_image}" for q in range(n)],
                          [f"img{image(d)}-{d % per_image}" for d in range(n)], texts, dict(texts), pos_off, pos,
                          neg_off, neg, same_offsets=same_off, same_docs=same)


@settings(max_examples=25, deadline=None)
@given(
    regime=st.sampled_from(["hybrid", "mono", "cross", "xx"]),
    batch_size=st.sampled_from([2, 4, 6, 8]),
    group_size=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    epoch=st.integers(0, 3),
)
def test_every_step_keeps_the_invariants(regime, batch_size, group_size, seed, epoch):
    plan = BatchPlan([make_source(seed=seed % 7)], batch_size, group_size, regime=regime, seed=seed)
    assert len(plan) == 48 // batch_size
    for step in all_steps(plan, epoch):
        check_step(plan, step)
        assert step.mode == {"mono": MONO, "cross": CROSS, "xx": XX}.get(regime, step.mode)


@settings(max_examples=25, deadline=None)
@given(
    regime=st.sampled_from(["hybrid", "cross"]),
    weights=st.lists(st.integers(0, 3), min_size=4, max_size=4).filter(lambda w: w[0] > 0 and w[1] + w[3] > 0),
    pivot=st.sampled_from([None, "en"]),
    sampling=st.sampled_from(["proportional", "round_robin"]),
    extra_positives=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_invariants_with_weights_pivot_and_several_sources(regime, weights, pivot, sampling, extra_positives, seed):
    languages = ["en", "de", "es", "zh"]
    sources = [make_source(n=40, seed=seed % 5, extra_positives=extra_positives, name="a"),
               make_source(n=24, languages=("zh", "en", "de"), seed=seed % 3, name="b")]
    plan = BatchPlan(sources, 4, 3, regime=regime, languages=languages, language_weights=weights,
                     pivot_language=pivot, source_sampling=sampling, seed=seed)
    assert len(plan) == 10 + 6
    used = {l for l, w in zip(languages, weights) if w > 0}
    for epoch in (0, 1):
        for step in all_steps(plan, epoch):
            check_step(plan, step)
            assert {l for e in step.entries for l in (e.query_lang, e.passage_lang)} <= used


@settings(max_examples=25, deadline=None)
@given(
    regime=st.sampled_from(["hybrid", "mono", "cross", "xx"]),
    batch_size=st.sampled_from([2, 4, 6]),
    group_size=st.integers(1, 4),
    per_image=st.integers(2, 5),
    seed=st.integers(0, 10_000),
    epoch=st.integers(0, 3),
)
def test_description_steps_never_pair_a_caption_with_itself_nor_hold_an_image_twice(
        regime, batch_size, group_size, per_image, seed, epoch):
    """A source of several descriptions per image feeds every regime (no --cross_only_sources): its mono pairs are
    two different descriptions; the plan keeps each image (query, positives, own caption, negatives) in one example."""
    source = make_description_source(per_image=per_image, seed=seed % 7)
    plan = BatchPlan([source], batch_size, group_size, regime=regime, seed=seed)
    assert plan.cross_only == [False] and len(set(source.doc_items().tolist())) == 40
    for step in all_steps(plan, epoch):
        check_step(plan, step)


@settings(max_examples=15, deadline=None)
@given(regime=st.sampled_from(["hybrid", "cross"]), pivot=st.sampled_from([None, "en"]), seed=st.integers(0, 10_000))
def test_description_and_question_sources_mixed(regime, pivot, seed):
    sources = [make_source(n=40, seed=seed % 5, name="wiki"), make_description_source(images=16, seed=seed % 3)]
    plan = BatchPlan(sources, 4, 3, regime=regime, pivot_language=pivot, seed=seed, languages=["en", "de", "fr"])
    assert plan._doc_items[0] is None and plan._doc_items[1] is not None  # items only where the data has them
    for epoch in (0, 1):
        for step in all_steps(plan, epoch):
            check_step(plan, step)


@settings(max_examples=15, deadline=None)
@given(world_size=st.sampled_from([1, 2, 4]), seed=st.integers(0, 1000))
def test_ranks_agree_on_mode_and_take_disjoint_shards(world_size, seed):
    """Each rank builds its own plan (as separate processes do) and they agree step by step."""
    source = make_source()
    samplers = [HybridBatchSampler(BatchPlan([source], 8, 3, seed=seed), r, world_size) for r in range(world_size)]
    for s in samplers:
        s.set_epoch(1)
    for k, shards in enumerate(zip(*samplers)):
        reference = samplers[0].plan.step(1, k)
        for s in samplers:
            assert s.plan.mode(1, k) == samplers[0].plan.mode(1, k)
        flat = [e for shard in shards for e in shard]
        assert all(len(shard) == 8 // world_size for shard in shards)
        assert flat == list(reference.entries)  # disjoint shards whose union is the step
        assert {e.mode for e in flat} == {reference.mode}


def test_identical_seeds_identical_plans_and_epochs_differ():
    a, b = BatchPlan([make_source()], 8, 4, seed=3), BatchPlan([make_source()], 8, 4, seed=3)
    assert all_steps(a, 0) == all_steps(b, 0)
    assert all_steps(a, 0) != all_steps(a, 1)
    assert all_steps(a, 0) != all_steps(BatchPlan([make_source()], 8, 4, seed=4), 0)
    # random access replays the same steps as sequential access
    assert b.step(0, 3) == a.step(0, 3) and b.step(0, 1) == all_steps(a, 0)[1]


def test_set_epoch_changes_what_the_sampler_yields():
    sampler = HybridBatchSampler(BatchPlan([make_source()], 8, 2, seed=0))
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert len(first) == len(second) == len(sampler) == 6
    assert [e.query for b in first for e in b] != [e.query for b in second for e in b]
    assert all(e.epoch == 1 for b in second for e in b)


def test_mono_fraction_follows_alpha():
    source = make_source(n=400)
    for alpha in (0.2, 0.5, 0.8):
        plan = BatchPlan([source], 2, 1, alpha=alpha, seed=11)
        modes = Counter(plan.mode(e, k)[1] for e in range(5) for k in range(len(plan)))
        fraction = modes[MONO] / sum(modes.values())
        assert abs(fraction - alpha) < 0.05, (alpha, fraction)  # 1000 draws: 5 sigma ≈ 0.08 worst case


def test_default_cross_pairs_are_uniform_over_ordered_pairs():
    plan = BatchPlan([make_source(n=400, languages=("en", "de", "es"))], 20, 1, regime="cross", seed=5)
    pairs = Counter((e.query_lang, e.passage_lang) for s in all_steps(plan) for e in s.entries)
    assert len(pairs) == 6
    assert max(pairs.values()) / min(pairs.values()) < 1.5


def test_language_weights_and_pivot():
    source = make_source(n=400, languages=("en", "de", "es"))
    plan = BatchPlan([source], 4, 1, regime="mono", languages=["en", "de", "es"], language_weights=[0, 1, 3], seed=1)
    counts = Counter(plan.mode(0, k)[2] for k in range(len(plan)))
    assert "en" not in counts and counts["es"] > 2 * counts["de"]
    pivot = BatchPlan([source], 8, 2, regime="cross", pivot_language="en", seed=2)
    for step in all_steps(pivot):
        check_step(pivot, step)
        assert {e.query_lang for e in step.entries} <= {"de", "es"}


def test_requested_languages_restrict_the_plan():
    plan = BatchPlan([make_source()], 4, 2, regime="xx", languages=["de", "zh"], seed=0)
    assert {e.query_lang for s in all_steps(plan) for e in s.entries} == {"de", "zh"}


def test_multi_source_proportional_and_round_robin():
    big, small = make_source(n=96, name="big"), make_source(n=32, languages=("en",), name="english")
    plan = BatchPlan([big, small], 8, 2, seed=0)
    assert len(plan) == 12 + 4
    sources = Counter(int(s) for s in plan.schedule(0))
    assert sources == {0: 12, 1: 4}
    for step in all_steps(plan):
        check_step(plan, step)
        if step.source == 1:
            assert step.mode == MONO and step.language == "en"  # a one-language source feeds mono steps only
    rr = BatchPlan([big, small], 8, 2, source_sampling="round_robin", seed=0)
    assert rr.schedule(0).tolist()[:8] == [0, 1, 0, 1, 0, 1, 0, 1]


def test_one_language_source_cannot_feed_cross_or_xx():
    for regime in ("cross", "xx"):
        with pytest.raises(ValueError, match="english.*only one language"):
            BatchPlan([make_source(languages=("en",), name="english")], 4, 2, regime=regime)


def test_conflicts_are_deferred_never_duplicated():
    """Heavily overlapping negatives force deferrals; steps stay full and conflict-free."""
    source = make_source(n=24, negatives=3, seed=1)
    plan = BatchPlan([source], 8, 4, regime="hybrid", seed=9)
    for epoch in range(3):
        for step in all_steps(plan, epoch):
            check_step(plan, step)


def test_fewer_negatives_than_the_group_are_repeated_within_the_group():
    source = make_source(n=16, negatives=2)
    plan = BatchPlan([source], 2, 6, regime="mono", seed=0)
    step = plan.step(0, 0)
    check_step(plan, step)
    for e in step.entries:
        assert len(set(e.passages[1:])) <= 2 and len(e.passages) == 6


def test_negatives_only_in_the_passage_language():
    """A doc without text in a language is never chosen as a negative in that language."""
    missing = set(range(48, 72))
    source = make_source(n=48, missing={"de": missing})
    plan = BatchPlan([source], 4, 3, regime="cross", seed=0)
    de_examples = [e for step in all_steps(plan) for e in step.entries if e.passage_lang == "de"]
    assert de_examples and not any(missing & set(e.passages) for e in de_examples)


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="fewer than one step"):
        BatchPlan([make_source(n=4)], 8, 2)
    with pytest.raises(ValueError, match="pivot"):
        BatchPlan([make_source()], 4, 2, regime="cross", pivot_language="fr")
    with pytest.raises(ValueError, match="divisible"):
        HybridBatchSampler(BatchPlan([make_source()], 6, 2), rank=0, world_size=4)


def test_plan_memory_does_not_grow_with_the_data():
    """No per-query or per-step array: a block of the keyed permutation, the schedule and the last step."""
    plan = BatchPlan([make_source(n=400)], 4, 2, seed=0)
    plan.step(0, len(plan) - 1)
    epoch, next_step, cursors = plan._state
    assert next_step == len(plan) and isinstance(cursors[0].order, KeyedPermutation)
    assert len(cursors[0].block) <= cursors[0].BLOCK and plan.schedule(0).nbytes == len(plan) * 4
    assert plan._last.step == len(plan) - 1  # one packed step is cached, not the epoch


@pytest.mark.parametrize("size", [1, 2, 3, 5, 48, 255, 256, 257, 4097, 100_003])
def test_keyed_permutation_is_a_bijection(size):
    permutation = KeyedPermutation(size, key=size * 31)
    values = np.concatenate([permutation[i : i + 1000] for i in range(0, size, 1000)])
    assert np.array_equal(np.sort(values), np.arange(size))
    if size > 2:
        assert not np.array_equal(values, np.arange(size))  # not the identity
        assert not np.array_equal(values, KeyedPermutation(size, key=size * 31 + 1)[0:size])


def test_keyed_permutation_is_near_uniform():
    """First element over 8,000 keys on 8 ids: each count ≈ 1000 (σ ≈ 30), all 24 orders of 4 ids occur."""
    firsts = Counter(int(KeyedPermutation(8, key)[0:1][0]) for key in range(8000))
    assert len(firsts) == 8 and max(abs(c - 1000) for c in firsts.values()) < 150, firsts
    orders = Counter(tuple(KeyedPermutation(4, key)[0:4].tolist()) for key in range(2400))
    assert len(orders) == 24 and min(orders.values()) > 50, orders


def test_mode_draw_matches_the_packed_step_and_ranks_need_no_packing():
    plan = BatchPlan([make_source()], 4, 2, seed=7)
    fresh = BatchPlan([make_source()], 4, 2, seed=7)
    for k in reversed(range(len(plan))):  # mode() of a plan that never packed == the packed step's header
        step = plan.step(2, k)
        assert fresh.mode(2, k) == (step.source, step.mode, step.language)


def test_every_query_once_per_epoch_without_conflicts():
    """Disjoint positives and G = 1: nothing is deferred, so an epoch is a permutation of the queries."""
    plan = BatchPlan([make_source(n=48)], 8, 1, seed=3)
    for epoch in (0, 1):
        seen = [e.query for s in all_steps(plan, epoch) for e in s.entries]
        assert sorted(seen) == list(range(48))


def test_positives_and_negatives_rotate_with_the_epoch():
    source = make_source(n=16, negatives=8, extra_positives=True)
    plan = BatchPlan([source], 1, 3, regime="mono", languages=["en"], seed=0)
    by_epoch = [{e.query: e.passages for s in all_steps(plan, epoch) for e in s.entries} for epoch in (0, 1, 2)]
    for q in range(16):
        assert by_epoch[0][q][0] == by_epoch[2][q][0] != by_epoch[1][q][0]  # 2 positives alternate
        # with nothing else in the step, the negatives are the fixed order shifted by G - 1 = 2 per epoch
        order = plan._negative_order(0, q, source.negatives(q, "en"), 0)
        for epoch in (0, 1, 2):
            assert list(by_epoch[epoch][q][1:]) == (order[2 * epoch:] + order[: 2 * epoch])[:2]


def test_cross_query_language_follows_the_weights():
    source = make_source(n=600, languages=("en", "de", "es"))
    plan = BatchPlan([source], 20, 1, regime="cross", languages=["en", "de", "es"], language_weights=[1, 1, 2], seed=4)
    counts = Counter(e.query_lang for s in all_steps(plan) for e in s.entries)
    assert abs(counts["es"] / 600 - 0.5) < 0.08, counts  # Lq by weight: es has half the mass


def test_pivot_less_source_feeds_mono_steps_in_hybrid_and_fails_in_cross():
    with_pivot, without = make_source(n=32, name="with"), make_source(n=32, languages=("de", "es"), name="without")
    plan = BatchPlan([with_pivot, without], 4, 2, pivot_language="en", alpha=0.3, seed=0)
    modes = Counter((s.source, s.mode) for s in all_steps(plan))
    assert (1, CROSS) not in modes and (0, CROSS) in modes and (1, MONO) in modes
    with pytest.raises(ValueError, match="without.*pivot"):
        BatchPlan([with_pivot, without], 4, 2, regime="cross", pivot_language="en")


def test_proportional_schedule_is_shuffled_per_epoch_and_round_robin_is_fixed():
    big, small = make_source(n=96, name="big"), make_source(n=32, name="small")
    plan = BatchPlan([big, small], 8, 1, seed=0)
    first, second = plan.schedule(0).tolist(), plan.schedule(1).tolist()
    assert Counter(first) == Counter(second) == {0: 12, 1: 4} and first != second
    assert first != sorted(first)  # interleaved, not one source after the other
    rr = BatchPlan([big, small], 8, 1, source_sampling="round_robin", seed=0)
    assert rr.schedule(0).tolist() == [0, 1] * 4 + [0] * 8 == rr.schedule(3).tolist()


def test_from_args_reads_the_data_arguments():
    args = HybridDataArguments(regime="cross", languages=["de", "en"], language_weights=[1, 2],
                               pivot_language="en", train_group_size=3, source_sampling="round_robin")
    plan = BatchPlan.from_args([make_source()], args, batch_size=8, seed=5)
    assert (plan.group_size, plan.alpha, plan.seed, plan.source_sampling) == (3, 0.0, 5, "round_robin")
    assert plan.languages == [["de", "en"]] and plan.weights[0].tolist() == [1 / 3, 2 / 3]
    assert all(e.passage_lang == "en" and e.query_lang == "de" for s in all_steps(plan) for e in s.entries)


def test_more_argument_errors():
    source = make_source()
    with pytest.raises(ValueError, match="language_weights"):
        BatchPlan([source], 4, 2, language_weights=[1, 2])
    with pytest.raises(ValueError, match="cross steps only"):
        BatchPlan([source], 4, 2, regime="mono", pivot_language="en")
    with pytest.raises(ValueError, match="alpha"):
        BatchPlan([source], 4, 2, alpha=1.5)
    with pytest.raises(ValueError, match="none of the languages"):
        BatchPlan([source], 4, 2, languages=["fr"])
    with pytest.raises(ValueError, match="rank"):
        HybridBatchSampler(BatchPlan([source], 4, 2), rank=2, world_size=2)
    with pytest.raises(IndexError):
        BatchPlan([source], 4, 2).step(0, 12)


def test_a_step_that_cannot_be_filled_is_an_error_not_a_hang():
    """Every query shares the same positive: two examples can never share a step."""
    pos_off, pos = csr([[0]] * 8)
    neg_off, neg = csr([[1]] * 8)
    texts = {"en": ["a"] * 2, "de": ["b"] * 2}
    source = ParallelCorpus("shared", ["en", "de"], [f"q{i}" for i in range(8)], ["d0", "d1"],
                            {l: ["q"] * 8 for l in texts}, texts, pos_off, pos, neg_off, neg)
    with pytest.raises(ValueError, match="shared.*cannot fill"):
        BatchPlan([source], 2, 1).step(0, 0)
