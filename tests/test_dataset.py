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


def test_multi_source_and_len(corpus, tmp_path):
    from hybrid_tevatron.testing import write_parallel_jsonl

    files = write_parallel_jsonl(str(tmp_path / "b"), languages=("en",), n_queries=10, n_negatives=3, seed=1)
    other = load_jsonl_source("b", files, group_size=G)
    ds = HybridTrainDataset([corpus, other], "q: ", "p: ")
    assert len(ds) == 50
    item = ds[entry(other, 4, "en", "en", MONO, source=1)]
    assert item["meta"]["source"] == "b" and item["meta"]["query_id"] == other.query_ids[4]
    assert item["query"] == "q: " + other.queries["en"][4]
    assert item["passages"][0] == "p: " + other.passage_text("en", int(other.positives(4)[0]))
    with pytest.raises(ValueError):
        HybridTrainDataset([])


def test_collate_with_train_collator(corpus, tiny_model_dir):
    from torch.utils.data import DataLoader
    from transformers import AutoTokenizer

    from hybrid_tevatron.collator import TrainCollator

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = HybridTrainDataset([corpus], "query: ", "passage: ")
    steps = [
        [entry(corpus, q, "de", "de", MONO, step=0) for q in (0, 1, 2)],
        [entry(corpus, q, ql, pl, CROSS, step=1) for q, ql, pl in ((3, "en", "zh"), (4, "zh", "es"), (5, "es", "en"))],
    ]
    loader = DataLoader(ds, batch_sampler=steps, collate_fn=TrainCollator(tok, 16, 24, 8))
    batches = list(loader)
    assert len(batches) == 2
    for batch, step in zip(batches, steps):
        qb, pb = batch
        assert qb["input_ids"].shape[0] == 3 and pb["input_ids"].shape[0] == 3 * G
        assert qb["input_ids"].shape[1] % 8 == 0 and pb["input_ids"].shape[1] <= 24
        assert batch.meta["query_langs"] == [e.query_lang for e in step]
        assert batch.meta["passage_langs"] == [e.passage_lang for e in step]
        assert batch.meta["step"] == step[0].step and batch.meta["mode"] == step[0].mode
        # passage rows are query-major, positive first: row i*G decodes to example i's positive
        for i, e in enumerate(step):
            expect = tok("passage: " + corpus.passage_text(e.passage_lang, e.passages[0]), max_length=24,
                         truncation=True)["input_ids"]
            row = pb["input_ids"][i * G][pb["attention_mask"][i * G].bool()].tolist()
            assert row == expect


class _CountingTokenizer:
    """The real tokenizer, counting the texts it is asked to tokenise."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, 0
        self.pad_token_id, self.padding_side = tokenizer.pad_token_id, tokenizer.padding_side

    def __call__(self, texts, **kwargs):
        self.texts += len(texts)
        return self.tokenizer(texts, **kwargs)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_train_collator_equals_tokenizer_and_tokenises_each_text_once(corpus, tiny_model_dir, padding_side):
    import torch
    from transformers import AutoTokenizer

    from hybrid_tevatron.collator import TrainCollator

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.padding_side = padding_side
    counting = _CountingTokenizer(tok)
    ds = HybridTrainDataset([corpus], "query: ", "passage: ")
    collate = TrainCollator(counting, 16, 24, 8)
    steps = [[ds[entry(corpus, q, "de", "en", step=s)] for q in qs]
             for s, qs in enumerate(((0, 1, 2), (2, 3), (0, 1, 2)))]
    texts = {t for items in steps for item in items for t in [item["query"], *item["passages"]]}
    for items in steps:
        qb, pb = collate(items)
        for got, texts_, max_len in ((qb, [i["query"] for i in items], 16),
                                     (pb, [p for i in items for p in i["passages"]], 24)):
            want = tok(texts_, max_length=max_len, truncation=True, padding=True, pad_to_multiple_of=8,
                       return_tensors="pt", return_token_type_ids=False)
            assert set(got) == {"input_ids", "attention_mask"}
            assert torch.equal(got["input_ids"], want["input_ids"])
            assert torch.equal(got["attention_mask"], want["attention_mask"])
        assert collate(items).meta["query_ids"] == [i["meta"]["query_id"] for i in items]
    assert pb["input_ids"].shape[1] == 24  # truncation reached
    assert counting.texts == len(texts)  # queries and passages each tokenised once over all steps


def test_token_id_cache_capacity(tiny_model_dir):
    from transformers import AutoTokenizer

    from hybrid_tevatron.collator import TokenIdCache

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["a b c", "d e", "a b c", "f g h i j k l m n o p q r s"]
    want = tok(texts, max_length=8, truncation=True)["input_ids"]
    for capacity, kept in ((0, 0), (2, 2), (10, 3)):
        counting = _CountingTokenizer(tok)
        cache = TokenIdCache(counting, 8, capacity)
        assert [x.tolist() for x in cache(texts)] == want
        assert [x.tolist() for x in cache(texts)] == want
        assert len(cache) == kept
    with pytest.raises(ValueError, match="capacity"):
        TokenIdCache(tok, 8, -1)
