"""Command-line overrides of recipe fields: ``train.lr=1e-4 lora.r=32 eval.tasks=[arith]``.

The key is a dotted path into the recipe mapping; the value is read as YAML (numbers,
booleans, lists, ``null``). Overrides apply to the raw mapping, so the usual validation
then checks them like any other field.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from loralab.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` → (["a", "b"], 3)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.max_steps=10")
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {text!r}: the key {key!r} has an empty part")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def apply_overrides(raw: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """A copy of ``raw`` with each ``key=value`` set (intermediate mappings are created)."""
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
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[: depth + 1])} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out
