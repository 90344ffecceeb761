"""Linear multistep (LMS): integrate the Lagrange polynomial through the last `order`
derivatives d_i = (x_i - D(x_i, sigma_i)) / sigma_i over the next sigma interval.

The weights are exact integrals of the Lagrange basis polynomials (computed in float64 by
polynomial antiderivatives rather than numerical quadrature).
"""

from __future__ import annotations

import numpy as np
import torch

from sdtui.core.samplers.common import (
    Callback,
    Denoiser,
    check_sigmas,
    denoise,
    report,
    to_d,
)


def lms_coefficient(sigmas: np.ndarray, order: int, i: int, j: int) -> float:
    """Integral over [sigmas[i], sigmas[i+1]] of the Lagrange basis polynomial that is 1 at
    sigmas[i - j] and 0 at the other nodes sigmas[i - k], k < order, k != j."""
    polynomial = np.polynomial.Polynomial([1.0])
    for k in range(order):
        if k != j:
            node = sigmas[i - k]
            polynomial = polynomial * np.polynomial.Polynomial([-node, 1.0])
            polynomial = polynomial / (sigmas[i - j] - node)
    antiderivative = polynomial.integ()
    return float(antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i]))


@torch.no_grad()
def sample_lms(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    order: int = 4,
) -> torch.Tensor:
    check_sigmas(sigmas, "LMS")
    if order < 1:
        raise ValueError(f"LMS order must be at least 1, got {order}")
    nodes = sigmas.detach().cpu().double().numpy()
    derivatives: list[torch.Tensor] = []  # newest first
    total = len(sigmas) - 1
    for i in range(total):
        denoised = denoise(model, x, sigmas[i])
        derivatives.insert(0, to_d(x, sigmas[i], denoised))
        del derivatives[order:]
        current = min(i + 1, order)
        weights = [lms_coefficient(nodes, current, i, j) for j in range(current)]
        x = x + sum(w * d for w, d in zip(weights, derivatives, strict=False))
        report(callback, i, total, x, denoised, sigmas[i], sigmas[i + 1])
    return x
