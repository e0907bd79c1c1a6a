"""Evaluation, in the order a run goes through it (``python -m hybrid_tevatron.eval lareqa|captions|miracl|images``):

* :mod:`~hybrid_tevatron.eval.program`: the one program, its families (a subcommand's parser and its evaluation)
  registered by ``__main__``; ``options`` (the command line), ``stages`` (the LAReQA, caption-pool and MIRACL
  stages, with their timings), ``runner`` (our and Pyserini's CLIs in process, every command in ``commands.sh``)
  and ``output`` (the output folder, written whole);
* ``benchmarks/``: a benchmark's inputs for Pyserini: LAReQA (XQuAD-R, MLQA-R), caption pools and MIRACL topics,
  qrels, corpora (``pool``: the layout and manifest every pool shares);
* ``pipeline/``: what runs on them: the search plan (``search_plan``), encoding into Faiss indexes (``encode``),
  the exact whole-pool ranks (``ranks``), Pyserini's top-k search (``search``), trec_eval (``trec_eval``,
  ``scoring``);
* ``reports/``: metrics and language bias (``metrics``), results files, tables and plots (``evaluate``,
  ``report``);
* :mod:`~hybrid_tevatron.eval.trec`: TREC files (qrels, runs, trec_eval's output) and the measures, read by every
  layer above.

The studies that run many trainings and evaluations live in :mod:`hybrid_tevatron.studies`.
"""
