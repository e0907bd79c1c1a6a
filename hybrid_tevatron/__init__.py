"""Hybrid (monolingual + cross-lingual) batch training for multilingual dense retrieval with Tevatron.

Kept import-free on purpose: ``hybrid_tevatron._pyserini_env`` is imported at interpreter start-up.

Words, each with one meaning across the package:

* **encoding**: how a checkpoint turns text into a vector: pooling, normalisation, prefixes, maximum lengths
  (``hybrid_tevatron.json``, :mod:`hybrid_tevatron.encoding`; an evaluation's ``encoding.json``).
* **encode**: to turn texts or images into vectors: the encode stage of an evaluation
  (:class:`~hybrid_tevatron.eval.pipeline.encode.EncodeStage`), ``python -m hybrid_tevatron.pyserini.encode`` (a
  corpus into a Faiss index, queries into Pyserini's pre-encoded queries), ``python -m
  hybrid_tevatron.images.encode`` (an image tower's index).
* **batch plan**: training's order of steps and the examples of each batch
  (:class:`~hybrid_tevatron.sampling.BatchPlan`, ``plan_log.rank*.jsonl``).
* **search plan**: an evaluation's corpora, indexes, query sets, searches and trec_eval arguments
  (:class:`~hybrid_tevatron.eval.pipeline.search_plan.SearchPlan`, ``inputs/plan.json``).
* **study plan**: the (cell, seed) trainings and evaluations a study will record
  (:mod:`hybrid_tevatron.studies.domain_plan`, ``plan.json``).
* **run** (a noun): a TREC run file, a search's top-k documents per query (``runs/{search}.trec``).
* **to run a command**: ``python -m MODULE ARGS``, in process or as a subprocess, recorded in ``commands.sh``
  (:class:`~hybrid_tevatron.eval.runner.CliRunner`); a study's recorded commands are its **steps**.
* **training**: one trained model and its folder (checkpoints, ``plan_log``); a study names each by its cell and
  seed.
* **evaluation**: one model evaluated on one benchmark family into one output folder (``python -m
  hybrid_tevatron.eval FAMILY``; a family's ``eval_*`` function); its **stages** are inputs, encode, ranks, search,
  trec_eval, report.
"""

__version__ = "0.1.0"
