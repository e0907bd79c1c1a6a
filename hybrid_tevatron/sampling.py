"""The batch plan: (seed, epoch, plan step) -> the step's mode, source and examples.

A *plan step* is one contrastive problem: the union of the per-device batches of one forward pass across
all ranks (``per_device_train_batch_size * world_size`` examples). Invariants (each one is tested):

* The mode (``mono``/``cross``/``xx``), the mono language and the source of a step are a pure function of
  ``(seed, epoch, step)``: every rank computes the same value without communication.
* mono steps: every query and passage of the step is in the step's one language. cross steps: every
  example's query language differs from its passage language (or the passage language is the pivot).
* No query id occurs twice in a step (its translations would be false negatives), and no doc index occurs in
  two examples of a step (the same passage in any language). In an item source (one whose queries list
  ``same_item`` docs, e.g. several descriptions per image, :mod:`hybrid_tevatron.data.descriptions`) items take the
  place of docs: no item (image) occurs in two examples of a step, nor twice in one example's group (but for the
  repeats of too few negatives), and a query is never paired with a same-item doc (its own caption).
* Each example has exactly ``group_size`` passages, positive first, negatives in the passage language.
* Identical arguments give identical plans; ``set_epoch`` changes the order; a one-language source only
  ever feeds mono steps; a cross-only source (:mod:`hybrid_tevatron.mixture`) only ever feeds cross steps, and a
  source whose query equals its positive in one language is refused unless declared cross-only (no degenerate
  mono pair, ever).
* Mixture control is part of the same pure function: per-source weights fix each epoch's source quotas, and α
  is a pure function of the global plan step ``epoch × steps_per_epoch + step`` (:meth:`BatchPlan.alpha_at`).
* Memory does not grow with the data: query permutations are computed on demand (:class:`KeyedPermutation`),
  and only the current step and a per-epoch source schedule (one int32 per step) are held.

The algorithm and the choices it makes where the paper is silent are documented on :class:`BatchPlan`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from torch.utils.data import Sampler

from hybrid_tevatron.keyed_random import KeyedPermutation, draw_indices, keyed_rng, mix64, mix64_array
from hybrid_tevatron.mixture import (
    CROSS,
    MONO,
    XX,
    AlphaSchedule,
    Regime,
    SourceSampling,
    apportion,
    check_regime,
    parse_cross_only,
    parse_source_weights,
    self_paired_example,
    source_weight_vector,
)


class PlanEntry(NamedTuple):
    """One training example of a plan step: what the dataset turns into (query text, G passage texts)."""

    source: int  # index into the plan's sources
    query: int  # query index in that source
    mode: str  # the step's mode: MONO, CROSS or XX
    query_lang: str
    passage_lang: str
    passages: tuple[int, ...]  # exactly group_size doc indices, positive first
    epoch: int
    step: int


class StepPlan(NamedTuple):
    epoch: int
    step: int
    source: int
    mode: str  # MONO, CROSS or XX
    language: str | None  # the mono language, None otherwise
    entries: tuple[PlanEntry, ...]

    def shard(self, rank: int, world_size: int) -> tuple[PlanEntry, ...]:
        """The contiguous, disjoint slice of this step that ``rank`` trains on."""
        per_rank = len(self.entries) // world_size
        return self.entries[rank * per_rank : (rank + 1) * per_rank]


_SALT_SCHEDULE, _SALT_MODE, _SALT_EXAMPLES, _SALT_PERMUTATION, _SALT_NEGATIVES = range(1, 6)


class _SourceCursor:
    """Walks one source's query permutation within an epoch; deferred queries are offered first."""

    BLOCK = 4096  # permuted query indices computed at a time

    def __init__(self, size: int, seed: int, epoch: int, source: int):
        self.size, self.seed, self.epoch, self.source = size, seed, epoch, source
        self.cycle = 0
        self.position = 0
        self.order = self._permutation()
        self.block, self.block_start = self.order[0 : self.BLOCK], 0
        self.deferred: deque = deque()

    def _permutation(self) -> KeyedPermutation:
        key = mix64(mix64(mix64(mix64(self.seed ^ _SALT_PERMUTATION) ^ self.epoch) ^ self.source) ^ self.cycle)
        return KeyedPermutation(self.size, key)

    def next_query(self) -> int:
        if self.deferred:
            return self.deferred.popleft()
        if self.position == self.size:  # source exhausted mid-epoch: start a fresh pass
            self.cycle += 1
            self.position = 0
            self.order = self._permutation()
            self.block, self.block_start = self.order[0 : self.BLOCK], 0
        if self.position - self.block_start == len(self.block):
            self.block_start = self.position
            self.block = self.order[self.position : self.position + self.BLOCK]
        q = int(self.block[self.position - self.block_start])
        self.position += 1
        return q


class BatchPlan:
    """Deterministic plan of every step of every epoch (see the module docstring for the invariants).

    Choices where the paper is silent:

    * Steps per epoch = Σ_sources ⌊N_source / batch_size⌋ (a source smaller than one step is an error).
      Quotas: each source gets ⌊N/B⌋ of them, or with ``source_weights`` its weight's share (largest
      remainder, :func:`~hybrid_tevatron.mixture.apportion`). Source schedule: ``proportional`` shuffles (per
      seed and epoch) a list holding each source id quota times (exact quotas, without replacement);
      ``round_robin`` cycles A B C A B C … over the sources that still have steps left.
    * Languages of a source: its languages ∩ ``languages`` (default: all of its own), minus zero weights.
    * Mode: the step's source comes first (the schedule), then its mode. ``hybrid`` is mono when the
      per-(seed, epoch, step) draw u ∈ [0, 1) is below α(t) (``alpha_schedule``, default the constant
      ``alpha``), t = the global plan step; a source that cannot cross (one language, or no pivot language while
      ``pivot_language`` is set) always gives mono steps, and is an error in the ``cross``/``xx`` regimes; a
      cross-only source always gives cross steps (whatever u and α), and is an error in the ``mono``/``xx``
      regimes and in a ``hybrid`` plan whose sources are all cross-only while α is ever above 0 (its mono share
      could never happen). So α is the mono probability of the steps of sources that can feed both modes. The
      mono language is drawn per step by ``language_weights`` (uniform by default).
    * Cross pairs, per example: Lq by weight, then Lp by weight among the other languages; with uniform
      weights that is uniform over ordered pairs Lq ≠ Lp. With ``pivot_language``: Lp = pivot, Lq by weight
      among the others. ``xx``: one language per example, by weight, for both sides.
    * Packing: queries come from a per-(seed, epoch, source) keyed permutation; each example slot of a step has
      its languages drawn up front. A query that is already in the step, whose positives (all of them: the
      others would be false negatives; in an item source: its item) are already used, or that has no free
      negative left, is deferred to the next step of its source, where deferred queries are tried first. A
      source exhausted before the epoch ends starts a fresh permutation, so every step has exactly
      ``batch_size`` examples.
    * Passages: the positive rotates by epoch among a query's positives; the negatives are the query's
      negatives in Lp in a fixed per-(seed, source, query) hashed order, rotated by ``epoch × (G - 1)`` (as
      Tevatron does), skipping docs (in an item source: items) already in the step. With fewer free negatives
      than ``G - 1`` the rest is sampled with replacement from the query's own free negatives (repeats stay
      inside that group).
    * Access: ``step(e, k)`` right after ``step(e, k - 1)`` costs O(batch_size); other access replays the
      epoch from its start (resuming at step k costs k sequential steps). ``mode`` never packs.
    """

    def __init__(
        self,
        sources: Sequence,
        batch_size: int,
        group_size: int,
        regime: str | Regime = Regime.hybrid,
        alpha: float = 0.5,
        languages: Sequence[str] | None = None,
        language_weights: Sequence[float] | None = None,
        pivot_language: str | None = None,
        source_sampling: str = "proportional",
        seed: int = 42,
        source_weights: None | str | Mapping[str, float] | Sequence[str] = None,
        cross_only_sources: Sequence[str] = (),
        alpha_schedule: None | str | AlphaSchedule = None,
    ):
        regime, alpha_schedule = check_regime(regime, alpha, alpha_schedule)  # the rules: hybrid_tevatron.mixture
        if batch_size < 1 or group_size < 1:
            raise ValueError("batch_size and group_size must be at least 1")
        source_sampling = SourceSampling.parse(source_sampling)
        if int(seed) < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if language_weights and (not languages or len(language_weights) != len(languages)):
            raise ValueError("language_weights needs languages, one weight per language")
        if pivot_language and regime in (MONO, XX):
            raise ValueError(f"pivot_language applies to cross steps only, not to the {regime} regime")
        if not sources:
            raise ValueError("BatchPlan needs at least one source")
        self.sources = list(sources)
        self.batch_size, self.group_size, self.seed = batch_size, group_size, int(seed)
        self.regime = regime
        self.alpha = regime.mono_probability(alpha)
        self.alpha_schedule: AlphaSchedule = alpha_schedule or AlphaSchedule.constant(self.alpha)
        self.pivot_language = pivot_language
        self.source_sampling = source_sampling
        weight_of = dict(zip(languages, language_weights)) if language_weights else {}
        self.languages: list[list[str]] = []  # per source, the languages its steps use
        self.weights: list[np.ndarray] = []  # per source, normalised language weights
        self.can_cross: list[bool] = []
        self._cumulative: list[np.ndarray] = []
        self._query_cumulative: list[np.ndarray | None] = []  # pivot runs: Lq weights over non-pivots
        for source in self.sources:
            self._add_source(source, languages, weight_of)
        if pivot_language and not any(self.can_cross):
            raise ValueError(f"pivot language {pivot_language!r} is not a language of any multilingual source")
        self.cross_only = self._check_cross_only(parse_cross_only(cross_only_sources))
        self.num_steps = sum(len(s) // batch_size for s in self.sources)
        self.source_weights = source_weight_vector(parse_source_weights(source_weights), self.names)
        self.steps_per_source = (  # the epoch's quota of each source
            [len(s) // batch_size for s in self.sources] if self.source_weights is None
            else apportion(self.num_steps, self.source_weights)
        )
        self._schedules: dict[int, np.ndarray] = {}
        self._state = None  # (epoch, next step, cursors) for cheap sequential access
        self._last: StepPlan | None = None
        # per source, the item of every doc (a list, for fast lookups) if it is an item source, else None
        self._doc_items = [None if (items := s.doc_items()) is None else items.tolist() for s in self.sources]

    def _add_source(self, source, languages: Sequence[str] | None, weight_of: Mapping[str, float]) -> None:
        """The languages a source's steps use (those asked for that it has, weight > 0), their normalised weights and
        cumulative tables, and whether it can feed cross steps; a source that cannot serve the regime is refused."""
        langs = [l for l in (languages or source.languages) if l in source.languages]
        weights = np.array([weight_of.get(l, 1.0) for l in langs], dtype=float)
        langs = [l for l, w in zip(langs, weights) if w > 0]
        weights = weights[weights > 0]
        if not langs:
            raise ValueError(f"source {source.name!r} has none of the languages {list(languages or [])}")
        weights = weights / weights.sum()
        can_cross = len(langs) > 1 and (not self.pivot_language or self.pivot_language in langs)
        if not can_cross and self.regime in (CROSS, XX):
            why = (f"only one language ({langs[0]})" if len(langs) == 1
                   else f"no text in the pivot language {self.pivot_language!r}")
            raise ValueError(
                f"source {source.name!r} has {why}: it can feed mono steps only, not the {self.regime} regime"
            )
        if len(source) < self.batch_size:
            raise ValueError(
                f"source {source.name!r} has {len(source)} queries, fewer than one step ({self.batch_size})"
            )
        self.languages.append(langs)
        self.weights.append(weights)
        self.can_cross.append(can_cross)
        self._cumulative.append(np.cumsum(weights))
        query_weights = weights * np.array([l != self.pivot_language for l in langs]) if self.pivot_language else None
        self._query_cumulative.append(
            np.cumsum(query_weights / query_weights.sum()) if self.pivot_language and can_cross else None
        )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def _check_cross_only(self, declared: list[str]) -> list[bool]:
        """Per source, whether it is cross-only; the errors of the module docstring (never a silent mono pair)."""
        unknown = [n for n in declared if n not in self.names]
        if unknown:
            raise ValueError(f"--cross_only_sources names {unknown}, which are not sources "
                             f"(the sources are {self.names})")
        cross_only = [s.name in declared for s in self.sources]
        for k, source in enumerate(self.sources):
            if cross_only[k] and not self.can_cross[k]:
                raise ValueError(f"source {source.name!r} is cross-only but cannot feed cross steps (it has the "
                                 f"languages {self.languages[k]}): it can feed no step")
            if cross_only[k] and self.regime in (MONO, XX):
                raise ValueError(f"source {source.name!r} is cross-only: it cannot feed the {self.regime} regime "
                                 "(its mono/xx pairs would pair a text with itself)")
        mono_possible = self.regime in (MONO, XX) or (self.regime == Regime.hybrid and self.alpha_schedule.max > 0)
        if self.regime == Regime.hybrid and mono_possible and all(cross_only):
            raise ValueError(f"every source is cross-only ({self.names}), so the hybrid regime's mono steps (α up to "
                             f"{self.alpha_schedule.max:g}) cannot happen; use --regime cross")
        for k, source in enumerate(self.sources):
            if cross_only[k] or not mono_possible:
                continue
            found = self_paired_example(source)
            if found is not None:
                lang, q = found
                fix = (f"it cannot feed the {self.regime} regime (use hybrid or cross with --cross_only_sources "
                       f"{source.name})" if self.regime in (MONO, XX) else
                       f"declare it with --cross_only_sources {source.name} (it then feeds cross steps only)")
                raise ValueError(
                    f"source {source.name!r}: query id {source.query_ids[q]!r} equals its positive passage in "
                    f"language {lang!r}, so its mono pairs are degenerate; {fix}"
                )
        return cross_only

    @classmethod
    def from_args(cls, sources: Sequence, data_args, batch_size: int, seed: int) -> BatchPlan:
        """Plan from :class:`~hybrid_tevatron.arguments.HybridDataArguments`; ``batch_size`` is global."""
        return cls(
            sources,
            batch_size=batch_size,
            group_size=data_args.train_group_size,
            regime=data_args.regime,
            alpha=data_args.mono_probability,
            languages=data_args.languages or None,
            language_weights=data_args.language_weights or None,
            pivot_language=data_args.pivot_language,
            source_sampling=data_args.source_sampling,
            seed=seed,
            source_weights=data_args.source_weights or None,
            cross_only_sources=data_args.cross_only_sources,
            alpha_schedule=data_args.alpha_schedule or None,
        )

    def __len__(self) -> int:
        return self.num_steps

    # -- pure functions of (seed, epoch, step) -------------------------------------------------------
    def global_step(self, epoch: int, step: int) -> int:
        """The plan step counted from the start of training: ``epoch × steps per epoch + step``."""
        return epoch * self.num_steps + step

    def alpha_at(self, epoch: int, step: int) -> float | None:
        """α in force at a step (the mono probability of a step whose source can feed both modes); None for xx."""
        return None if self.regime == XX else self.alpha_schedule(self.global_step(epoch, step))

    def describe(self) -> str:
        """One line on the mixture: per source its quota per epoch and role, the sampling, α."""
        roles = ["cross-only" if c else ("mono-only" if not x else "mono+cross")
                 for c, x in zip(self.cross_only, self.can_cross)]
        parts = [f"{n}: {q} steps/epoch ({r})" for n, q, r in zip(self.names, self.steps_per_source, roles)]
        alpha = "" if self.regime == XX else f", alpha {self.alpha_schedule.spec()}"
        return (f"batch plan: {self.num_steps} steps per epoch of {self.batch_size} examples, regime {self.regime}"
                f"{alpha}, source sampling {self.source_sampling.value}; " + "; ".join(parts))

    def schedule(self, epoch: int) -> np.ndarray:
        """Source index of every step of ``epoch``."""
        if epoch not in self._schedules:
            counts = self.steps_per_source
            ids = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
            if self.source_sampling == "proportional":
                order = keyed_rng(self.seed, epoch, _SALT_SCHEDULE).permutation(ids)
            else:  # round r holds, in source order, every source with more than r steps
                rounds = np.concatenate([np.arange(c) for c in counts])
                order = ids[np.lexsort((ids, rounds))]
            self._schedules = {epoch: order}  # keep one epoch: memory stays flat
        return self._schedules[epoch]

    def mode(self, epoch: int, step: int) -> tuple[int, str, str | None]:
        """``(source, mode, mono language or None)`` of a step, without packing it."""
        if not 0 <= step < self.num_steps:
            raise IndexError(f"step {step} out of range: the plan has {self.num_steps} steps per epoch")
        source = int(self.schedule(epoch)[step])
        rng = keyed_rng(self.seed, epoch, step, _SALT_MODE)
        draw, language = rng.random(), int(draw_indices(rng, self._cumulative[source], 1)[0])
        if self.regime == XX:
            return source, XX, None
        if self.cross_only[source]:
            return source, CROSS, None
        if not self.can_cross[source] or draw < self.alpha_at(epoch, step):
            return source, MONO, self.languages[source][language]
        return source, CROSS, None

    # -- packing ---------------------------------------------------------------------------------------
    def step(self, epoch: int, step: int) -> StepPlan:
        """The packed step; sequential calls cost O(batch_size) each, random access replays the epoch."""
        if self._last is not None and (self._last.epoch, self._last.step) == (epoch, step):
            return self._last
        self.mode(epoch, step)  # range check
        if self._state is None or self._state[0] != epoch or self._state[1] > step:
            cursors = [_SourceCursor(len(s), self.seed, epoch, k) for k, s in enumerate(self.sources)]
            self._state = [epoch, 0, cursors]
        while self._state[1] <= step:
            self._last = self._pack(epoch, self._state[1], self._state[2])
            self._state[1] += 1
        return self._last

    def _slot_languages(self, rng, mode: str, language: str | None, source: int) -> list[tuple[str, str]]:
        """(query language, passage language) of each example slot of a step."""
        langs, size = self.languages[source], self.batch_size
        if mode == MONO:
            return [(language, language)] * size
        if mode == XX:
            return [(langs[i], langs[i]) for i in draw_indices(rng, self._cumulative[source], size)]
        if self.pivot_language:
            return [(langs[i], self.pivot_language) for i in draw_indices(rng, self._query_cumulative[source], size)]
        query = draw_indices(rng, self._cumulative[source], size)
        weights = np.tile(self.weights[source], (size, 1))
        weights[np.arange(size), query] = 0.0  # Lp by weight among the languages other than Lq
        cumulative = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)
        passage = np.minimum((cumulative <= rng.random(size)[:, None]).sum(axis=1), len(langs) - 1)
        return [(langs[i], langs[j]) for i, j in zip(query, passage)]

    def _negative_order(self, source: int, q: int, negatives: np.ndarray, epoch: int) -> list[int]:
        """The query's negatives in a fixed per-(seed, source, query) hashed order, rotated by epoch."""
        key = np.uint64(mix64(mix64(mix64(self.seed ^ _SALT_NEGATIVES) ^ source) ^ q))
        ordered = negatives[np.argsort(mix64_array(negatives.astype(np.uint64) ^ key), kind="stable")].tolist()
        shift = epoch * (self.group_size - 1) % len(ordered)
        return ordered[shift:] + ordered[:shift]

    def _passages(self, rng, epoch: int, source: int, q: int, lang: str, used: set) -> list[int] | None:
        """Positive + G-1 negatives of ``q`` in ``lang`` avoiding ``used``; None if it collides."""
        corpus = self.sources[source]
        positives = np.asarray(corpus.positives(q)).tolist()
        if not positives:
            raise ValueError(f"source {corpus.name!r}: query index {q} has no positive passage")
        items = self._doc_items[source]  # item sources: ``used`` holds items, not docs
        item = positives + corpus.same_item(q).tolist()
        if items is not None:
            item = list({items[d] for d in item})
        if not used.isdisjoint(item):
            return None
        group = [positives[epoch % len(positives)]]
        need = self.group_size - 1
        if need == 0:
            used.update(item)
            return group
        negatives = np.asarray(corpus.negatives(q, lang))
        if len(negatives) == 0:
            raise ValueError(
                f"source {corpus.name!r}: query {q} has no negative passage in {lang!r} but the group size is "
                f"{self.group_size}"
            )
        taken = set(item)
        for d in self._negative_order(source, q, negatives, epoch):
            key = d if items is None else items[d]
            if key not in used and key not in taken:
                group.append(d)
                taken.add(key)
                if len(group) == self.group_size:
                    break
        free = len(group) - 1
        if free == 0:
            return None
        if free < need:  # too few negatives: sample with replacement among this query's own free ones
            group += [group[1 + i] for i in rng.integers(free, size=need - free).tolist()]
        used.update(taken)
        return group

    def _pack(self, epoch: int, step: int, cursors: list[_SourceCursor]) -> StepPlan:
        source, mode, language = self.mode(epoch, step)
        cursor = cursors[source]
        rng = keyed_rng(self.seed, epoch, step, _SALT_EXAMPLES)
        slots = self._slot_languages(rng, mode, language, source)
        used: set = set()
        queries: set = set()
        entries, collided = [], []
        attempts, limit = 0, 4 * len(self.sources[source]) + 4 * self.batch_size
        while len(entries) < self.batch_size:
            attempts += 1
            if attempts > limit:
                raise ValueError(
                    f"source {self.sources[source].name!r}: cannot fill a step of {self.batch_size} examples "
                    "without repeating a query or a passage (in an item source: an image); use a smaller batch, a "
                    "smaller group or more data"
                )
            q = cursor.next_query()
            query_lang, passage_lang = slots[len(entries)]
            passages = None if q in queries else self._passages(rng, epoch, source, q, passage_lang, used)
            if passages is None:
                collided.append(q)
                continue
            queries.add(q)
            entries.append(PlanEntry(source, q, mode, query_lang, passage_lang, tuple(passages), epoch, step))
        cursor.deferred.extendleft(reversed(collided))
        return StepPlan(epoch, step, source, mode, language, tuple(entries))


class HybridBatchSampler(Sampler):
    """Yields, for every plan step of the current epoch, this rank's disjoint shard as a list of PlanEntry.

    Every rank iterates the same plan, so all ranks agree on each step's mode and language; ranks differ only
    in the shard they take. ``set_epoch`` selects the epoch (call it before iterating, as with
    ``DistributedSampler``).
    """

    def __init__(self, plan: BatchPlan, rank: int = 0, world_size: int = 1):
        if plan.batch_size % world_size:
            raise ValueError(
                f"the plan's step size {plan.batch_size} is not divisible by the world size {world_size}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.plan, self.rank, self.world_size = plan, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self) -> Iterator[list[PlanEntry]]:
        for k in range(len(self.plan)):
            yield list(self.plan.step(self.epoch, k).shard(self.rank, self.world_size))
