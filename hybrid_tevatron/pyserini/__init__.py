"""Pyserini integration: encoder classes on our collator (:mod:`.encoders`), the encode CLI (:mod:`.encode`),
corpus shards (:mod:`.shards`), their merge into one index or one run (:mod:`.merge`), and one corpus encoded by N
local processes and merged (:mod:`.parallel`, the evaluation's ``--encode_processes``).

Importing this package does not import Pyserini (which starts a JVM); import :mod:`hybrid_tevatron.pyserini.encoders`
for ``HybridDocumentEncoder`` / ``HybridQueryEncoder``. Java for Pyserini is set up by
:func:`hybrid_tevatron._pyserini_env.configure`.
"""

__all__ = ["HybridDocumentEncoder", "HybridQueryEncoder"]


def __getattr__(name):
    if name in __all__:
        from hybrid_tevatron.pyserini import encoders

        return getattr(encoders, name)
    raise AttributeError(name)
