"""Search plans: which corpora to encode into which index, which query sets, which searches and trec_eval measures.

A plan (``inputs/plan.json``, format ``PLAN_FORMAT``) is built from a pool manifest (:func:`plan_from_manifest`:
LAReQA, caption pools; MIRACL's ``prepare`` and the image evaluation write their own) and read by the encode,
ranks, search and trec_eval stages as a :class:`SearchPlan` (:func:`load_plan`).
Paths in it are relative to its folder (``SearchPlan.root``). Keys: ``corpora`` ({key: {path, size}}
(:class:`Corpus`), one index ``index/KEY`` each), ``merged`` ({key: [corpus keys]}, indexes built as the union of
others, not re-encoded), ``queries`` ({key: topics path}, encoded once into ``queries/KEY``), ``trec_eval_args``
(one trec_eval call per argument list), ``searches`` (list of :class:`Search`: {name, index, queries, topics,
qrels, hits, run}; a pool plan's also {setting, pool_size, exclude, ranks: true}: exact whole-pool ranks, and
top-``hits`` runs).

The records keep the file's keys in their order (``layout``) and any key they do not know (``extra``), so
``from_json(obj).to_json() == obj``: reading a plan and writing it again changes no byte.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.eval.runner import StepError
from hybrid_tevatron.eval.trec import MEASURES, measure_args
from hybrid_tevatron.jsonfiles import read_format

PLAN_FORMAT = "hybrid_tevatron.search_plan/1"
LAREQA_TREC_EVAL_ARGS = ["-c", "-q", *measure_args(MEASURES)]  # -m map -m recall.1,10 -m ndcg_cut.10
RUN_DEPTH = 10  # pool plans: lines per query of the runs Pyserini writes (R@1, R@10 and nDCG@10 need 10)
# a pool plan's search keys in file order ("exclude" is written even when None)
POOL_SEARCH_KEYS = ("name", "setting", "index", "queries", "topics", "qrels", "hits", "pool_size", "ranks", "run",
                    "exclude")


@dataclass(frozen=True, kw_only=True)
class _Record:
    """A JSON object as a frozen dataclass: its keys in file order (``layout``; empty: the fields that are not
    None, in field order) and the keys no field names, kept as they are (``extra``)."""

    layout: tuple[str, ...] = field(default=(), repr=False, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    REQUIRED: ClassVar[tuple[str, ...]] = ()  # keys a file must have

    @classmethod
    def _fields(cls) -> tuple[str, ...]:
        """The JSON fields: every dataclass field but ``layout``, ``extra`` and ``root``."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("layout", "extra", "root"))

    @classmethod
    def _args(cls, obj, what: str) -> dict[str, Any]:
        """The constructor's arguments for the JSON object ``obj``; a missing key is a StepError."""
        if not isinstance(obj, dict):
            raise StepError(f"{what}: expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in cls.REQUIRED if k not in obj]
        if missing:
            raise StepError(f"{what}: no {', '.join(missing)}")
        names = cls._fields()
        return {**{k: v for k, v in obj.items() if k in names}, "layout": tuple(obj),
                "extra": {k: v for k, v in obj.items() if k not in names}}

    def _json(self, key: str):
        return getattr(self, key)

    def to_json(self) -> dict[str, Any]:
        keys = self.layout or tuple(k for k in self._fields() if getattr(self, k) is not None)
        return {k: self.extra[k] if k in self.extra else self._json(k) for k in keys}


@dataclass(frozen=True, kw_only=True)
class Corpus(_Record):
    """A corpus JSONL (``path``, relative to the plan's folder) of ``size`` items, encoded into one index."""

    path: str
    size: int

    REQUIRED: ClassVar[tuple[str, ...]] = ("path", "size")

    @classmethod
    def from_json(cls, obj: dict, what: str = "corpus") -> Corpus:
        return cls(**cls._args(obj, what))


@dataclass(frozen=True, kw_only=True)
class Search(_Record):
    """One search: the ``queries`` (encoded query set) and ``topics`` against ``index``, judged by ``qrels``, its
    top ``hits`` into the run ``run`` (None: ``{name}.trec``, :attr:`run_file`). A pool plan's searches also have
    ``setting``, ``pool_size``, ``exclude`` (a file of each query's excluded docid, or None) and ``ranks``: exact
    whole-pool ranks."""

    name: str
    setting: str | None = None
    index: str
    queries: str
    topics: str
    qrels: str
    hits: int
    pool_size: int | None = None
    ranks: bool | None = None
    run: str | None = None
    exclude: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("name", "index", "queries", "topics", "qrels", "hits")

    @property
    def run_file(self) -> str:
        """The run's file name (in the runs folder)."""
        return self.run if self.run is not None else self.name + ".trec"

    @classmethod
    def from_json(cls, obj: dict, what: str = "search") -> Search:
        return cls(**cls._args(obj, what))


@dataclass(frozen=True, kw_only=True)
class SearchPlan(_Record):
    """A search plan (module docstring); ``root``: its folder, against which its paths resolve (None: not read
    from or placed in a folder yet; never written)."""

    format: str = PLAN_FORMAT
    kind: str | None = None
    dataset: str | None = None
    corpora: dict[str, Corpus]
    merged: dict[str, tuple[str, ...]] = field(default_factory=dict)
    queries: dict[str, str]
    trec_eval_args: tuple[tuple[str, ...], ...]
    searches: tuple[Search, ...]
    root: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("corpora", "queries", "trec_eval_args", "searches")

    def __post_init__(self):  # read-only sequences whatever the caller passed
        object.__setattr__(self, "merged", {k: tuple(v) for k, v in self.merged.items()})
        object.__setattr__(self, "trec_eval_args", tuple(tuple(a) for a in self.trec_eval_args))
        object.__setattr__(self, "searches", tuple(self.searches))

    @classmethod
    def from_json(cls, obj: dict, root: str | None = None) -> SearchPlan:
        args = cls._args(obj, "plan")
        if not isinstance(args["corpora"], dict) or not isinstance(args["searches"], list):
            raise StepError("plan: corpora must be an object and searches a list")
        args["corpora"] = {k: Corpus.from_json(c, f"plan corpus {k}") for k, c in args["corpora"].items()}
        args["searches"] = [Search.from_json(s, f"plan search {i}") for i, s in enumerate(args["searches"], 1)]
        return cls(**args, root=root)

    def _json(self, key: str):
        if key == "corpora":
            return {k: c.to_json() for k, c in self.corpora.items()}
        if key == "merged":
            return {k: list(v) for k, v in self.merged.items()}
        if key == "trec_eval_args":
            return [list(a) for a in self.trec_eval_args]
        if key == "searches":
            return [s.to_json() for s in self.searches]
        return getattr(self, key)

    def at(self, root: str) -> SearchPlan:
        """This plan with its folder ``root``."""
        return dataclasses.replace(self, root=root)


def load_plan(path: str) -> SearchPlan:
    """Read ``plan.json`` (``path`` may be its folder); ``root`` is its folder."""
    obj = read_format(path, "plan.json", PLAN_FORMAT, StepError, "plan")
    return SearchPlan.from_json(obj, root=obj.pop("root"))


def plan_from_manifest(manifest: dict, depth: int = RUN_DEPTH) -> SearchPlan:
    """A search plan for a LAReQA manifest or a caption pool's: one index per language + the merged ``all``;
    exact whole-pool ranks for every search and runs ``depth`` deep (a caption pool's multi searches drop each
    query's own caption: ``exclude``)."""
    if depth < 1:
        raise StepError(f"--run_depth must be >= 1, got {depth}")
    langs = manifest["languages"]
    corpora = {f"lang/{lang}": Corpus.from_json(manifest["corpora"][lang]) for lang in langs}
    searches = [Search(name=s["name"], setting=s["setting"],
                       index="all" if s["pool"] == "all" else f"lang/{s['pool']}",
                       queries=s["query_lang"], topics=s["topics"], qrels=s["qrels"],
                       hits=min(depth, s["pool_size"]), pool_size=s["pool_size"], ranks=True, run=s["run"],
                       exclude=s.get("exclude"), layout=POOL_SEARCH_KEYS)
                for s in manifest["searches"]]
    return SearchPlan(kind=manifest["format"], dataset=manifest["dataset"], corpora=corpora,
                      merged={"all": sorted(corpora)},
                      queries={lang: manifest["topics"][lang]["path"] for lang in langs},
                      trec_eval_args=[LAREQA_TREC_EVAL_ARGS], searches=searches)


def write_plan(plan: SearchPlan, path: str) -> str:
    return atomic_write_json(path, plan.to_json())


def select(plan: SearchPlan, only) -> list[Search]:
    if not only:
        return list(plan.searches)
    unknown = sorted(set(only) - {s.name for s in plan.searches})
    if unknown:
        raise StepError(f"--only names searches the plan does not have: {', '.join(unknown)}")
    return [s for s in plan.searches if s.name in only]
