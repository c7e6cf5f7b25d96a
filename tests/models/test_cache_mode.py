"""atomic_save's folder follows the user's umask (mkdtemp alone would leave it 0700)."""

import os
import stat

import pytest

from loralab.models.cache import atomic_save


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_atomic_save_folder_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_save(lambda folder: (folder / "f.txt").write_text("x"), tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == mode
    assert (tmp_path / "out" / "f.txt").read_text() == "x"
