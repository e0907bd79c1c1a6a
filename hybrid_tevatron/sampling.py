"""The batch plan: (seed, epoch, plan step) -> the step's mode, source and examples.

A *plan step* is one contrastive problem: the union of the per-device batches of one forward pass across
all ranks (``per_device_train_batch_size * world_size`` examples). Invariants (each one is tested):

* The mode (``mono``/``cross``/``xx``), the mono language and the source of a step are a pure function of
  ``(seed, epoch, step)``: every rank computes the same value without communication.
* mono steps: every query and passage of the step is in the step's one language. cross steps: every
  example's query language differs from its passage language (or the passage language is the pivot).
* No query id occurs twice in a step (its translations would be false negatives), and no doc index occurs in
  two examples of a step (the same passage in any language).
* Each example has exactly ``group_size`` passages, positive first, negatives in the passage language.
* Identical arguments give identical plans; ``set_epoch`` changes the order; a one-language source only
  ever feeds mono steps.
* Memory is linear in the number of query ids (a permutation per source), never in steps × batch.

The algorithm and the choices it makes where the paper is silent are documented on :class:`BatchPlan`.
"""

from __future__ import annotations

from collections import deque
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from torch.utils.data import Sampler

MONO, CROSS, XX = "mono", "cross", "xx"


class PlanEntry(NamedTuple):
    """One training example of a plan step: what the dataset turns into (query text, G passage texts)."""

    source: int  # index into the plan's sources
    query: int  # query index in that source
    mode: str  # the step's mode: MONO, CROSS or XX
    query_lang: str
    passage_lang: str
    passages: Tuple[int, ...]  # exactly group_size doc indices, positive first
    epoch: int
    step: int


class StepPlan(NamedTuple):
    epoch: int
    step: int
    source: int
    mode: str  # MONO, CROSS or XX
    language: Optional[str]  # the mono language, None otherwise
    entries: Tuple[PlanEntry, ...]

    def shard(self, rank: int, world_size: int) -> Tuple[PlanEntry, ...]:
        """The contiguous, disjoint slice of this step that ``rank`` trains on."""
        per_rank = len(self.entries) // world_size
        return self.entries[rank * per_rank : (rank + 1) * per_rank]


_SALT_SCHEDULE, _SALT_MODE, _SALT_EXAMPLES, _SALT_PERMUTATION, _SALT_NEGATIVES, _SALT_FILL = range(1, 7)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


class _SourceCursor:
    """Walks one source's query permutation within an epoch; deferred queries are offered first."""

    def __init__(self, size: int, seed: int, epoch: int, source: int):
        self.size, self.seed, self.epoch, self.source = size, seed, epoch, source
        self.cycle = 0
        self.position = 0
        self.order = self._permutation()
        self.deferred: deque = deque()

    def _permutation(self) -> np.ndarray:
        dtype = np.int32 if self.size < 2**31 else np.int64
        perm = _rng(self.seed, self.epoch, self.source, self.cycle, _SALT_PERMUTATION).permutation(self.size)
        return perm.astype(dtype, copy=False)

    def next_query(self) -> int:
        if self.deferred:
            return self.deferred.popleft()
        if self.position == self.size:  # source exhausted mid-epoch: start a fresh pass
            self.cycle += 1
            self.position = 0
            self.order = self._permutation()
        q = int(self.order[self.position])
        self.position += 1
        return q


class BatchPlan:
    """Deterministic plan of every step of every epoch (see the module docstring for the invariants).

    Choices where the paper is silent:

    * Steps per epoch = Σ_sources ⌊N_source / batch_size⌋. Source schedule: ``proportional`` shuffles a list
      holding each source id ⌊N/B⌋ times (exactly ∝ size, no replacement); ``round_robin`` cycles over the
      sources that still have steps left.
    * Mode: ``hybrid`` is mono with probability ``alpha``; a one-language source always gives mono steps.
      The mono language is drawn by ``language_weights`` (uniform by default).
    * Cross pairs: the query language by weight, the passage language by weight among the others, i.e.
      uniform over ordered pairs Lq ≠ Lp by default; with ``pivot_language`` passages are always in the
      pivot and queries in any other language. ``xx``: one language per example, by weight, for both sides.
    * Packing: queries come from a per-(seed, epoch, source) permutation. A query whose positive is already
      in the step, or that has no free negative left, is deferred to the next step of its source. A source
      exhausted before the epoch ends starts a fresh permutation, so every step has ``batch_size`` examples.
    * Passages: the positive rotates by epoch among a query's positives; negatives come from the query's
      negatives in the passage language, in a fixed per-query shuffle rotated by epoch (as Tevatron does),
      skipping docs already in the step. With fewer free negatives than ``group_size - 1`` the rest is
      sampled with replacement from the query's own free negatives (repeats stay inside that one group).
    """

    def __init__(
        self,
        sources: Sequence,
        batch_size: int,
        group_size: int,
        regime: str = "hybrid",
        alpha: float = 0.5,
        languages: Optional[Sequence[str]] = None,
        language_weights: Optional[Sequence[float]] = None,
        pivot_language: Optional[str] = None,
        source_sampling: str = "proportional",
        seed: int = 42,
    ):
        if regime not in (MONO, CROSS, XX, "hybrid"):
            raise ValueError(f"unknown regime {regime!r}: expected hybrid, mono, cross or xx")
        if batch_size < 1 or group_size < 1:
            raise ValueError("batch_size and group_size must be at least 1")
        if source_sampling not in ("proportional", "round_robin"):
            raise ValueError(f"unknown source_sampling {source_sampling!r}")
        self.sources = list(sources)
        self.batch_size, self.group_size, self.seed = batch_size, group_size, seed
        self.regime = regime
        self.alpha = {MONO: 1.0, CROSS: 0.0}.get(regime, alpha)
        self.pivot_language = pivot_language
        self.source_sampling = source_sampling
        weight_of = dict(zip(languages, language_weights)) if languages and language_weights else {}
        self.languages: List[List[str]] = []
        self.weights: List[np.ndarray] = []
        for source in self.sources:
            langs = [l for l in (languages or source.languages) if l in source.languages]
            weights = np.array([weight_of.get(l, 1.0) for l in langs], dtype=float)
            langs = [l for l, w in zip(langs, weights) if w > 0]
            weights = weights[weights > 0]
            if not langs:
                raise ValueError(f"source {source.name!r} has none of the languages {list(languages or [])}")
            if len(langs) == 1 and regime in (CROSS, XX):
                raise ValueError(
                    f"source {source.name!r} has only one language ({langs[0]}): it can feed mono steps only, "
                    f"not the {regime} regime"
                )
            if pivot_language and len(langs) > 1 and pivot_language not in langs:
                raise ValueError(f"pivot language {pivot_language!r} is not a language of source {source.name!r}")
            if len(source) < batch_size:
                raise ValueError(
                    f"source {source.name!r} has {len(source)} queries, fewer than one step ({batch_size})"
                )
            self.languages.append(langs)
            self.weights.append(weights / weights.sum())
        self.steps_per_source = [len(s) // batch_size for s in self.sources]
        self.num_steps = sum(self.steps_per_source)
        self._schedules: Dict[int, np.ndarray] = {}
        self._state = None  # (epoch, next step, cursors) for cheap sequential access
        self._last: Optional[StepPlan] = None

    @classmethod
    def from_args(cls, sources: Sequence, data_args, batch_size: int, seed: int) -> "BatchPlan":
        """Plan from :class:`~hybrid_tevatron.arguments.HybridDataArguments`."""
        return cls(
            sources,
            batch_size=batch_size,
            group_size=data_args.train_group_size,
            regime=data_args.regime,
            alpha=data_args.alpha,
            languages=data_args.languages or None,
            language_weights=data_args.language_weights or None,
            pivot_language=data_args.pivot_language,
            source_sampling=data_args.source_sampling,
            seed=seed,
        )

    def __len__(self) -> int:
        return self.num_steps

    # -- pure functions of (seed, epoch, step) -------------------------------------------------------
    def schedule(self, epoch: int) -> np.ndarray:
        """Source index of every step of ``epoch``."""
        if epoch not in self._schedules:
            counts = self.steps_per_source
            if self.source_sampling == "proportional":
                ids = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
                order = _rng(self.seed, epoch, _SALT_SCHEDULE).permutation(ids)
            else:
                left, order = list(counts), []
                while any(left):
                    for k in range(len(left)):
                        if left[k]:
                            order.append(k)
                            left[k] -= 1
                order = np.array(order, dtype=np.int32)
            self._schedules = {epoch: order}  # keep one epoch: memory stays flat
        return self._schedules[epoch]

    def mode(self, epoch: int, step: int) -> Tuple[int, str, Optional[str]]:
        """``(source, mode, mono language or None)`` of a step, without packing it."""
        if not 0 <= step < self.num_steps:
            raise IndexError(f"step {step} out of range: the plan has {self.num_steps} steps per epoch")
        source = int(self.schedule(epoch)[step])
        rng = _rng(self.seed, epoch, step, _SALT_MODE)
        draw = rng.random()
        langs = self.languages[source]
        if self.regime == XX:
            return source, XX, None
        if len(langs) == 1 or draw < self.alpha:
            return source, MONO, langs[int(rng.choice(len(langs), p=self.weights[source]))]
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

    def _draw_languages(self, rng, mode: str, language: Optional[str], source: int) -> Tuple[str, str]:
        langs, weights = self.languages[source], self.weights[source]
        if mode == MONO:
            return language, language
        if mode == XX:
            lang = langs[int(rng.choice(len(langs), p=weights))]
            return lang, lang
        if self.pivot_language:
            others = [i for i, l in enumerate(langs) if l != self.pivot_language]
            w = weights[others] / weights[others].sum()
            return langs[others[int(rng.choice(len(others), p=w))]], self.pivot_language
        q = int(rng.choice(len(langs), p=weights))
        others = [i for i in range(len(langs)) if i != q]
        w = weights[others] / weights[others].sum()
        return langs[q], langs[others[int(rng.choice(len(others), p=w))]]

    def _passages(self, epoch: int, source: int, q: int, lang: str, used: set) -> Optional[Tuple[int, ...]]:
        corpus = self.sources[source]
        positives = corpus.positives(q)
        if len(positives) == 0:
            raise ValueError(f"source {corpus.name!r}: query index {q} has no positive passage")
        positive = int(positives[(epoch + q) % len(positives)])
        if positive in used:
            return None
        need = self.group_size - 1
        if need == 0:
            return (positive,)
        negatives = corpus.negatives(q, lang)
        if len(negatives) == 0:
            raise ValueError(
                f"source {corpus.name!r}: query {q} has no negative passage in {lang!r} but the group size is "
                f"{self.group_size}"
            )
        order = _rng(self.seed, source, q, _SALT_NEGATIVES).permutation(len(negatives))
        order = np.roll(order, -((epoch * need) % len(negatives)))
        chosen, seen = [], set()
        for i in order:
            d = int(negatives[i])
            if d != positive and d not in used and d not in seen:
                chosen.append(d)
                seen.add(d)
                if len(chosen) == need:
                    break
        if not chosen:
            return None
        if len(chosen) < need:  # too few negatives: sample with replacement among this query's own
            fill = _rng(self.seed, epoch, source, q, _SALT_FILL).choice(len(chosen), need - len(chosen))
            chosen += [chosen[i] for i in fill]
        return (positive, *chosen)

    def _pack(self, epoch: int, step: int, cursors: List[_SourceCursor]) -> StepPlan:
        source, mode, language = self.mode(epoch, step)
        cursor = cursors[source]
        rng = _rng(self.seed, epoch, step, _SALT_EXAMPLES)
        used: set = set()
        queries: set = set()
        entries, collided = [], []
        attempts, limit = 0, 4 * len(self.sources[source]) + 4 * self.batch_size
        while len(entries) < self.batch_size:
            attempts += 1
            if attempts > limit:
                raise ValueError(
                    f"source {self.sources[source].name!r}: cannot fill a step of {self.batch_size} examples "
                    "without repeating a query or a passage; use a smaller batch or more data"
                )
            q = cursor.next_query()
            query_lang, passage_lang = self._draw_languages(rng, mode, language, source)
            passages = None if q in queries else self._passages(epoch, source, q, passage_lang, used)
            if passages is None:
                collided.append(q)
                continue
            used.update(passages)
            queries.add(q)
            entries.append(PlanEntry(source, q, mode, query_lang, passage_lang, passages, epoch, step))
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

    def __iter__(self) -> Iterator[List[PlanEntry]]:
        for k in range(len(self.plan)):
            yield list(self.plan.step(self.epoch, k).shard(self.rank, self.world_size))
