"""Output locations: unwritable or full disks are one-line errors, found before long work starts.

The read-only and disk-full cases are real: a small tmpfs mounted in a private mount
namespace (``unshare --mount``; skipped where the machine does not allow it). Permission
bits cannot be used: tests may run as root, whom they do not stop.
"""

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loralab.outputs import OutputError, writable_folder, write_failure

ROOT = Path(__file__).resolve().parents[1]


def test_a_file_given_as_an_output_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        writable_folder(tmp_path / "f", "output folder")


def test_write_failures_say_why(tmp_path, monkeypatch):
    full = write_failure(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "cannot write X")
    assert str(full).startswith("cannot write X: the disk is full (") and "MiB free" in str(full)
    readonly = write_failure(OSError(errno.EROFS, "Read-only file system"), tmp_path, "cannot write X")
    assert "read-only file system" in str(readonly)
    # torch.save reports a failed write as a RuntimeError without errno: the free space decides
    torch_style = RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0")
    monkeypatch.setattr("loralab.outputs.free_bytes", lambda path: 4096)
    assert "the disk is full" in str(write_failure(torch_style, tmp_path, "cannot write X"))


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _namespaces_work(), reason="needs unshare --mount (private tmpfs mounts)")


def _in_tmpfs(folder: Path, size: str, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` (sh) with a fresh tmpfs of ``size`` mounted on ``folder``, in a private mount namespace."""
    folder.mkdir(parents=True, exist_ok=True)
    loralab = f"{sys.executable} -m loralab"
    return subprocess.run(["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs {folder} && {script}".replace("LORALAB", loralab)],
                          capture_output=True, text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"),
                                                                            "OMP_NUM_THREADS": "1"})  # fmt: skip


def _recipe(tmp_path: Path, output_dir: Path, targets=("q_proj",), **train) -> Path:
    import yaml

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{a}+{a}?", "response": f"{2 * a}"}) + "\n" for a in range(8)))
    recipe = {"name": "r", "output_dir": str(output_dir), "model": {"name": "tiny-llama"},
              "lora": {"r": 2, "alpha": 4, "target_modules": list(targets)}, "data": {"path": str(data), "max_length": 64},
              "train": {"max_steps": 2, "micro_batch_size": 2, "precision": "fp32", **train}}  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _one_line_error(done: subprocess.CompletedProcess, *says: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("loralab: error:")]
    assert len(errors) == 1, done.stderr
    for text in says:
        assert text in errors[0], errors[0]


@needs_mounts
def test_read_only_output_folders(tmp_path):
    mount = tmp_path / "ro"
    recipe = _recipe(tmp_path, mount)
    run = mount / "r"
    steps = [
        f"LORALAB train {recipe} --no-progress > /dev/null",  # a real run, then the disk turns read-only
        f"mount -o remount,ro {mount}",
        f"LORALAB train {recipe} name=fresh --no-progress; echo EXIT=$?",
        f"LORALAB train --resume {run} train.max_steps=3 --no-progress; echo EXIT=$?",
        f"LORALAB merge {run} --out {mount}/merged; echo EXIT=$?",
        f"LORALAB analyze spectrum {run} --no-plots; echo EXIT=$?",
    ]
    done = _in_tmpfs(mount, "8m", " ; ".join(steps[:2]) + " && " + " ; ".join(f"({s}) 2>&1" for s in steps[2:]))
    outputs = done.stdout.split("EXIT=")
    assert len(outputs) == 5, done.stdout + done.stderr
    for out, what in zip(outputs[:4], ("run folder", "run folder", "merged model", "analysis output folder")):
        lines = [line for line in out.splitlines() if line.startswith("loralab: error:")]
        assert len(lines) == 1 and "read-only file system" in lines[0] and what in lines[0], out
        assert "Traceback" not in out
    assert all(o.startswith("2") for o in outputs[1:]), done.stdout


@needs_mounts
def test_a_full_disk_stops_the_run_with_a_clear_error_and_no_debris(tmp_path):
    mount = tmp_path / "full"
    recipe = _recipe(tmp_path, mount, targets=("lm_head",), checkpoint_every=1)  # a checkpoint of ~2 MB
    done = _in_tmpfs(mount, "600k", f"LORALAB train {recipe} --no-progress; echo EXIT=$? ; ls -a {mount}/r/checkpoints")
    assert "EXIT=2" in done.stdout, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "the disk is full" in done.stderr and "cannot write checkpoint" in done.stderr, done.stderr
    listing = done.stdout.split("EXIT=2")[1].split()
    assert not [name for name in listing if ".tmp" in name]  # the half-written checkpoint was removed
