"""Atomic cache folders and file-keyed cache names."""

import os
import time

import pytest

from loralab.models.cache import atomic_save, file_cache_key


def _write(text):
    def save(folder):
        (folder / "a.txt").write_text(text)
        (folder / "b.txt").write_text(text)

    return save


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if ".tmp" in p.name]


def test_atomic_save_creates_a_complete_folder(tmp_path):
    target = tmp_path / "deep" / "model"
    atomic_save(_write("x"), target)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    assert _leftovers(target.parent) == []


def test_failed_save_leaves_nothing(tmp_path):
    target = tmp_path / "model"

    def crash(folder):
        (folder / "a.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(crash, target)
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_first_writer_wins_a_race(tmp_path):
    target = tmp_path / "model"

    def save_while_another_finishes(folder):
        _write("ours")(folder)
        atomic_save(_write("theirs"), target)  # another process completes first

    atomic_save(save_while_another_finishes, target)
    assert (target / "a.txt").read_text() == "theirs"
    assert _leftovers(tmp_path) == []


def test_temps_of_killed_saves_are_cleaned_up_later(tmp_path):
    target = tmp_path / "model"
    stale, recent = tmp_path / ".model.tmp_killed", tmp_path / ".model.tmp_running"
    for folder in (stale, recent):
        folder.mkdir()
    day_ago = time.time() - 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    atomic_save(_write("x"), target)
    assert not stale.exists()
    assert recent.exists()  # may belong to a save still in progress


def test_file_cache_key_follows_path_size_and_mtime(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"1234")
    key = file_cache_key(path)
    assert key.startswith("m-") and key == file_cache_key(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = file_cache_key(path)
    path.write_bytes(b"12345")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    resized = file_cache_key(path)
    copy = tmp_path / "other" / "m.gguf"
    copy.parent.mkdir()
    copy.write_bytes(b"12345")
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert len({key, touched, resized, file_cache_key(copy)}) == 4
