"""Arguments of hybrid batch training, parsed by ``HfArgumentParser`` (every field is a ``--flag``).

Field names follow Tevatron main (``train_group_size``, ``query_max_len``, ``query_prefix``…) so that one
command line works with both backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybrid_tevatron.encoding import DEFAULT_PASSAGE_MAX_LEN, DEFAULT_QUERY_MAX_LEN
from hybrid_tevatron.mixture import Regime, SourceSampling, check_regime, parse_cross_only, parse_source_weights


@dataclass
class HybridDataArguments:
    train_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Parallel training data of ONE source: Tevatron-format JSONL files, one per language, as "
            "LANG=PATH (e.g. en=data/en.jsonl de=data/de.jsonl), or a directory holding {lang}.jsonl files."
        },
    )
    extra_sources: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Further sources, each NAME:LANG=PATH,LANG=PATH or NAME:DIR (e.g. msmarco:en=en.jsonl). "
            "Each optimizer-step batch draws its examples from one source (see --source_sampling)."
        },
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hugging Face dataset to read instead of --train_files; languages are its configs "
            "(e.g. unicamp-dl/mmarco style), given by --languages."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Split of --dataset_name."})
    languages: list[str] = field(
        default_factory=list, metadata={"help": "Languages to train on (default: all languages of the data)."}
    )
    language_weights: list[float] = field(
        default_factory=list,
        metadata={"help": "Sampling weight per language, same order as --languages (default: uniform)."},
    )
    regime: str = field(
        default="hybrid",
        metadata={
            "help": "Batch regime: hybrid (mono with probability --alpha, else cross), mono (X-X-mono: one "
            "language per batch), cross (X-Y: query and passage languages differ), xx (per example one random "
            "language for both sides; LAReQA ablation)."
        },
    )
    alpha: float = field(default=0.5, metadata={"help": "Probability that a hybrid batch is monolingual."})
    pivot_language: str | None = field(
        default=None,
        metadata={"help": "Cross batches: passages always in this language (queries in any other)."},
    )
    source_sampling: SourceSampling = field(
        default=SourceSampling.proportional,
        metadata={"help": "How an epoch's steps are ordered over the sources: proportional (shuffled quotas; the "
                  "quotas follow the sources' sizes, or --source_weights) or round_robin (A B C A B C ...)."},
    )
    source_weights: list[str] = field(
        default_factory=list,
        metadata={"help": "Per-source weights NAME=W,... (every source, W >= 0): source s gets W_s / sum(W) of "
                  "each epoch's steps (the epoch keeps its length). Default: in proportion to size. The "
                  "--train_files source is named after its directory, else 'main'."},
    )
    cross_only_sources: list[str] = field(
        default_factory=list,
        metadata={"help": "Sources that feed cross steps only: those whose query equals its positive in the same "
                  "language (e.g. captions, one per language per image). Such a source must be listed here when "
                  "mono or xx steps are possible; an unlisted one is refused."},
    )
    alpha_schedule: str | None = field(
        default=None,
        metadata={"help": "Hybrid regime: alpha over the global plan step t (one plan step = one micro-batch) "
                  "instead of the constant --alpha: constant:V, linear:T0:A,T1:B,... (linear between the knots) "
                  "or piecewise:T0:A,T1:B,... (A from T0, B from T1, ...); first knot at 0. E.g. "
                  "piecewise:0:0,500:1 = cross first, mono from step 500."},
    )
    train_group_size: int = field(
        default=8, metadata={"help": "Passages per query: 1 positive + (group size - 1) negatives."}
    )
    query_max_len: int = field(default=DEFAULT_QUERY_MAX_LEN,
                               metadata={"help": "Max query length in tokens (truncated)."})
    passage_max_len: int = field(default=DEFAULT_PASSAGE_MAX_LEN,
                                 metadata={"help": "Max passage length in tokens (truncated)."})
    query_prefix: str = field(default="", metadata={"help": "Prepended to every query, e.g. 'query: '."})
    passage_prefix: str = field(default="", metadata={"help": "Prepended to every passage, e.g. 'passage: '."})
    passage_field_separator: str = field(default=" ", metadata={"help": "Joins a passage's title and text."})
    pad_to_multiple_of: int = field(default=8, metadata={"help": "Pad token lengths to a multiple of this."})
    token_cache_size: int = field(
        default=1_000_000,
        metadata={"help": "Texts per side (queries, passages) whose token ids the collator keeps, so each is "
                  "tokenised once (per DataLoader worker; --dataloader_persistent_workers keeps them across "
                  "epochs). 0 tokenises every step."},
    )

    def __post_init__(self):
        self.regime, _ = check_regime(self.regime, self.alpha, self.alpha_schedule)  # the rules: mixture
        if self.token_cache_size < 0:
            raise ValueError(f"--token_cache_size must be >= 0, got {self.token_cache_size}")
        self.source_sampling = SourceSampling.parse(self.source_sampling)
        parse_source_weights(self.source_weights)  # the rules live in hybrid_tevatron.mixture
        self.cross_only_sources = parse_cross_only(self.cross_only_sources)
        if self.language_weights and len(self.language_weights) != len(self.languages):
            raise ValueError("--language_weights needs one weight per entry of --languages")
        if any(w < 0 for w in self.language_weights) or (self.language_weights and sum(self.language_weights) <= 0):
            raise ValueError("--language_weights must be non-negative and not all zero")
        if self.train_group_size < 1:
            raise ValueError("--train_group_size must be at least 1")

    @property
    def mono_probability(self) -> float:
        """α of the regime: 1 for mono, 0 for cross, --alpha for hybrid (unused by xx)."""
        return Regime(self.regime).mono_probability(self.alpha)
