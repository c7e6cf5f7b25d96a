"""Adapter folders: ``adapter_config.json`` + ``adapter_model.safetensors``, as PEFT reads and writes them.

Loading checks everything (config, tensor names, dtypes, values, every shape) before the model
is touched, so a file that does not fit leaves the model as it was. Pickles are never loaded.
Files are written with the permissions any new file of the user gets (0666 less the umask).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from loralab.errors import AdapterFileError, AdapterMismatchError, NoTargetsError
from loralab.lora.config import ALL_LINEAR, LoraConfig
from loralab.lora.inject import apply_plan, plan_adapter
from loralab.lora.interface import adapter_modules, check_adapter_name
from loralab.lora.layers import LoraLayer
from loralab.lora.layout import FactorLayout, factor_keys, file_layout, split_key
from loralab.lora.peft_format import CONFIG_NAME, KEY_PREFIX, WEIGHTS_NAME, AdapterFileConfig, config_from_peft, config_to_peft
from loralab.lora.registry import require_adapter
from loralab.lora.switching import trainable_biases
from loralab.lora.targets import base_modules, lora_layer_type
from loralab.lora.variants import VARIANTS
from loralab.outputs import atomic_write

#: file keys of every variant's own tensors (DoRA's lora_magnitude_vector)
_VARIANT_KEYS = tuple(key for variant in VARIANTS.values() for key in variant.file_keys.values())


@dataclass(frozen=True)
class Factors:
    """One module's tensors from a file: A: (r, d_in), B: (d_out, r), their layout, and the variant's
    own tensors by file key (``variant_tensors``, e.g. DoRA's magnitude (d_out,))."""

    A: torch.Tensor
    B: torch.Tensor
    layout: FactorLayout
    variant_tensors: dict[str, torch.Tensor]

    def file_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor by its file key, as ``LoraLayer.load_adapter_state`` takes them."""
        return {self.layout.key_A: self.A, self.layout.key_B: self.B, **self.variant_tensors}


def read_adapter(folder: str | Path) -> tuple[AdapterFileConfig, dict[str, Factors], dict[str, torch.Tensor]]:
    """(config, factors by module path, other tensors by plain state-dict key) of an adapter folder.

    "Other tensors" are saved biases, ``modules_to_save`` weights and embedding weights, keyed as
    in the plain (unwrapped) model's state dict.
    """
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if folder.is_file():
        raise AdapterFileError(f"{folder} is a file; give the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    if not folder.is_dir():
        raise AdapterFileError(f"adapter folder {folder} does not exist")
    if not config_path.is_file():
        raise AdapterFileError(f"{folder} has no {CONFIG_NAME}; is it an adapter folder?")
    if not weights_path.is_file():
        pickled = (folder / "adapter_model.bin").is_file()
        raise AdapterFileError(
            f"{folder} has no {WEIGHTS_NAME}"
            + ("; it has adapter_model.bin, a pickle, which loralab never loads (re-save it as safetensors)" if pickled else "")
        )
    try:
        raw = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AdapterFileError(f"{config_path} is not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise AdapterFileError(f"{config_path} must hold a JSON object")
    config = config_from_peft(raw, str(config_path))
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise AdapterFileError(f"{weights_path} cannot be read; it may be truncated or corrupt ({err})") from None

    parts: dict[str, dict[str, torch.Tensor]] = {}
    extra: dict[str, torch.Tensor] = {}
    for file_key, tensor in tensors.items():
        check_finite(weights_path, file_key, tensor)
        key = file_key[len(KEY_PREFIX):] if file_key.startswith(KEY_PREFIX) else file_key
        split = split_key(key, _VARIANT_KEYS)
        if split is None:
            extra[key.replace(".base_layer.", ".")] = tensor  # its dtype is checked against what it replaces
        else:
            check_float_like(weights_path, file_key, tensor)
            parts.setdefault(split[0], {})[split[1]] = tensor
    modules = {}
    variant = VARIANTS[config.lora.variant]
    for path, found in parts.items():
        layout = file_layout(set(found), config.fan_in_fan_out)
        needed = (*(layout.keys if layout is not None else factor_keys()), *variant.file_keys.values())
        if layout is None or any(key not in found for key in needed):
            raise AdapterFileError(f"{weights_path}: {path} has {sorted(found)} but needs {', '.join(needed)}"
                                   + (" (a pair of A and B)" if layout is None else ""))
        A, B = found[layout.key_A], found[layout.key_B]
        if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
            raise AdapterFileError(f"{weights_path}: {path} has A {tuple(A.shape)} and B {tuple(B.shape)}; "
                                   "they must be (r, d_in) and (d_out, r)")  # fmt: skip
        shapes = variant.parameter_shapes(A.shape[1], B.shape[0])
        for param, key in variant.file_keys.items():
            if tuple(found[key].shape) != shapes[param]:
                raise AdapterFileError(f"{weights_path}: {path}.{key} has shape {tuple(found[key].shape)}, "
                                       f"its A and B need {shapes[param]}")  # fmt: skip
        modules[path] = Factors(A, B, layout, {key: found[key] for key in variant.file_keys.values()})
    return config, modules, extra


def check_finite(source: str | Path, key: str, tensor: torch.Tensor) -> None:
    """AdapterFileError if a floating tensor holds NaN or ±inf: merged, it would poison every output.

    Checked in chunks of 2²⁴ elements, so a saved embedding or output head needs no full-size mask.
    """
    if not tensor.is_floating_point():
        return
    chunks = tensor.reshape(-1).split(1 << 24)
    if not all(torch.isfinite(c if c.element_size() > 1 else c.float()).all() for c in chunks):  # float8: no isfinite
        raise AdapterFileError(f"{source}: tensor {key} holds NaN or infinite values (did training diverge?); "
                               "use an earlier checkpoint or retrain")  # fmt: skip


def check_float_like(source: str | Path, key: str, tensor: torch.Tensor, like: torch.Tensor | None = None) -> None:
    """AdapterFileError if ``tensor`` is not floating point where ``like`` (default: a factor) is.

    Copying an integer or bool tensor into a float weight would not fail: it would truncate the
    adapter (float values saved as integers are mostly 0) without a word.
    """
    if (like is None or like.is_floating_point()) and not tensor.is_floating_point():
        raise AdapterFileError(f"{source}: tensor {key} has dtype {tensor.dtype}, but it must be floating point "
                               "(save it as float32, bfloat16 or float16)")  # fmt: skip


def save_adapter(model: nn.Module, folder: str | Path, name: str = "default") -> Path:
    """Write adapter ``name`` to ``folder`` in PEFT's format (files replaced atomically).

    ``folder`` may exist (its two adapter files are replaced) but may not be, or lie under, a file.
    """
    config = require_adapter(model, name)
    folder = Path(folder)
    blocking = next((p for p in (folder, *folder.parents) if p.exists()), None)  # the nearest existing path
    if blocking is not None and not blocking.is_dir():
        raise AdapterFileError(f"cannot save the adapter to {folder}: {blocking} is a file; "
                               f"give a folder path ({CONFIG_NAME} and {WEIGHTS_NAME} are written in it)")  # fmt: skip
    tensors: dict[str, torch.Tensor] = {}
    fan_in_fan_out = False
    lora_paths = []
    for path, module in adapter_modules(model):
        if name in module.adapter_names():
            fan_in_fan_out |= isinstance(module, LoraLayer) and module.layout.kind == "conv1d"
            if isinstance(module, LoraLayer):
                lora_paths.append(path)
            for key, tensor in module.adapter_state(name).items():
                tensors[f"{KEY_PREFIX}{path}.{key}"] = tensor
    names_of = {id(p): n for n, p in model.named_parameters()}
    for bias in trainable_biases(model, {config.bias}):
        tensors[KEY_PREFIX + names_of[id(bias)]] = bias.detach()
    base_name = getattr(getattr(model, "config", None), "name_or_path", None) or None
    file_config = AdapterFileConfig(_portable(config, lora_paths), fan_in_fan_out, base_name, task_type(model))

    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(weights, tmp, metadata={"format": "pt"}))
    text = json.dumps(config_to_peft(file_config), indent=2, sort_keys=True)
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
    return folder


def task_type(model: nn.Module) -> str | None:
    """PEFT's task type of ``model``: ``CAUSAL_LM`` for transformers' causal LMs, else None."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return "CAUSAL_LM" if type(model).__name__ in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()) else None


def _portable(config: LoraConfig, lora_paths: list[str]) -> LoraConfig:
    """The config with string targets spelled out where PEFT needs it.

    PEFT rejects ``layers_to_transform`` with a regex or ``"all-linear"`` target; listing the
    adapted modules (their last names for "all-linear", full paths for a regex) selects the same.
    """
    if config.target_modules == ALL_LINEAR:
        return config.replace(target_modules=tuple(sorted({p.split(".")[-1] for p in lora_paths})))
    if isinstance(config.target_modules, str) and config.layers is not None:
        return config.replace(target_modules=tuple(lora_paths))
    return config


def load_adapter(model: nn.Module, folder: str | Path, name: str = "default") -> str:
    """Add adapter ``name`` to ``model`` from a PEFT-format folder (written by loralab or PEFT).

    Raises AdapterMismatchError, naming the module and both shapes, when the adapter was made
    for another base; the model is then unchanged.
    """
    check_adapter_name(name)  # before reading the file
    config, modules, extra = read_adapter(folder)
    try:
        targets, copies = plan_adapter(model, config.lora, name)
    except NoTargetsError as err:
        raise AdapterMismatchError(f"adapter {folder} does not fit this model (another base?): {err}") from None
    by_path = {t.path: t for t in targets}
    missing, unexpected = sorted(set(by_path) - set(modules)), sorted(set(modules) - set(by_path))
    if missing or unexpected:
        raise AdapterMismatchError(
            f"adapter {folder} does not fit this model: "
            + (f"no weights for {', '.join(missing[:5])}; " if missing else "")
            + (f"weights for modules its config does not select here: {', '.join(unexpected[:5])}" if unexpected else "")
        )
    for path, target in by_path.items():
        layer_type = lora_layer_type(target.base)
        expected = layer_type.file_shapes(target.base, target.r, config.lora.variant)
        found = modules[path].file_tensors()
        if modules[path].layout.keys != layer_type.layout.keys:
            raise AdapterMismatchError(f"{path}: the adapter has {modules[path].layout.kind} factors but the model has a {type(target.base).__name__}")
        for key, shape in expected.items():
            if tuple(found[key].shape) != shape:
                raise AdapterMismatchError(
                    f"{path}.{key}: the adapter has shape {tuple(found[key].shape)}, this model needs {shape} "
                    f"(the base module is {type(target.base).__name__} with (d_in, d_out) = {layer_type.io_features(target.base)})"
                )
    copy_tensors, base_tensors = _split_extra(model, extra, copies, config, str(folder))

    apply_plan(model, config.lora, name, targets, copies)  # nothing has changed before this line
    live = dict(adapter_modules(model))
    for path, factors in modules.items():
        live[path].load_adapter_state(name, factors.file_tensors())
    for path, state in copy_tensors.items():
        live[path].load_adapter_state(name, state)
    with torch.no_grad():
        for param, tensor in base_tensors:
            param.copy_(tensor)
    return name


def _split_extra(model, extra, copies, config, source):
    """Sort non-factor tensors into trainable-copy states and base parameters, checking shapes."""
    copy_tensors: dict[str, dict[str, torch.Tensor]] = {path: {} for path in copies}
    plain = dict(base_modules(model))
    base_tensors = []
    for key, tensor in extra.items():
        owner = next((p for p in copies if key.startswith(p + ".")), None)
        if owner is not None:
            copy_tensors[owner][key[len(owner) + 1:]] = tensor
            continue
        path, _, param_name = key.rpartition(".")
        param = getattr(plain.get(path), param_name, None)
        if not isinstance(param, torch.Tensor):
            raise AdapterMismatchError(f"adapter {source} saves {key}, which this model does not have")
        check_float_like(source, key, tensor, param)
        if tuple(param.shape) != tuple(tensor.shape):
            raise AdapterMismatchError(f"{key}: the adapter has shape {tuple(tensor.shape)}, this model has {tuple(param.shape)}")
        base_tensors.append((param, tensor))
    for path in copies:
        like = plain[path].state_dict()
        for key, tensor in copy_tensors[path].items():
            if key in like:
                check_float_like(source, f"{path}.{key}", tensor, like[key])
        expected = {k: tuple(v.shape) for k, v in like.items()}
        found = {k: tuple(v.shape) for k, v in copy_tensors[path].items()}
        if found != expected:
            raise AdapterMismatchError(f"{path} (modules_to_save): the adapter has {found}, this model needs {expected}")
    return copy_tensors, base_tensors
