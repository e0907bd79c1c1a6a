"""Search every query set of a plan with ``python -m pyserini.search.faiss`` (pre-encoded queries, flat Faiss
index) and write the runs, compacted for LAReQA.

**Compaction** (LAReQA searches, ``"compact": true``): mAP is over the full ranking, so every relevant passage
needs its rank in the whole pool. Each run is cut after each query's last relevant passage in trec_eval order,
keeping every line tied with it on the written score and at least the top ``MIN_DEPTH``; ranks of relevant passages
are unchanged by the cut, so mAP, R@k, nDCG@10 and the rank distance are exactly those of the full ranking, while an
XQuAD-R multilingual run shrinks from 15.5 M lines (~0.8 GB) per query language to a few MB.

**Two passes** (``first_pass_hits``, default ``FIRST_PASS_HITS``): writing full-pool rankings dominates the
search time (MLQA-R: 140 M lines, 3 % of them kept). The first pass searches ``--hits`` = first_pass_hits; a query
whose cut it settles (every relevant passage retrieved, and a line below the cut that scores lower than the last
relevant one, so nothing outside the list can tie or outrank it) is final. The others are searched again over the
whole pool (``--hits`` = pool size, their topics in ``runs/deep/NAME.tsv``). Faiss's flat search is exact, so the
compacted run scores exactly like the single full-pool pass (``--first_pass_hits 0``).
"""

from __future__ import annotations

import json
import os
import time

from hybrid_tevatron.atomic import atomic_path, atomic_write_json, atomic_write_text
from hybrid_tevatron.eval.plan import select
from hybrid_tevatron.eval.runner import CliRunner, StepError
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

MIN_DEPTH = 100
FIRST_PASS_HITS = 500  # compacted searches: depth of the first pass (0: one pass over the whole pool)
COMPACTION_FILE = "compaction.json"  # in the runs folder: what was cut, per run
SEARCH_BATCH = 64


def read_qids(topics_path: str) -> list[str]:
    with open(topics_path, encoding="utf-8") as f:
        return [line.split("\t", 1)[0].strip() for line in f if line.strip()]


def _read_qrels_relevant(path: str) -> dict[str, set[str]]:
    from hybrid_tevatron.eval.metrics import read_qrels

    return {q: {d for d, rel in docs.items() if rel > 0} for q, docs in read_qrels(path).items()}


def compact_run(src: str, out, relevant: dict[str, set[str]], min_depth: int = MIN_DEPTH,
                hits: int | None = None, exclude: dict[str, str] | None = None) -> dict:
    """Write to the file ``out`` each query's ranking of ``src`` cut after its last relevant passage (trec_eval
    order, ties on the written score kept, at least ``min_depth`` lines).

    ``src`` must list each query's lines together in descending score order (Pyserini does). ``hits``: the depth
    ``src`` was searched to when that is less than the whole pool (at least ``min_depth``). A query whose cut that
    depth cannot settle (a relevant passage not retrieved, or lines tied with the cut score down to the last line)
    is not written but listed in ``"open"``, as are queries of ``relevant`` absent from ``src``; without ``hits``
    those absent queries are an error. ``exclude`` ({qid: docid}, caption pools: the query's own caption) drops
    that line before anything else. Returns ``{"queries", "lines_in", "lines_out", "open"}``.
    """
    exclude = exclude or {}
    stats = {"queries": 0, "lines_in": 0, "lines_out": 0, "open": []}
    seen: set[str] = set()

    def flush(qid, lines, searched):
        rel = relevant.get(qid, set())
        last, found = -1, 0
        for i, (docid, _score, _line) in enumerate(lines):
            if docid in rel:
                last, found = i, found + 1
        keep = max(min(min_depth, len(lines)), last + 1)
        if last >= 0:
            cut_score = lines[last][1]
            while keep < len(lines) and lines[keep][1] >= cut_score:
                keep += 1
        if hits is not None and searched >= hits and (found < len(rel) or (rel and keep == len(lines))):
            stats["open"].append(qid)
            return
        for _d, _s, line in lines[:keep]:
            out.write(line)
        stats["queries"] += 1
        stats["lines_out"] += keep

    from hybrid_tevatron.eval.metrics import run_lines

    qid, lines, prev, searched = None, [], None, 0
    for n, q, d, s, line in run_lines(src):
        stats["lines_in"] += 1
        if q != qid:
            if qid is not None:
                flush(qid, lines, searched)
            if q in seen:
                raise StepError(f"{src}:{n}: query {q} appears again after other queries")
            seen.add(q)
            qid, lines, prev, searched = q, [], None, 0
        if prev is not None and s > prev:
            raise StepError(f"{src}:{n}: scores of query {q} are not in descending order")
        prev, searched = s, searched + 1
        if exclude.get(q) != d:
            lines.append((d, s, line if line.endswith("\n") else line + "\n"))
    if qid is not None:
        flush(qid, lines, searched)
    missing = sorted(set(relevant) - seen)
    if missing and hits is None:
        raise StepError(f"{src}: {len(missing)} queries of the qrels have no results, e.g. {missing[:3]}")
    stats["open"] += missing
    return stats


def _read_exclusions(path: str) -> dict[str, str]:
    """``qid docid`` lines: the one docid each query must not retrieve (its own caption)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2:
                raise StepError(f"{path}:{n}: expected 'qid docid', got {line.rstrip()!r}")
            out[parts[0]] = parts[1]
    return out


def write_topics_subset(topics: str, qids, dst: str) -> None:
    """The lines of the topics file ``topics`` whose query id is in ``qids``, in file order, to ``dst``."""
    wanted = set(qids)
    with open(topics, encoding="utf-8") as f:
        lines = [line for line in f if line.strip() and line.split("\t", 1)[0].strip() in wanted]
    atomic_write_text(dst, "".join(lines))


def check_run(path: str, qids) -> int:
    """Every query id of ``qids`` has lines in the run ``path``; returns the number of lines."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise StepError(f"{path}: the search wrote no run")
    found, lines = set(), 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                found.add(line.split(None, 1)[0])
                lines += 1
    missing = [q for q in qids if q not in found]
    if missing:
        raise StepError(f"{path}: {len(missing)} queries have no results, e.g. {missing[:3]}")
    return lines


def search(plan: dict, index_root: str, queries_root: str, runs_dir: str, runner: CliRunner,
           threads: int = 1, batch_size: int = SEARCH_BATCH, only=None,
           first_pass_hits: int = FIRST_PASS_HITS) -> list[dict]:
    """Run ``python -m pyserini.search.faiss`` for every search of the plan (pre-encoded queries); compacted
    searches in two passes (module docstring), ``first_pass_hits`` 0 for one pass over the whole pool."""
    if 0 < first_pass_hits < MIN_DEPTH:
        raise StepError(f"--first_pass_hits must be 0 (one pass) or at least {MIN_DEPTH}, got {first_pass_hits}")
    os.makedirs(runs_dir, exist_ok=True)
    root = plan["root"]
    searches = select(plan, only)
    rel = runner.rel
    done, compaction = [], {}
    t0 = time.time()
    for i, s in enumerate(searches, 1):
        index = os.path.join(index_root, s["index"])
        queries = os.path.join(queries_root, s["queries"])
        topics = os.path.join(root, s["topics"])
        for path, what in ((index, "index"), (queries, "encoded queries"), (topics, "topics")):
            if not os.path.exists(path):
                raise StepError(f"search {s['name']}: {what} not found: {path}")
        run = os.path.join(runs_dir, s.get("run", s["name"] + ".trec"))
        pool_hits = int(s["hits"])

        def pyserini_search(topics_file: str, hits: int, output: str) -> None:
            runner.run("pyserini.search.faiss", [
                "--index", rel(index), "--topics", rel(topics_file), "--encoded-queries", rel(queries),
                "--output", rel(output), "--hits", hits, "--batch-size", batch_size, "--threads", threads])

        start = time.time()
        if not s.get("compact"):
            with atomic_path(run) as raw:
                pyserini_search(topics, pool_hits, raw)
                lines = check_run(raw, read_qids(topics))
            detail = f"{lines} hits"
        else:
            relevant = _read_qrels_relevant(os.path.join(root, s["qrels"]))
            exclude = _read_exclusions(os.path.join(root, s["exclude"])) if s.get("exclude") else None
            first = min(first_pass_hits, pool_hits) if first_pass_hits else pool_hits
            passes = [run + ".pass1.tmp", run + ".pass2.tmp"]
            try:
                with atomic_path(run) as tmp, open(tmp, "w", encoding="utf-8") as out:
                    pyserini_search(topics, first, passes[0])
                    stats = compact_run(passes[0], out, relevant, hits=first if first < pool_hits else None,
                                        exclude=exclude)
                    deep = stats.pop("open")
                    if deep:
                        deep_topics = os.path.join(runs_dir, "deep", s["name"] + ".tsv")  # kept: commands.sh
                        write_topics_subset(topics, deep, deep_topics)
                        pyserini_search(deep_topics, pool_hits, passes[1])
                        second = compact_run(passes[1], out, {q: relevant.get(q, set()) for q in deep},
                                             exclude=exclude)
                        for key in ("queries", "lines_in", "lines_out"):
                            stats[key] += second[key]
            finally:
                for tmp in passes:
                    if os.path.exists(tmp):
                        os.remove(tmp)
            detail = (f"{stats['queries']} queries ({len(deep)} over the whole pool), {stats['lines_in']} hits -> "
                      f"{stats['lines_out']} kept")
            compaction[s["name"]] = {"hits": pool_hits, "first_pass_hits": first, "deep_queries": len(deep),
                                     "min_depth": MIN_DEPTH, **stats}
        log.info(f"search [{i}/{len(searches)}] {s['name']}: {detail} ({time.time() - start:.1f}s, "
            f"{time.time() - t0:.0f}s so far)")
        done.append({"name": s["name"], "run": run})
    if compaction:
        path = os.path.join(runs_dir, COMPACTION_FILE)
        old = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                old = json.load(f).get("runs", {})
        atomic_write_json(path, {
            "note": "rankings cut after each query's last relevant passage (ties on the written score kept, at least "
                    "min_depth lines); first pass first_pass_hits deep, deep_queries searched again over the whole "
                    "pool (hits): every relevant passage keeps its full-ranking rank, so mAP, R@k, nDCG@10 and the "
                    "rank distance are those of the full ranking",
            "runs": {**old, **compaction}})
    return done
