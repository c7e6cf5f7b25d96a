"""Typed sections of a recipe: build a frozen dataclass from a YAML mapping, checking every key.

``build(Section, mapping, "train")`` accepts only the dataclass's fields, converts YAML
values to the annotated types (``int``, ``float``, ``str``, ``bool``, ``Optional[...]``,
``tuple[...]``, ``list[...]``, ``Mapping[...]``, ``Literal[...]``) and names the offending key in
every error, e.g. ``train.lr: expected a number, got 'fast'``.

Numbers: every float must be finite (YAML's ``.nan``/``.inf``, ``inf`` and ``1e400`` are refused),
and a field may declare its range as ``Annotated[float, "(0, 10]"]`` (or ``int``), optionally with a
hint: ``Annotated[float, "[0, inf)", "0 turns it off"]``. The range is written as in the error,
``optimizer.lr: must be a finite number in (0, 10], got inf``; a float may be infinite only where the
range includes it (``"[0, inf]"``). Sections of this package call :func:`check_fields` first in
``__post_init__`` so that a section built in Python is checked the same way; sections check what
spans fields themselves, and their ``ConfigError`` is re-raised with the section's name in front.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, Union

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
    hints = _hints(cls)
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


def check_fields(section: Any) -> None:
    """Check and normalise every field of a dataclass instance as ``build`` would (call it first in ``__post_init__``)."""
    hints = _hints(type(section))
    for f in dataclasses.fields(section):
        if f.init:
            object.__setattr__(section, f.name, convert(hints[f.name], getattr(section, f.name), f.name))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def convert(annotation: Any, value: Any, key: str) -> Any:
    """``value`` as an ``annotation``, or a ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Annotated:
        base, extras = args[0], [a for a in annotation.__metadata__ if isinstance(a, str)]
        value = _as_float(value, key) if base is float else convert(base, value, key)
        return _in_range(value, _Range.parse(extras[0]) if extras else None, key, extras[1] if len(extras) > 1 else "")
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
        item = args[1] if len(args) == 2 else Any
        return {k: convert(item, v, f"{key}[{k!r}]") for k, v in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
        return value
    if annotation is float:
        return _in_range(_as_float(value, key), None, key)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return value
    return value


def _as_float(value: Any, key: str) -> float:
    if isinstance(value, str):  # YAML reads 2e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf if value > 0 else -math.inf


@dataclasses.dataclass(frozen=True)
class _Range:
    """An interval written as in maths and in errors: ``"(0, 10]"``, ``"[0, 2**32)"``, ``"[1, inf)"``."""

    text: str
    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @staticmethod
    @functools.cache
    def parse(text: str) -> "_Range":
        match = re.fullmatch(r"([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])", text)
        if not match:
            raise ValueError(f"not an interval: {text!r}")
        low, high = (_bound(b) for b in match.group(2, 3))
        return _Range(text, low, high, match.group(1) == "[", match.group(4) == "]")

    def __contains__(self, x: float) -> bool:
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return above and below  # NaN is in no range

    def __str__(self) -> str:
        if self.high == math.inf and not self.high_closed:
            return f"{'≥' if self.low_closed else '>'} {self.text[1:].split(',')[0].strip()}"
        return f"in {self.text}"


def _bound(text: str) -> float:
    base, power, exponent = text.partition("**")
    number = float(base) if not power else float(int(base) ** int(exponent))
    return int(number) if number.is_integer() else number


def _in_range(value: Any, allowed: _Range | None, key: str, hint: str = "") -> Any:
    """``value`` if it lies in ``allowed`` (a float: and is finite, unless ``allowed`` includes an infinity)."""
    is_float = isinstance(value, float)
    if is_float and not math.isfinite(value):
        ok = allowed is not None and value in allowed
    else:
        ok = allowed is None or value in allowed
    if ok:
        return value
    kind = ("finite number" if allowed is None or math.inf not in allowed else "number") if is_float else "whole number"
    where = f" {allowed}" if allowed is not None else ""
    raise ConfigError(f"{key}: must be a {kind}{where}, got {value!r}" + (f"; {hint}" if hint else ""))


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
