"""Evaluation: one program per benchmark family (``python -m hybrid_tevatron.eval lareqa|miracl``, see
:mod:`hybrid_tevatron.eval.program`), LAReQA and MIRACL inputs for Pyserini (``lareqa``, ``miracl``), metrics and
language bias (``metrics``), results and tables (``evaluate``, ``report``).
"""

from hybrid_tevatron.atomic import atomic_dir, atomic_path, atomic_write_json, atomic_write_text  # noqa: F401
