"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast
Sampling of Diffusion Models"), data-prediction form, in the sigma view.

With lambda = -log(sigma) and h = lambda_next - lambda, each step predicts with UniP of
order p (using the last p denoised predictions) and, once the model has been evaluated at
the new point, corrects with UniC of the same order; the corrector reuses that evaluation
for the next step, so it costs no extra model call. It is not applied after the last step.
`variant` picks B(h): "bh1" is B(h) = h, "bh2" is B(h) = e^h - 1 (A1111's default is bh1,
order 3, lower_order_final True). The step into sigma 0 is always first order (x = the
denoised prediction), as higher orders are undefined there.
"""

from __future__ import annotations

import math

import torch

from sdtui.core.samplers.common import Callback, Denoiser, check_sigmas, denoise, report

VARIANTS = ("bh1", "bh2")


def unipc_coefficients(
    ratios: list[float], h: float, variant: str
) -> tuple[list[float], list[float], float]:
    """rho for the predictor and the corrector, and B(h), for order len(ratios) + 1 where
    ratios r_k = (lambda_{prev k} - lambda_prev) / h of the older points."""
    hh = -h  # data-prediction form
    h_phi_1 = math.expm1(hh)
    b_h = hh if variant == "bh1" else math.expm1(hh)
    nodes = [*ratios, 1.0]
    order = len(nodes)
    h_phi_k, factorial = h_phi_1 / hh - 1, 1
    rows, rhs = [], []
    for k in range(1, order + 1):
        rows.append([r ** (k - 1) for r in nodes])
        rhs.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    matrix, vector = torch.tensor(rows, dtype=torch.float64), torch.tensor(rhs, dtype=torch.float64)
    if order == 1:
        rhos_p: list[float] = []
    elif order == 2:
        rhos_p = [0.5]
    else:
        rhos_p = torch.linalg.solve(matrix[:-1, :-1], vector[:-1]).tolist()
    rhos_c = [0.5] if order == 1 else torch.linalg.solve(matrix, vector).tolist()
    return rhos_p, rhos_c, b_h


def _lambda(sigma) -> float:
    return -math.log(float(sigma))


def _update(x, sigma, sigma_next, history, order, variant, denoised_next=None):
    """One UniP step from (x, sigma) to sigma_next, or UniC if denoised_next is given.
    `history` holds (sigma_k, denoised_k), newest (the point x is at) first."""
    sigma_0, m0 = history[0]
    h = _lambda(sigma_next) - _lambda(sigma_0)
    ratios = [(_lambda(s_k) - _lambda(sigma_0)) / h for s_k, _ in history[1:order]]
    differences = [(m_k - m0) / r for r, (_, m_k) in zip(ratios, history[1:order], strict=True)]
    rhos_p, rhos_c, b_h = unipc_coefficients(ratios, h, variant)
    x_next = (sigma_next / sigma) * x - math.expm1(-h) * m0
    if denoised_next is None:
        correction = sum((rho * d for rho, d in zip(rhos_p, differences, strict=False)), 0)
    else:
        correction = sum((rho * d for rho, d in zip(rhos_c[:-1], differences, strict=True)), 0)
        correction = correction + rhos_c[-1] * (denoised_next - m0)
    return x_next - b_h * correction


@torch.no_grad()
def sample_unipc(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    order: int = 3,
    variant: str = "bh1",
    lower_order_final: bool = True,
) -> torch.Tensor:
    if variant not in VARIANTS:
        raise ValueError(f"UniPC variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if order < 1:
        raise ValueError(f"UniPC order must be at least 1, got {order}")
    check_sigmas(sigmas, "UniPC")
    total = len(sigmas) - 1
    history: list[tuple[torch.Tensor, torch.Tensor]] = []  # (sigma, denoised), newest first
    x_last, sigma_last, last_order = x, sigmas[0], 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        if history:  # correct the previous step with this evaluation
            x = _update(x_last, sigma_last, sigma, history, last_order, variant, denoised)
        history = [(sigma, denoised), *history][:order]
        step_order = min(order, total - i) if lower_order_final else order
        step_order = min(step_order, len(history))
        x_last, sigma_last, last_order = x, sigma, step_order
        if sigma_next == 0:
            x = denoised
        else:
            x = _update(x, sigma, sigma_next, history, step_order, variant)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x
