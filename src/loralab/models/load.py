"""``load_model``: one entry point for the bundled model, tiny test models, folders, GGUF files and hub ids."""

from __future__ import annotations

from pathlib import Path

import torch

from loralab.errors import ModelLoadError
from loralab.models.bundled import BUNDLED_HUB_ID, bundled_model_dir, load_bundled_model
from loralab.models.device import resolve_device
from loralab.models.dtype import resolve_dtype
from loralab.models.gguf import gguf_cache_folder, load_gguf_model
from loralab.models.pretrained import load_pretrained
from loralab.models.source import ModelSource, resolve_source
from loralab.models.tiny import tiny_model
from loralab.models.tokenizer import tokenizer_for_source


def _model_for_source(source: ModelSource, tokenizer, dtype: torch.dtype):
    """Build or load the model of ``source`` in ``dtype`` (tiny models get the tokenizer's vocabulary and ids)."""
    if source.kind == "tiny":
        # No pad_token_id in the config: Llama would make it the embedding's padding_idx, zeroing the eos row.
        ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        return tiny_model(source.location, vocab_size=len(tokenizer), **ids).to(dtype)
    if source.kind == "bundled":
        return load_bundled_model(dtype)
    if source.kind == "gguf":
        path = Path(source.location)
        return load_gguf_model(path, gguf_cache_folder(path) / "model", dtype)
    return load_pretrained(source.location, f"'{source.location}'", dtype=dtype)


def load_model(name_or_path: str | Path, dtype: str | torch.dtype = "float32", device: str | torch.device = "cpu"):
    """``(model, tokenizer)`` for ``name_or_path``, the model in eval mode on ``device`` in ``dtype``.

    ``name_or_path``: ``smollm2-135m-instruct`` (bundled), ``tiny-llama``/``tiny-gpt2`` (random, bundled
    tokenizer), a model folder with config.json, a ``.gguf`` file, or a hub id (local HF cache first).
    The tokenizer always has a pad token (its eos token if it had none). ``model.name_or_path`` is
    :func:`portable_name`, which saved adapters name as their base.
    """
    torch_dtype, torch_device = resolve_dtype(dtype), resolve_device(device)
    source = resolve_source(name_or_path)
    portable = portable_name(name_or_path, source)
    if source.kind == "hub":  # from here on loaded like a folder: its cached snapshot, or the id to download
        from loralab.models.hub import resolve_hub_id

        source = ModelSource("folder", resolve_hub_id(source.location))
    tokenizer = tokenizer_for_source(source)
    model = _model_for_source(source, tokenizer, torch_dtype)
    model.config.name_or_path = portable
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    try:
        model = model.to(torch_device)
    except RuntimeError as error:  # e.g. out of GPU memory
        raise ModelLoadError(f"Could not move the model to {torch_device}: {error}") from error
    return model.eval(), tokenizer


def portable_name(name_or_path: str | Path, source: ModelSource) -> str:
    """The name other tools load this model by: the hub id of the bundled model, else the id or path as given."""
    if source.kind == "bundled":
        return BUNDLED_HUB_ID
    if source.kind in ("folder", "gguf"):
        return str(Path(str(name_or_path).strip()).expanduser())
    return str(name_or_path).strip()


def weights_folder(name_or_path: str | Path) -> Path | None:
    """The Hugging Face folder whose safetensors hold the weights ``load_model(name_or_path)`` loads.

    That is the folder itself, or the float32 conversion of the bundled model or of a GGUF file once
    made; None when there is none on disk (tiny models, hub ids, GGUF files not converted yet), where
    the model must be loaded whole to read its weights.
    """
    source = resolve_source(name_or_path)
    if source.kind == "folder":
        folder = Path(source.location)
    elif source.kind == "bundled":
        folder = bundled_model_dir()
    elif source.kind == "gguf":
        folder = gguf_cache_folder(Path(source.location)) / "model"
    else:
        return None
    has_weights = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
    return folder if has_weights and (folder / "config.json").is_file() else None
