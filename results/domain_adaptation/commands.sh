#!/usr/bin/env bash
# Every recorded step of this study, in the order it was recorded, replayable: set OUT (the study's root), MODEL and the data folders first.
python -m hybrid_tevatron.eval captions "$MODEL" "$OUT"/eval/xtd10/zero-shot --xtd10 "$XTD10" --name zero-shot --pooling mean --normalize --query_prefix 'query: ' --passage_prefix 'passage: ' --query_max_len 64 --passage_max_len 128 --threads 2 --overwrite
