"""Typed sections of a recipe: build a frozen dataclass from a YAML mapping, checking every key.

``build(Section, mapping, "train")`` accepts only the dataclass's fields, converts YAML
values to the annotated types (``int``, ``float``, ``str``, ``bool``, ``Optional[...]``,
``tuple[...]``, ``list[...]``, ``Literal[...]``) and names the offending key in every error,
e.g. ``train.lr: expected a number, got 'fast'``. Sections check their own ranges in
``__post_init__``; their ``ConfigError`` is re-raised with the section's name in front.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from loralab.errors import ConfigError

T = TypeVar("T")


def build(cls: type[T], mapping: Any, where: str) -> T:
    """An instance of dataclass ``cls`` from ``mapping`` (``None`` means all defaults)."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(mapping).__name__} {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{_key(where, unknown[0])}: unknown setting; known settings of {where or 'a recipe'}: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {name: convert(hints[name], value, _key(where, name)) for name, value in mapping.items()}
    try:
        return cls(**values)
    except ConfigError as err:
        message = str(err)
        first = re.match(r"\w+", message)
        if not where:
            raise
        if first and first.group(0) in fields:  # "r must be ..." from LoraConfig → "lora.r must be ..."
            raise ConfigError(f"{where}.{message}") from None
        raise ConfigError(f"{where}: {message}") from None


def convert(annotation: Any, value: Any, key: str) -> Any:
    """``value`` as an ``annotation``, or a ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return convert(option, value, key)
            except ConfigError as err:
                errors.append(str(err).split(": ", 1)[-1])
        raise ConfigError(f"{key}: {' or '.join(errors)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
            return tuple(convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML reads 2e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return value
    return value


def as_dict(section: Any) -> dict[str, Any]:
    """A section as plain YAML-friendly values (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif dataclasses.is_dataclass(value):
            value = as_dict(value)
        out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
