"""What makes a usable Hugging Face model folder, checked in one place before anything is loaded.

Training and evaluation both start from a model: a local folder or a Hub id. A folder must hold
``config.json``, weights (one of :data:`WEIGHT_FILES`) and a tokenizer with its vocabulary (one of
:data:`VOCAB_FILES`). ``tokenizer_config.json`` alone is not a tokenizer: transformers then builds one with only
its special tokens, every word becomes ``<unk>``, and training or scoring goes on without a word of warning —
so such a folder is refused up front, with the missing files named.

A name is taken for a Hub id only when it has the ``owner/name`` form and no such path exists (see
:func:`looks_like_hub_id`); a Hub id must be in the local cache or downloadable, else the error says to pass a
local folder. Every check raises :class:`ModelFolderError` with a one-line message naming the path and the remedy.

:func:`check_model_loads` goes one step further for a local folder (training, evaluation and
``python -m hybrid_tevatron.pyserini.encode`` all run it before encoding or training anything): the config and the
tokenizer load (a truncated ``tokenizer.json`` is one error line, not a traceback), the tokenizer knows words and
fits the model's embeddings.
"""

from __future__ import annotations

import os

from hybrid_tevatron.errors import HybridTevatronError, first_line

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# a tokenizer's vocabulary: the fast tokenizer file, or a slow tokenizer's sentencepiece / WordPiece / BPE vocabulary
VOCAB_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "sentencepiece.model",
               "vocab.txt", "vocab.json")
TOKENIZER_PROBE = "the cat"
TRAIN_SUMMARY = "train_summary.json"  # what a finished training trained, in short (training.write_train_summary)
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
                        tokenizer: bool = True) -> list[str]:
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


def check_hub_model(repo_id: str, *, filename: str = CONFIG_FILE, cache_dir: str | None = None,
                    revision: str | None = None) -> None:
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
                cache_dir: str | None = None, revision: str | None = None) -> None:
    """:func:`check_model_folder` for a local path, :func:`check_hub_model` for a Hub id (``owner/name`` that
    is no existing path)."""
    if looks_like_hub_id(name_or_path):
        filename = CONFIG_FILE if config else TOKENIZER_CONFIG_FILE
        check_hub_model(name_or_path, filename=filename, cache_dir=cache_dir, revision=revision)
    else:
        check_model_folder(name_or_path, config=config, weights=weights, tokenizer=tokenizer)


def load_model_config(path: str, **kwargs):
    """``AutoConfig`` of ``path``; :class:`ModelFolderError` (one line) when it cannot be loaded."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, **kwargs)
    except Exception as err:  # noqa: BLE001 - any loading problem is reported the same way
        raise ModelFolderError(f"{path}: cannot load the model config: {first_line(err)}") from None


def check_tokenizer_loads(path: str, vocab_size: int | None = None, **kwargs) -> None:
    """The tokenizer of ``path`` loads, knows a word of :data:`TOKENIZER_PROBE`, and has no more tokens than the
    model's ``vocab_size`` embeddings (when given); else :class:`ModelFolderError`, one line."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        probe = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    except Exception as err:  # noqa: BLE001
        raise ModelFolderError(f"{path}: cannot load the tokenizer: {type(err).__name__}: {first_line(err)}; "
                               "save the model's own tokenizer with it (tokenizer.save_pretrained(folder))") from None
    if isinstance(vocab_size, int) and len(tokenizer) > vocab_size:
        raise ModelFolderError(f"{path}: the tokenizer has {len(tokenizer)} tokens but the model only {vocab_size} "
                               "embeddings; save the model's own tokenizer with it")
    if not probe or all(i == tokenizer.unk_token_id for i in probe):
        raise ModelFolderError(f"{path}: the tokenizer knows no word of {TOKENIZER_PROBE!r} (every token is "
                               "unknown); save the model's own tokenizer with it (tokenizer.save_pretrained(folder))")


def check_model_loads(name_or_path: str, *, tokenizer: str | None = None, cache_dir: str | None = None,
                      revision: str | None = None) -> dict:
    """:func:`check_model`, then load the config and the tokenizer (of ``tokenizer`` when given, else of the model)
    as :func:`check_tokenizer_loads` says; return ``{"hidden_size": int, "model_type": str}``."""
    where = {"cache_dir": cache_dir, **({"revision": revision} if revision else {})}
    check_model(name_or_path, tokenizer=tokenizer is None, **where)
    if tokenizer is not None:
        check_model(tokenizer, config=False, weights=False, **where)
    config = load_model_config(name_or_path, **where)
    check_tokenizer_loads(tokenizer or name_or_path, getattr(config, "vocab_size", None), **where)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    if not isinstance(hidden, int) or hidden < 1:
        raise ModelFolderError(f"{name_or_path}: config has no hidden_size")
    return {"hidden_size": hidden, "model_type": getattr(config, "model_type", "")}
