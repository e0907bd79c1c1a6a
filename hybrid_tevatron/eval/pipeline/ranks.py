"""Exact whole-pool ranks from the vectors: the rank of every relevant item of every query in its search's whole pool,
without writing or parsing full rankings.

    python -m hybrid_tevatron.eval.pipeline.ranks --plan inputs --index_dir index --queries_dir queries \\
        --output_dir ranks

The rank of a relevant item is one plus the number of pool items ordered before it, in trec_eval's order on the
scores a run file states:

- **Scores** are the inner products of the stored float32 vectors (the Faiss index's, the encoded queries'), summed
  in float64 and rounded to ``SCORE_DECIMALS`` places, the precision of Pyserini's run files (``{score:.6f}``).
  trec_eval reads a run's score into a C ``float``, so two items are tied where one float32 holds both written
  scores (at 6 decimals, or coarser above 16 in magnitude, as for unnormalised embeddings). The float64 sum makes
  the ranks independent of batch sizes, BLAS kernels and threads; Faiss's float32 search is not (its last bits
  depend on the batch), which moves an item by one place only where two scores straddle a rounding boundary.
- **Order**: score descending, then docid descending (trec_eval's ``strcmp``; Python's ``str`` order is the same
  for UTF-8). Each pool column gets the key ``float32 score (as an ordered integer) * N + docid position``, one
  integer comparison.
- **Exclusion**: a caption pool's multi search drops each query's own caption (its ``exclude`` file): it is not in
  that query's pool, so it neither outranks nor counts.

Per query block the scores against a whole pool are one matrix product (float64, on ``--device``), kept in memory
only for the block (``BLOCK_BYTES``). A language pool that is a contiguous slice of a merged index searched with
the same queries (LAReQA and caption pools: ``lang/X`` inside ``all``) is read from that product, so each query
set costs one product with the whole pool.

Writes ``ranks/{search}.tsv`` (``qid docid rank score`` for every relevant docid of the search's qrels that the pool
holds), ``ranks/ranks.json`` (per search: pool size, queries ranked, queries of the qrels that were not, relevant
docids outside the pool, the sampled queries) and the trec_eval cross-check sample: ``sample.trec``, the full
ranking of a seeded sample of each search's queries (every query where ``queries x pool`` fits the search's share of
``--sample_lines``, at least ``SAMPLE_MIN_QUERIES`` otherwise), with ``sample.qrels``; query ids there are
``{search}:{qid}``, so one trec_eval call scores them all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from dataclasses import dataclass

import numpy as np

from hybrid_tevatron.atomic import atomic_path, atomic_write_json
from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.eval.pipeline.search_plan import Search, SearchPlan, load_plan, select
from hybrid_tevatron.eval.runner import StepError
from hybrid_tevatron.eval.trec import read_qrels
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

SCORE_DECIMALS = 6  # Pyserini's run files: f"{score:.6f}"
RANKS_FORMAT = "hybrid_tevatron.ranks/1"
RANKS_FILE = "ranks.json"
SAMPLE_RUN, SAMPLE_QRELS = "sample.trec", "sample.qrels"
SAMPLE_LINES = 500_000  # full-ranking lines of the trec_eval cross-check sample, shared by the searches
SAMPLE_MIN_QUERIES = 2
SAMPLE_SEED = 0
BLOCK_BYTES = 256 << 20  # per query block: the float64 scores and their int64 keys
SEP = ":"  # sample query ids: {search}:{qid}
_SCALE = 10 ** SCORE_DECIMALS
_LOWEST = np.iinfo(np.int64).min


@dataclass
class Vectors:
    """Ids and their float32 vectors, row i = ids[i]."""

    ids: list[str]
    matrix: np.ndarray

    def rows(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.ids)}


def read_docids(folder: str) -> list[str]:
    path = os.path.join(folder, "docid")
    if not os.path.isfile(path):
        raise StepError(f"{folder}: not a Faiss index folder (no docid file)")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def read_index(folder: str) -> Vectors:
    """The vectors of the flat Faiss index ``folder/index`` with the docids of ``folder/docid``."""
    import faiss

    ids = read_docids(folder)
    try:
        index = faiss.read_index(os.path.join(folder, "index"))
    except RuntimeError as err:
        raise StepError(f"{folder}/index: cannot read the Faiss index ({str(err).splitlines()[0]})") from None
    if not isinstance(index, faiss.IndexFlat):
        raise StepError(f"{folder}/index: a {type(index).__name__}, not a flat index: exact ranks need the vectors")
    if index.ntotal != len(ids):
        raise StepError(f"{folder}: the index holds {index.ntotal} vectors but docid lists {len(ids)}")
    return Vectors(ids, index.reconstruct_n(0, index.ntotal))


def read_queries(folder: str) -> Vectors:
    """Pyserini's pre-encoded queries ``folder/embedding.pkl`` (DataFrame ``id/text/embedding``)."""
    import pandas as pd

    path = os.path.join(folder, "embedding.pkl")
    if not os.path.isfile(path):
        raise StepError(f"{path}: encoded queries not found")
    df = pd.read_pickle(path)
    ids = [str(q) for q in df["id"].tolist()]
    if len(set(ids)) != len(ids):
        raise StepError(f"{path}: query ids are not unique")
    return Vectors(ids, np.ascontiguousarray(np.stack(df["embedding"].to_numpy()), dtype=np.float32))


def score_text(key: int) -> str:
    """The run-file score of an integer key (score * 10^SCORE_DECIMALS), exactly as trec_eval will read it back."""
    sign, key = ("-", -key) if key < 0 else ("", key)
    return f"{sign}{key // _SCALE}.{key % _SCALE:0{SCORE_DECIMALS}d}"


def read_exclusions(path: str) -> dict[str, str]:
    """``qid docid`` lines: the one docid each query must not retrieve (its own caption)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2:
                raise StepError(f"{path}:{n}: expected 'qid docid', got {line.rstrip()!r}")
            out[parts[0]] = parts[1]
    return out


def read_topic_ids(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.split("\t", 1)[0].strip() for line in f if line.strip()]


class Pool:
    """A host index's vectors and docid order (``position``: each column's place in docid order), and the column
    ranges of the indexes that are slices of it."""

    def __init__(self, key: str, vectors: Vectors):
        self.key, self.vectors = key, vectors
        self.size = len(vectors.ids)
        order = sorted(range(self.size), key=vectors.ids.__getitem__)
        self.position = np.empty(self.size, dtype=np.int64)
        self.position[order] = np.arange(self.size, dtype=np.int64)
        self.column = vectors.rows()


def _hosts(plan: SearchPlan, searches: list[Search], index_root: str) -> dict[str, tuple[str, int, int]]:
    """For each searched index: ``(host index, start, end)``, the host a merged index searched by the plan whose
    columns start..end are this index, else the index itself."""
    used = {s.index for s in searches}
    docids = {key: read_docids(os.path.join(index_root, key)) for key in used}
    out = {}
    for key in used:
        out[key] = (key, 0, len(docids[key]))
        for merged, parts in plan.merged.items():
            if merged in used and key in parts and key != merged:
                cols = docids[merged]
                where = {d: i for i, d in enumerate(cols)}
                start = where.get(docids[key][0]) if docids[key] else None
                if start is not None and cols[start:start + len(docids[key])] == docids[key]:
                    out[key] = (merged, start, start + len(docids[key]))
                    break
    return out


def sample_size(queries: int, pool: int, share: int) -> int:
    """How many of a search's ``queries`` the cross-check ranks in full: all when ``queries x pool`` fits its
    ``share`` of the sample's lines, else ``share // pool`` (at least ``SAMPLE_MIN_QUERIES``)."""
    if queries * pool <= share:
        return queries
    return min(queries, max(SAMPLE_MIN_QUERIES, share // max(pool, 1)))


class _SearchState:
    """One search while it is ranked: its queries (rows of the query set), their relevant columns of the host
    (``relevant``: padded with -1), their excluded column (-1: none), and what was found."""

    def __init__(self, s: Search, root: str, queries: Vectors, host: Pool, start: int, end: int):
        self.name, self.host, self.start, self.end = s.name, host, start, end
        self.qrels = read_qrels(os.path.join(root, s.qrels))
        topics = set(read_topic_ids(os.path.join(root, s.topics)))
        exclude = read_exclusions(os.path.join(root, s.exclude)) if s.exclude else {}
        qrow = queries.rows()
        self.ranked = [q for q in self.qrels if q in topics and q in qrow]
        self.unranked = [q for q in self.qrels if q not in topics or q not in qrow]
        self.rows = np.array([qrow[q] for q in self.ranked], dtype=np.int64)
        cols = host.column
        lists, self.outside = [], 0
        for q in self.ranked:
            rel = [cols[d] for d, r in self.qrels[q].items() if r > 0 and d in cols and start <= cols[d] < end]
            self.outside += sum(1 for r in self.qrels[q].values() if r > 0) - len(rel)
            lists.append(rel)
        self.relevant = np.full((len(lists), max(map(len, lists), default=0)), -1, dtype=np.int64)
        for i, rel in enumerate(lists):
            self.relevant[i, :len(rel)] = rel
        self.exclude = np.array([cols.get(exclude[q], -1) if q in exclude else -1 for q in self.ranked],
                                dtype=np.int64)
        self.exclude[(self.exclude < start) | (self.exclude >= end)] = -1
        self.pool_size = end - start
        self.ranks = np.zeros(self.relevant.shape, dtype=np.int64)  # 1-based, 0 where relevant is padding
        self.keys = np.zeros(self.relevant.shape, dtype=np.int64)
        self.lines: list[str] = []
        self.sample: set[str] = set()


@report_errors
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.pipeline.ranks",
                                description=__doc__.split("\n")[0])
    p.add_argument("--plan", required=True, help="the search plan (plan.json or its folder)")
    p.add_argument("--index_dir", required=True, help="folder of the plan's Faiss indexes (index/KEY)")
    p.add_argument("--queries_dir", required=True, help="folder of the encoded queries (queries/KEY/embedding.pkl)")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--device", default="cpu", help="torch device for the score products (cpu, cuda, ...)")
    p.add_argument("--sample_lines", type=int, default=SAMPLE_LINES,
                   help=f"full-ranking lines of the trec_eval cross-check sample (default {SAMPLE_LINES})")
    p.add_argument("--seed", type=int, default=SAMPLE_SEED, help="seed of the cross-check sample")
    p.add_argument("--only", nargs="+", help="these searches only")
    args = p.parse_args(argv)
    if args.sample_lines < 0:
        raise StepError(f"--sample_lines must be >= 0, got {args.sample_lines}")
    rank_plan(load_plan(args.plan), args.index_dir, args.queries_dir, args.output_dir, args.device,
              args.sample_lines, args.seed, args.only)
    return 0


def rank_plan(plan: SearchPlan, index_root: str, queries_root: str, out_dir: str, device: str = "cpu",
              sample_lines: int = SAMPLE_LINES, seed: int = SAMPLE_SEED, only=None) -> dict:
    """Exact ranks of every search of ``plan`` (module docstring); returns what ``ranks.json`` says."""
    import torch

    searches = select(plan, only)
    if not searches:
        raise StepError("the plan has no searches")
    root = plan.root
    os.makedirs(out_dir, exist_ok=True)
    hosts = _hosts(plan, searches, index_root)
    share = sample_lines // len(searches)
    pools: dict[str, Pool] = {}
    meta, t0 = {}, time.time()
    with atomic_path(os.path.join(out_dir, SAMPLE_RUN)) as run_tmp, \
            atomic_path(os.path.join(out_dir, SAMPLE_QRELS)) as qrels_tmp, \
            open(run_tmp, "w", encoding="utf-8") as sample_run, open(qrels_tmp, "w", encoding="utf-8") as sample_qrels:
        by_queries: dict[str, list[Search]] = {}
        for s in searches:
            by_queries.setdefault(s.queries, []).append(s)
        for qkey, group in by_queries.items():
            queries = read_queries(os.path.join(queries_root, qkey))
            states: dict[str, list[_SearchState]] = {}
            for s in group:
                host_key, start, end = hosts[s.index]
                if host_key not in pools:
                    pools[host_key] = Pool(host_key, read_index(os.path.join(index_root, host_key)))
                host = pools[host_key]
                if host.vectors.matrix.shape[1] != queries.matrix.shape[1]:
                    raise StepError(f"search {s.name}: queries/{qkey} has dimension {queries.matrix.shape[1]} "
                                    f"but index/{host_key} {host.vectors.matrix.shape[1]}")
                st = _SearchState(s, root, queries, host, start, end)
                _choose_sample(st, share, seed)
                states.setdefault(host_key, []).append(st)
            for host_key, group_states in states.items():
                _rank_group(pools[host_key], queries, group_states, device, torch)
                for st in group_states:
                    _write_search(st, out_dir, sample_run, sample_qrels)
                    meta[st.name] = {"ranks": st.name + ".tsv", "pool_size": st.pool_size,
                                     "host": host_key, "columns": [st.start, st.end],
                                     "queries": len(st.ranked), "queries_unranked": len(st.unranked),
                                     "unranked_examples": st.unranked[:3], "relevant_outside_pool": st.outside,
                                     "excluded": int((st.exclude >= 0).sum()),
                                     "sample": sorted(st.sample)}
                    log.info(f"ranks {st.name}: {len(st.ranked)} queries over a pool of {st.pool_size} "
                             f"({len(st.sample)} sampled for trec_eval, {time.time() - t0:.0f}s so far)")
    out = {"format": RANKS_FORMAT, "score_decimals": SCORE_DECIMALS, "order": "score descending, then docid "
           "descending (trec_eval)", "sample": {"lines": sample_lines, "seed": seed, "min_queries": SAMPLE_MIN_QUERIES,
                                                "run": SAMPLE_RUN, "qrels": SAMPLE_QRELS},
           "searches": meta}
    atomic_write_json(os.path.join(out_dir, RANKS_FILE), out)
    return out


def _choose_sample(st: _SearchState, share: int, seed: int) -> None:
    qids = sorted(st.qrels)
    k = sample_size(len(qids), st.pool_size, share)
    if k >= len(qids):
        st.sample = set(qids)
        return
    rng = np.random.default_rng([seed, zlib.crc32(st.name.encode("utf-8"))])
    st.sample = {qids[i] for i in rng.choice(len(qids), size=k, replace=False)}


def _rank_group(pool: Pool, queries: Vectors, states: list[_SearchState], device: str, torch) -> None:
    """Every search of ``states`` (one query set, one host pool): the ranks of their relevant columns."""
    rows = np.unique(np.concatenate([st.rows for st in states])) if states else np.array([], dtype=np.int64)
    dev = torch.device(device)
    host = torch.from_numpy(pool.vectors.matrix).to(dev, torch.float64)
    position = torch.from_numpy(pool.position).to(dev)
    block = max(1, BLOCK_BYTES // (24 * max(pool.size, 1)))
    for b0 in range(0, len(rows), block):
        block_rows = rows[b0:b0 + block]
        q = torch.from_numpy(queries.matrix[block_rows]).to(dev, torch.float64)
        written = torch.round(q @ host.T * _SCALE).to(torch.int64)  # the run file's score, in 10^-6
        comp = order_keys(written, torch) * pool.size + position  # one integer per column: trec_eval's order
        for st in states:
            mine = np.flatnonzero(np.isin(st.rows, block_rows))  # this search's queries in the block
            if len(mine):
                _rank_rows(st, comp, written, mine, np.searchsorted(block_rows, st.rows[mine]), torch)


def order_keys(written, torch):
    """Integers in the order trec_eval gives the written scores (``written``: int64, in 10^-6): it reads a run's
    score with ``atof`` into a C ``float``, so the key is that float32's value, as an order-preserving integer (two
    scores that one float32 holds are tied: above 16 in magnitude, neighbouring 6-decimal scores can be)."""
    f32 = (written.to(torch.float64) / _SCALE).to(torch.float32)
    bits = f32.view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def _rank_rows(st: _SearchState, comp, written, mine: np.ndarray, local: np.ndarray, torch) -> None:
    """Ranks of the relevant columns of the queries ``mine`` (indexes into ``st.ranked``; ``local``: their rows of
    ``comp`` and ``written``); full rankings of the sampled ones."""
    dev = comp.device
    sub, sub_written = comp[:, st.start:st.end], written[:, st.start:st.end]
    if len(local) != comp.shape[0] or not np.array_equal(local, np.arange(len(local))):
        rows = torch.from_numpy(local).to(dev)
        sub, sub_written = sub.index_select(0, rows), sub_written.index_select(0, rows)
    excl = st.exclude[mine]
    has = np.flatnonzero(excl >= 0)
    if len(has):
        sub = sub.clone()
        sub[torch.from_numpy(has).to(dev), torch.from_numpy(excl[has] - st.start).to(dev)] = _LOWEST
    width = st.relevant.shape[1]
    if width:
        cols = torch.from_numpy(st.relevant[mine]).to(dev)
        pad = cols < 0
        rel = sub.gather(1, (cols - st.start).clamp(min=0))
        rel[pad] = torch.iinfo(torch.int64).max
        step = max(1, (64 << 20) // max(width * sub.shape[1], 1))
        counts = torch.cat([(sub[a:a + step].unsqueeze(1) > rel[a:a + step].unsqueeze(2)).sum(-1)
                            for a in range(0, len(mine), step)])
        st.ranks[mine] = np.where(pad.cpu().numpy(), 0, counts.cpu().numpy() + 1)
        st.keys[mine] = sub_written.gather(1, (cols - st.start).clamp(min=0)).cpu().numpy()
    ids = st.host.vectors.ids
    for j, i in enumerate(mine):
        qid = st.ranked[i]
        if qid not in st.sample:
            continue
        order = torch.argsort(sub[j], descending=True)
        kept = (sub[j][order] != _LOWEST).cpu().numpy()
        values = sub_written[j][order].cpu().numpy()[kept]
        order = order.cpu().numpy()[kept]
        prefix, base = f"{st.name}{SEP}{qid} Q0 ", st.start
        st.lines.append("".join(
            f"{prefix}{ids[c + base]} {r} "
            f"{f'{v // _SCALE}.{v % _SCALE:0{SCORE_DECIMALS}d}' if v >= 0 else score_text(v)} ranks\n"
            for r, (c, v) in enumerate(zip(order.tolist(), values.tolist()), 1)))


def _write_search(st: _SearchState, out_dir: str, sample_run, sample_qrels) -> None:
    ids = st.host.vectors.ids
    with atomic_path(os.path.join(out_dir, st.name + ".tsv")) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, qid in enumerate(st.ranked):
            found = sorted((r, c, k) for c, r, k in zip(st.relevant[i].tolist(), st.ranks[i].tolist(),
                                                        st.keys[i].tolist()) if c >= 0)
            f.writelines(f"{qid}\t{ids[c]}\t{r}\t{score_text(k)}\n" for r, c, k in found)
    sample_run.writelines(st.lines)
    for qid in sorted(st.sample):
        for d, r in st.qrels[qid].items():
            sample_qrels.write(f"{st.name}{SEP}{qid} 0 {d} {r}\n")
    st.lines = []


if __name__ == "__main__":
    sys.exit(main())
