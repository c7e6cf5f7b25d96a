"""loralab adapters load with the one-liners of other tools, offline: PEFT's ``AutoPeftModelForCausalLM``
and transformers' ``AutoModelForCausalLM`` on the adapter folder, giving loralab's logits; the bundled
model resolves by its hub id from the local Hugging Face cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import loralab
from loralab.models import load_model
from loralab.models.bundled import BUNDLED_HUB_ID, offer_to_hub_cache
from loralab.models.hub_cache import hub_cache_repo, place_in_hub_cache

TEXT = "The capital of France is Paris. 12 + 30 = 42."


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty hub cache in tmp_path (HF_HOME too) with the hub switched off, as a user without network has."""
    from huggingface_hub import constants

    folder = tmp_path / "hf-home" / "hub"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(folder.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    from transformers.utils import hub

    monkeypatch.setattr(hub, "TRANSFORMERS_CACHE", str(folder), raising=False)  # transformers 4.x: read at import
    return folder


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def _adapter_model(name: str, randomize):
    """(model, tokenizer) of ``name`` with a non-zero rsLoRA adapter on every linear layer."""
    model, tokenizer = load_model(name)
    loralab.add_adapter(model, loralab.LoraConfig(r=4, alpha=8, rslora=True, target_modules="all-linear"))
    randomize(model, seed=2, std=0.2)
    return model, tokenizer


def _assert_one_liners_match(adapter: Path, expected: torch.Tensor, ids: torch.Tensor) -> None:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    by_peft = AutoPeftModelForCausalLM.from_pretrained(str(adapter)).eval()
    torch.testing.assert_close(_logits(by_peft, ids), expected, atol=2e-5, rtol=1e-5)
    by_transformers = AutoModelForCausalLM.from_pretrained(str(adapter)).eval()
    assert by_transformers.active_adapters()  # the adapter was loaded, not just the base
    torch.testing.assert_close(_logits(by_transformers, ids), expected, atol=2e-5, rtol=1e-5)


def test_adapter_of_a_model_folder_loads_with_peft_and_transformers(tmp_path, offline_hub, make_model, randomize):
    base = make_model("llama")
    base.save_pretrained(str(tmp_path / "base"))
    from loralab.models.bundled import load_bundled_tokenizer

    load_bundled_tokenizer().save_pretrained(str(tmp_path / "base"))
    model, _ = _adapter_model(str(tmp_path / "base"), randomize)
    loralab.save_adapter(model, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["task_type"] == "CAUSAL_LM"
    assert config["base_model_name_or_path"] == str(tmp_path / "base")
    ids = torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(1))
    expected = _logits(model, ids)
    with loralab.disabled(model):
        assert (expected - _logits(model, ids)).abs().max() > 1e-2  # a non-zero adapter
    _assert_one_liners_match(tmp_path / "adapter", expected, ids)


def test_hub_cache_placement_keeps_an_existing_entry(tmp_path, offline_hub, make_model):
    from transformers import AutoModelForCausalLM

    model = make_model("llama")
    model.save_pretrained(str(tmp_path / "model"))
    snapshot = place_in_hub_cache("someone/tiny", [tmp_path / "model"], key="v1")
    assert snapshot is not None and snapshot.parent.parent == hub_cache_repo("someone/tiny")
    assert (snapshot / "model.safetensors").stat().st_ino == (tmp_path / "model" / "model.safetensors").stat().st_ino
    ids = torch.arange(9)[None]
    torch.testing.assert_close(_logits(AutoModelForCausalLM.from_pretrained("someone/tiny"), ids), _logits(model, ids))
    ref = hub_cache_repo("someone/tiny") / "refs" / "main"
    ref.write_text("0" * 40)  # as if the user downloaded it for real
    assert place_in_hub_cache("someone/tiny", [tmp_path / "model"], key="v2") is None
    assert ref.read_text() == "0" * 40 and len(list(ref.parent.parent.glob("snapshots/*"))) == 1


def test_adapter_names_a_portable_base(tmp_path):
    model, _ = load_model("tiny-llama")
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]))
    config = json.loads((loralab.save_adapter(model, tmp_path / "a") / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-llama" and config["task_type"] == "CAUSAL_LM"


@pytest.mark.slow
def test_bundled_adapter_loads_by_hub_id_offline(tmp_path, offline_hub, smollm2, randomize):
    """SmolLM2's adapter names HuggingFaceTB/SmolLM2-135M-Instruct; loralab put it in the hub cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = smollm2
    ids = tokenizer(TEXT, return_tensors="pt")["input_ids"]
    offer_to_hub_cache("test")
    assert (hub_cache_repo(BUNDLED_HUB_ID) / "refs" / "main").is_file()
    by_hub_id = AutoModelForCausalLM.from_pretrained(BUNDLED_HUB_ID).eval()
    torch.testing.assert_close(_logits(by_hub_id, ids), _logits(model, ids), atol=1e-4, rtol=1e-5)
    assert AutoTokenizer.from_pretrained(BUNDLED_HUB_ID)(TEXT)["input_ids"] == ids[0].tolist()
    del by_hub_id

    loralab.add_adapter(model, loralab.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), name="hub")
    try:
        randomize(model, seed=3, std=0.05)
        expected = _logits(model, ids)
        loralab.save_adapter(model, tmp_path / "adapter", name="hub")
    finally:
        loralab.delete_adapter(model, "hub")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (config["base_model_name_or_path"], config["task_type"]) == (BUNDLED_HUB_ID, "CAUSAL_LM")
    assert (expected - _logits(model, ids)).abs().max() > 1e-2  # a non-zero adapter
    _assert_one_liners_match(tmp_path / "adapter", expected, ids)
