"""Evaluation: one program per benchmark family (``python -m hybrid_tevatron.eval lareqa|captions|miracl``, see
:mod:`hybrid_tevatron.eval.program`), LAReQA and MIRACL inputs for Pyserini (``lareqa``, ``miracl``), metrics and
language bias (``metrics``), results and tables (``evaluate``, ``report``).
"""
