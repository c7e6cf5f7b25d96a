"""``loralab compare RUN RUN ... [--out DIR] [--plot SPEC]``: a study's tables and plots for runs made separately.

Each run is a trial named after its folder; the varied keys are the recipe keys (dotted, as in
overrides) whose values differ between the runs — found by flattening each run's saved recipe.
The output folder gets ``results.csv``, ``report.md`` and the plots, as a study's folder does; ``--plot``
asks for a plot as a study file's ``plots`` entry does (``'{metric: train/loss, x: step, by: lora.r}'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.errors import ConfigError
from loralab.outputs import atomic_write, writable_folder
from loralab.studies.options import AxisPlot, parse_plots
from loralab.studies.report import ReportInputs, write_report
from loralab.studies.results import results_csv, trial_rows
from loralab.studies.summary import text
from loralab.train.runs import RunFolder

IGNORED = ("name", "output_dir")


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"lora": {"r": 8}} → {"lora.r": 8}; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def differing_keys(recipes: list[dict[str, Any]]) -> list[str]:
    """Keys whose values are not the same in every recipe (a key one recipe lacks counts as None)."""
    keys = list(dict.fromkeys(k for r in recipes for k in r if k not in IGNORED))
    return [k for k in keys if len({text(r.get(k)) for r in recipes}) > 1]


def compare_runs(runs: list[str | Path], out: str | Path, plots: tuple[AxisPlot, ...] = ()) -> tuple[Path, list[str]]:
    """Write results.csv, report.md and plots for ``runs`` into ``out``; returns (out, varied keys)."""
    if len(runs) < 2:
        raise ConfigError("loralab compare needs at least two run folders")
    folders = [RunFolder.existing(r) for r in runs]
    names = [f.path.name for f in folders]
    if len(set(names)) != len(names):
        names = [str(f.path) for f in folders]  # same folder names in different places: use the paths
    flat = [flatten(f.recipe().to_dict()) for f in folders]
    varied = differing_keys(flat)
    for spec in plots:
        for key in spec.recipe_keys:
            if key not in varied:
                raise ConfigError(f"--plot: {key!r} is not a key the runs differ in ({', '.join(varied) or 'none'})")
    rows: list[dict[str, Any]] = []
    for name, folder, recipe in zip(names, folders, flat):
        base = {"trial": name, "group": name, "status": "done" if folder.finished() else "unfinished",
                **{k: recipe.get(k) for k in varied}}  # fmt: skip
        rows += [{**base, **row} for row in trial_rows(folder)] or [base]
    out = Path(out)
    writable_folder(out, "the comparison folder")

    def write_text(path: Path, content: str) -> None:
        atomic_write(path, lambda tmp: Path(tmp).write_text(content, encoding="utf-8"))

    write_text(out / "results.csv", results_csv(rows, varied))
    write_report(ReportInputs(f"compare: {', '.join(names)}", rows, varied, plots=plots), out, write_text)
    return out, varied


def compare_main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="loralab compare", description="Tables and plots of a study for runs made separately.")
    parser.add_argument("runs", nargs="+", help="run folders")
    parser.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")
    parser.add_argument("--plot", action="append", default=[], metavar="SPEC",
                        help="a plot, as in a study file: '{metric: arith/accuracy, x: lora.r, by: lora.rslora}' or, "
                             "along training, '{metric: train/loss, x: step, by: lora.r}' (repeatable)")
    args = parser.parse_args(argv)
    out, varied = compare_runs(args.runs, args.out, _plots(args.plot))
    print(f"loralab compare: {len(args.runs)} runs differing in {', '.join(varied) or 'nothing but their names'}")
    print(f"results.csv, report.md and plots in {out}")


def _plots(given: list[str]) -> tuple[AxisPlot, ...]:
    """``--plot`` values (YAML mappings) as validated plot specs."""
    import yaml

    parsed = []
    for text_given in given:
        try:
            parsed.append(yaml.safe_load(text_given))
        except yaml.YAMLError:
            raise ConfigError(f"--plot {text_given!r}: write a mapping, e.g. '{{metric: train/loss, x: step, by: lora.r}}'") from None
    return parse_plots(parsed, "--plot") if parsed else ()
