"""A byte-level BPE tokenizer (GPT-2 style, as SmolLM2's) as llama.cpp's ``tokenizer.ggml.*`` keys.

llama.cpp rebuilds the tokenizer from: the model kind (``gpt2``: byte-level BPE), the pre-tokenizer
(how text is split before merging; named, not described, so only known ones can be written), the
tokens by id with their types (normal, control = special added token, user-defined = other added
token, unused = padding up to the embedding's rows), the merges, the special ids, whether BOS/EOS
are added, and the chat template.
"""

from __future__ import annotations

import json
from typing import Any

from gguf import GGUFWriter, TokenType

from loralab.export.errors import ExportError

_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
#: llama.cpp's pre-tokenizer names, by the Hugging Face pre-tokenizer that splits text the same way
_KNOWN_PRE = (
    # SmolLM / SmolLM2: every digit alone, then GPT-2's regex
    ("smollm", {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]}),
    ("gpt-2", _BYTE_LEVEL),
)


def _matches(found: Any, pattern: Any) -> bool:
    """Whether ``found`` has every key of ``pattern`` with the same value (lists element by element)."""
    if isinstance(pattern, dict):
        return isinstance(found, dict) and all(_matches(found.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(found, list) and len(found) == len(pattern) and all(map(_matches, found, pattern))
    return found == pattern


def tokenizer_fields(tokenizer: Any, n_vocab: int) -> dict[str, Any]:
    """Everything written about ``tokenizer`` (checked, nothing written yet); ExportError if llama.cpp cannot have it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportError("GGUF export needs a fast (tokenizers) tokenizer; this model's has no tokenizer.json")
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or not _matches(spec.get("decoder"), {"type": "ByteLevel"}):
        raise ExportError(f"GGUF export supports byte-level BPE tokenizers (GPT-2 style, as SmolLM2's); "
                          f"this one is {model.get('type')!r}; convert with llama.cpp's convert_hf_to_gguf.py")  # fmt: skip
    pre = next((name for name, pattern in _KNOWN_PRE if _matches(spec.get("pre_tokenizer"), pattern)), None)
    if pre is None:
        raise ExportError("GGUF export: this tokenizer splits text in a way loralab cannot name for llama.cpp "
                          "(known: SmolLM2's, GPT-2's); convert with llama.cpp's convert_hf_to_gguf.py")  # fmt: skip

    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= n_vocab:
        raise ExportError(f"GGUF export: the tokenizer has ids up to {max(vocab.values())} but the model only "
                          f"{n_vocab} embeddings (resize the embeddings first)")  # fmt: skip
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [int(TokenType.UNUSED)] * n_vocab
    for token, index in vocab.items():
        tokens[index], types[index] = token, int(TokenType.NORMAL)
    for index, added in tokenizer.added_tokens_decoder.items():
        types[index] = int(TokenType.CONTROL if added.special else TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    with_special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = {"bos": bos, "eos": eos, "unk": tokenizer.unk_token_id, "pad": tokenizer.pad_token_id}
    template = getattr(tokenizer, "chat_template", None)
    return {
        "pre": pre,
        "tokens": tokens,
        "types": types,
        "merges": merges,
        "ids": {k: v for k, v in ids.items() if v is not None},
        "add_bos": bos is not None and len(with_special) > len(plain) and with_special[0] == bos,
        "add_eos": eos is not None and len(with_special) > len(plain) and with_special[-1] == eos,
        "chat_template": template if isinstance(template, str) else None,
    }


def add_tokenizer(writer: GGUFWriter, fields: dict[str, Any]) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(fields["pre"])
    writer.add_token_list(fields["tokens"])
    writer.add_token_types(fields["types"])
    writer.add_token_merges(fields["merges"])
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
              "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id}  # fmt: skip
    for kind, token_id in fields["ids"].items():
        adders[kind](int(token_id))
    writer.add_add_bos_token(bool(fields["add_bos"]))
    writer.add_add_eos_token(bool(fields["add_eos"]))
    if fields["chat_template"]:
        writer.add_chat_template(fields["chat_template"])
