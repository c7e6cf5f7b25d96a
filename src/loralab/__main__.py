"""``python -m loralab``: the same as the ``loralab`` command."""

from loralab.cli import run

run()
