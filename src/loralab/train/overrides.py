"""Command-line overrides of recipe fields: ``train.lr=1e-4 lora.r=32 eval.tasks=[arith]``.

The key is a dotted path into the recipe mapping; the value is read as YAML (numbers,
booleans, lists, ``null``). ``~key`` removes a key, so its default applies again
(``~train.max_steps``: train for ``train.epochs``; ``train.max_steps=null`` does the same).
Overrides apply to the raw mapping, so the usual validation then checks them like any other field.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from loralab.errors import ConfigError


#: the value of a ``~key`` override: remove the key
REMOVE = object()


def _key_parts(text: str, key: str) -> list[str]:
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {text!r}: the key {key!r} has an empty part")
    return parts


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` → (["a", "b"], 3); ``"~a.b"`` → (["a", "b"], REMOVE)."""
    if text.strip().startswith("~"):
        key = text.strip()[1:]
        if "=" in key or not key.strip():
            raise ConfigError(f"override {text!r}: ~key removes a key and takes no value, e.g. ~train.max_steps")
        return _key_parts(text, key), REMOVE
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected key=value (or ~key to remove one), e.g. train.max_steps=10")
    parts = _key_parts(text, key)
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def apply_overrides(raw: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """A copy of ``raw`` with each ``key=value`` set (intermediate mappings are created) and each ``~key`` removed."""
    if not overrides:
        return raw
    if not isinstance(raw, dict):
        raise ConfigError("a recipe is a YAML mapping of sections")
    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None and value is REMOVE:
                raise ConfigError(f"override {text!r}: the recipe has no {'.'.join(parts)} to remove")
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[: depth + 1])} is a value, not a section")
            node = child
        if value is not REMOVE:
            node[parts[-1]] = value
        elif parts[-1] in node:
            del node[parts[-1]]
        else:
            raise ConfigError(f"override {text!r}: the recipe has no {'.'.join(parts)} to remove")
    return out
