"""What makes a usable Hugging Face model folder, checked in one place before anything is loaded.

Training and evaluation both start from a model: a local folder or a Hub id. A folder must hold
``config.json``, weights (one of :data:`WEIGHT_FILES`) and a tokenizer with its vocabulary (one of
:data:`VOCAB_FILES`). ``tokenizer_config.json`` alone is not a tokenizer: transformers then builds one with only
its special tokens, every word becomes ``<unk>``, and training or scoring goes on without a word of warning —
so such a folder is refused up front, with the missing files named.

A name is taken for a Hub id only when it has the ``owner/name`` form and no such path exists (see
:func:`looks_like_hub_id`); a Hub id must be in the local cache or downloadable, else the error says to pass a
local folder. Every check raises :class:`ModelFolderError` with a one-line message naming the path and the remedy.
"""

from __future__ import annotations

import os
from typing import List, Optional

from hybrid_tevatron.errors import HybridTevatronError

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# a tokenizer's vocabulary: the fast tokenizer file, or a slow tokenizer's sentencepiece / WordPiece / BPE vocabulary
VOCAB_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "sentencepiece.model",
               "vocab.txt", "vocab.json")
TOKENIZER_FILES = (TOKENIZER_CONFIG_FILE,) + VOCAB_FILES  # every file a tokenizer may be saved as
EMBEDDED_MODEL_HINT = "python -m hybrid_tevatron.models.me5_small DIR builds multilingual-e5-small there, offline"


class ModelFolderError(HybridTevatronError, ValueError):
    """The model (or tokenizer) to load is missing or incomplete; the message names it and the remedy."""


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` that is not an existing path (nor absolute, nor starting with ``.``): a Hub id."""
    return (not os.path.isabs(name) and not name.startswith(".") and not os.path.exists(name)
            and name.count("/") == 1 and all(name.split("/")))


def _has_any(folder: str, names) -> bool:
    return any(os.path.isfile(os.path.join(folder, name)) for name in names)


def missing_model_files(folder: str, *, config: bool = True, weights: bool = True,
                        tokenizer: bool = True) -> List[str]:
    """What an existing ``folder`` lacks, as readable items (empty when it is complete)."""
    missing = []
    if config and not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        missing.append(CONFIG_FILE)
    if weights and not _has_any(folder, WEIGHT_FILES):
        missing.append("weights (one of " + ", ".join(WEIGHT_FILES) + ")")
    if tokenizer and not _has_any(folder, VOCAB_FILES):
        missing.append("tokenizer vocabulary (one of " + ", ".join(VOCAB_FILES) + ")")
    return missing


def check_model_folder(path: str, *, config: bool = True, weights: bool = True, tokenizer: bool = True) -> None:
    """Raise :class:`ModelFolderError` unless ``path`` is a folder with ``config.json`` (when ``config``), weights
    (when ``weights``) and a tokenizer vocabulary (when ``tokenizer``)."""
    if not os.path.exists(path):
        raise ModelFolderError(f"model folder not found: {path}")
    if not os.path.isdir(path):
        raise ModelFolderError(f"{path}: a file, not a model folder")
    missing = missing_model_files(path, config=config, weights=weights, tokenizer=tokenizer)
    if missing:
        fix = []
        if any(m.startswith("tokenizer") for m in missing):
            fix.append("save the tokenizer into it with tokenizer.save_pretrained(folder)")
        if CONFIG_FILE in missing or any(m.startswith("weights") for m in missing):
            fix.append("save the model into it with model.save_pretrained(folder)")
        raise ModelFolderError(f"{path}: incomplete model folder, no {' and no '.join(missing)}; "
                               f"{' and '.join(fix)}")


def check_hub_model(repo_id: str, *, filename: str = CONFIG_FILE, cache_dir: Optional[str] = None,
                    revision: Optional[str] = None) -> None:
    """Raise :class:`ModelFolderError` unless the Hub model ``repo_id`` is in the local cache or downloadable
    (its ``filename`` is fetched, or found in the cache)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    remedy = f"pass a local model folder instead (MODEL=DIR for the recipes; {EMBEDDED_MODEL_HINT})"
    try:
        hf_hub_download(repo_id, filename, cache_dir=cache_dir, revision=revision)
    except LocalEntryNotFoundError:
        raise ModelFolderError(f"{repo_id}: not a local folder, not in the Hugging Face cache, and it cannot be "
                               f"downloaded (offline or the Hub is unreachable); {remedy}") from None
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError, HFValidationError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelFolderError(f"{repo_id}: not a local folder, and the Hub does not give it ({reason}); "
                               f"{remedy}") from None
    except OSError as err:  # other HTTP/network errors
        raise ModelFolderError(f"{repo_id}: cannot be downloaded ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}); {remedy}") from None


def check_model(name_or_path: str, *, config: bool = True, weights: bool = True, tokenizer: bool = True,
                cache_dir: Optional[str] = None, revision: Optional[str] = None) -> None:
    """:func:`check_model_folder` for a local path, :func:`check_hub_model` for a Hub id (``owner/name`` that
    is no existing path)."""
    if looks_like_hub_id(name_or_path):
        filename = CONFIG_FILE if config else TOKENIZER_CONFIG_FILE
        check_hub_model(name_or_path, filename=filename, cache_dir=cache_dir, revision=revision)
    else:
        check_model_folder(name_or_path, config=config, weights=weights, tokenizer=tokenizer)
