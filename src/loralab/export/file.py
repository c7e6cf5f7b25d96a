"""Writing a filled ``GGUFWriter`` to its file: whole or not at all, write failures explained."""

from __future__ import annotations

import logging
from pathlib import Path

from gguf import GGUFWriter

from loralab.outputs import atomic_write, write_failure, writable_file


def check_output(path: str | Path, what: str) -> Path:
    """Prove ``path`` writable before any long work (OutputError if not)."""
    return writable_file(path, what)


def new_writer(arch: str) -> GGUFWriter:
    """A writer with no file yet: everything is added and checked first, written by :func:`write_file`."""
    logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)  # its "Writing the following files" lines
    return GGUFWriter(None, arch)


def write_file(writer: GGUFWriter, path: str | Path) -> Path:
    """Write header, metadata and tensors through a temporary file renamed over ``path``."""
    path = Path(path)

    def write(tmp: str) -> None:
        try:
            writer.write_header_to_file(Path(tmp))
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()

    try:
        atomic_write(path, write)
    except OSError as err:
        raise write_failure(err, path.parent, f"cannot write the GGUF file {path}") from None
    return path
