"""Tiny, locally built models and parallel data for tests and benchmarks (nothing is downloaded).

``build_tiny_model(dir)`` trains a ``tokenizers`` Unigram tokenizer on synthetic multilingual text and saves
it with a randomly initialised XLM-R-style encoder as a normal Hugging Face folder. ``write_parallel_jsonl``
writes a small parallel corpus in Tevatron's training format, one JSONL per language.
"""

from __future__ import annotations

import json
import os
import random

LANGUAGES = ("en", "de", "es", "zh")
_WORDS = {
    "en": "the cat dog house river city question answer book water tree red blue small large old new".split(),
    "de": "der die das katze hund haus fluss stadt frage antwort buch wasser baum rot blau klein".split(),
    "es": "el la gato perro casa rio ciudad pregunta respuesta libro agua arbol rojo azul".split(),
    "zh": list("猫狗房子河城市问题答案书水树红蓝小大老新"),
}


def random_sentence(rng: random.Random, lang: str, n: int) -> str:
    words = [rng.choice(_WORDS[lang]) for _ in range(n)]
    return ("" if lang == "zh" else " ").join(words)


def build_tiny_model(output_dir: str, hidden_size: int = 32, layers: int = 2, seed: int = 0) -> str:
    """Write a tiny XLM-R model + fast Unigram tokenizer to ``output_dir`` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    rng = random.Random(seed)
    corpus = [random_sentence(rng, lang, 12) for lang in _WORDS for _ in range(200)]
    corpus += ["query: " + c for c in corpus[:50]] + ["passage: " + c for c in corpus[:50]]
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        corpus, trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>")
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, model_max_length=512)
    fast.save_pretrained(output_dir)

    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=130,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    XLMRobertaModel(config).save_pretrained(output_dir)
    return output_dir


def write_parallel_jsonl(
    output_dir: str,
    languages=LANGUAGES,
    n_queries: int = 40,
    n_negatives: int = 4,
    seed: int = 0,
) -> dict[str, str]:
    """Write ``{lang}.jsonl`` files of a parallel Tevatron-format corpus; return ``{lang: path}``.

    Query ``q{i}`` has positive ``d{i}`` and negatives drawn from the other documents; every id exists in
    every language with language-specific text.
    """
    os.makedirs(output_dir, exist_ok=True)
    rng = random.Random(seed)
    n_docs = n_queries * 2
    negatives = {
        i: rng.sample([d for d in range(n_docs) if d != i], n_negatives) for i in range(n_queries)
    }
    paths = {}
    for lang in languages:
        lrng = random.Random(f"{seed}-{lang}")
        doc_text = {d: random_sentence(lrng, lang, 10) for d in range(n_docs)}
        path = os.path.join(output_dir, f"{lang}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for i in range(n_queries):
                record = {
                    "query_id": f"q{i}",
                    "query": f"{random_sentence(lrng, lang, 5)} {i}",
                    "positive_passages": [{"docid": f"d{i}", "title": "", "text": doc_text[i]}],
                    "negative_passages": [
                        {"docid": f"d{d}", "title": "", "text": doc_text[d]} for d in negatives[i]
                    ],
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        paths[lang] = path
    return paths
