import random

import pytest
import torch

from loralab.errors import LoraLabError
from loralab.train.checkpoint import complete_checkpoints, latest_checkpoint, load_checkpoint, save_checkpoint


def _state():
    return {"optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 0.1}]},
            "rng": torch.get_rng_state(), "python_rng": list(random.getstate()[1]), "position": 17}  # fmt: skip


def test_round_trip_and_keep_last_k(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"w": torch.full((2, 2), float(step))}, _state(), keep=2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-00000020", "step-00000030"]
    step, tensors, state = load_checkpoint(latest_checkpoint(tmp_path))
    assert step == 30 and torch.equal(tensors["w"], torch.full((2, 2), 30.0))
    assert state["position"] == 17 and torch.equal(state["rng"], torch.get_rng_state())


def test_half_written_checkpoint_is_ignored(tmp_path):
    save_checkpoint(tmp_path, 10, {"w": torch.zeros(1)}, _state())
    # A process killed mid-write leaves a temporary folder, or a step folder without its marker.
    (tmp_path / ".step-00000020.tmp999").mkdir()
    (tmp_path / ".step-00000020.tmp999" / "tensors.safetensors").write_bytes(b"\0" * 10)
    (tmp_path / "step-00000030").mkdir()
    assert latest_checkpoint(tmp_path).name == "step-00000010"
    assert load_checkpoint(latest_checkpoint(tmp_path))[0] == 10
    with pytest.raises(LoraLabError, match="not a complete checkpoint"):
        load_checkpoint(tmp_path / "step-00000030")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, 5, {"w": torch.zeros(3)}, _state())
    (path / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(LoraLabError, match="cannot be read"):
        load_checkpoint(path)
