"""``loralab analyze``: tables, JSON and PNG files; user mistakes are one line, status 2."""

import json

from loralab.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_spectrum_command_writes_json_and_plots(make_full_run, capsys):
    run = make_full_run(steps=(10, 20))
    assert main(["analyze", "spectrum", str(run), "--over-training", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rank ΔW 50%/90%/99%" in out and "q_proj" in out and "over training" in out
    data = json.loads((run / "analysis" / "spectrum.json").read_text())
    assert data["method"] == "full" and len(data["matrices"]) == 14 and [p["step"] for p in data["over_training"]] == [10, 20, None]
    assert set(data["matrices"][0]["delta_ranks"]) == {"50%", "90%", "99%"}
    for name in ("spectra.png", "rank90.png", "rank_over_training.png"):
        assert (run / "analysis" / name).read_bytes().startswith(PNG)


def test_subspace_and_amplification_commands(make_lora_run, tmp_path, capsys):
    a, b = make_lora_run("r8", r=8), make_lora_run("r2", r=2, seed=4)
    out = tmp_path / "out"
    assert main(["analyze", "subspace", str(a), str(b), "--out", str(out), "--no-progress", "--per-module"]) == 0
    assert "model.layers.1.mlp.down_proj" in capsys.readouterr().out
    data = json.loads((out / "subspace-vs-r2.json").read_text())
    assert data["of"] == "delta-left" and len(data["modules"][0]["phi"]) == 8 and len(data["modules"][0]["phi"][0]) == 2
    assert (out / "subspace-vs-r2-layer1.png").read_bytes().startswith(PNG)
    assert (out / "subspace-vs-r2-mean.png").read_bytes().startswith(PNG)
    assert main(["analyze", "amplification", str(a), "--no-progress"]) == 0
    assert "factor" in capsys.readouterr().out
    assert json.loads((a / "analysis" / "amplification.json").read_text())["modules"][0]["r"] == 8
    assert (a / "analysis" / "amplification.png").read_bytes().startswith(PNG)


def test_user_mistakes_are_one_line(make_lora_run, make_full_run, tmp_path, capsys):
    def error(argv) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("loralab: error:") and "Traceback" not in err and err.count("\n") == 1
        return err

    lora, gpt2, full = make_lora_run(), make_lora_run("g", base_name="tiny-gpt2"), make_full_run()
    capsys.readouterr()
    assert "does not exist" in error(["analyze", "spectrum", str(tmp_path / "missing")])
    assert "no complete checkpoint at step 5" in error(["analyze", "spectrum", str(lora), "--step", "5", "--no-progress"])
    assert "different base models" in error(["analyze", "subspace", str(lora), str(gpt2)])
    assert "no adapter" in error(["analyze", "subspace", str(lora), str(full), "--of", "A"])
    assert "--fractions" in error(["analyze", "spectrum", str(lora), "--fractions", "half"])


def test_help_lists_analyze(capsys):
    assert main([]) == 0
    assert "analyze" in capsys.readouterr().out
