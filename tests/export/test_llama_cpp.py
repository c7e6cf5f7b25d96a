"""llama.cpp itself runs loralab's GGUF files: the merged model, and the base with the adapter GGUF (``--lora``).

Run only where llama-cpp-python is at hand (it is built from source, about 10 minutes on 2 cores, so it is not a
test dependency): importable here, or in the interpreter that ``LORALAB_LLAMA_CPP_PYTHON`` names, e.g.
``python -m venv /tmp/llama && /tmp/llama/bin/pip install llama-cpp-python`` then
``LORALAB_LLAMA_CPP_PYTHON=/tmp/llama/bin/python make test``. The ranks of llama.cpp's logits are compared with
loralab's on SmolLM2-135M with a non-zero adapter on every linear layer.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from loralab.export import write_adapter_gguf, write_model_gguf
from loralab.lora import LoraConfig, add_adapter, read_adapter, save_adapter, unload
from loralab.models import load_model

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PROMPT = "<|im_start|>user\nWhat is 17 + 25? Answer with the number.<|im_end|>\n<|im_start|>assistant\n"
NEW_TOKENS = 12

#: run in llama-cpp-python's interpreter: argv = model.gguf, lora.gguf or "", ids JSON, new tokens, prompt, out.npy,
#: "plain" (no extra CPU buffer types: llama.cpp 0.3.36's AMX repacking of Q8_0 crashes on AMX CPUs, its own
#: quantised files too); prints JSON
LLAMA_CPP = """
import json, sys
import numpy as np
import llama_cpp
from llama_cpp import Llama
model, lora, ids, new = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
if sys.argv[7] == "plain":
    defaults = llama_cpp.llama_model_default_params
    def plain():
        params = defaults()
        params.use_extra_bufts = False
        return params
    llama_cpp.llama.llama_cpp.llama_model_default_params = plain
llm = Llama(model_path=model, lora_path=lora or None, n_ctx=256, logits_all=True, verbose=False, seed=0, n_threads=1)
llm.eval(ids)
logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
greedy = []
for _ in range(new):
    token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    greedy.append(token)
    llm.eval([token])
tokens = llm.tokenize(sys.argv[5].encode(), add_bos=False, special=True)
np.save(sys.argv[6], logits)
print(json.dumps({"greedy": greedy, "tokens": tokens}))
"""


def llama_cpp_python() -> str | None:
    named = os.environ.get("LORALAB_LLAMA_CPP_PYTHON")
    if named:
        return named
    return sys.executable if importlib.util.find_spec("llama_cpp") else None


pytestmark = pytest.mark.skipif(llama_cpp_python() is None, reason="llama-cpp-python not installed (set LORALAB_LLAMA_CPP_PYTHON)")


def run_llama_cpp(tmp_path, model, lora, ids: list[int], plain: bool = False) -> tuple[np.ndarray, list[int], list[int]]:
    """(logits at every prompt position, greedy continuation, llama.cpp's tokens of PROMPT)."""
    out = tmp_path / "llama_logits.npy"
    args = [llama_cpp_python(), "-c", LLAMA_CPP, str(model), str(lora or ""), json.dumps(ids), str(NEW_TOKENS), PROMPT, str(out),
            "plain" if plain else "default"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    return np.load(out), said["greedy"], said["tokens"]


def f16_weights(model):
    """The model with every matrix rounded to float16, as an f16 GGUF holds it."""
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2 and not param.requires_grad:
                param.copy_(param.half().float())
    return model


def greedy(model, ids: list[int]) -> list[int]:
    """loralab's greedy continuation: NEW_TOKENS tokens, or up to and with the end of the turn."""
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False)
    return out[0, len(ids) :].tolist()


def same_start(llama_cpp: list[int], loralab: list[int]) -> bool:
    """llama.cpp's continuation (it goes on after the end of the turn) begins with loralab's."""
    return len(loralab) >= 2 and llama_cpp[: len(loralab)] == loralab


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """SmolLM2 with a random non-zero adapter: the base f16 GGUF, the adapter GGUF, the merged f16 GGUF, and the
    models loralab computes them with (frozen weights rounded to f16, as the files hold them)."""
    folder = tmp_path_factory.mktemp("llama_cpp")
    model, tokenizer = load_model("smollm2-135m-instruct")
    base_file = write_model_gguf(model, tokenizer, folder / "base-f16.gguf", "f16")
    torch.manual_seed(0)  # A starts random
    add_adapter(model, LoraConfig(r=8, alpha=16, target_modules=TARGETS))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    save_adapter(model, folder / "adapter")
    file_config, modules, extra = read_adapter(folder / "adapter")
    adapter_file = write_adapter_gguf(file_config, modules, extra, model.config, folder / "lora.gguf")
    adapted = f16_weights(model.eval())  # f16 base + f32 adapter: what llama.cpp computes with --lora
    ids = tokenizer(PROMPT)["input_ids"]
    with torch.no_grad():
        adapted_logits = adapted(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    adapted_greedy = greedy(adapted, ids)
    merged = unload(model, merge=True).eval()
    merged_file = write_model_gguf(merged, tokenizer, folder / "merged-f16.gguf", "f16")
    q8_file = write_model_gguf(merged, tokenizer, folder / "merged-q8_0.gguf", "q8_0")
    return {"base": base_file, "lora": adapter_file, "merged": merged_file, "q8_0": q8_file, "ids": ids, "tmp": folder,
            "adapted_logits": adapted_logits, "adapted_greedy": adapted_greedy, "merged_model": merged}  # fmt: skip


def test_llama_cpp_runs_the_merged_model_with_loralabs_logits(files):
    merged = f16_weights(files["merged_model"].requires_grad_(False))
    ids = files["ids"]
    with torch.no_grad():
        expected = merged(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    logits, continuation, tokens = run_llama_cpp(files["tmp"], files["merged"], None, ids)
    assert tokens == ids  # llama.cpp tokenises the chat prompt as loralab does
    assert np.abs(expected - files["adapted_logits"]).max() < 0.2  # merging in f16 moves little
    np.testing.assert_allclose(logits, expected, rtol=0, atol=0.15)  # logits up to ~30; a wrong rope or q/k order: units
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() > 0.95
    assert same_start(continuation, greedy(merged, ids))


def test_llama_cpp_applies_the_adapter_gguf_to_the_base(files):
    ids = files["ids"]
    base_logits, _, _ = run_llama_cpp(files["tmp"], files["base"], None, ids)
    logits, continuation, _ = run_llama_cpp(files["tmp"], files["base"], files["lora"], ids)
    expected = files["adapted_logits"]
    assert np.abs(base_logits - expected).max() > 1.0  # the adapter changes the logits...
    np.testing.assert_allclose(logits, expected, rtol=0, atol=0.15)  # ...and llama.cpp applies it as loralab does
    assert same_start(continuation, files["adapted_greedy"])


def test_llama_cpp_runs_the_q8_0_model_close_to_loralabs_logits(files):
    merged = f16_weights(files["merged_model"].requires_grad_(False))
    ids = files["ids"]
    with torch.no_grad():
        expected = merged(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    logits, _, _ = run_llama_cpp(files["tmp"], files["q8_0"], None, ids, plain=True)
    error = np.abs(logits - expected).max()
    # 8-bit blocks: 1.47 measured (logits up to ~35); a wrong block layout or scale gives errors of tens
    assert error < 3.0, error
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() > 0.75  # 0.875 measured: near ties flip
