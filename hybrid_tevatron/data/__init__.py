from .corpus import ParallelCorpus, csr

__all__ = ["ParallelCorpus", "csr"]
