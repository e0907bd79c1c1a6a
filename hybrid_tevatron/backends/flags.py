"""Tevatron's flags: each one honoured or refused, never silently ignored — also those of a newer Tevatron.

A backend's argument dataclasses subclass Tevatron's (``ModelArguments``, its ``TrainingArguments``) and list
the Tevatron fields they honour. :func:`offer_only` turns every *other* field Tevatron declares into a hidden
attribute (``init=False``, Tevatron's default, so Tevatron's code still reads it) and records why it is not
offered. A field that a later Tevatron adds is therefore hidden by default until a backend lists it as handled.
:func:`refuse_not_offered` turns a hidden flag on the command line (or key of a JSON config) into one clear
error naming the flag and the reason, instead of argparse's generic "not used" message.

Flags of ``transformers.TrainingArguments`` are Hugging Face's, honoured by its ``Trainer``; only the fields a
Tevatron training-arguments class adds on top are policed here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from hybrid_tevatron.errors import HybridTevatronError

NOT_OFFERED = "hybrid_tevatron_not_offered"  # field metadata key: the reason a Tevatron flag is refused
NEW_FIELD_REASON = "a Tevatron flag hybrid_tevatron does not know, so it cannot honour it"


class FlagError(HybridTevatronError, ValueError):
    """A Tevatron flag that this backend does not offer was given."""


def offer_only(tevatron_cls: type, handled: Iterable[str], reasons: Mapping[str, str] | None = None,
               inherited: type | None = None):
    """Class decorator, applied *under* ``@dataclass``: hide every field of ``tevatron_cls`` (less those it
    inherits from ``inherited``, e.g. ``transformers.TrainingArguments``) that is not in ``handled`` and not
    declared by the decorated class itself. ``reasons`` says why known fields are refused; any other hidden field
    gets :data:`NEW_FIELD_REASON`."""
    handled, reasons = set(handled), dict(reasons or {})
    skip = {f.name for f in dataclasses.fields(inherited)} if inherited is not None else set()

    def decorate(cls: type) -> type:
        own = cls.__dict__.get("__annotations__")
        if own is None:
            own = {}
            cls.__annotations__ = own
        for f in dataclasses.fields(tevatron_cls):
            if f.name in skip or f.name in handled or f.name in own or not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = {"default": f.default}
            elif f.default_factory is not dataclasses.MISSING:
                default = {"default_factory": f.default_factory}
            else:
                raise TypeError(f"{tevatron_cls.__name__}.{f.name} is required by Tevatron but not handled by "
                                f"{cls.__name__}")
            own[f.name] = f.type
            setattr(cls, f.name, dataclasses.field(
                init=False, metadata={NOT_OFFERED: reasons.get(f.name, NEW_FIELD_REASON)}, **default))
        return cls

    return decorate


def not_offered(*dataclass_types: type) -> dict[str, str]:
    """``{field name: reason}`` of the hidden Tevatron fields of ``dataclass_types``."""
    return {f.name: f.metadata[NOT_OFFERED] for cls in dataclass_types for f in dataclasses.fields(cls)
            if NOT_OFFERED in f.metadata}


def refuse_not_offered(names: Sequence[str], hidden: Mapping[str, str], backend: str) -> None:
    """Raise :class:`FlagError` for the first of ``names`` (``--flag``, ``--flag=value`` or a bare JSON key) that
    is a hidden Tevatron field."""
    for name in names:
        key = name[2:].split("=", 1)[0] if name.startswith("--") else name
        if key.startswith("no_") and key[3:] in hidden:  # argparse's negation of a boolean flag
            key = key[3:]
        if key in hidden:
            raise FlagError(f"--{key} is not supported with --backend {backend}: {hidden[key]}")
