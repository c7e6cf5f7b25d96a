"""User-facing log messages (logger ``"loralab"``), shown by the CLI and the demo."""

import logging


def show_progress_messages() -> None:
    """Print the ``loralab`` logger's INFO messages (e.g. the one-time GGUF conversion) to stderr."""
    logger = logging.getLogger("loralab")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("loralab: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
