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
    one_at_a_time:                   # and/or one axis at a time around the centre (the recipe
      optimizer.lr: [1.0e-4, 1.0e-2] #   with the shared overrides): a trial `center`, then one
      lora.r: [4, 64]                #   per value that differs from the centre's
    seeds: [0, 1]                    # every trial once per seed (train.seed)
    analyze:                         # weight-update analyses of finished trials (studies/analyses.py)
      spectrum: all                  #   every trial, or a list of trial names
      subspace: {pairs: [[r=4, r=64]], of: [A, delta-left]}
    plots:                           # metric against an axis, one line per value of `by` (studies/axis_plot.py)
      - {metric: arith/accuracy, x: lora.r, by: lora.rslora, best_over: [optimizer.lr]}
      - {metric: train/loss, x: step, by: lora.r, where: {lora.rslora: true}}  # curves (studies/step_plot.py)

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
from loralab.studies.options import Analyses, AxisPlot, parse_analyses, parse_plots
from loralab.train.recipe import Recipe, load_recipe

KEYS = ("name", "description", "recipe", "output_dir", "overrides", "trials", "grid", "one_at_a_time", "seeds", "analyze", "plots")
CENTER = "center"
RESERVED = ("logs", "analysis")  # folders of the study beside its trials
SHIPPED_RECIPES = Path(__file__).resolve().parents[3] / "recipes"


@dataclass(frozen=True)
class Trial:
    """One run of a study: its name, the overrides that make it (study's, then its own), what it varies."""

    name: str
    overrides: tuple[str, ...]
    varied: tuple[tuple[str, Any], ...]  # (recipe key, value): the columns of results.csv
    group: str = ""  # the name without its seed suffix: trials of one group differ only in train.seed

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.name)


@dataclass(frozen=True)
class Study:
    name: str
    recipe_path: Path
    output_dir: Path
    trials: tuple[Trial, ...]
    source: dict  # the study file as read, for study.yaml
    description: str = ""
    center: tuple[tuple[str, Any], ...] = ()  # the centre's value of each one-at-a-time axis
    analyses: Analyses | None = None
    plots: tuple[AxisPlot, ...] = ()

    @property
    def folder(self) -> Path:
        return self.output_dir / self.name

    def overrides(self, trial: Trial) -> list[str]:
        """Every override that turns the base recipe into the trial's, its name and run folder included."""
        return [*trial.overrides, f"name={trial.name}", f"output_dir={self.folder}"]

    def recipe(self, trial: Trial) -> Recipe:
        """The trial's validated recipe, its run folder ``<study folder>/<trial name>``."""
        return load_recipe(self.recipe_path, self.overrides(trial))

    def values(self, trial: Trial) -> dict[str, Any]:
        """The trial's value of every key some trial varies, read from its resolved recipe (None: not used)."""
        resolved = self.recipe(trial).to_dict()
        return {key: recipe_value(resolved, key) for key in self.varied_keys}

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
    center = _center(raw.get("one_at_a_time"), recipe_path, shared, source)
    variants = (_explicit_trials(raw.get("trials"), source) + _grid_trials(raw.get("grid"), source)
                + _one_at_a_time_trials(raw.get("one_at_a_time"), center, source))  # fmt: skip
    if not variants:
        raise ConfigError(f"{source}: the study has no trials: give trials (a list), grid or one_at_a_time (axes with values)")
    trials = []
    for trial_name, own, varied in variants:
        for seed in seeds:
            suffix = "" if seed is None or len(seeds) == 1 else f"-seed{seed}"
            seed_override = [] if seed is None else [f"train.seed={seed}"]
            with_seed = varied + ((("train.seed", seed),) if seed is not None and len(seeds) > 1 else ())
            trials.append(Trial(trial_name + suffix, tuple(shared + own + seed_override), with_seed, trial_name))
    names = [t.name for t in trials]
    reserved = sorted(set(names) & set(RESERVED))
    if reserved:
        raise ConfigError(f"{source}: trial name {reserved[0]!r} is taken by the study's own folder; choose another name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: duplicate trial names {duplicates}")
    output_dir = raw.get("output_dir", "runs")
    if not isinstance(output_dir, str) or not output_dir.strip():
        raise ConfigError(f"{source}: output_dir must be a folder path")
    description = raw.get("description", "")
    names = set(names)
    study = Study(name, recipe_path, Path(output_dir), tuple(trials), raw, str(description or ""), tuple(center.items()),
                  parse_analyses(raw.get("analyze"), names, source), parse_plots(raw.get("plots"), source))  # fmt: skip
    for i, axis_plot in enumerate(study.plots):
        for key in axis_plot.recipe_keys:
            if key not in study.varied_keys:
                raise ConfigError(f"{source}: plots[{i}]: {key!r} is not a key the trials vary ({', '.join(study.varied_keys)})")
    for trial in trials:
        try:
            study.recipe(trial)
        except LoraLabError as err:
            raise ConfigError(f"{source}: trial {trial.name!r}: {err}") from None
    return study


def _center(value: Any, recipe_path: Path, shared: list[str], source: str) -> dict[str, Any]:
    """The centre's value of every one-at-a-time axis: the base recipe with the shared overrides."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{source}: one_at_a_time must map recipe keys to lists of values (optimizer.lr: [1.0e-4, 1.0e-2])")
    try:
        recipe = load_recipe(recipe_path, shared).to_dict()
    except LoraLabError as err:
        raise ConfigError(f"{source}: the centre (recipe with the shared overrides): {err}") from None
    center = {}
    for key, values in value.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: one_at_a_time.{key} must be a non-empty list of values")
        center[key] = recipe_value(recipe, key)
    return center


def recipe_value(recipe: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of a recipe's ``to_dict()``, None where the recipe has none."""
    found: Any = recipe
    for part in key.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found


def _one_at_a_time_trials(value: Any, center: dict[str, Any], source: str) -> list[tuple[str, list[str], tuple]]:
    """``center``, then one trial per (axis, value ≠ centre's); every trial names all axes' values."""
    if not center:
        return []
    out = [(CENTER, [], tuple(center.items()))]
    for key, values in value.items():
        for v in values:
            if _yaml_value(v) == _yaml_value(center[key]):
                continue
            varied = tuple((k, v if k == key else c) for k, c in center.items())
            out.append((f"{key.rsplit('.', 1)[-1]}={_name_part(v)}", [f"{key}={_yaml_value(v)}"], varied))
    return out


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
        pairs = [(o.split("=", 1)[0], yaml.safe_load(o.split("=", 1)[1])) for o in overrides if "=" in o]
        varied = tuple((k, v) for k, v in pairs if v is not None and not isinstance(v, dict))  # not `lora: null`
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
