"""The ids and text form shared by every evaluation pool (LAReQA and caption pools) and the data that feeds them.

* :func:`clean_text`: the one-line form of a text (TSV topics and Pyserini's field splitting need it);
* :func:`docid`: ``{lang}-{n}``, the n-th candidate of a language's corpus;
* :func:`query_id`: ``{question or caption id}-{lang}``, one query per language.
"""

import re

_WS = re.compile(r"[\t\n\r]+")


def clean_text(text: str) -> str:
    """Drop byte-order marks; tabs and line breaks -> one space; strip."""
    return _WS.sub(" ", text.replace("\ufeff", "")).strip()


def docid(lang: str, n: int) -> str:
    return f"{lang}-{n}"


def query_id(question_id: str, lang: str) -> str:
    return f"{question_id}-{lang}"
