"""Training: a typed YAML recipe in, a run folder out (see README, "Training")."""

from loralab.train.merge_run import merge_run
from loralab.train.recipe import Recipe, load_recipe, recipe_from_dict
from loralab.train.trainer import TrainingDiverged, TrainResult, resume, train

__all__ = ["Recipe", "TrainResult", "TrainingDiverged", "load_recipe", "merge_run", "recipe_from_dict", "resume", "train"]
