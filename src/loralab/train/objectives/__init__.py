"""Training objectives as one table (see :mod:`.base`); a recipe names one with ``train.objective``."""

from loralab.train.objectives.base import Objective, ObjectiveOutput, RunContext
from loralab.train.objectives.dpo import PreferenceObjective, PreferenceOptions
from loralab.train.objectives.supervised import SupervisedObjective

#: objective name → its class (built for a run with ``for_run``)
OBJECTIVES: dict[str, type[Objective]] = {objective.name: objective for objective in (SupervisedObjective, PreferenceObjective)}

__all__ = ["OBJECTIVES", "Objective", "ObjectiveOutput", "PreferenceObjective", "PreferenceOptions", "RunContext",
           "SupervisedObjective"]  # fmt: skip
