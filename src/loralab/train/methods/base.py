"""A training method: how it builds and prepares the model, what a run saves, how it merges.

Methods are small objects in one table (:data:`loralab.train.methods.METHODS`); the trainer,
``loralab merge``, reports and analysis ask the recipe's method instead of testing its name.
Adding a method is a file here and a line in that table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from torch import nn

from loralab.models.attention import set_attention
from loralab.models.load import load_model

if TYPE_CHECKING:  # the recipe names its method; a method only reads the recipe it is given
    from loralab.train.recipe import Recipe
    from loralab.train.runs import RunFolder

#: the name of the adapter a run trains (and saves, and merges)
ADAPTER = "default"


class Method(ABC):
    """One way of training a model (see the module docstring)."""

    name: ClassVar[str]
    #: recipe sections read by this method, beyond those every run has (model, data, optimizer, train, eval)
    sections: ClassVar[tuple[str, ...]] = ()
    #: whether the run trains an adapter on a frozen base (switching it off gives the base back)
    uses_adapter: ClassVar[bool] = False
    #: the dtype of ``loralab merge``'s output when none is asked for
    merge_dtype: ClassVar[str] = "float32"
    #: what the final output is, for reports
    output_kind: ClassVar[str]
    #: the ``distributed.strategy`` values it can train under (see :mod:`loralab.train.distributed`)
    strategies: ClassVar[tuple[str, ...]] = ("ddp",)

    def load_base(self, recipe: Recipe) -> tuple[nn.Module, Any]:
        """(model, tokenizer): the recipe's base model on its device with its attention kernel, ready for ``make_trainable``."""
        model, tokenizer = load_model(recipe.model.name, dtype=recipe.model.dtype, device=recipe.train.device)
        set_attention(model, recipe.model.attention)
        return model, tokenizer

    @abstractmethod
    def make_trainable(self, model: nn.Module, recipe: Recipe) -> None:
        """Choose what trains (requires_grad), in place."""

    @abstractmethod
    def output_folder(self, run: RunFolder) -> Path:
        """Where the final output of a run of this method lives."""

    def finished(self, run: RunFolder) -> bool:
        """Whether the run has written its final output."""
        return self.output_folder(run).is_dir() and any(self.output_folder(run).iterdir())

    @abstractmethod
    def save_final(self, model: nn.Module, tokenizer: Any, run: RunFolder) -> Path:
        """Write the final output into ``output_folder(run)``; returns that folder."""

    def checkpoint_writer(self, model: nn.Module) -> Callable[[Path], None] | None:
        """Extra files written into each checkpoint folder (besides the trainable tensors), or None."""
        return None

    def identity(self, recipe: Recipe) -> dict[str, Any]:
        """What a checkpoint must agree on with the recipe that resumes it."""
        return {"method": self.name, "model": recipe.model.name}

    @abstractmethod
    def merged_model(self, recipe: Recipe, run: RunFolder) -> tuple[nn.Module, Any]:
        """(plain model, tokenizer) computing what the trained run computes, for ``loralab merge``."""

    def notes(self, model: nn.Module) -> list[str]:
        """Lines about the prepared model for the log and the report (e.g. weight memory)."""
        return []
