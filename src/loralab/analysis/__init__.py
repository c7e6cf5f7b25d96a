"""Weight-update analysis of fine-tuning runs: spectra and ranks of ΔW, subspace similarity, amplification.

Biderman et al. 2024 (full fine-tuning's ΔW is high-rank); Hu et al. 2021, Sec. 7 (subspace
similarity φ, amplification of W's directions). Plots: ``loralab.analysis.plots``; tables and JSON:
``loralab.analysis.report``; the command: ``loralab analyze``.
"""

from loralab.analysis.amplification import (
    AmplificationReport,
    ModuleAmplification,
    analyze_amplification,
    module_amplification,
)
from loralab.analysis.energy import DEFAULT_FRACTIONS, energy_ranks, rank_at
from loralab.analysis.errors import AnalysisError
from loralab.analysis.sources import BaseWeights, DenseUpdate, LowRankUpdate, Run, RunState, open_run, run_checkpoints
from loralab.analysis.spectrum import MatrixSpectrum, SpectrumReport, analyze_spectrum, matrix_spectrum
from loralab.analysis.subspace import ModuleSimilarity, SubspaceReport, analyze_subspace, subspace_similarity

__all__ = [
    "DEFAULT_FRACTIONS", "AmplificationReport", "AnalysisError", "BaseWeights", "DenseUpdate", "LowRankUpdate",
    "MatrixSpectrum", "ModuleAmplification", "ModuleSimilarity", "Run", "RunState", "SpectrumReport", "SubspaceReport",
    "analyze_amplification", "analyze_spectrum", "analyze_subspace", "energy_ranks", "matrix_spectrum",
    "module_amplification", "open_run", "rank_at", "run_checkpoints", "subspace_similarity",
]  # fmt: skip
