"""``adapter_config.json`` as Hugging Face PEFT writes and reads it, and the key layout of its tensors.

A PEFT file names tensors ``base_model.model.<module path>.<key>`` with keys
``lora_A.weight`` / ``lora_B.weight`` (linear layers), ``lora_embedding_A`` /
``lora_embedding_B`` (embeddings; see :mod:`loralab.lora.layout`), a variant's own tensors
(DoRA: ``lora_magnitude_vector``), and plain parameter names for saved biases and
``modules_to_save`` (``<path>.weight``; biases of wrapped layers as ``<path>.base_layer.bias``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from loralab.errors import AdapterFileError, ConfigError
from loralab.lora.config import LoraConfig, variant_flags

KEY_PREFIX = "base_model.model."
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"

_INIT_FROM_PEFT = {True: "kaiming", False: "kaiming", "gaussian": "gaussian"}
_INIT_TO_PEFT = {"kaiming": True, "gaussian": "gaussian"}
#: PEFT keys whose non-neutral values change the computation loralab would do.
_MATH_KEYS = (
    "lora_bias", "layer_replication", "target_parameters", "trainable_token_indices",
    "use_qalora", "alora_invocation_tokens", "use_bdlora", "megatron_config", "arrow_config",
    "kasa_config", "monteclora_config", "velora_config", "lora_ga_config",
)  # fmt: skip
#: PEFT keys that describe the file or the run, not the maths.
_INFO_KEYS = (
    "base_model_name_or_path", "revision", "task_type", "inference_mode", "auto_mapping", "peft_version",
    "megatron_core", "loftq_config", "eva_config", "corda_config", "layers_pattern", "qalora_group_size",
    "ensure_weight_tying",
)  # fmt: skip
#: PEFT key → LoraConfig field; each variant's flag (``use_dora``) has the same name in both
_FIELDS = {
    "r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "use_rslora": "rslora",
    "target_modules": "target_modules", "exclude_modules": "exclude_modules", "layers_to_transform": "layers",
    "rank_pattern": "rank_pattern", "alpha_pattern": "alpha_pattern", "bias": "bias",
    "modules_to_save": "modules_to_save", **{flag: flag for flag in variant_flags()},
}  # fmt: skip


@dataclass(frozen=True)
class AdapterFileConfig:
    """An adapter folder's config: the LoRA config plus what only the file needs."""

    lora: LoraConfig
    fan_in_fan_out: bool = False
    base_model_name_or_path: str | None = None
    #: PEFT's task type: ``CAUSAL_LM`` lets ``AutoPeftModelForCausalLM`` and transformers pick the model class
    task_type: str | None = None


def config_to_peft(config: AdapterFileConfig) -> dict[str, Any]:
    """The JSON dict PEFT's ``LoraConfig.from_pretrained`` reads."""
    lora = config.lora
    targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    exclude = lora.exclude_modules if isinstance(lora.exclude_modules, (str, type(None))) else list(lora.exclude_modules)
    return {
        "peft_type": "LORA",
        "task_type": config.task_type,
        "base_model_name_or_path": config.base_model_name_or_path,
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "use_rslora": lora.rslora,
        **{flag: getattr(lora, flag) for flag in variant_flags()},
        "init_lora_weights": _INIT_TO_PEFT[lora.init],
        "target_modules": targets,
        "exclude_modules": exclude,
        "layers_to_transform": list(lora.layers) if lora.layers is not None else None,
        "layers_pattern": None,
        "rank_pattern": dict(lora.rank_pattern),
        "alpha_pattern": dict(lora.alpha_pattern),
        "bias": lora.bias,
        "modules_to_save": list(lora.modules_to_save) if lora.modules_to_save else None,
        "fan_in_fan_out": config.fan_in_fan_out,
        "inference_mode": True,
    }


def config_from_peft(raw: dict[str, Any], source: str = CONFIG_NAME) -> AdapterFileConfig:
    """Read a PEFT (or loralab) adapter config; unknown keys warn, unsupported maths is an error."""
    if raw.get("peft_type", "LORA") != "LORA":
        raise AdapterFileError(f"{source}: peft_type is {raw.get('peft_type')!r}; loralab reads LoRA adapters only")
    for key in _MATH_KEYS:
        if raw.get(key) not in (None, False, {}, [], ""):
            raise AdapterFileError(
                f"{source}: {key}={raw[key]!r} changes how the adapter computes, which loralab does not support"
            )
    init = raw.get("init_lora_weights", True)
    if init not in _INIT_FROM_PEFT:
        raise AdapterFileError(
            f"{source}: init_lora_weights={init!r} modifies the base model's weights at initialisation; "
            "such an adapter only works on that modified base. Convert it to a plain LoRA adapter with PEFT first."
        )
    unknown = sorted(set(raw) - set(_FIELDS) - set(_MATH_KEYS) - set(_INFO_KEYS) - {"peft_type", "init_lora_weights", "fan_in_fan_out"})
    if unknown:
        warnings.warn(f"{source}: ignoring unknown key(s) {', '.join(unknown)} (written by a newer PEFT?)", stacklevel=3)
    kwargs = {ours: raw[theirs] for theirs, ours in _FIELDS.items() if raw.get(theirs) is not None}
    if "target_modules" not in kwargs:
        raise AdapterFileError(f"{source}: target_modules is missing")
    try:
        lora = LoraConfig(init=_INIT_FROM_PEFT[init], **kwargs)
    except ConfigError as err:
        raise AdapterFileError(f"{source}: {err}") from None
    return AdapterFileConfig(lora, bool(raw.get("fan_in_fan_out", False)), raw.get("base_model_name_or_path"),
                             raw.get("task_type"))
