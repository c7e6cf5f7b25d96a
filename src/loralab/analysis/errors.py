"""The analysis's user-facing error (a LoraLabError: the CLI prints it as one line)."""

from loralab.errors import LoraLabError


class AnalysisError(LoraLabError):
    """A run folder, checkpoint or pair of runs that cannot be analysed as asked."""
