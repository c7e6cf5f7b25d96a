"""Weight-update analyses over a study's finished trials (the study file's ``analyze`` section).

``spectrum``: per trial, ΔW's rank at 90 % of its energy and ‖ΔW‖/‖W‖ per module type (so full
fine-tuning's effective rank stands beside LoRA's r). ``subspace``: per pair of trials and basis,
φ(1, 1) — the overlap of the two top directions, 1 identical, 1/d for random ones — averaged over
layers per module type (the LoRA paper's Fig. 3 question: do r = 8 and r = 64 learn the same top
direction?). Each result is saved as JSON under ``<study>/analysis/`` and computed once: a re-run
of the study reuses it. Analyses of unfinished trials wait for the next run of the study.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from loralab.errors import LoraLabError
from loralab.process import say
from loralab.studies.options import Analyses
from loralab.train.runs import RunFolder

RANK_AT = "90%"


def run_analyses(analyses: Analyses | None, folder: Path, write_text: Callable[[Path, str], None],
                 *, progress: bool = True) -> list[str]:  # fmt: skip
    """Compute what is missing, return report.md lines for everything computed so far."""
    if analyses is None:
        return []
    out_dir = folder / "analysis"
    lines: list[str] = []
    spectra = {}
    for trial in analyses.spectrum:
        found = _cached(out_dir / f"spectrum-{trial}.json", folder / trial, write_text, progress,
                        lambda run: _spectrum_summary(run, progress))  # fmt: skip
        if found is not None:
            spectra[trial] = found
    if spectra:
        lines += [f"ΔW per module type: mean rank at {RANK_AT} of its energy (of at most `bound`), mean ‖ΔW‖/‖W‖.", "",
                  "| trial | module | rank | bound | ‖ΔW‖/‖W‖ |", "|---|---|---|---|---|"]  # fmt: skip
        for trial, found in spectra.items():
            for kind, s in found["by_type"].items():
                lines.append(f"| {trial} | {kind} | {s['rank']:.1f} | {s['bound']} | {s['relative_norm']:.4f} |")
        lines.append("")
    similar = []
    for a, b in analyses.subspace_pairs:
        for of in analyses.subspace_of:
            found = _cached(out_dir / f"subspace-{a}-vs-{b}-{of}.json", [folder / a, folder / b], write_text, progress,
                            lambda runs, of=of: _subspace_summary(runs, of, progress))  # fmt: skip
            if found is not None:
                similar.append((a, b, found))
    if similar:
        lines += ["Subspace similarity φ(1, 1) of the two trials' top directions, mean over layers (1: the same "
                  "direction; random: 1/d).", "", "| trials | basis | module | φ(1,1) | random |", "|---|---|---|---|---|"]  # fmt: skip
        for a, b, found in similar:
            for kind, s in found["by_type"].items():
                lines.append(f"| {a} vs {b} | {found['of']} | {kind} | {s['phi_1_1']:.3f} | {s['random_phi_1_1']:.4f} |")
        lines.append("")
    return lines


def _cached(path: Path, runs: Path | list[Path], write_text, progress: bool, compute) -> dict[str, Any] | None:
    """The saved summary at ``path``, or compute and save it once every run in ``runs`` is finished."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    needed = runs if isinstance(runs, list) else [runs]
    if not all(RunFolder(r).finished() for r in needed):
        return None
    say(f"loralab study: analysing {', '.join(r.name for r in needed)} → {path.name}")
    try:
        summary = compute(runs)
    except LoraLabError as err:  # a user-level reason (e.g. no adapter for basis A): say it, keep the study
        say(f"loralab study: {path.stem} not computed: {err}")
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(summary, indent=1) + "\n")
    return summary


def _spectrum_summary(run: Path, progress: bool) -> dict[str, Any]:
    from loralab.analysis.spectrum import analyze_spectrum

    report = analyze_spectrum(run, progress=progress)
    grouped: dict[str, list] = defaultdict(list)
    for m in report.matrices:
        grouped[m.module_type].append(m)
    by_type = {}
    for kind, found in grouped.items():
        ranks = [next(k for f, k in m.delta_ranks.items() if f"{f * 100:g}%" == RANK_AT) for m in found]
        norms = [m.relative_norm for m in found if m.relative_norm is not None]
        by_type[kind] = {"rank": sum(ranks) / len(ranks), "bound": max(m.rank_bound for m in found),
                         "relative_norm": sum(norms) / len(norms) if norms else float("nan"), "modules": len(found)}  # fmt: skip
    return {"analysis": "spectrum", "run": str(run), "method": report.method, "by_type": by_type}


def _subspace_summary(runs: list[Path], of: str, progress: bool) -> dict[str, Any]:
    from loralab.analysis.subspace import analyze_subspace

    report = analyze_subspace(runs[0], runs[1], of=of, progress=progress)
    grouped: dict[str, list] = defaultdict(list)
    for m in report.modules:
        grouped[m.module_type].append(m.summary())
    by_type = {kind: {key: sum(s[key] for s in found) / len(found) for key in ("phi_1_1", "random_phi_1_1", "phi_mean")}
               for kind, found in grouped.items()}  # fmt: skip
    return {"analysis": "subspace", "runs": [str(r) for r in runs], "of": report.of, "requested": of, "by_type": by_type}
