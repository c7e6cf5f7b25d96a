"""The ``recipe_file`` fixture: tiny recipes of tests/train/conftest.py as YAML files for torchrun."""

from pathlib import Path

import pytest
from distributed_runs import SETTINGS


@pytest.fixture
def recipe_file(make_recipe, tmp_path):
    """``recipe_file(*overrides)``: the tiny recipe (see tests/train/conftest.py) written to a YAML file."""

    def write(*overrides: str, **sections) -> Path:
        recipe = make_recipe(*SETTINGS, *overrides, **sections)
        path = tmp_path / f"{recipe.name}.yaml"
        path.write_text(recipe.to_yaml())
        return path

    return write
