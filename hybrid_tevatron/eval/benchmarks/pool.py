"""The layout every evaluation pool shares (LAReQA's and the caption pools): ``corpus/{lang}.jsonl``, topic files,
``qrels/{search}.txt``, ``exclude/{search}.txt`` and ``manifest.json``, one typed :class:`PoolManifest` written by
:meth:`PoolManifest.write`; :class:`PoolError` for a pool's bad inputs or manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from hybrid_tevatron.atomic import atomic_write_json
from hybrid_tevatron.errors import HybridTevatronError

MANIFEST = "manifest.json"


class PoolError(HybridTevatronError, ValueError):
    """A problem with an evaluation pool's input files or its manifest; the message names the file and the item."""


@dataclass
class PoolManifest:
    """``manifest.json`` of a pool. Keys in this order: ``format``, ``dataset``, the ``source`` entries (where the
    pool comes from: LAReQA's ``data_dir``; a caption pool's relation, files and proxy), ``parallel``,
    ``languages``, ``pairs``, ``selection`` (when given), ``counts``, ``exclude_rule`` (when given), ``corpora``
    ({language: {path, size}}), ``topics`` ({X: {path, queries}}) and ``searches`` (name, setting, query_lang,
    pool, topics, qrels, pool_size, queries, relevant, [exclude], run)."""

    format: str
    dataset: str
    source: dict
    parallel: bool
    languages: list[str]
    pairs: list[list[str]]
    counts: dict
    corpora: dict
    topics: dict
    searches: list[dict]
    selection: dict | None = None
    exclude_rule: str | None = None

    def to_json(self) -> dict:
        out = {"format": self.format, "dataset": self.dataset, **self.source, "parallel": self.parallel,
               "languages": self.languages, "pairs": self.pairs}
        if self.selection is not None:
            out["selection"] = self.selection
        out["counts"] = self.counts
        if self.exclude_rule is not None:
            out["exclude_rule"] = self.exclude_rule
        out.update(corpora=self.corpora, topics=self.topics, searches=self.searches)
        return out

    def write(self, root: str) -> dict:
        """Write ``root/manifest.json`` (indented UTF-8 JSON); return what was written."""
        manifest = self.to_json()
        atomic_write_json(os.path.join(root, MANIFEST), manifest)
        return manifest


def cross_pairs(searches: list[dict]) -> list[list[str]]:
    """``[X, Y]`` of every cross search, in search order."""
    return [[s["query_lang"], s["pool"]] for s in searches if s["setting"] == "cross"]


def write_corpus(root: str, lang: str, docs: Iterable[tuple[str, str]]) -> dict:
    """``corpus/{lang}.jsonl`` from ``(docid, text)`` pairs; return its manifest entry ``{path, size}``."""
    rel = f"corpus/{lang}.jsonl"
    size = 0
    with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
        for doc, text in docs:
            f.write(json.dumps({"id": doc, "contents": text, "lang": lang}, ensure_ascii=False) + "\n")
            size += 1
    return {"path": rel, "size": size}


def write_topics(root: str, rel: str, queries: Iterable[tuple[str, str]]) -> int:
    """A topic file (``qid \\t text`` lines) at ``root/rel``; return how many queries it holds."""
    n = 0
    with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
        for qid, text in queries:
            f.write(f"{qid}\t{text}\n")
            n += 1
    return n


def write_search_files(root: str, searches: list[dict]) -> None:
    """Each search's ``qrels`` ("qid 0 docid 1" lines) and, where it names one, its ``exclude`` file ("qid docid"
    lines); the contents are taken out of the search (``_qrels``, ``_exclude``)."""
    for s in searches:
        with open(os.path.join(root, s["qrels"]), "w", encoding="utf-8") as f:
            for qid, docids in s.pop("_qrels").items():
                f.writelines(f"{qid} 0 {d} 1\n" for d in docids)
        if s.get("exclude"):
            with open(os.path.join(root, s["exclude"]), "w", encoding="utf-8") as f:
                f.writelines(f"{qid} {d}\n" for qid, d in s.pop("_exclude").items())
