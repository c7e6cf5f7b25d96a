"""Linear algebra on low-rank products, without forming the d_out × d_in matrix."""

from __future__ import annotations

import torch


def thin_svd_of_product(B: torch.Tensor, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD of M = B @ A from its factors: M = U diag(S) Vh, exact, in O((d_out + d_in) k²).

    B: (d_out, k), A: (k, d_in) → U: (d_out, k), S: (k,), Vh: (k, d_in). With B = Q_b R_b and
    Aᵀ = Q_a R_a, M = Q_b (R_b R_aᵀ) Q_aᵀ, so the SVD of the k × k core gives M's.
    """
    Q_b, R_b = torch.linalg.qr(B)
    Q_a, R_a = torch.linalg.qr(A.T)
    U_core, S, Vh_core = torch.linalg.svd(R_b @ R_a.T)
    return Q_b @ U_core, S, Vh_core @ Q_a.T
