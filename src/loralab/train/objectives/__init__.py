"""Training objectives as one table (see :mod:`.base`); a recipe names one with ``train.objective``."""

from loralab.train.objectives.base import Objective, ObjectiveOutput
from loralab.train.objectives.supervised import SupervisedObjective

#: objective name → the objective
OBJECTIVES: dict[str, Objective] = {objective.name: objective for objective in (SupervisedObjective(),)}

__all__ = ["OBJECTIVES", "Objective", "ObjectiveOutput", "SupervisedObjective"]
