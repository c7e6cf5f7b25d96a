"""``LoraConfig``: what to adapt and how, validated on construction and never mutated."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from loralab.errors import ConfigError
from loralab.lora.variants import INIT_SCHEMES, SCALING_RULES, VARIANTS

ALL_LINEAR = "all-linear"
BIAS_MODES = ("none", "all", "lora_only")


def _as_names(value: Any, field_name: str) -> str | tuple[str, ...] | None:
    """A module selector: None, a regex string (or "all-linear"), or a list of names → tuple."""
    if value is None or isinstance(value, str):
        if isinstance(value, str):
            _check_regex(value, field_name)
        return value
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{field_name} must be a list of module names or a regex string, got {value!r}")


def _check_regex(pattern: str, field_name: str) -> None:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"{field_name}: {pattern!r} is not a valid regular expression ({err})") from None


def matches_selector(selector: str | tuple[str, ...], path: str) -> bool:
    """Whether a module path is selected (PEFT's rules, so that adapter files mean the same in both).

    A list selects a path equal to a name or ending in ``"." + name`` (``"q_proj"`` and
    ``"self_attn.q_proj"`` both select ``model.layers.0.self_attn.q_proj``); a string is a
    regex that must match the whole path.
    """
    if isinstance(selector, str):
        return re.fullmatch(selector, path) is not None
    return any(path == name or path.endswith("." + name) for name in selector)


def pattern_value(patterns: Mapping[str, Any], path: str, default: Any) -> Any:
    """The value of the first pattern matching a suffix of ``path`` at a dot (PEFT's rank_pattern rule)."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", path):
            return value
    return default


def _with_variant_flags(cls: type) -> type:
    """Give the class one ``bool = False`` field per variant flag in ``VARIANTS`` (``use_dora``), after
    its own fields, so that a new variant needs no edit here (recipes and adapter files read the flag too)."""
    for variant in VARIANTS.values():
        if variant.config_field:
            cls.__annotations__[variant.config_field] = bool
            setattr(cls, variant.config_field, False)
    return cls


@dataclass(frozen=True)
@_with_variant_flags
class LoraConfig:
    """LoRA hyper-parameters and targets (Hu et al. 2021; rsLoRA: Kalajdzievski 2023).

    A frozen layer y = W x (+ b) becomes y = W x (+ b) + scale · B A dropout(x) with
    A: (r, d_in), B: (d_out, r), B = 0 at start, and scale = alpha / r
    (alpha / sqrt(r) with ``rslora``).

    Targets: ``target_modules`` is a list of names (matched on the path's last components),
    a regex over the full path, or ``"all-linear"`` (every Linear/Conv1D but the output
    head). ``exclude_modules`` removes paths the same way; ``layers`` keeps only modules of
    these block indices (the first integer in the path). ``rank_pattern`` / ``alpha_pattern``
    map regexes (matched on a path suffix) to per-module r / alpha.

    Variants: each one in :data:`~loralab.lora.variants.VARIANTS` adds its flag as a field, e.g.
    ``use_dora`` (DoRA, Liu et al. 2024: a learned magnitude per output channel); at most one is set.
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    rslora: bool = False
    init: str = "kaiming"
    target_modules: str | tuple[str, ...] = ALL_LINEAR
    exclude_modules: str | tuple[str, ...] | None = None
    layers: tuple[int, ...] | None = None
    rank_pattern: Mapping[str, int] = field(default_factory=dict)
    alpha_pattern: Mapping[str, float] = field(default_factory=dict)
    bias: str = "none"
    modules_to_save: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        _check_rank(self.r, "r")
        _check_alpha(self.alpha, "alpha")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        flags = variant_flags()
        for flag in ("rslora", *flags):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if sum(getattr(self, flag) for flag in flags) > 1:
            raise ConfigError(f"set at most one of {', '.join(flags)} (each selects a LoRA variant)")
        if self.init not in INIT_SCHEMES:
            raise ConfigError(f"init must be one of {sorted(INIT_SCHEMES)}, got {self.init!r}")
        if self.bias not in BIAS_MODES:
            raise ConfigError(f"bias must be one of {list(BIAS_MODES)}, got {self.bias!r}")
        targets = _as_names(self.target_modules, "target_modules")
        if targets is None or len(targets) == 0:
            raise ConfigError("target_modules must name at least one module (or be 'all-linear')")
        set_("target_modules", targets)
        set_("exclude_modules", _as_names(self.exclude_modules, "exclude_modules"))
        if self.layers is not None:
            if isinstance(self.layers, int) and not isinstance(self.layers, bool):
                set_("layers", (self.layers,))
            elif not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.layers):
                raise ConfigError(f"layers must be a list of non-negative block indices, got {self.layers!r}")
            else:
                set_("layers", tuple(self.layers))
        for pattern, r in dict(self.rank_pattern).items():
            _check_regex(pattern, "rank_pattern")
            _check_rank(r, f"rank_pattern[{pattern!r}]")
        for pattern, alpha in dict(self.alpha_pattern).items():
            _check_regex(pattern, "alpha_pattern")
            _check_alpha(alpha, f"alpha_pattern[{pattern!r}]")
        set_("rank_pattern", dict(self.rank_pattern))
        set_("alpha_pattern", dict(self.alpha_pattern))
        if self.modules_to_save is not None:
            names = _as_names(self.modules_to_save, "modules_to_save")
            set_("modules_to_save", (names,) if isinstance(names, str) else names)

    @property
    def variant(self) -> str:
        """The variant this config selects (a key of ``VARIANTS``): the one whose flag is set, else plain LoRA."""
        chosen = [v.name for v in VARIANTS.values() if v.config_field and getattr(self, v.config_field)]
        return chosen[0] if chosen else next(v.name for v in VARIANTS.values() if v.config_field is None)

    # -- per-module values -------------------------------------------------------------
    def rank_for(self, path: str) -> int:
        return pattern_value(self.rank_pattern, path, self.r)

    def alpha_for(self, path: str) -> float:
        return pattern_value(self.alpha_pattern, path, self.alpha)

    def scale_for(self, path: str) -> float:
        """scale = alpha / r (or alpha / sqrt r with rsLoRA) for this module's r and alpha."""
        return SCALING_RULES["rslora" if self.rslora else "lora"](self.alpha_for(path), self.rank_for(path))

    def replace(self, **changes: Any) -> "LoraConfig":
        """A new, validated config with some fields changed (this one is never mutated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples as lists)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


def variant_flags() -> tuple[str, ...]:
    """The config fields (and adapter_config.json keys) that select a variant, from ``VARIANTS``."""
    return tuple(v.config_field for v in VARIANTS.values() if v.config_field)


def _check_rank(r: Any, name: str) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"{name} (the LoRA rank) must be an integer ≥ 1, got {r!r}")


def _check_alpha(alpha: Any, name: str) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < math.inf:
        raise ConfigError(f"{name} (the LoRA alpha) must be a finite number > 0, got {alpha!r}")
