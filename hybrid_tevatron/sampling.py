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

from typing import NamedTuple, Optional, Tuple

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
