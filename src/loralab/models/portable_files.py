"""Model folders that transformers 4.4x–4.5x and 5.x read alike.

transformers 5 writes rope settings only as ``rope_parameters`` and names its tokenizers
``TokenizersBackend``; transformers 4 (llama.cpp's converter pins 4.57) ignores the first, falling
back to its default rope θ (a silently different model), and cannot load the second. This adds what
4.x reads beside what 5.x reads: top-level ``rope_theta`` (``rope_scaling`` for scaled rope),
``torch_dtype``, the tokenizer class ``PreTrainedTokenizerFast`` (5.x: the same class under its old
name) with the inputs 5.x gives (no ``token_type_ids``) and the chat template inside ``tokenizer_config.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from loralab.outputs import atomic_write

logger = logging.getLogger("loralab")

#: tokenizer classes only transformers 5 knows → the name both know (read from tokenizer.json)
_V5_TOKENIZER_CLASSES = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def portable_config(raw: dict[str, Any]) -> dict[str, Any]:
    """``config.json`` with the fields transformers 4.x reads added (5.x reads ``rope_parameters`` first)."""
    out = dict(raw)
    rope = raw.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        out.setdefault("rope_theta", rope["rope_theta"])
        if rope.get("rope_type", "default") != "default":
            out.setdefault("rope_scaling", {key: value for key, value in rope.items() if key != "rope_theta"})
        if "partial_rotary_factor" in rope:
            out.setdefault("partial_rotary_factor", rope["partial_rotary_factor"])
    elif isinstance(rope, dict) and rope:
        logger.warning("config.json has per-layer rope settings (%s) that transformers 4.x does not read: "
                       "load this model with transformers >= 5", ", ".join(rope))  # fmt: skip
    if "dtype" in raw:
        out.setdefault("torch_dtype", raw["dtype"])
    return out


def portable_tokenizer_config(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``tokenizer_config.json`` naming a class both versions know, with the chat template inside."""
    out = dict(raw)
    renamed = _V5_TOKENIZER_CLASSES.get(raw.get("tokenizer_class"))
    if renamed is not None and (folder / "tokenizer.json").is_file():
        out["tokenizer_class"] = renamed
    if out.get("tokenizer_class") == "PreTrainedTokenizerFast":
        # what 5.x returns for it; 4.x's would add token_type_ids, which a causal LM's generate() refuses
        out.setdefault("model_input_names", ["input_ids", "attention_mask"])
    template = folder / "chat_template.jinja"
    if "chat_template" not in out and template.is_file():
        out["chat_template"] = template.read_text(encoding="utf-8")
    for key in ("is_local", "local_files_only"):  # where 5.x loaded it from, not settings of the tokenizer
        out.pop(key, None)
    return out


def make_portable(folder: str | Path) -> None:
    """Rewrite ``config.json`` and ``tokenizer_config.json`` of ``folder`` (where present) as above.

    Each file is replaced, never edited in place, so a hard-linked copy elsewhere keeps its content; a file
    that is portable already is left alone (so calling this on every read of a cache writes nothing).
    """
    folder = Path(folder)
    for name, rewrite in (("config.json", portable_config),
                          ("tokenizer_config.json", lambda raw: portable_tokenizer_config(raw, folder))):  # fmt: skip
        path = folder / name
        if not path.is_file():
            continue
        raw = json.loads(path.read_text(encoding="utf-8"))
        rewritten = rewrite(raw)
        if rewritten == raw:
            continue
        text = json.dumps(rewritten, indent=2, sort_keys=True) + "\n"
        atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))
