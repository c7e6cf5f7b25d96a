"""``loralab analyze {spectrum,subspace,amplification}``: weight-update analysis of run folders.

    loralab analyze spectrum RUN [--base MODEL] [--step N] [--over-training] [--modules REGEX]
    loralab analyze subspace RUN_A RUN_B [--of auto|A|delta-left|delta-right] [--top K] [--layer L]
    loralab analyze amplification RUN [--rank R] [--seed S]

Each prints a table, writes JSON and PNG plots to ``--out`` (default ``RUN/analysis/``, RUN_A's
for subspace) and runs its SVDs in float32 (``--float64`` on request), one matrix at a time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from loralab.analysis.errors import AnalysisError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loralab analyze", description="Analyse the weight updates of fine-tuning runs.")
    commands = parser.add_subparsers(dest="analysis", required=True, metavar="{spectrum,subspace,amplification}")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--base", help="the base model (loader name or path), overriding the recipe's")
        sub.add_argument("--modules", help="only modules whose path matches this regex (searched)")
        sub.add_argument("--out", help="output folder (default: RUN/analysis)")
        sub.add_argument("--float64", action="store_true", help="run the SVDs in float64 (default float32)")
        sub.add_argument("--per-module", action="store_true", help="one table row per module, not per module type")
        sub.add_argument("--no-plots", action="store_true", help="write JSON only")
        sub.add_argument("--threads", type=int, help="CPU threads for the SVDs (default: torch's; 1 is often fastest on a busy machine)")
        sub.add_argument("--no-progress", action="store_true")

    spectrum = commands.add_parser("spectrum", help="singular values and rank at 50/90/99%% energy of ΔW, W and W_ft")
    spectrum.add_argument("run", help="a run folder")
    spectrum.add_argument("--step", type=int, help="analyse checkpoint STEP instead of the final weights")
    spectrum.add_argument("--over-training", "--checkpoints", action="store_true", help="also ΔW's ranks at every checkpoint")
    spectrum.add_argument("--fractions", default="0.5,0.9,0.99", help="energy fractions (default 0.5,0.9,0.99)")
    common(spectrum)

    subspace = commands.add_parser("subspace", help="normalised subspace similarity φ(i, j) between two runs")
    subspace.add_argument("run_a")
    subspace.add_argument("run_b")
    subspace.add_argument("--of", default="auto", choices=("auto", "A", "delta-left", "delta-right"),
                          help="whose singular vectors: left (auto) or right ones of ΔW, or right ones of the LoRA A (the paper's choice; "
                               "near random in short runs, where A has hardly left its initialisation)")  # fmt: skip
    subspace.add_argument("--top", type=int, default=64, help="compare the top K singular vectors (default 64)")
    subspace.add_argument("--layer", type=int, help="layer of the heat-map plot (default: the middle one)")
    subspace.add_argument("--step-a", type=int, help="a checkpoint of RUN_A instead of its final weights")
    subspace.add_argument("--step-b", type=int, help="a checkpoint of RUN_B instead of its final weights")
    common(subspace)

    amplification = commands.add_parser("amplification", help="‖UᵀWVᵀ‖_F for the top-r directions of ΔW, W and random")
    amplification.add_argument("run")
    amplification.add_argument("--rank", type=int, help="r (default: each module's LoRA r; 8 for full fine-tuning)")
    amplification.add_argument("--step", type=int, help="analyse checkpoint STEP instead of the final weights")
    amplification.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    common(amplification)
    return parser


def main(argv: list[str]) -> None:
    """Run ``loralab analyze``; user mistakes raise LoraLabError (the top-level CLI prints them)."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise AnalysisError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    {"spectrum": _spectrum, "subspace": _subspace, "amplification": _amplification}[args.analysis](args)


def _options(args) -> dict:
    return dict(base=args.base, modules=args.modules, dtype="float64" if args.float64 else "float32", progress=not args.no_progress)


def _suffix(step: int | None) -> str:
    return "" if step is None else f"-step-{step}"


def _spectrum(args) -> None:
    from loralab.analysis import plots
    from loralab.analysis.report import spectrum_table, training_table, write_json
    from loralab.analysis.spectrum import analyze_spectrum

    try:
        fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    except ValueError:
        raise AnalysisError(f"--fractions must be comma-separated numbers in (0, 1], got {args.fractions!r}") from None
    out = _output_folder(args.out, args.run)
    report = analyze_spectrum(args.run, step=args.step, over_training=args.over_training, fractions=fractions, **_options(args))
    suffix = _suffix(args.step)
    print(spectrum_table(report, args.per_module))
    if report.over_training:
        print("\n" + training_table(report))
    written = [write_json(report.to_dict(), out / f"spectrum{suffix}.json")]
    if not args.no_plots:
        written += [plots.plot_spectra(report, out / f"spectra{suffix}.png"), plots.plot_rank_per_layer(report, out / f"rank90{suffix}.png")]
        if report.over_training:
            written.append(plots.plot_rank_over_training(report, out / "rank_over_training.png"))
    _wrote(written, report.seconds)


def _subspace(args) -> None:
    from loralab.analysis import plots
    from loralab.analysis.report import subspace_table, write_json
    from loralab.analysis.subspace import analyze_subspace

    out = _output_folder(args.out, args.run_a)
    report = analyze_subspace(args.run_a, args.run_b, of=args.of, top=args.top, step_a=args.step_a, step_b=args.step_b, **_options(args))
    stem = f"subspace{_suffix(args.step_a)}-vs-{_safe(report.run_b)}{_suffix(args.step_b)}"
    print(subspace_table(report, args.per_module))
    written = [write_json(report.to_dict(), out / f"{stem}.json")]
    if not args.no_plots:
        layer = args.layer if args.layer is not None else plots.middle_layer(report.modules)
        written += [plots.plot_subspace(report, out / f"{stem}-layer{layer}.png", layer=layer), plots.plot_subspace(report, out / f"{stem}-mean.png", mean=True)]
    _wrote(written, report.seconds)


def _amplification(args) -> None:
    from loralab.analysis import plots
    from loralab.analysis.amplification import analyze_amplification
    from loralab.analysis.report import amplification_table, write_json

    out = _output_folder(args.out, args.run)
    report = analyze_amplification(args.run, rank=args.rank, step=args.step, seed=args.seed, **_options(args))
    suffix = _suffix(args.step)
    print(amplification_table(report, args.per_module))
    written = [write_json(report.to_dict(), out / f"amplification{suffix}.json")]
    if not args.no_plots:
        written.append(plots.plot_amplification(report, out / f"amplification{suffix}.png"))
    _wrote(written, report.seconds)


def _output_folder(out: str | None, run: str) -> Path:
    """``--out`` (default ``RUN/analysis``), proven writable before any analysis runs."""
    from loralab.outputs import writable_folder

    if out is None and not Path(run).is_dir():
        return Path(run) / "analysis"  # the analysis reports the missing run itself
    return writable_folder(Path(out) if out else Path(run) / "analysis", "analysis output folder")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _wrote(paths: list[Path], seconds: float) -> None:
    print(f"\n{seconds:.1f} s; wrote " + ", ".join(str(p) for p in paths))
