"""The seam to Tevatron: one :class:`Backend` per Tevatron flavour, chosen by ``--backend auto|pypi|main``.

* ``pypi`` — Tevatron 0.1.0 from PyPI (``tevatron.modeling.DenseModel``, ``tevatron.trainer.DenseTrainer``), made
  to run on transformers 5 (:mod:`hybrid_tevatron.backends.tevatron_pypi`).
* ``main`` — Tevatron main from GitHub (``tevatron.retriever``: ``DenseModel``, ``TevatronTrainer``)
  (:mod:`hybrid_tevatron.backends.tevatron_main`).
* ``auto`` — ``main`` when ``tevatron.retriever`` is importable, else ``pypi``.

The Backend protocol (what a backend module provides as ``BACKEND``):

``name``
    ``"pypi"`` or ``"main"`` (recorded in the checkpoint's ``hybrid_tevatron.json``).
``model_arguments``
    Dataclass of model flags, the backend's Tevatron ``ModelArguments`` (or a subclass) with Tevatron main's
    names ``--pooling cls|mean``, ``--normalize``, ``--temperature``; checked with
    :func:`hybrid_tevatron.modeling.check_model_options`.
``training_arguments``
    ``class T(HybridTrainingArgumentsMixin, <Tevatron TrainingArguments>)`` (shared flags and warmup mapping
    from :mod:`hybrid_tevatron.trainer`).
``trainer_class``
    ``class X(HybridTrainerMixin, <Tevatron trainer>)`` (:mod:`hybrid_tevatron.trainer`), made to work on the
    installed transformers; built by :func:`hybrid_tevatron.training.build_trainer` with ``model, args,
    train_dataset, data_collator, processing_class, callbacks, plan, metadata``.
``build_model(model_args, data_args, training_args) -> torch.nn.Module``
    The Tevatron model over one shared HF encoder, exposed as ``model.encoder``; ``model(query=, passage=)``
    returns an output with ``.loss`` (InfoNCE over the step's examples; target = index × train_group_size).

Data flags are ours (:class:`hybrid_tevatron.arguments.HybridDataArguments`) for both backends.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Protocol, runtime_checkable

from hybrid_tevatron.errors import HybridTevatronError

BACKEND_NAMES = ("auto", "pypi", "main")
_MODULES = {"pypi": "hybrid_tevatron.backends.tevatron_pypi", "main": "hybrid_tevatron.backends.tevatron_main"}


class BackendError(HybridTevatronError, RuntimeError):
    """The requested backend is unknown or its Tevatron is not installed."""


@runtime_checkable
class Backend(Protocol):
    name: str
    model_arguments: type
    training_arguments: type
    trainer_class: type

    def build_model(self, model_args: Any, data_args: Any, training_args: Any) -> Any: ...


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def backend_available(name: str) -> bool:
    """Whether the Tevatron needed by backend ``name`` (``pypi`` or ``main``) is installed."""
    if name == "main":
        return _has_module("tevatron.retriever")
    if name == "pypi":
        return _has_module("tevatron.modeling") and _has_module("tevatron.trainer")
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


def available_backends() -> list[str]:
    return [name for name in ("pypi", "main") if backend_available(name)]


def resolve_backend_name(name: str = "auto") -> str:
    """``auto`` -> ``main`` if ``tevatron.retriever`` is importable, else ``pypi``; other names are checked."""
    if name not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if name == "auto":
        name = "main" if backend_available("main") else "pypi"
    if not backend_available(name):
        hint = {
            "main": "Tevatron main (tevatron.retriever) is not installed; install it from "
            "https://github.com/texttron/tevatron (pip install git+https://github.com/texttron/tevatron) "
            "or use --backend pypi",
            "pypi": "Tevatron 0.1.0 (tevatron.modeling / tevatron.trainer) is not installed; "
            "pip install tevatron==0.1.0, or use --backend main",
        }[name]
        raise BackendError(f"backend {name!r} unavailable: {hint}")
    return name


def select_backend(name: str = "auto") -> Backend:
    """The :class:`Backend` for ``name`` (``auto``, ``pypi`` or ``main``); :class:`BackendError` if unavailable."""
    name = resolve_backend_name(name)
    try:
        module = importlib.import_module(_MODULES[name])
    except ModuleNotFoundError as err:
        raise BackendError(f"backend {name!r} could not be loaded: {err}") from err
    return module.BACKEND
