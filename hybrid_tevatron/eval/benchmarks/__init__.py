"""Benchmark inputs for Pyserini: corpora, topics, qrels and a manifest per benchmark (LAReQA, MIRACL)."""
