"""``AutoModelForCausalLM.from_pretrained`` that refuses incomplete checkpoints.

transformers fills weights missing from a checkpoint with random values and only warns;
a model that silently is partly random would spoil every later measurement, so it is an error here.
"""

from __future__ import annotations

from typing import Any

from loralab.errors import ModelLoadError


def load_pretrained(location: str, label: str, **kwargs: Any):
    """The causal LM at ``location`` (folder, hub id, or GGUF folder + ``gguf_file=``); ``label`` names it in errors."""
    from transformers import AutoModelForCausalLM

    try:
        model, info = AutoModelForCausalLM.from_pretrained(location, output_loading_info=True, **kwargs)
    except (OSError, ValueError, KeyError, NotImplementedError) as error:
        raise ModelLoadError(
            f"Could not load a causal language model from {label}: {error}. It must be a Hugging Face model "
            "folder (config.json + weights) or a GGUF file, of an architecture transformers supports."
        ) from error
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelLoadError(
            f"The checkpoint {label} lacks {len(missing)} weight(s) the model needs ({shown}); they would be random. "
            "The files are incomplete or do not match config.json: re-download or re-export the model."
        )
    return model
