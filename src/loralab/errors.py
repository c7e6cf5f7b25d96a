"""User-facing errors.

Every mistake a user can make (a bad config, a file that does not fit the
model, a malformed data line) raises a subclass of :class:`LoraLabError` with
a message that says what is wrong and how to fix it. The CLI prints these
messages without a stack trace; anything else is a bug and keeps its trace.
"""


class LoraLabError(Exception):
    """Base class of every error caused by user input.

    ``same_on_every_rank``: in a distributed run, whether every process meets this error alike (a recipe
    or data mistake: the same files and arguments), so one process per machine says it; False for errors
    of one rank's own (its GPU, its loss, a lost peer), which each rank that meets them says.
    """

    same_on_every_rank: bool = True


class ConfigError(LoraLabError, ValueError):
    """A configuration field has an invalid value."""


class NoTargetsError(ConfigError):
    """A LoRA config's ``target_modules`` selects no module of the model."""


class AdapterMismatchError(LoraLabError):
    """An adapter does not fit the model it is applied to."""


class AdapterFileError(LoraLabError):
    """An adapter folder is missing, truncated, corrupt or unsupported."""


class ModelLoadError(LoraLabError):
    """A model could not be found or loaded."""


class DataError(LoraLabError):
    """A data file or task definition is malformed."""
