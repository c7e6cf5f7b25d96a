"""A merged model reads the same under transformers 4.57.6 (the version llama.cpp's converter pins) as
under the installed 5.x: rope θ from config.json, and the tokenizer (ids and chat template).

transformers 4 runs in a virtual environment of its own, built once into the pytest cache
(torch, transformers==4.57.6, safetensors); without a package index the test is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from loralab.cli import main
from loralab.lora import load_adapter
from loralab.models import load_model
from loralab.models.bundled import load_bundled_tokenizer
from loralab.models.tiny import tiny_model
from loralab.train.trainer import train

TRANSFORMERS_4 = "4.57.6"
pytestmark = pytest.mark.skipif(transformers.__version__.startswith("4."), reason="compares transformers 5 with 4")
TEXTS = ["Hello world, héllo!", "  def f(x):\n\treturn x ** 2  # 日本語", "<|im_start|>user\n12 + 30?<|im_end|>"]
IDS = [[1, 5, 9, 200, 17, 3000, 42, 7, 7, 11, 40000, 3]]
CHAT = [{"role": "user", "content": "What is 12 + 30?"}]

READ = """
import json, sys, torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
assert transformers.__version__ == sys.argv[3], transformers.__version__
folder, out = sys.argv[1], sys.argv[2]
model = AutoModelForCausalLM.from_pretrained(folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
with torch.no_grad():
    logits = model(input_ids=torch.tensor(json.loads(sys.argv[4]))).logits
texts, chat = json.loads(sys.argv[5]), json.loads(sys.argv[6])
torch.save({"logits": logits, "rope_theta": model.config.rope_theta, "tokenizer": type(tokenizer).__name__,
            "ids": [tokenizer(text)["input_ids"] for text in texts],
            "chat": tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
            # what a user writes: every input the tokenizer gives goes to generate (no token_type_ids it refuses)
            "generated": model.generate(**tokenizer(texts[0], return_tensors="pt"), max_new_tokens=4, do_sample=False)}, out)
"""


@pytest.fixture(scope="session")
def transformers4_python(request) -> Path:
    """The python of a venv with transformers 4.57.6 (built on first use, then reused); skips if it cannot be built."""
    venv = Path(request.config.cache.mkdir("venvs")) / f"transformers-{TRANSFORMERS_4}"
    if not (venv / "ready").is_file():
        building = venv.with_name(venv.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(venv, ignore_errors=True)
        steps = [[sys.executable, "-m", "venv", str(building)],
                 [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  f"torch=={torch.__version__.split('+')[0]}", f"transformers=={TRANSFORMERS_4}", "safetensors"]]  # fmt: skip
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
            except subprocess.TimeoutExpired:
                pytest.skip(f"building a transformers {TRANSFORMERS_4} environment took over 20 minutes")
            if done.returncode != 0:
                shutil.rmtree(building, ignore_errors=True)
                pytest.skip(f"cannot build a transformers {TRANSFORMERS_4} environment (no package index?): "
                            f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")  # fmt: skip
        (building / "ready").write_text(TRANSFORMERS_4)
        building.rename(venv)
    return venv / "bin" / "python"


def _read_with_transformers4(python: Path, folder: Path, tmp_path: Path) -> dict:
    out = tmp_path / "read.pt"
    subprocess.run([str(python), "-c", READ, str(folder), str(out), TRANSFORMERS_4, json.dumps(IDS), json.dumps(TEXTS),
                    json.dumps(CHAT)], check=True, timeout=600)  # fmt: skip
    return torch.load(out)


@pytest.fixture
def base_folder(tmp_path, randomize) -> Path:
    """A tiny Llama with rope θ = 100000 (SmolLM2's; transformers 4's default is 10000) and SmolLM2's tokenizer;
    its weights are made larger, so that attention (and with it rope) changes the logits clearly."""
    tokenizer = load_bundled_tokenizer()
    model = tiny_model("llama", vocab_size=len(tokenizer), seed=5, rope_parameters={"rope_theta": 100000.0, "rope_type": "default"})
    randomize(model, seed=5, std=0.5)
    folder = tmp_path / "base"
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    saved.pop("model_input_names", None)  # as transformers 5 writes it for a tokenizer read from a hub folder or GGUF
    (folder / "tokenizer_config.json").write_text(json.dumps(saved))
    return folder


def test_merged_model_reads_the_same_under_transformers_4(make_recipe, base_folder, transformers4_python, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe = make_recipe("train.max_steps=2", model={"name": str(base_folder)})
    run = train(recipe, progress=False)
    out = tmp_path / "merged"
    assert main(["merge", str(run.run_dir), "--out", str(out)]) == 0

    model, tokenizer = load_model(str(base_folder))
    load_adapter(model, run.run_dir / "adapter")
    ids = torch.tensor(IDS)
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        wrong_theta = AutoModelForCausalLM.from_pretrained(str(out), rope_parameters={"rope_theta": 10000.0, "rope_type": "default"})
        assert (wrong_theta(input_ids=ids).logits - adapted).abs().max() > 1e-2  # θ matters here: the test can fail

    read = _read_with_transformers4(transformers4_python, out, tmp_path)
    assert read["rope_theta"] == 100000.0
    torch.testing.assert_close(read["logits"], adapted, rtol=1e-4, atol=1e-4)
    merged_tokenizer = AutoTokenizer.from_pretrained(str(out))  # transformers 5 reads the same files
    assert read["ids"] == [merged_tokenizer(text)["input_ids"] for text in TEXTS] == [tokenizer(t)["input_ids"] for t in TEXTS]
    assert read["chat"] == tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    expected = merged.generate(**merged_tokenizer(TEXTS[0], return_tensors="pt"), max_new_tokens=4, do_sample=False)
    assert read["generated"].tolist() == expected.tolist()


def test_a_cache_filled_under_transformers_5_reads_the_same_under_4_once_loralab_has_read_it(base_folder, transformers4_python, tmp_path):
    """A user going back to transformers 4 keeps ~/.cache/loralab: the converted model and tokenizer written by 5.x
    (rope θ only in rope_parameters, tokenizer class TokenizersBackend) are made portable when loralab reads them."""
    from loralab.models.gguf import load_gguf_model, read_cached_tokenizer

    assert json.loads((base_folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "TokenizersBackend"
    assert "rope_theta" not in json.loads((base_folder / "config.json").read_text())
    model = load_gguf_model(tmp_path / "never-read.gguf", base_folder, torch.float32)  # the cached folder is read
    tokenizer = read_cached_tokenizer(base_folder)
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(IDS)).logits
    read = _read_with_transformers4(transformers4_python, base_folder, tmp_path)
    assert read["rope_theta"] == 100000.0
    torch.testing.assert_close(read["logits"], expected, rtol=1e-4, atol=1e-4)
    assert read["ids"] == [tokenizer(text)["input_ids"] for text in TEXTS]
