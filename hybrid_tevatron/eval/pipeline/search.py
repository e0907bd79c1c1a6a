"""Search every query set of a plan with ``python -m pyserini.search.faiss`` (pre-encoded queries, flat Faiss
index) and write the top-k runs people open: ``runs/{search}.trec``, ``hits`` lines per query.

The runs are for reading and for trec_eval; the full-pool metrics come from the exact ranks
(:mod:`hybrid_tevatron.eval.pipeline.ranks`), not from the runs.

**One Pyserini call per index.** The searches of a pool plan that share an index (LAReQA and caption pools: every
query language against ``lang/Y``; every query language against ``all``) run as one call: their topics are written
together (``runs/topics/{index}.tsv``) and the query sets encoded once are merged into ``queries/combined``
(Pyserini looks pre-encoded queries up by their text, and one text has one encoding). The call's run is split into
the searches' run files. A search whose ``exclude`` file names each query's own caption (caption pools) is searched
one hit deeper and that caption is dropped, so each query keeps ``hits`` lines of its pool.
"""

from __future__ import annotations

import os
import time

from hybrid_tevatron.atomic import atomic_path, atomic_write_text
from hybrid_tevatron.eval.pipeline.search_plan import Search, SearchPlan, select
from hybrid_tevatron.eval.runner import CliRunner, StepError
from hybrid_tevatron.eval.trec import run_lines
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)

SEARCH_BATCH = 64
COMBINED_QUERIES = "combined"  # queries/combined: every query set of the plan, for the one-call-per-index searches


def read_qids(topics_path: str) -> list[str]:
    with open(topics_path, encoding="utf-8") as f:
        return [line.split("\t", 1)[0].strip() for line in f if line.strip()]


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


def combine_queries(queries_root: str, keys) -> str:
    """``queries/combined/embedding.pkl``: the encoded query sets ``keys`` in one (each id once)."""
    import pandas as pd

    frames = [pd.read_pickle(os.path.join(queries_root, k, "embedding.pkl")) for k in sorted(keys)]
    df = pd.concat(frames, ignore_index=True).drop_duplicates(subset="id")
    out = os.path.join(queries_root, COMBINED_QUERIES)
    os.makedirs(out, exist_ok=True)
    with atomic_path(os.path.join(out, "embedding.pkl")) as tmp:
        df.to_pickle(tmp)
    return out


def split_run(src: str, targets: dict[str, tuple], hits: int) -> dict[str, int]:
    """Write the lines of the run ``src`` into the run of each query's search: ``targets`` {qid: (file, excluded
    docid or None)}; at most ``hits`` lines per query after dropping its excluded docid, ranks renumbered.
    Returns the lines written per file."""
    written: dict[str, int] = {}
    handles = {}
    try:
        for path in {t[0] for t in targets.values()}:
            handles[path] = open(path, "w", encoding="utf-8")
            written[path] = 0
        qid, kept = None, 0
        for n, q, d, _s, line in run_lines(src):
            if q != qid:
                qid, kept = q, 0
            target = targets.get(q)
            if target is None:
                raise StepError(f"{src}:{n}: query {q} belongs to no search of this index")
            if d == target[1] or kept >= hits:
                continue
            kept += 1
            parts = line.split()
            parts[3] = str(kept)
            handles[target[0]].write(" ".join(parts) + "\n")
            written[target[0]] += 1
    finally:
        for f in handles.values():
            f.close()
    return written


def search(plan: SearchPlan, index_root: str, queries_root: str, runs_dir: str, runner: CliRunner,
           threads: int = 1, batch_size: int = SEARCH_BATCH, only=None) -> list[dict]:
    """Run ``python -m pyserini.search.faiss`` for the searches of the plan: MIRACL's one by one, a pool plan's
    (``"ranks": true``) one call per index (module docstring)."""
    os.makedirs(runs_dir, exist_ok=True)
    searches = select(plan, only)
    for s in searches:
        for path, what in ((os.path.join(index_root, s.index), "index"),
                           (os.path.join(queries_root, s.queries), "encoded queries"),
                           (os.path.join(plan.root, s.topics), "topics")):
            if not os.path.exists(path):
                raise StepError(f"search {s.name}: {what} not found: {path}")
    searcher = _Searcher(runner, plan.root, index_root, queries_root, runs_dir, threads, batch_size)
    done = searcher.singles([s for s in searches if not s.ranks])
    by_index: dict[str, list[Search]] = {}
    for s in searches:
        if s.ranks:
            by_index.setdefault(s.index, []).append(s)
    return done + searcher.pooled(by_index) if by_index else done


class _Searcher:
    """One evaluation's Pyserini searches: the folders, the runner and the search settings."""

    def __init__(self, runner: CliRunner, root: str, index_root: str, queries_root: str, runs_dir: str,
                 threads: int, batch_size: int):
        self.runner, self.root, self.index_root, self.queries_root = runner, root, index_root, queries_root
        self.runs_dir, self.threads, self.batch_size = runs_dir, threads, batch_size
        self.t0 = time.time()

    def run_path(self, s: Search) -> str:
        return os.path.join(self.runs_dir, s.run_file)

    def pyserini_search(self, index: str, topics_file: str, queries: str, hits: int, output: str) -> None:
        rel = self.runner.rel
        self.runner.run("pyserini.search.faiss", [
            "--index", rel(index), "--topics", rel(topics_file), "--encoded-queries", rel(queries),
            "--output", rel(output), "--hits", hits, "--batch-size", self.batch_size, "--threads", self.threads])

    def singles(self, singles: list[Search]) -> list[dict]:
        """One search per call, its run checked against its topics."""
        done = []
        for i, s in enumerate(singles, 1):
            run = self.run_path(s)
            topics = os.path.join(self.root, s.topics)
            start = time.time()
            with atomic_path(run) as raw:
                self.pyserini_search(os.path.join(self.index_root, s.index), topics,
                                     os.path.join(self.queries_root, s.queries), int(s.hits), raw)
                lines = check_run(raw, read_qids(topics))
            log.info(f"search [{i}/{len(singles)}] {s.name}: {lines} hits ({time.time() - start:.1f}s)")
            done.append({"name": s.name, "run": run})
        return done

    def pooled(self, by_index: dict[str, list[Search]]) -> list[dict]:
        """One call per index for all its searches (their topics together, deep enough for an excluded own
        caption), split back into one run per search."""
        combined = None
        if any(len({s.queries for s in group}) > 1 for group in by_index.values()):
            combined = combine_queries(self.queries_root, {s.queries for g in by_index.values() for s in g})
        done = []
        for i, (index, group) in enumerate(by_index.items(), 1):
            start = time.time()
            targets, topic_lines = self.group_topics(index, group)
            hits = max(int(s.hits) for s in group)
            deep = hits + (1 if any(s.exclude for s in group) else 0)
            deep = min(deep, max(deep if s.pool_size is None else int(s.pool_size) for s in group))
            queries = os.path.join(self.queries_root, group[0].queries) if len(group) == 1 or combined is None \
                else combined
            topics = os.path.join(self.runs_dir, "topics", index.replace("/", "_") + ".tsv")  # commands.sh reads it
            os.makedirs(os.path.dirname(topics), exist_ok=True)
            atomic_write_text(topics, "".join(topic_lines))
            raw = os.path.join(self.runs_dir, f".{index.replace('/', '_')}.raw.tmp")
            try:
                self.pyserini_search(os.path.join(self.index_root, index), topics, queries, deep, raw)
                check_run(raw, list(targets))
                tmp_targets = {q: (t[0] + ".tmp", t[1]) for q, t in targets.items()}
                written = split_run(raw, tmp_targets, hits)
                for path in written:
                    os.replace(path, path[:-len(".tmp")])
            finally:
                for path in [raw] + [t[0] + ".tmp" for t in targets.values()]:
                    if os.path.exists(path):
                        os.remove(path)
            log.info(f"search [{i}/{len(by_index)}] index {index}: {len(group)} searches, {len(targets)} queries, "
                     f"{sum(written.values())} hits kept ({time.time() - start:.1f}s, "
                     f"{time.time() - self.t0:.0f}s so far)")
            done += [{"name": s.name, "run": self.run_path(s)} for s in group]
        return done

    def group_topics(self, index: str, group: list[Search]) -> tuple[dict, list[str]]:
        """``qid -> (run file, excluded docid)`` and the topic lines of the searches of one index; a query searched
        twice on one index is an error."""
        from hybrid_tevatron.eval.pipeline.ranks import read_exclusions

        targets, topic_lines = {}, []
        for s in group:
            run = self.run_path(s)
            exclude = read_exclusions(os.path.join(self.root, s.exclude)) if s.exclude else {}
            with open(os.path.join(self.root, s.topics), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    qid = line.split("\t", 1)[0].strip()
                    if qid in targets:
                        raise StepError(f"search {s.name}: query {qid} is also searched by another search of "
                                        f"index {index}")
                    targets[qid] = (run, exclude.get(qid))
                    topic_lines.append(line if line.endswith("\n") else line + "\n")
        return targets, topic_lines
