"""The evaluation's stages over a benchmark's inputs: search plan, encoding, exact ranks, top-k search, trec_eval."""
