"""The domain-adaptation study as data: training sources, cells (domain × regime), evaluation sets, language groups,
the effects the study reports and the "aim high" target. :mod:`hybrid_tevatron.eval.domain_study` runs it;
docs/domain_adaptation.md explains it. Caption pools are a caption proxy (captions of the same image in other
languages stand in for the image), never image retrieval.

* **Sources**: ``wiki`` = the XQuAD-R training articles (816 questions, 9 languages,
  ``python -m hybrid_tevatron.data.xquad_train``); ``flickr816`` = 816 Multi30K train images (XQuAD-R's example
  count, a seeded sample), ``flickr`` = all 29,000 (en de fr cs; ``python -m hybrid_tevatron.data.captions train``).
  A caption source pairs each caption with itself in mono pairs, so it is always ``--cross_only_sources``.
* **Cells**: every cell trains from the base model at the same budget (STEPS × BATCH), except the aim candidates,
  which continue from the ``wiki-hybrid`` model of the same seed (two stages: twice the steps). A cell whose
  regime needs mono pairs from a caption-only mixture is *degenerate*: listed with its reason, never trained.
* **Seeds**: headline cells (``wiki-hybrid``, ``wikiflickr-hybrid`` and the chosen aim) run every seed of ``SEEDS``,
  the others the first seed only; seeds after the first are evaluated on :data:`LATER_SEED_SETS` only.
* **Aim candidates** are trained on the first seed and evaluated on Multi30K val only; the one with the best val
  multilingual mAP is *chosen* (``choice.json``), then trained on every seed and evaluated on the test sets. The
  test sets never take part in the choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from hybrid_tevatron.data.languages import TRAIN_LANGUAGES, XQUAD_R_LANGUAGES

FLICKR_LANGUAGES = ("en", "de", "fr", "cs")
XTD10_LANGUAGES = ("en", "de", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh")


@dataclass(frozen=True)
class Source:
    name: str  # also the data folder's name, which names the source for the trainer
    title: str
    languages: Tuple[str, ...]
    cross_only: bool = False
    max_examples: Optional[int] = None  # flickr: None = all (FLICKR_IMAGES caps it for quick runs)


SOURCES = {
    "wiki": Source("wiki", "Wikipedia (XQuAD-R training articles)", tuple(TRAIN_LANGUAGES)),
    "flickr816": Source("flickr816", "Flickr (Multi30K train, 816 images)", FLICKR_LANGUAGES, True, 816),
    "flickr": Source("flickr", "Flickr (Multi30K train, all images)", FLICKR_LANGUAGES, True),
}


@dataclass(frozen=True)
class Cell:
    name: str
    domain: str
    regime: str  # zero-shot, mono, cross, hybrid
    sources: Tuple[str, ...] = ()
    weights: Tuple[int, ...] = ()  # --source_weights, one per source (empty: in proportion to size)
    alpha_schedule: Tuple[Tuple[float, float], ...] = ()  # (fraction of STEPS, alpha) knots
    schedule_kind: str = "linear"
    init: Optional[str] = None  # train from this cell's model (same seed) instead of the base model
    headline: bool = False
    candidate: bool = False  # an aim candidate: first seed + val until chosen
    degenerate: Optional[str] = None  # why the cell cannot be trained

    @property
    def trained(self) -> bool:
        return self.regime != "zero-shot" and not self.degenerate


_WF = ("wiki", "flickr")
_CAPTION_MONO = "not possible (degenerate): a caption source has no mono pairs (each would be a caption with itself)"
CELLS: List[Cell] = [
    Cell("zero-shot", "none (base model)", "zero-shot", headline=True),
    Cell("wiki-mono", "Wikipedia", "mono", ("wiki",)),
    Cell("wiki-cross", "Wikipedia", "cross", ("wiki",)),
    Cell("wiki-hybrid", "Wikipedia", "hybrid", ("wiki",), headline=True),
    Cell("flickr816-mono", "Flickr (816)", "mono", ("flickr816",), degenerate=_CAPTION_MONO),
    Cell("flickr816-cross", "Flickr (816)", "cross", ("flickr816",)),
    Cell("flickr816-hybrid", "Flickr (816)", "hybrid", ("flickr816",),
         degenerate="same as cross: every step of a cross-only source is cross"),
    Cell("flickr-mono", "Flickr (all)", "mono", ("flickr",), degenerate=_CAPTION_MONO),
    Cell("flickr-cross", "Flickr (all)", "cross", ("flickr",)),
    Cell("flickr-hybrid", "Flickr (all)", "hybrid", ("flickr",),
         degenerate="same as cross: every step of a cross-only source is cross"),
    Cell("wikiflickr-mono", "Wikipedia+Flickr", "mono", _WF, (1, 1),
         degenerate="not possible: the Flickr source cannot feed mono steps (its steps would have to be cross)"),
    Cell("wikiflickr-cross", "Wikipedia+Flickr", "cross", _WF, (1, 1)),
    Cell("wikiflickr-hybrid", "Wikipedia+Flickr", "hybrid", _WF, (1, 1), headline=True),
    # aim candidates: stage 2 on top of wiki-hybrid; Flickr 3 steps in 4, alpha falling to 0 (cross at the end)
    Cell("aim-linear", "Wikipedia → Wikipedia+Flickr", "hybrid", _WF, (1, 3), ((0.0, 0.5), (1.0, 0.0)),
         init="wiki-hybrid", headline=True, candidate=True),
    Cell("aim-piecewise", "Wikipedia → Wikipedia+Flickr", "hybrid", _WF, (1, 1), ((0.0, 0.5), (0.5, 0.0)),
         "piecewise", init="wiki-hybrid", headline=True, candidate=True),
]
CELL = {c.name: c for c in CELLS}


@dataclass(frozen=True)
class EvalSet:
    name: str
    title: str
    family: str  # captions | lareqa
    languages: Tuple[str, ...]
    args: Tuple[str, ...] = ()  # with {xtd10}, {multi30k}, {xquad_r}, {wiki} filled in
    test: bool = True  # False: validation (the aim choice), never a reported test number
    keys: Tuple[str, ...] = field(default=("multi.map", "cross.map", "to_en.map", "to_en.recall_10", "rank_distance"))


_M30K = ("en", "de", "fr", "cs")
EVAL_SETS: List[EvalSet] = [
    EvalSet("xtd10", "XTD10 (MSCOCO captions, 11 languages)", "captions", XTD10_LANGUAGES, ("--xtd10", "{xtd10}")),
    EvalSet("m30k-2016", "Multi30K test_2016_flickr", "captions", _M30K,
            ("--multi30k", "{multi30k}", "--split", "test_2016_flickr")),
    EvalSet("m30k-2018", "Multi30K test_2018_flickr", "captions", _M30K,
            ("--multi30k", "{multi30k}", "--split", "test_2018_flickr")),
    EvalSet("m30k-mscoco", "Multi30K test_2017_mscoco", "captions", ("en", "de", "fr"),
            ("--multi30k", "{multi30k}", "--split", "test_2017_mscoco")),
    EvalSet("xquad-r", "XQuAD-R held-out articles", "lareqa", tuple(XQUAD_R_LANGUAGES),
            ("{xquad_r}", "--articles", "@{wiki}/test_articles.txt"),
            keys=("mono.map", "cross.map", "multi.map", "rank_distance")),
    EvalSet("m30k-val", "Multi30K val (aim choice only)", "captions", _M30K,
            ("--multi30k", "{multi30k}", "--split", "val"), test=False),
]
EVAL_SET = {e.name: e for e in EVAL_SETS}
CHOICE = ("m30k-val", "multi.map")  # the aim candidates are ranked by this (higher is better)
LATER_SEED_SETS = ("xtd10", "xquad-r")  # seeds after the first evaluate only these (the aim's and headline sets)
# Default seeds (SEEDS) and pool sizes (the first N images of every caption pool, the first N held-out XQuAD-R
# questions), chosen so the default study fits about 2.5 h on 2 CPU cores (docs/domain_adaptation.md, "Time");
# EVAL_IMAGES=all EVAL_QUESTIONS=all evaluates the whole sets (about 11 h on 2 cores by the estimate below)
DEFAULT_SEEDS, DEFAULT_IMAGES, DEFAULT_QUESTIONS = (1, 2), 120, 60
IMAGES = {"xtd10": 1000, "m30k-2016": 1000, "m30k-2018": 1071, "m30k-mscoco": 461, "m30k-val": 1014}
# Stage minutes on 2 CPU cores (docs/domain_adaptation.md, "Time"): one training run at the default budget
# (docs/reproduction.md's median), one XQuAD-R held-out evaluation (likewise), a caption evaluation's encoding per
# 1,000 texts (XTD10's encoding CPU time with multilingual-e5-small over 1.7 busy cores), the fixed start of one
# evaluation, and per caption search (search + trec_eval) a fixed part and a part per 100,000 retrieved hits (the
# tiny-model test's searches; the whole-XTD10 searches, halved for a machine that was shared)
MINUTES = {"train": 5.7, "xquad-r": 5.8, "caption_per_1k": 0.37, "eval_start": 0.5, "search": 0.01,
           "per_100k_hits": 0.012}

# XTD10 language groups relative to the study's training data
LANGUAGE_GROUPS: Dict[str, Tuple[str, ...]] = {
    "flickr": tuple(x for x in XTD10_LANGUAGES if x in FLICKR_LANGUAGES),
    "wiki-only": tuple(x for x in XTD10_LANGUAGES if x in TRAIN_LANGUAGES and x not in FLICKR_LANGUAGES),
    "unseen": tuple(x for x in XTD10_LANGUAGES if x not in TRAIN_LANGUAGES and x not in FLICKR_LANGUAGES),
}

# (set, metric, a, b, question): each reported as a − b with its noise (see domain_study.effect)
EFFECTS = [
    ("xtd10", "multi.map", "wiki-hybrid", "zero-shot", "Wikipedia hybrid training vs none, on MSCOCO captions"),
    ("xtd10", "multi.map", "wikiflickr-hybrid", "wiki-hybrid", "adding Flickr captions, on MSCOCO captions"),
    ("xtd10", "multi.map", "wikiflickr-hybrid", "flickr-cross", "adding Wikipedia to Flickr, on MSCOCO captions"),
    ("xtd10", "to_en.recall_10@group:unseen", "wikiflickr-hybrid", "wiki-hybrid",
     "adding Flickr, X→en R@10 of languages in neither source"),
    ("xtd10", "multi.map", "wikiflickr-hybrid", "wikiflickr-cross", "hybrid vs cross on Wikipedia+Flickr"),
    ("xtd10", "multi.map", "flickr-cross", "flickr816-cross", "Flickr at full size vs 816 images"),
    ("m30k-2016", "multi.map", "wikiflickr-hybrid", "wiki-hybrid", "adding Flickr, in domain"),
    ("xquad-r", "multi.map", "wikiflickr-hybrid", "wiki-hybrid", "what adding Flickr costs on Wikipedia"),
    ("xquad-r", "multi.map", "wiki-hybrid", "wiki-cross", "hybrid vs cross on Wikipedia"),
    ("xquad-r", "mono.map", "wiki-hybrid", "wiki-cross", "hybrid vs cross on Wikipedia, mono pools"),
]

# The aim: the chosen candidate against these (mean over seeds); XQuAD-R relative to wiki-hybrid
TARGET = {"xtd10_multi_map": 0.60, "xtd10_to_en_recall_10": {"jp": 0.80, "ko": 0.80}, "xquad_r_multi_map_drop": 0.01}
