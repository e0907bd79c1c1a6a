"""The languages of the LAReQA data sets and of the paper's XQuAD-R training, in one place (ISO 639-1 codes).

* :data:`XQUAD_R_LANGUAGES`: the 11 languages of XQuAD-R (one ``{lang}.json`` each, parallel);
* :data:`MLQA_R_LANGUAGES`: the 7 languages of MLQA-R (not parallel);
* :data:`UNSEEN_LANGUAGES`: XQuAD-R languages held out of training, as in the paper (evaluated as unseen);
* :data:`TRAIN_LANGUAGES`: the XQuAD-R languages trained on (the others);
* :data:`LAREQA_DATASETS`: each LAReQA data set's languages and whether its files are parallel;
* :data:`SETTINGS`: how a pool evaluation pairs query and pool languages: ``mono`` X->X, ``cross`` X->Y, ``multi``
  X->every language at once.

Shell recipes read them with ``python -c 'from hybrid_tevatron.data.languages import TRAIN_LANGUAGES as L;
print(*L)'``.
"""

XQUAD_R_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_R_LANGUAGES = ("ar", "de", "en", "es", "hi", "vi", "zh")
UNSEEN_LANGUAGES = ("el", "vi")
TRAIN_LANGUAGES = tuple(lang for lang in XQUAD_R_LANGUAGES if lang not in UNSEEN_LANGUAGES)
SETTINGS = ("mono", "cross", "multi")
LAREQA_DATASETS = {
    "xquad-r": {"languages": XQUAD_R_LANGUAGES, "parallel": True},
    "mlqa-r": {"languages": MLQA_R_LANGUAGES, "parallel": False},
}
