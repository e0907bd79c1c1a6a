"""Hybrid (monolingual + cross-lingual) batch training for multilingual dense retrieval with Tevatron.

Kept import-free on purpose: ``hybrid_tevatron._pyserini_env`` is imported at interpreter start-up.
"""

__version__ = "0.1.0"
