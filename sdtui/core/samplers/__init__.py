"""A1111's samplers as plain functions over a k-diffusion denoiser.

Every sampler is `sample_<name>(model, x, sigmas, callback=None, ...) -> x`: `model(x, sigma)`
returns the predicted clean latent for a per-sample sigma tensor of shape [batch], `x` starts
as noise * sigmas[0], and `sigmas` descends (usually to 0). `callback(StepInfo)` runs after
every step; whatever it raises (an interrupt) propagates. Stochastic samplers take
`noise_sampler(sigma, sigma_next) -> noise like x`. The plugin `sdtui_plugins.builtin.samplers`
registers them under A1111's names.
"""

from __future__ import annotations

from sdtui.core.samplers.brownian import BrownianTreeNoiseSampler, brownian_noise_sampler
from sdtui.core.samplers.common import StepInfo, get_ancestral_step, to_d
from sdtui.core.samplers.dpm_fast import sample_dpm_adaptive, sample_dpm_fast
from sdtui.core.samplers.dpm_solver import (
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_dpmpp_2s_ancestral,
    sample_dpmpp_3m_sde,
    sample_dpmpp_sde,
)
from sdtui.core.samplers.euler import (
    sample_dpm_2,
    sample_dpm_2_ancestral,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
)
from sdtui.core.samplers.lcm import sample_lcm
from sdtui.core.samplers.lms import sample_lms
from sdtui.core.samplers.restart import sample_restart
from sdtui.core.samplers.timestep import sample_ddim, sample_ddim_cfgpp, sample_plms
from sdtui.core.samplers.unipc import sample_unipc

__all__ = [
    "BrownianTreeNoiseSampler",
    "StepInfo",
    "brownian_noise_sampler",
    "get_ancestral_step",
    "sample_ddim",
    "sample_ddim_cfgpp",
    "sample_dpm_2",
    "sample_dpm_2_ancestral",
    "sample_dpm_adaptive",
    "sample_dpm_fast",
    "sample_dpmpp_2m",
    "sample_dpmpp_2m_sde",
    "sample_dpmpp_2s_ancestral",
    "sample_dpmpp_3m_sde",
    "sample_dpmpp_sde",
    "sample_euler",
    "sample_euler_ancestral",
    "sample_heun",
    "sample_lcm",
    "sample_lms",
    "sample_plms",
    "sample_restart",
    "sample_unipc",
    "to_d",
]
