"""Corpus encoding throughput: ``python -m hybrid_tevatron.pyserini.encode`` vs ``python -m pyserini.encode`` (auto).

    python benchmarks/encode_throughput.py --model /tmp/models/me5-small --data ../shared/data/xquad-r --limit 2000

Both programs run as subprocesses on the same corpus — the first ``--limit`` sentences of the XQuAD-R pools
(all languages, a fixed shuffle), as Pyserini JSONL ``{"id","contents"}`` — with the same model, settings
(pooling, L2 norm, prefix, max length, batch size, device) and output (a flat IP Faiss index). Each is timed
end to end, and once more on a one-batch corpus: throughput = (N - n0) / (T(N) - T(n0)), i.e. without the
start-up (Python + Pyserini/JVM import + model load) that both pay once. The two indexes are compared (cosine of
every vector) so a fast but wrong encoder cannot win. CPU time (user + system of each subprocess) is reported
beside wall time: on a shared machine it is much less sensitive to other load. With CUDA (or ``--raw on``),
the "raw forward limit" — the model's forward alone on pre-tokenised, length-sorted, pre-loaded batches in the
same dtype — is measured in process and our in-process encode throughput reported as a fraction of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def pool_sentences(data_dir: str, languages=None, seed: int = 0):
    out = []
    for name in sorted(os.listdir(data_dir)):
        lang, ext = os.path.splitext(name)
        if ext != ".json" or (languages and lang not in languages):
            continue
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            data = json.load(f)["data"]
        for a, article in enumerate(data):
            for p, para in enumerate(article["paragraphs"]):
                for s, sentence in enumerate(para["sentences"]):
                    out.append((f"{lang}-{a}-{p}-{s}", sentence.replace("\n", " ")))
    random.Random(seed).shuffle(out)
    return out


def write_corpus(path: str, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for docid, text in rows:
            f.write(json.dumps({"id": docid, "contents": text}, ensure_ascii=False) + "\n")


def timed(cmd, cwd, log_path):
    """Wall seconds and CPU seconds (user + system, all threads) of a subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log_path}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def commands(args, corpus, out):
    pyserini = [sys.executable, "-m", "pyserini.encode", "input", "--corpus", corpus, "--fields", "text",
                "output", "--embeddings", f"{out}/pyserini", "--to-faiss",
                "encoder", "--encoder", "model", "--encoder-class", "auto", "--fields", "text",
                "--pooling", args.pooling, "--max-length", str(args.max_len), "--batch-size", str(args.batch_size),
                "--device", args.device, "--dimension", str(args.dimension)]
    ours = [sys.executable, "-m", "hybrid_tevatron.pyserini.encode", "--model", "model", "--corpus", corpus,
            "--output", f"{out}/ours", "--pooling", args.pooling, "--max_len", str(args.max_len),
            "--batch_size", str(args.batch_size), "--device", args.device, "--prefix", args.prefix,
            "--dtype", args.dtype]
    if args.normalize:
        pyserini.append("--l2-norm")
        ours.append("--normalize")
    if args.prefix:
        if not args.prefix.endswith(" "):
            raise SystemExit("--prefix must end with a space (Pyserini adds one)")
        pyserini += ["--prefix", args.prefix[:-1]]
    return {"pyserini": pyserini, "ours": ours}


def compare_indexes(a_dir, b_dir):
    import faiss
    import numpy as np

    a, b = faiss.read_index(os.path.join(a_dir, "index")), faiss.read_index(os.path.join(b_dir, "index"))
    x, y = a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal)
    with open(os.path.join(a_dir, "docid")) as f1, open(os.path.join(b_dir, "docid")) as f2:
        same_ids = f1.read() == f2.read()
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return {"same_docids": same_ids, "min_cosine": float(cos.min()), "n": int(a.ntotal)}


def raw_forward_limit(args, texts):
    """Passages/s of the bare forward on pre-tokenised, length-sorted, device-resident batches (+ ours in process)."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from hybrid_tevatron.pyserini.encoders import HybridDocumentEncoder, autocast_dtype

    device = torch.device(args.device)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model).to(device).eval()
    dtype = autocast_dtype(args.dtype, device)
    prefixed = [args.prefix + t for t in texts]
    lengths = np.array([len(x) for x in tok(prefixed, max_length=args.max_len, truncation=True)["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    batches = []
    for s in range(0, len(order), args.batch_size):
        b = tok([prefixed[i] for i in order[s:s + args.batch_size]], max_length=args.max_len, truncation=True,
                padding=True, pad_to_multiple_of=8, return_tensors="pt", return_token_type_ids=False)
        batches.append({k: v.to(device) for k, v in b.items()})

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def ctx():
        return torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast("cpu", enabled=False)

    with torch.inference_mode():
        with ctx():
            model(**batches[0])  # warm-up
        sync()
        t0 = time.perf_counter()
        for b in batches:
            with ctx():
                _ = model(**b).last_hidden_state
        sync()
        raw = len(texts) / (time.perf_counter() - t0)
    enc = HybridDocumentEncoder(args.model, device=args.device, pooling=args.pooling, l2_norm=args.normalize,
                                prefix=args.prefix, max_length=args.max_len, batch_size=args.batch_size,
                                dtype=args.dtype)
    enc.encode(texts[: args.batch_size])  # warm-up
    sync()
    t0 = time.perf_counter()
    enc.encode(texts)
    sync()
    ours = len(texts) / (time.perf_counter() - t0)
    return {"raw_forward_per_s": raw, "ours_in_process_per_s": ours, "fraction": ours / raw}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="/tmp/models/me5-small")
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "xquad-r"))
    p.add_argument("--languages", nargs="+")
    p.add_argument("--limit", type=int, default=2000, help="sentences to encode (N)")
    p.add_argument("--pooling", default="mean")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--prefix", default="passage: ")
    p.add_argument("--max_len", type=int, default=256)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--device", default=None, help="default cuda:0 when available, else cpu")
    p.add_argument("--dtype", default="auto", help="ours: auto (bf16 autocast on CUDA, fp32 on CPU), fp32, ...")
    p.add_argument("--dimension", type=int, default=None, help="default: the model config's hidden_size")
    p.add_argument("--raw", default="auto", choices=["auto", "on", "off"], help="measure the raw forward limit")
    p.add_argument("--no_startup_probe", action="store_true", help="report end-to-end throughput only")
    p.add_argument("--keep", help="keep the work folder here")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    import torch
    from transformers import AutoConfig

    args.device = args.device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    args.dimension = args.dimension or AutoConfig.from_pretrained(args.model).hidden_size
    rows = pool_sentences(args.data, args.languages)[: args.limit]
    n, n0 = len(rows), args.batch_size
    work = args.keep or tempfile.mkdtemp(prefix="encode-bench-")
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(os.path.join(work, "model")):
        os.symlink(os.path.abspath(args.model), os.path.join(work, "model"))  # neutral path for Pyserini
    write_corpus(os.path.join(work, "corpus.jsonl"), rows)
    write_corpus(os.path.join(work, "probe.jsonl"), rows[:n0])
    env_note = f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, device {args.device}"
    print(f"corpus: {n} XQuAD-R sentences ({work}); {env_note}", flush=True)

    results = {"n": n, "device": args.device, "settings": {k: getattr(args, k) for k in
               ("model", "pooling", "normalize", "prefix", "max_len", "batch_size", "dtype")}}
    for name in ("pyserini", "ours"):  # baseline first
        full = commands(args, "corpus.jsonl", "out")[name]
        t_full, c_full = timed(full, work, os.path.join(work, f"{name}.log"))
        entry = {"command": " ".join(full), "seconds": t_full, "cpu_seconds": c_full, "end_to_end_per_s": n / t_full}
        if not args.no_startup_probe:
            probe = commands(args, "probe.jsonl", "probe")[name]
            t0, c0 = timed(probe, work, os.path.join(work, f"{name}.probe.log"))
            entry.update(startup_seconds=t0, startup_cpu_seconds=c0, per_s=(n - n0) / max(t_full - t0, 1e-9),
                         per_cpu_s=(n - n0) / max(c_full - c0, 1e-9))
        results[name] = entry
        print(f"{name:9s} {t_full:7.1f}s end to end ({entry['end_to_end_per_s']:.1f}/s)"
              + (f"; one-batch run {entry['startup_seconds']:.1f}s -> {entry['per_s']:.1f} passages/s, "
                 f"{entry['per_cpu_s']:.2f} passages per CPU-second" if "per_s" in entry else ""), flush=True)
        if name == "ours":
            with open(os.path.join(work, "ours.log")) as f:
                m = re.search(r"in ([0-9.]+)s \(([0-9.]+) docs/s\)", f.read())
            if m:
                entry["reported_encode_per_s"] = float(m.group(2))
    check = compare_indexes(os.path.join(work, "out", "ours"), os.path.join(work, "out", "pyserini"))
    results["agreement"] = check
    key = "end_to_end_per_s" if args.no_startup_probe else "per_s"
    results["speedup"] = results["ours"][key] / results["pyserini"][key]
    results["speedup_end_to_end"] = results["ours"]["end_to_end_per_s"] / results["pyserini"]["end_to_end_per_s"]
    print(f"indexes agree: same docids {check['same_docids']}, min cosine {check['min_cosine']:.6f} over {check['n']}")
    print(f"speedup ours / pyserini: {results['speedup']:.2f}x (excluding start-up), "
          f"{results['speedup_end_to_end']:.2f}x end to end (goal >= 3x)")
    if not args.no_startup_probe:  # CPU time is far less sensitive than wall time to other load on the machine
        results["speedup_cpu"] = results["ours"]["per_cpu_s"] / results["pyserini"]["per_cpu_s"]
        print(f"speedup in CPU time (user + system, start-up excluded): {results['speedup_cpu']:.2f}x")
    if args.raw == "on" or (args.raw == "auto" and args.device.startswith("cuda")):
        raw = raw_forward_limit(args, [t for _, t in rows])
        results["raw"] = raw
        print(f"raw forward limit {raw['raw_forward_per_s']:.1f}/s, "
              f"ours in process {raw['ours_in_process_per_s']:.1f}/s "
              f"= {100 * raw['fraction']:.1f}% (goal >= 80%)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
