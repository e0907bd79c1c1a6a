"""HybridTrainDataset: plan entries -> Tevatron-shaped items (texts in the entry's languages), collated."""

import pytest

from hybrid_tevatron.data import load_jsonl_source, parse_train_files
from hybrid_tevatron.dataset import HybridTrainDataset
from hybrid_tevatron.sampling import CROSS, MONO, PlanEntry

G = 4


@pytest.fixture(scope="module")
def corpus(parallel_dir):
    return load_jsonl_source("fx", parse_train_files([parallel_dir]), group_size=G)


def entry(c, q, ql, pl, mode=CROSS, source=0, epoch=1, step=3):
    docs = (int(c.positives(q)[0]),) + tuple(int(d) for d in c.negatives(q, pl)[: G - 1])
    return PlanEntry(source, q, mode, ql, pl, docs, epoch, step)


def test_item_texts_languages_prefixes(corpus):
    ds = HybridTrainDataset([corpus], "query: ", "passage: ")
    assert len(ds) == len(corpus) == 40
    for q in (0, 17, 39):
        for ql, pl in (("en", "de"), ("zh", "zh"), ("es", "en")):
            e = entry(corpus, q, ql, pl, MONO if ql == pl else CROSS)
            item = ds[e]
            assert item["query"] == "query: " + corpus.queries[ql][q]
            assert len(item["passages"]) == G
            assert item["passages"] == ["passage: " + corpus.passages[pl][d] for d in e.passages]
            assert item["passages"][0] == "passage: " + corpus.passage_text(pl, int(corpus.positives(q)[0]))
            others = {l for l in corpus.languages if l != pl}
            assert not any(p[len("passage: "):] == corpus.passages[l][d]
                           for l in others for p, d in zip(item["passages"], e.passages))
            assert item["meta"] == {"epoch": 1, "step": 3, "mode": e.mode, "source": "fx", "query_lang": ql,
                                    "passage_lang": pl, "query_id": corpus.query_ids[q]}


def test_missing_translation_is_an_error(corpus):
    ds = HybridTrainDataset([corpus])
    c = corpus
    saved = c.passages["de"][5]
    c.passages["de"][5] = None
    try:
        e = PlanEntry(0, 0, CROSS, "en", "de", (int(c.positives(0)[0]), 5), 0, 0)
        with pytest.raises(KeyError, match=f"docid '{c.doc_ids[5]}'.*no text in language 'de'"):
            ds[e]
    finally:
        c.passages["de"][5] = saved
    with pytest.raises(KeyError, match="no language 'fr'"):
        ds[PlanEntry(0, 0, MONO, "fr", "fr", (0,), 0, 0)]
    with pytest.raises(IndexError):
        ds[PlanEntry(1, 0, MONO, "en", "en", (0,), 0, 0)]
    with pytest.raises(TypeError):
        ds[0]
