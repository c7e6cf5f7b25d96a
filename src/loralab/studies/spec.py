"""A study file: one base recipe, shared overrides, and the trials that vary it.

    name: rank-sweep                 # the study's folder: <output_dir>/<name>/
    recipe: recipes/quickstart.yaml  # a recipe file, or a shipped recipe's name (quickstart)
    output_dir: runs                 # default: runs
    overrides: {train.max_steps: 20} # applied to every trial (a mapping, or a list of key=value)
    trials:                          # named variants, each a set of overrides
      - {name: full, overrides: {method: full, optimizer.lr: 5.0e-5}}
    grid:                            # and/or the product of axes
      lora.r: [4, 16, 64]
      lora.rslora: [false, true]
    seeds: [0, 1]                    # every trial once per seed (train.seed)

Every trial's recipe is built and validated when the study is read, so a misspelt axis, an
unknown key, duplicate trial names or an empty study is a one-line error naming the place,
before anything runs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loralab.errors import ConfigError, LoraLabError
from loralab.train.recipe import Recipe, load_recipe

KEYS = ("name", "description", "recipe", "output_dir", "overrides", "trials", "grid", "seeds")
SHIPPED_RECIPES = Path(__file__).resolve().parents[3] / "recipes"


@dataclass(frozen=True)
class Trial:
    """One run of a study: its name, the overrides that make it (study's, then its own), what it varies."""

    name: str
    overrides: tuple[str, ...]
    varied: tuple[tuple[str, Any], ...]  # (recipe key, value): the columns of results.csv


@dataclass(frozen=True)
class Study:
    name: str
    recipe_path: Path
    output_dir: Path
    trials: tuple[Trial, ...]
    source: dict  # the study file as read, for study.yaml
    description: str = ""

    @property
    def folder(self) -> Path:
        return self.output_dir / self.name

    def recipe(self, trial: Trial) -> Recipe:
        """The trial's validated recipe, its run folder ``<study folder>/<trial name>``."""
        return load_recipe(self.recipe_path, [*trial.overrides, f"name={trial.name}", f"output_dir={self.folder}"])

    @property
    def varied_keys(self) -> list[str]:
        """Every recipe key some trial varies, in first-seen order."""
        return list(dict.fromkeys(key for trial in self.trials for key, _ in trial.varied))


def load_study(path: str | Path) -> Study:
    """Read and validate a study file (every trial's recipe included)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study {str(path)!r} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a valid YAML file ({str(err).splitlines()[0]})") from None
    return study_from_dict(raw, str(path), base=path.parent)


def study_from_dict(raw: Any, source: str = "study", base: Path = Path(".")) -> Study:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a study is a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not _safe_name(name):
        raise ConfigError(f"{source}: name must be a folder name (letters, digits, . _ - =), got {name!r}")
    if "recipe" not in raw:
        raise ConfigError(f"{source}: recipe is missing (a recipe file, or a shipped one: {', '.join(shipped_recipes())})")
    recipe_path = _recipe_path(raw["recipe"], base, source)
    shared = _overrides(raw.get("overrides"), f"{source}: overrides")
    seeds = raw.get("seeds", [None])
    if not isinstance(seeds, list) or not seeds or not all(s is None or (isinstance(s, int) and s >= 0) for s in seeds):
        raise ConfigError(f"{source}: seeds must be a non-empty list of integers ≥ 0")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{source}: seeds has duplicates: {seeds}")
    variants = _explicit_trials(raw.get("trials"), source) + _grid_trials(raw.get("grid"), source)
    if not variants:
        raise ConfigError(f"{source}: the study has no trials: give trials (a list) and/or grid (axes with values)")
    trials = []
    for trial_name, own, varied in variants:
        for seed in seeds:
            suffix = "" if seed is None or len(seeds) == 1 else f"-seed{seed}"
            seed_override = [] if seed is None else [f"train.seed={seed}"]
            with_seed = varied + ((("train.seed", seed),) if seed is not None and len(seeds) > 1 else ())
            trials.append(Trial(trial_name + suffix, tuple(shared + own + seed_override), with_seed))
    names = [t.name for t in trials]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: duplicate trial names {duplicates}")
    output_dir = raw.get("output_dir", "runs")
    if not isinstance(output_dir, str) or not output_dir.strip():
        raise ConfigError(f"{source}: output_dir must be a folder path")
    description = raw.get("description", "")
    study = Study(name, recipe_path, Path(output_dir), tuple(trials), raw, str(description or ""))
    for trial in trials:
        try:
            study.recipe(trial)
        except LoraLabError as err:
            raise ConfigError(f"{source}: trial {trial.name!r}: {err}") from None
    return study


def shipped_recipes() -> list[str]:
    return sorted(p.stem for p in SHIPPED_RECIPES.glob("*.yaml")) if SHIPPED_RECIPES.is_dir() else []


def _recipe_path(value: Any, base: Path, source: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: recipe must be a recipe file or a shipped recipe's name")
    for candidate in (Path(value), base / value, SHIPPED_RECIPES / value, SHIPPED_RECIPES / f"{value}.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{source}: recipe {value!r} is neither a file nor a shipped recipe ({', '.join(shipped_recipes())})")


def _overrides(value: Any, where: str) -> list[str]:
    """A mapping {key: value} or a list of ``key=value`` strings → ``key=value`` strings."""
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) and ("=" in v or v.startswith("~")) for v in value):
        return list(value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return [f"{key}={_yaml_value(v)}" for key, v in value.items()]
    raise ConfigError(f"{where}: give a mapping of recipe keys to values (lora.r: 16) or a list of key=value")


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _explicit_trials(value: Any, source: str) -> list[tuple[str, list[str], tuple]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{source}: trials must be a list of {{name, overrides}}")
    out = []
    for i, item in enumerate(value):
        where = f"{source}: trials[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "overrides"} or "name" not in item:
            raise ConfigError(f"{where}: a trial is {{name: ..., overrides: {{key: value}}}}")
        if not isinstance(item["name"], str) or not _safe_name(item["name"]):
            raise ConfigError(f"{where}: name must be a folder name (letters, digits, . _ - =), got {item['name']!r}")
        overrides = _overrides(item.get("overrides"), where)
        varied = tuple((o.split("=", 1)[0], yaml.safe_load(o.split("=", 1)[1])) for o in overrides if "=" in o)
        out.append((item["name"], overrides, varied))
    return out


def _grid_trials(value: Any, source: str) -> list[tuple[str, list[str], tuple]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{source}: grid must map recipe keys to lists of values (lora.r: [4, 16])")
    for key, values in value.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid.{key} must be a non-empty list of values")
    keys = list(value)
    out = []
    for combo in itertools.product(*(value[k] for k in keys)):
        varied = tuple(zip(keys, combo))
        name = "_".join(f"{key.rsplit('.', 1)[-1]}={_name_part(v)}" for key, v in varied)
        out.append((name, [f"{key}={_yaml_value(v)}" for key, v in varied], varied))
    return out


def _name_part(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", _yaml_value(value)).strip("-") or "x"


def _safe_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=-]*", name))
