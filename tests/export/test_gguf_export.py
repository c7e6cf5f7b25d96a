"""``loralab export``: GGUF files that transformers' own GGUF reader loads with loralab's numbers.

transformers undoes llama.cpp's q/k row permutation when it reads a GGUF, so a file loaded back
through it gives loralab's logits only if the export permuted exactly as llama.cpp's converter does.
(llama.cpp itself runs the files in test_llama_cpp.py, where llama-cpp-python is at hand.)
"""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from loralab.cli import main
from loralab.export import ExportError, model_file, write_adapter_gguf, write_model_gguf
from loralab.export.llama import permute_rows
from loralab.lora import LoraConfig, add_adapter, read_adapter, save_adapter, unload
from loralab.models import load_model
from loralab.models.gguf import apply_gguf_special_tokens, gguf_scalars
from loralab.train.recipe import recipe_from_dict

TEXTS = ["Hello world, this is a test.", "<|im_start|>user\nWhat is 123 + 4567?<|im_end|>\n", "  spaces\tand\nnewlines: é, ü, 日本"]
IDS = torch.tensor([[1, 5, 9, 200, 17, 3000, 42, 49151, 7]])
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def logits(model, ids=IDS):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def read_gguf_tokenizer(path):
    """The tokenizer of a GGUF file as transformers reads it. transformers 4.57 misreads SmolLM2's (BOS prepended
    where the file says not to, EOS = BOS); loralab's reader corrects that, and so does this under 4.x."""
    loaded = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if transformers.__version__.startswith("4."):
        apply_gguf_special_tokens(loaded, path)
    return loaded


def load_gguf(path, **kwargs):
    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32, **kwargs).eval()


def rounded_to_f16(model):
    """The model with every matrix rounded to float16 (what an f16 GGUF holds; vectors stay float32)."""
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.copy_(param.half().float())
    return model


@pytest.fixture
def adapted(randomize):
    """(adapted tiny Llama, its tokenizer, its logits, base logits): a non-zero adapter on every linear layer."""
    model, tokenizer = load_model("tiny-llama")
    base = logits(model)
    add_adapter(model, LoraConfig(r=4, alpha=8, target_modules=TARGETS))
    randomize(model, std=0.3)
    return model, tokenizer, logits(model), base


@pytest.mark.parametrize("kind", ["f32", "f16"])
def test_transformers_loads_the_merged_model_with_loralabs_logits(adapted, kind, tmp_path):
    model, tokenizer, adapted_logits, base_logits = adapted
    merged = unload(model, merge=True)
    out = write_model_gguf(merged, tokenizer, tmp_path / f"tiny-{kind}.gguf", kind)

    loaded = logits(load_gguf(out))
    assert (adapted_logits - base_logits).abs().max() > 0.1  # the adapter matters...
    if kind == "f32":
        torch.testing.assert_close(loaded, adapted_logits, rtol=1e-4, atol=1e-4)  # ...and the file has it
    else:
        torch.testing.assert_close(loaded, logits(rounded_to_f16(merged)), rtol=1e-5, atol=1e-5)  # exactly f16's weights
        torch.testing.assert_close(loaded, adapted_logits, rtol=0, atol=3e-2 * adapted_logits.abs().max().item())


def test_without_llama_cpps_q_k_permutation_the_logits_are_wrong(adapted, tmp_path, monkeypatch):
    """The round trip can fail: a file with q and k rows in Hugging Face's order loads with other logits."""
    model, tokenizer, adapted_logits, _ = adapted
    merged = unload(model, merge=True)
    monkeypatch.setattr(model_file, "to_gguf_rows", lambda name, tensor, config: tensor)
    out = write_model_gguf(merged, tokenizer, tmp_path / "unpermuted.gguf", "f32")
    assert (logits(load_gguf(out)) - adapted_logits).abs().max() > 1e-2


def test_the_tokenizer_round_trips(adapted, tmp_path):
    model, tokenizer, _, _ = adapted
    out = write_model_gguf(unload(model, merge=True), tokenizer, tmp_path / "tiny.gguf", "f16")
    assert gguf_scalars(out).get("tokenizer.ggml.add_bos_token") is False  # SmolLM2's tokenizer adds no BOS
    loaded = read_gguf_tokenizer(out)
    for text in TEXTS:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"], text
    assert loaded.chat_template == tokenizer.chat_template
    assert (loaded.bos_token_id, loaded.eos_token_id) == (tokenizer.bos_token_id, tokenizer.eos_token_id)

    fields = GGUFReader(out).fields
    assert fields["tokenizer.ggml.model"].contents() == "gpt2"
    # loralab's bundled tokenizer (transformers' reading of the SmolLM2 GGUF) splits text as GPT-2 does
    assert fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert fields["general.architecture"].contents() == "llama"
    assert fields["llama.block_count"].contents() == 2
    assert fields["llama.attention.head_count_kv"].contents() == 2
    assert fields["general.file_type"].contents() == 1  # MOSTLY_F16


def test_the_pre_tokenizer_is_named_for_llama_cpp_or_refused(smol_tokenizer):
    import copy

    from tokenizers import pre_tokenizers

    from loralab.export.tokenizer import tokenizer_fields

    assert tokenizer_fields(smol_tokenizer, 49152)["pre"] == "gpt-2"
    smollm = copy.deepcopy(smol_tokenizer)  # SmolLM2's own tokenizer.json: every digit alone, then GPT-2's split
    smollm.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    assert tokenizer_fields(smollm, 49152)["pre"] == "smollm"
    smollm.backend_tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ExportError, match="cannot name"):
        tokenizer_fields(smollm, 49152)
    with pytest.raises(ExportError, match="embeddings"):
        tokenizer_fields(smol_tokenizer, 100)


def test_q8_0_export_loads_and_is_close(adapted, tmp_path):
    from gguf.quants import dequantize, quantize

    model, tokenizer, adapted_logits, _ = adapted
    merged = unload(model, merge=True)
    out = write_model_gguf(merged, tokenizer, tmp_path / "tiny-q8.gguf", "q8_0")
    types = {t.name: t.tensor_type for t in GGUFReader(out).tensors}
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.Q8_0
    assert types["blk.0.ffn_down.weight"] == GGMLQuantizationType.Q8_0  # rows of 64: two blocks
    assert types["blk.0.attn_norm.weight"] == GGMLQuantizationType.F32
    loaded = logits(load_gguf(out))

    rel = ((loaded - adapted_logits).norm() / adapted_logits.norm()).item()
    assert 0 < rel < 0.3  # quantized, not a copy; near (random tiny weights amplify rounding: about 0.14 here)
    with torch.no_grad():  # exactly llama.cpp's q8_0 rounding of every matrix (the gguf package's reference code)
        for param in merged.parameters():
            if param.dim() == 2:
                q8 = dequantize(quantize(param.numpy(), GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0)
                param.copy_(torch.from_numpy(q8).reshape(param.shape))
    torch.testing.assert_close(loaded, logits(merged), rtol=1e-5, atol=1e-5)


# -- a run: merged model and adapter through the command ----------------------------------------
def make_run(tmp_path, randomize, rslora=False):
    """A finished LoRA run folder of tiny-llama with a random non-zero adapter; returns (folder, adapted model)."""
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    lora = {"r": 4, "alpha": 8, "rslora": rslora, "target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"]}
    recipe = recipe_from_dict({"name": "tiny", "output_dir": str(tmp_path / "runs"), "method": "lora",
                               "model": {"name": "tiny-llama"}, "lora": lora, "data": {"path": str(data)}})  # fmt: skip
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(recipe.to_yaml())
    model, _ = load_model("tiny-llama")
    add_adapter(model, recipe.lora)
    randomize(model, std=0.3)
    save_adapter(model, run / "adapter")
    return run, model


def test_export_of_a_run_merges_its_adapter(tmp_path, randomize):
    run, model = make_run(tmp_path, randomize)
    out = tmp_path / "out" / "model.gguf"
    assert main(["export", str(run), "--gguf", str(out), "--type", "f32"]) == 0
    torch.testing.assert_close(logits(load_gguf(out)), logits(model), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rslora", [False, True])
def test_adapter_gguf_has_llama_cpps_names_shapes_alpha_and_the_factors(tmp_path, randomize, rslora):
    run, model = make_run(tmp_path, randomize, rslora=rslora)
    out = tmp_path / "adapter.gguf"
    assert main(["export", str(run), "--gguf-adapter", str(out)]) == 0

    reader = GGUFReader(out)
    fields = reader.fields
    assert fields["general.type"].contents() == "adapter"
    assert fields["adapter.type"].contents() == "lora"
    assert fields["general.architecture"].contents() == "llama"
    # llama.cpp scales by alpha / r: the file's alpha keeps loralab's scale (8/4, or 8/√4 with rsLoRA)
    assert fields["adapter.lora.alpha"].contents() == pytest.approx(4.0 * 4 if rslora else 8.0)
    tensors = {t.name: t for t in reader.tensors}
    gguf_names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "down_proj": "ffn_down"}
    expected = {f"blk.{i}.{n}.weight.lora_{f}" for i in range(2) for n in gguf_names.values() for f in "ab"}
    assert set(tensors) == expected

    _, modules, _ = read_adapter(run / "adapter")
    for path, factors in modules.items():
        layer, proj = path.split(".")[2], path.split(".")[-1]
        a, b = tensors[f"blk.{layer}.{gguf_names[proj]}.weight.lora_a"], tensors[f"blk.{layer}.{gguf_names[proj]}.weight.lora_b"]
        assert list(a.shape) == [factors.A.shape[1], 4] and list(b.shape) == [4, factors.B.shape[0]]  # ggml order: (d_in, r), (r, d_out)
        assert a.tensor_type == GGMLQuantizationType.F32
        np.testing.assert_array_equal(np.asarray(a.data), factors.A.numpy())
        heads = {"q_proj": 4, "k_proj": 2}.get(proj)
        B = permute_rows(factors.B, heads) if heads else factors.B  # llama.cpp's row order, as the base q/k weights
        np.testing.assert_array_equal(np.asarray(b.data), B.numpy())
        if heads:
            assert not torch.equal(B, factors.B)


def test_adapter_with_patterns_keeps_each_modules_scale(tmp_path):
    """Different alphas per module: one file alpha, B carries the ratio (scale·B·A is what llama.cpp computes)."""
    config = LoraConfig(r=4, alpha=8, target_modules=("q_proj", "v_proj"), alpha_pattern={"v_proj": 2})
    plain, _ = load_model("tiny-llama")
    add_adapter(plain, config)
    for p in plain.parameters():
        if p.requires_grad:
            p.data.normal_()
    save_adapter(plain, tmp_path / "adapter")
    file_config, modules, extra = read_adapter(tmp_path / "adapter")
    out = write_adapter_gguf(file_config, modules, extra, plain.config, tmp_path / "a.gguf")
    reader = GGUFReader(out)
    alpha = float(reader.fields["adapter.lora.alpha"].contents())
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    for path, factors in modules.items():
        layer, proj = path.split(".")[2], path.split(".")[-1]
        name = f"blk.{layer}.{'attn_q' if proj == 'q_proj' else 'attn_v'}.weight"
        delta = alpha / 4 * tensors[name + ".lora_b"] @ tensors[name + ".lora_a"]
        expected = config.scale_for(path) * factors.B @ factors.A
        if proj == "q_proj":
            expected = permute_rows(expected, 4)
        np.testing.assert_allclose(delta, expected.numpy(), rtol=1e-5, atol=1e-6)


# -- user mistakes: one line, exit status 2, nothing written --------------------------------------
def test_mistakes_are_one_line_errors(tmp_path, randomize, capsys):
    run, _ = make_run(tmp_path, randomize)
    (tmp_path / "a-file").write_text("x")
    cases = [
        ["export", str(tmp_path / "no-such-run"), "--gguf-adapter", str(tmp_path / "x.gguf")],  # missing run
        ["export", "tiny-gpt2", "--gguf", str(tmp_path / "x.gguf")],  # not Llama
        ["export", str(run), "--gguf", str(tmp_path / "x.gguf"), "--type", "q4_k"],  # unknown type
        ["export", str(run), "--gguf-adapter", str(tmp_path / "x.gguf"), "--type", "q8_0"],  # no q8_0 adapter
        ["export", str(run), "--gguf", str(tmp_path / "a-file" / "x.gguf")],  # under a file: unwritable
        ["export", str(run), "--gguf", str(tmp_path)],  # a folder
        ["export", str(run)],  # nothing asked
        ["export", "tiny-llama", "--gguf-adapter", str(tmp_path / "x.gguf")],  # a model has no run adapter
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("loralab: error: ") and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "x.gguf").exists()


def test_other_architectures_are_refused(make_model, smol_tokenizer, tmp_path):
    with pytest.raises(ExportError, match="Llama-family"):
        write_model_gguf(make_model("gpt2"), smol_tokenizer, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


# -- the bundled SmolLM2 ---------------------------------------------------------------------------
def test_smollm2_f16_round_trip(smollm2, tmp_path):
    model, tokenizer = smollm2
    out = write_model_gguf(model, tokenizer, tmp_path / "smollm2-f16.gguf", "f16")
    names = {t.name for t in GGUFReader(out).tensors}
    assert "output.weight" not in names and "token_embd.weight" in names  # tied head: llama.cpp reuses the embedding

    ids = torch.tensor([tokenizer("<|im_start|>user\nName a colour.<|im_end|>\n")["input_ids"]])
    loaded = load_gguf(out)
    assert loaded.config.tie_word_embeddings
    expected = logits(model, ids)
    got = logits(loaded, ids)
    # f16 rounding moves these logits (max about 33) by about 0.03; a wrong rope theta or q/k order by several units
    torch.testing.assert_close(got, expected, rtol=0, atol=0.1)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))
    gguf_tokenizer = read_gguf_tokenizer(out)
    for text in TEXTS:
        assert gguf_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"], text
