"""Mixture control of the batch plan: the regime and α, source sampling, per-source weights, cross-only sources and
α schedules.

Every rule here is parsed and checked in this one module; :mod:`hybrid_tevatron.arguments` calls these parsers so
the command line fails before any data is read, and :class:`~hybrid_tevatron.sampling.BatchPlan` calls them again
on what it is given (the same functions, so the two can never disagree). Everything is a pure function of its
arguments, so the plan stays a pure function of ``(seed, epoch, step)``.

* **Regime** (:class:`Regime`, checked with α and the α schedule by :func:`check_regime`): ``hybrid`` (a step is
  mono with probability α, else cross), ``mono`` (α = 1), ``cross`` (α = 0), ``xx`` (per example one random
  language for both sides; α unused).
* **Source sampling** (:class:`SourceSampling`): ``proportional`` shuffles an epoch's source quotas per
  ``(seed, epoch)``; ``round_robin`` takes them in rounds (round r holds, in source order, every source with more
  than r steps).
* **Source weights** (``NAME=W,...``, :func:`parse_source_weights`): the epoch keeps its length
  (Σ ⌊N_source / batch⌋ steps); the weights only redistribute those steps among the sources: source s gets
  ``W_s / ΣW`` of them, rounded by largest remainder (ties to the earlier source), :func:`apportion`. Without
  weights each source gets ⌊N_s / batch⌋ steps (proportional to size). A source given more steps than it has
  queries starts a fresh permutation of its queries when it runs out (as before); a weight of 0 leaves it out.
* **Cross-only sources** (:func:`self_paired_example`): a source whose query equals its positive passage in the
  same language (a caption corpus: one caption per language per image) has degenerate mono (and xx) pairs. Such a
  source must be declared cross-only (``--cross_only_sources NAME``); an undeclared one is detected and refused
  (an error naming the source, query id and language), never trained on silently.
* **α schedules** (:class:`AlphaSchedule`): α, the probability that a step of a source that can feed both modes
  is mono, as a pure function of the global plan step ``t = epoch × steps_per_epoch + step`` (one plan step = one
  micro-batch; with ``--gradient_accumulation_steps g`` optimizer step s holds plan steps s·g … s·g + g − 1).
  Specs: ``constant:V``; ``linear:T0:A,T1:B,...`` (linear between the knots, the last value after the last knot);
  ``piecewise:T0:A,T1:B,...`` (A from T0 until T1, then B, ...). The first knot is at step 0; knot steps strictly
  increase; every value is in [0, 1]. E.g. ``piecewise:0:0.0,500:1.0`` = cross for 500 steps, then mono.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The mode of a plan step, declared here once: the regimes, the plan's steps, the trainer's per-mode logs and
# the training summary all use these.
MONO, CROSS, XX = "mono", "cross", "xx"
MODES = (MONO, CROSS, XX)


class Regime(str, enum.Enum):
    """The batch regime (see the module docstring): ``hybrid`` mixes the modes, the others are one mode each."""

    hybrid = "hybrid"
    mono = MONO
    cross = CROSS
    xx = XX

    __str__ = str.__str__  # "mono", not "Regime.mono", in messages, logs and JSON
    __format__ = str.__format__

    @classmethod
    def parse(cls, value) -> Regime:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"--regime must be one of {', '.join(m.value for m in cls)}, got {value!r}") from None

    def mono_probability(self, alpha: float) -> float:
        """α of the regime: 1 for mono, 0 for cross, ``alpha`` for hybrid (unused by xx)."""
        return {Regime.mono: 1.0, Regime.cross: 0.0}.get(self, float(alpha))


def check_regime(regime, alpha: float, alpha_schedule=None) -> tuple[Regime, AlphaSchedule | None]:
    """The one check of ``--regime``, ``--alpha`` (in [0, 1]) and ``--alpha_schedule`` (hybrid only): the regime
    and the parsed schedule (``None`` when not given)."""
    regime = Regime.parse(regime)
    check_alpha(alpha)
    return regime, resolve_alpha_schedule(regime, alpha_schedule)


class SourceSampling(str, enum.Enum):
    """How an epoch's steps are ordered over the sources (see the module docstring)."""

    proportional = "proportional"
    round_robin = "round_robin"

    @classmethod
    def parse(cls, value) -> SourceSampling:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"--source_sampling must be one of {', '.join(m.value for m in cls)}, got {value!r}"
            ) from None


# --------------------------------------------------------------------------------------------------- weights
def parse_source_weights(spec) -> dict[str, float]:
    """``"a=2,b=1"`` (or a list of such items, or a mapping) -> ``{"a": 2.0, "b": 1.0}``; ``{}`` when empty.

    Each weight is a finite number >= 0, each name given once, and at least one weight is positive."""
    if not spec:
        return {}
    if isinstance(spec, dict):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        parts = [spec] if isinstance(spec, str) else list(spec)
        items = []
        for part in (p for s in parts for p in str(s).split(",")):
            if not part.strip():
                continue
            name, eq, value = part.partition("=")
            if not eq or not name.strip() or not value.strip():
                raise ValueError(f"--source_weights: expected NAME=WEIGHT, got {part.strip()!r}")
            items.append((name.strip(), value.strip()))
    weights: dict[str, float] = {}
    for name, value in items:
        try:
            w = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"--source_weights: weight of {name!r} is not a number: {value!r}") from None
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"--source_weights: weight of {name!r} must be a finite number >= 0, got {value!r}")
        if name in weights:
            raise ValueError(f"--source_weights: source {name!r} given twice")
        weights[name] = w
    if weights and not any(w > 0 for w in weights.values()):
        raise ValueError("--source_weights: at least one weight must be positive")
    return weights


def source_weight_vector(weights: dict[str, float], names: Sequence[str]) -> np.ndarray | None:
    """The weights in ``names`` order (``None`` without weights); every source needs a weight, no unknown name."""
    if not weights:
        return None
    unknown = [n for n in weights if n not in names]
    if unknown:
        raise ValueError(f"--source_weights names {unknown}, which are not sources (the sources are {list(names)})")
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"--source_weights gives no weight for the sources {missing}: give one for every source")
    return np.array([weights[n] for n in names], dtype=float)


def apportion(total: int, weights: np.ndarray) -> list[int]:
    """``total`` split in proportion to ``weights``: largest remainder, ties to the lower index; sums to total."""
    share = np.asarray(weights, dtype=float) / float(np.sum(weights)) * total
    counts = np.floor(share).astype(np.int64)
    rest = total - int(counts.sum())
    order = sorted(range(len(share)), key=lambda i: (-(share[i] - counts[i]), i))
    for i in order[:rest]:
        counts[i] += 1
    return counts.tolist()


# --------------------------------------------------------------------------------------------------- cross-only
def parse_cross_only(names) -> list[str]:
    """``--cross_only_sources`` items (commas also separate) -> unique names, in order."""
    out: list[str] = []
    for item in names or ():
        for name in str(item).split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def self_paired_example(corpus) -> tuple[str, int] | None:
    """The first ``(language, query index)`` whose query text equals one of its positives' text in that
    language (a degenerate mono pair), or ``None``."""
    query_of = np.repeat(np.arange(len(corpus), dtype=np.int64), np.diff(corpus.pos_offsets))
    for lang in corpus.languages:  # vectorised: one object-array comparison per language
        queries = np.asarray(corpus.queries[lang], dtype=object)[query_of]
        positives = np.asarray(corpus.passages[lang], dtype=object)[corpus.pos_docs]
        hits = np.flatnonzero(queries == positives)
        if len(hits):
            return lang, int(query_of[hits[0]])
    return None


# --------------------------------------------------------------------------------------------------- α schedule
@dataclass(frozen=True)
class AlphaSchedule:
    """α as a pure function of the global plan step (see the module docstring for the spec syntax)."""

    kind: str  # constant, linear or piecewise
    steps: tuple[int, ...]
    values: tuple[float, ...]

    KINDS = ("constant", "linear", "piecewise")

    @classmethod
    def constant(cls, value: float) -> AlphaSchedule:
        check_alpha(value)
        return cls("constant", (0,), (float(value),))

    @classmethod
    def parse(cls, spec: str) -> AlphaSchedule:
        spec = (spec or "").strip()
        kind, colon, body = spec.partition(":")
        kind = kind.strip()
        if not colon or kind not in cls.KINDS or not body.strip():
            raise ValueError(
                f"--alpha_schedule: expected constant:V, linear:T0:A,T1:B,... or piecewise:T0:A,T1:B,..., got {spec!r}"
            )
        if kind == "constant":
            return cls.constant(_alpha_value(body, spec))
        steps, values = [], []
        for knot in body.split(","):
            t, sep, v = knot.strip().partition(":")
            if not sep or not t.strip().isdigit():
                raise ValueError(f"--alpha_schedule {spec!r}: knot {knot.strip()!r} is not STEP:VALUE "
                                 "(STEP a non-negative integer)")
            steps.append(int(t))
            values.append(_alpha_value(v, spec))
        if steps[0] != 0:
            raise ValueError(f"--alpha_schedule {spec!r}: the first knot must be at step 0, got {steps[0]}")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"--alpha_schedule {spec!r}: knot steps must strictly increase, got {steps}")
        return cls(kind, tuple(steps), tuple(values))

    @property
    def max(self) -> float:
        return max(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    def __call__(self, t: int) -> float:
        """α at global plan step ``t`` (>= 0)."""
        i = bisect.bisect_right(self.steps, t) - 1
        if self.kind != "linear" or i + 1 == len(self.steps):
            return self.values[i]
        t0, t1, a, b = self.steps[i], self.steps[i + 1], self.values[i], self.values[i + 1]
        return a + (b - a) * (t - t0) / (t1 - t0)

    def spec(self) -> str:
        if self.kind == "constant":
            return f"constant:{self.values[0]:g}"
        return f"{self.kind}:" + ",".join(f"{t}:{v:g}" for t, v in zip(self.steps, self.values))


def resolve_alpha_schedule(regime: str, schedule) -> AlphaSchedule | None:
    """The schedule of ``--alpha_schedule`` (a spec or an :class:`AlphaSchedule`), or ``None`` when not given;
    a schedule applies to the hybrid regime only."""
    if not schedule:
        return None
    if regime != Regime.hybrid:
        raise ValueError(f"--alpha_schedule applies to --regime hybrid only, not to {regime}")
    return schedule if isinstance(schedule, AlphaSchedule) else AlphaSchedule.parse(schedule)


def _alpha_value(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--alpha_schedule {spec!r}: {text.strip()!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--alpha_schedule {spec!r}: α must be in [0, 1], got {value:g}")
    return value


def check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1], got {alpha}")
    return float(alpha)
