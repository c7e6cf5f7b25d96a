"""The loralab command: user mistakes give one clear line and status 2, never a stack trace."""

import loralab
from loralab.cli import main


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_user_error_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["adapter-info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loralab: error:") and "does not exist" in err and "Traceback" not in err


def test_adapter_info_describes_a_saved_adapter(tmp_path, capsys):
    from loralab.models import tiny_model

    model = tiny_model("llama")
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"]))
    loralab.save_adapter(model, tmp_path)
    assert main(["adapter-info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "r=2" in out and "model.layers.1.self_attn.q_proj: A (2, 32), B (32, 2)" in out


def test_help_lists_commands(capsys):
    assert main([]) == 0
    assert "adapter-info" in capsys.readouterr().out
