"""The domain-adaptation study as data: training sources, cells (domain × regime), evaluation sets, language groups,
the effects the study reports and the "aim high" target. :mod:`hybrid_tevatron.studies.domain_study` runs it;
docs/domain_adaptation.md explains it. Caption pools are a caption proxy (captions of the same image in other
languages stand in for the image), never image retrieval.

* **Sources** (three relations, kept apart): ``wiki`` = the XQuAD-R training articles less the validation articles
  (726 questions, 9 languages; question → gold sentence; ``python -m hybrid_tevatron.data.xquad_train
  --val_every 8``); ``flickr`` = Multi30K task-1 train, 29,000 images whose en de fr cs captions *translate* each
  other (a mono pair would be a caption with itself, so it is always ``--cross_only_sources``); ``desc`` =
  Multi30K task-2 train, 29,000 images with 5 independent en and 5 de *descriptions* (mono pair: two descriptions
  of one image in one language; cross pair: an en and a de description).
* **Cells**: every trained cell starts from the base model at the same budget (STEPS × BATCH). A cell whose regime
  cannot be built from its sources is listed with its reason and never trained (*degenerate*).
* **Seeds**: headline cells run every seed of ``SEEDS``, the others the first; seeds after the first are evaluated
  on :data:`LATER_SEED_SETS` only.
* **Evaluation sets**: caption pools for every cell; the XQuAD-R sets (held-out test, validation) only for cells
  that train on Wikipedia and the zero-shot base (a caption-only cell's Wikipedia score answers no question here).
* **The aim's choice** (validation only; no test set takes part): among the aim candidates, those whose
  Wikipedia validation multilingual mAP stays within :data:`CHOICE_GUARD` of ``wiki-hybrid``'s (first seed) come
  first, then the higher mean of the two caption relations' validation multilingual mAP: Multi30K task-1 val
  (translations) and task-2 val (descriptions) (:data:`CHOICE`); ``choice.json`` records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybrid_tevatron.data.languages import TRAIN_LANGUAGES, XQUAD_R_LANGUAGES

FLICKR_LANGUAGES = ("en", "de", "fr", "cs")  # Multi30K task 1 (translations): train, val and its test sets
DESCRIPTION_LANGUAGES = ("en", "de")  # Multi30K task 2 (descriptions)
XTD10_LANGUAGES = ("en", "de", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh")
WIKI_VAL_EVERY = 8  # xquad_train --val_every: 4 of the 32 training articles are validation


@dataclass(frozen=True)
class Source:
    name: str  # also the data folder's name, which names the source for the trainer
    title: str
    languages: tuple[str, ...]
    relation: str  # question-sentence, translation or description
    cross_only: bool = False


SOURCES = {
    "wiki": Source("wiki", "Wikipedia (XQuAD-R training articles, validation articles held out)",
                   tuple(TRAIN_LANGUAGES), "question-sentence"),
    "flickr": Source("flickr", "Flickr translations (Multi30K task 1 train, 29,000 images)", FLICKR_LANGUAGES,
                     "translation", cross_only=True),
    "desc": Source("desc", "Flickr descriptions (Multi30K task 2 train, 29,000 images)", DESCRIPTION_LANGUAGES,
                   "description"),
}


@dataclass(frozen=True)
class Cell:
    name: str
    domain: str
    regime: str  # zero-shot, mono, cross, hybrid
    sources: tuple[str, ...] = ()
    weights: tuple[int, ...] = ()  # --source_weights, one per source (empty: in proportion to size)
    headline: bool = False  # every seed
    candidate: bool = False  # an aim candidate (first seed also evaluated on the validation sets)
    degenerate: str | None = None  # why the cell cannot be trained

    @property
    def trained(self) -> bool:
        return self.regime != "zero-shot" and not self.degenerate

    @property
    def wikipedia(self) -> bool:
        """Evaluated on the XQuAD-R sets: trains on Wikipedia, or is the base model."""
        return self.regime == "zero-shot" or "wiki" in self.sources


_TRANSLATION_MONO = ("not possible (degenerate): translations have no same-language pair (each would be a caption "
                     "with itself)")
_TRANSLATION_HYBRID = "same as cross: a translation source feeds only cross steps"
CELLS: list[Cell] = [
    Cell("zero-shot", "none (base model)", "zero-shot", headline=True),
    Cell("wiki-hybrid", "Wikipedia", "hybrid", ("wiki",), headline=True),
    Cell("flickr-mono", "Flickr translations", "mono", ("flickr",), degenerate=_TRANSLATION_MONO),
    Cell("flickr-cross", "Flickr translations", "cross", ("flickr",)),
    Cell("flickr-hybrid", "Flickr translations", "hybrid", ("flickr",), degenerate=_TRANSLATION_HYBRID),
    Cell("desc-mono", "Flickr descriptions", "mono", ("desc",)),
    Cell("desc-cross", "Flickr descriptions", "cross", ("desc",), headline=True),
    Cell("desc-hybrid", "Flickr descriptions", "hybrid", ("desc",), headline=True),
    Cell("wikiflickr-mono", "Wikipedia+Flickr translations", "mono", ("wiki", "flickr"), (1, 1),
         degenerate="not possible: the translation source cannot feed mono steps"),
    Cell("wikiflickr-hybrid", "Wikipedia+Flickr translations", "hybrid", ("wiki", "flickr"), (1, 1), headline=True,
         candidate=True),
    Cell("wikidesc-cross", "Wikipedia+Flickr descriptions", "cross", ("wiki", "desc"), (1, 1)),
    Cell("wikidesc-hybrid", "Wikipedia+Flickr descriptions", "hybrid", ("wiki", "desc"), (1, 1), headline=True,
         candidate=True),
    # Wikipedia keeps half of the steps, as in the two-source candidates; the captions' half is split between the
    # two relations
    Cell("wikiflickrdesc-hybrid", "Wikipedia+Flickr translations+descriptions", "hybrid", ("wiki", "flickr", "desc"),
         (2, 1, 1), headline=True, candidate=True),
]
CELL = {c.name: c for c in CELLS}


@dataclass(frozen=True)
class EvalSet:
    name: str
    title: str
    family: str  # captions | lareqa
    languages: tuple[str, ...]
    args: tuple[str, ...] = ()  # with {xtd10}, {multi30k}, {multi30k_task2}, {xquad_r}, {wiki} filled in
    relation: str = ""  # captions: translation, description or mixed (XTD10: jp captions are descriptions)
    test: bool = True  # False: validation (the aim's choice), never a reported test number
    default: bool = True  # in the default EVAL_SETS
    keys: tuple[str, ...] = field(default=("multi.map", "cross.map", "to_en.map", "to_en.recall_10", "rank_distance"))


_LAREQA_KEYS = ("mono.map", "cross.map", "multi.map", "rank_distance")
EVAL_SETS: list[EvalSet] = [
    EvalSet("xtd10", "XTD10 (MSCOCO captions, 11 languages)", "captions", XTD10_LANGUAGES, ("--xtd10", "{xtd10}"),
            "mixed"),
    EvalSet("m30k-desc", "Multi30K task 2 test_2016 (Flickr descriptions, en de)", "captions",
            DESCRIPTION_LANGUAGES, ("--multi30k_task2", "{multi30k_task2}", "--split", "test_2016"), "description",
            keys=("mono.map", "cross.map", "multi.map", "to_en.recall_10", "rank_distance")),
    EvalSet("m30k-2016", "Multi30K task 1 test_2016_flickr (Flickr translations)", "captions", FLICKR_LANGUAGES,
            ("--multi30k", "{multi30k}", "--split", "test_2016_flickr"), "translation"),
    EvalSet("m30k-2018", "Multi30K task 1 test_2018_flickr", "captions", FLICKR_LANGUAGES,
            ("--multi30k", "{multi30k}", "--split", "test_2018_flickr"), "translation", default=False),
    EvalSet("m30k-mscoco", "Multi30K task 1 test_2017_mscoco", "captions", FLICKR_LANGUAGES[:3],
            ("--multi30k", "{multi30k}", "--split", "test_2017_mscoco"), "translation", default=False),
    EvalSet("xquad-r", "XQuAD-R held-out articles (all 374 questions)", "lareqa", tuple(XQUAD_R_LANGUAGES),
            ("{xquad_r}", "--articles", "@{wiki}/test_articles.txt"), keys=_LAREQA_KEYS),
    EvalSet("m30k-val", "Multi30K task 1 val (aim choice only)", "captions", FLICKR_LANGUAGES,
            ("--multi30k", "{multi30k}", "--split", "val"), "translation", test=False),
    EvalSet("m30k-desc-val", "Multi30K task 2 val (aim choice only)", "captions", DESCRIPTION_LANGUAGES,
            ("--multi30k_task2", "{multi30k_task2}", "--split", "val"), "description", test=False,
            keys=("mono.map", "cross.map", "multi.map", "to_en.recall_10", "rank_distance")),
    EvalSet("wiki-val", "XQuAD-R validation articles (aim choice only)", "lareqa", tuple(XQUAD_R_LANGUAGES),
            ("{xquad_r}", "--articles", "@{wiki}/val_articles.txt"), test=False, keys=_LAREQA_KEYS),
]
EVAL_SET = {e.name: e for e in EVAL_SETS}
# The aim candidates are ranked by the mean of these validation scores, one per caption relation (higher is
# better) ...
CHOICE = (("m30k-val", "multi.map"), ("m30k-desc-val", "multi.map"))
CHOICE_GUARD = ("wiki-val", "multi.map", "wiki-hybrid", 0.01)  # ... after those within 0.01 of wiki-hybrid here
LATER_SEED_SETS = ("xtd10", "m30k-desc", "xquad-r")  # seeds after the first evaluate only these
# Default seeds and pool sizes: whole pools (None = every image / question); EVAL_IMAGES / EVAL_QUESTIONS cap them
# for quick runs only
DEFAULT_SEEDS, DEFAULT_IMAGES, DEFAULT_QUESTIONS = (1, 2), None, None
# A headline effect (both cells headline) within noise on the records of SEEDS gets one more seed on its trained
# cells, up to this many seeds (domain_plan.added_seeds)
MAX_SEEDS = 3
IMAGES = {"xtd10": 1000, "m30k-desc": 1000, "m30k-2016": 1000, "m30k-2018": 1071, "m30k-mscoco": 461,
          "m30k-val": 1014, "m30k-desc-val": 1014}
CAPTIONS_PER_IMAGE = {"m30k-desc": 5, "m30k-desc-val": 5}  # per language; the others 1
QUESTIONS = {"xquad-r": 374, "wiki-val": 90}
# Minutes on 2 CPU cores (docs/domain_adaptation.md, "Time"): one training run at the default budget, the fixed
# start of one evaluation, caption encodings per minute (every caption is encoded as a query and as a passage; the
# whole-XTD10 evaluation: 22,000 encodings and its search and scoring in 4.4 min) and the whole held-out XQuAD-R
# evaluation (the quick start's), scaled by questions
MINUTES = {"train": 5.7, "eval_start": 0.2, "caption_encodings_per_min": 5200, "xquad-r": 5.0}

# XTD10 language groups relative to the study's training data
LANGUAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "flickr": tuple(x for x in XTD10_LANGUAGES if x in FLICKR_LANGUAGES),
    "wiki-only": tuple(x for x in XTD10_LANGUAGES if x in TRAIN_LANGUAGES and x not in FLICKR_LANGUAGES),
    "unseen": tuple(x for x in XTD10_LANGUAGES if x not in TRAIN_LANGUAGES and x not in FLICKR_LANGUAGES),
}

@dataclass(frozen=True)
class Effect:
    """One comparison the study reports: ``a − b`` on ``eval_set``'s ``key`` against the seed noise
    (:func:`hybrid_tevatron.studies.domain_tables.effect`); ``topic`` is the question of the doc's answers it serves
    (:data:`TOPICS`)."""

    eval_set: str
    key: str
    a: str
    b: str
    question: str
    topic: str


# The doc's answers, in order: topic -> its heading
TOPICS = {"aim": "What moved the aim's numbers", "jp": "Descriptions against translations on jp→en",
          "hybrid": "Hybrid against cross batches in the caption domain",
          "wikipedia": "What adding Flickr captions costs Wikipedia"}

EFFECTS = [
    Effect("xtd10", "multi.map", "wiki-hybrid", "zero-shot", "Wikipedia hybrid training vs none, on MSCOCO captions",
           "aim"),
    Effect("xtd10", "multi.map", "wikiflickr-hybrid", "wiki-hybrid", "adding Flickr translations, on MSCOCO captions",
           "aim"),
    Effect("xtd10", "multi.map", "wikidesc-hybrid", "wiki-hybrid", "adding Flickr descriptions, on MSCOCO captions",
           "aim"),
    Effect("xtd10", "to_en.recall_10@jp", "wikidesc-hybrid", "wikiflickr-hybrid",
           "descriptions vs translations beside Wikipedia, jp→en R@10 (jp: independent descriptions)", "jp"),
    Effect("xtd10", "to_en.recall_10@jp", "desc-hybrid", "zero-shot", "descriptions alone vs none, jp→en R@10", "jp"),
    Effect("xtd10", "multi.map", "wikiflickrdesc-hybrid", "wikiflickr-hybrid",
           "both relations vs translations beside Wikipedia, on MSCOCO captions", "aim"),
    Effect("xtd10", "to_en.recall_10@jp", "wikiflickrdesc-hybrid", "wikiflickr-hybrid",
           "both relations vs translations beside Wikipedia, jp→en R@10", "jp"),
    Effect("xtd10", "to_en.recall_10@jp", "wikiflickrdesc-hybrid", "wikidesc-hybrid",
           "both relations vs descriptions beside Wikipedia, jp→en R@10", "jp"),
    Effect("xtd10", "multi.map", "desc-hybrid", "desc-cross", "hybrid vs cross on descriptions, on MSCOCO captions",
           "hybrid"),
    Effect("m30k-desc", "multi.map", "desc-hybrid", "desc-cross", "hybrid vs cross on descriptions, in domain",
           "hybrid"),
    Effect("m30k-desc", "mono.map", "desc-hybrid", "desc-cross",
           "hybrid vs cross on descriptions, in domain, mono pools", "hybrid"),
    Effect("m30k-desc", "cross.map", "desc-hybrid", "desc-cross", "hybrid vs cross on descriptions, in domain, en↔de",
           "hybrid"),
    Effect("xtd10", "multi.map", "wikidesc-hybrid", "wikidesc-cross", "hybrid vs cross on Wikipedia+descriptions",
           "hybrid"),
    Effect("m30k-2016", "multi.map", "wikiflickr-hybrid", "wiki-hybrid", "adding Flickr translations, in domain",
           "aim"),
    Effect("xquad-r", "multi.map", "wikiflickr-hybrid", "wiki-hybrid",
           "what adding Flickr translations costs Wikipedia", "wikipedia"),
    Effect("xquad-r", "multi.map", "wikidesc-hybrid", "wiki-hybrid", "what adding Flickr descriptions costs Wikipedia",
           "wikipedia"),
    Effect("xquad-r", "multi.map", "wikiflickrdesc-hybrid", "wiki-hybrid",
           "what adding both Flickr relations costs Wikipedia", "wikipedia"),
]

# The aim: the chosen candidate against these (mean over seeds); XQuAD-R relative to wiki-hybrid
TARGET = {"xtd10_multi_map": 0.60, "xtd10_to_en_recall_10": {"jp": 0.80, "ko": 0.80}, "xquad_r_multi_map_drop": 0.01}
