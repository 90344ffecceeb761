"""Soft inpainting (A1111's built-in script) against hand-computed values: the mask
schedule, the magnitude-preserving latent blend, the difference filter and composite, the
infotext keys, and one tiny inpainting run."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from sdtui.core.discrete import DiscreteSchedule
from sdtui.engine.img2img import LatentMaskDenoiser
from sdtui.engine.masking import apply_overlay, binary_mask
from sdtui.engine.soft_inpainting import (
    SoftBlend,
    SoftInpainting,
    difference_masks,
    difference_weights,
    gaussian_kernel,
    latent_blend,
    modified_mask,
    smootherstep,
    soft_latent_mask,
    soft_overlays,
    unrounded_mask,
    weighted_histogram_filter,
)
from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.schema import GenerationParams
from tests.test_img2img import pixels, request, run, source

DEFAULT = SoftInpainting()
K01 = (math.exp(-1 / 2.25) - math.exp(-4)) / (1 - math.exp(-4))  # kernel one cell off centre
K22 = (math.exp(-8 / 2.25) - math.exp(-4)) / (1 - math.exp(-4))  # kernel at a corner


# -- the latent schedule and blend -----------------------------------------------------------


def test_modified_mask_is_the_mask_to_the_power_of_sigma_and_strength() -> None:
    repaint = torch.tensor([0.0, 0.25, 0.5, 1.0])
    # sigma 2, bias 2, strength 0.5: exponent 2 ** 2 * 0.5 = 2
    assert torch.allclose(modified_mask(repaint, 2.0, 2.0, 0.5), repaint**2)
    # bias 0: the exponent is the strength whatever sigma is
    assert torch.allclose(modified_mask(repaint, 14.6, 0.0, 0.5), repaint.sqrt())
    # sigma 0 (the last step): the mask is all repaint, unmasked cells included (0 ** 0)
    assert torch.equal(modified_mask(repaint, 0.0, 1.0, 0.5), torch.ones(4))


def vectors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 3, 3, generator=generator), torch.randn(
        2, 4, 3, 3, generator=generator
    )


def test_latent_blend_ends_are_its_inputs() -> None:
    a, b = vectors(0)
    zeros, ones = torch.zeros(1, 1, 3, 3), torch.ones(1, 1, 3, 3)
    # A1111 adds 1e-5 to the length it divides by: the ends are a and b to ~1e-5
    assert torch.allclose(latent_blend(a, b, zeros, 4.0), a, rtol=1e-4, atol=1e-5)
    assert torch.allclose(latent_blend(a, b, ones, 4.0), b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("boost", [1.0, 4.0, 32.0])
def test_latent_blend_lengths_are_power_means(boost: float) -> None:
    a, b = vectors(1)
    t = torch.full((1, 1, 3, 3), 0.3)
    result = latent_blend(a, b, t, boost)
    length_a, length_b = a.norm(dim=1).double(), b.norm(dim=1).double()
    wanted = (0.7 * length_a**boost + 0.3 * length_b**boost) ** (1 / boost)
    assert torch.allclose(result.norm(dim=1).double(), wanted, rtol=1e-4)
    # the direction is the linear interpolation's
    mixed = 0.7 * a + 0.3 * b
    cosine = torch.nn.functional.cosine_similarity(result, mixed, dim=1)
    assert torch.allclose(cosine, torch.ones_like(cosine), atol=1e-5)


def test_latent_blend_keeps_equal_lengths_where_a_linear_blend_shrinks() -> None:
    a = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 4, 1, 1) * 3
    b = torch.tensor([0.0, 1.0, 0.0, 0.0]).reshape(1, 4, 1, 1) * 3
    result = latent_blend(a, b, torch.full((1, 1, 1, 1), 0.5), 4.0)
    assert float(result.norm()) == pytest.approx(3.0, rel=1e-5)  # linear: 3 / sqrt(2)
    assert result.flatten()[:2].tolist() == pytest.approx([3 / math.sqrt(2)] * 2, rel=1e-5)


def test_soft_blend_in_the_masked_denoiser() -> None:
    """After-prediction blending: init where the mask is 0, the prediction where it is 1,
    a partly masked cell in between with the schedule's weight."""
    init = torch.full((1, 4, 1, 3), 2.0)
    repaint = torch.tensor([0.0, 0.5, 1.0]).reshape(1, 1, 1, 3)
    soft = SoftInpainting(schedule_bias=1.0, preservation_strength=1.0, transition_contrast_boost=1)

    def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 4.0)

    denoiser = LatentMaskDenoiser(model, init, repaint, False, SoftBlend(soft, repaint))
    out = denoiser(torch.zeros(1, 4, 1, 3), torch.tensor([2.0]))
    # t = 0.5 ** (2 ** 1 * 1) = 0.25: all channels 2 * 0.75 + 4 * 0.25 = 2.5 (p = 1 keeps it)
    assert torch.allclose(out[0, :, 0], torch.tensor([[2.0, 2.5, 4.0]] * 4), rtol=1e-4)


def test_timestep_samplers_use_the_timestep() -> None:
    schedule = DiscreteSchedule.stable_diffusion()
    blend = SoftBlend(DEFAULT, torch.ones(1, 1, 1, 1), timesteps=True)
    assert blend.level(schedule.t_to_sigma(torch.tensor(501.0))[None]) == 501
    assert SoftBlend(DEFAULT, torch.ones(1, 1, 1, 1)).level(torch.tensor([1.5])) == 1.5


# -- masks -------------------------------------------------------------------------------------


def test_the_mask_is_not_rounded() -> None:
    alpha = Image.new("RGBA", (16, 16), (0, 0, 0, 100))
    assert np.asarray(binary_mask(alpha)).max() == 0  # the usual mask: rounded
    assert np.asarray(unrounded_mask(alpha)).tolist() == [[100] * 16] * 16
    grey = Image.new("L", (64, 64), 51)
    latent = soft_latent_mask(grey, 8, 8)
    assert latent.shape == (1, 1, 8, 8)
    assert torch.allclose(latent, torch.full_like(latent, 0.2))


# -- the pixel composite -----------------------------------------------------------------------


def test_gaussian_kernel() -> None:
    kernel = gaussian_kernel()
    assert kernel.shape == (5, 5) and kernel[2, 2] == pytest.approx(1.0)
    assert kernel[2, 3] == pytest.approx(K01) and kernel[0, 0] == pytest.approx(K22)


def test_histogram_filters_spread_and_remove_a_spike() -> None:
    image = np.zeros((9, 9), dtype=np.float32)
    image[4, 4] = 10.0
    kernel = gaussian_kernel()
    flat = weighted_histogram_filter(np.full((6, 6), 3.0), kernel, 0.25, 0.75)
    assert np.allclose(flat, 3.0)
    near_max = weighted_histogram_filter(image, kernel, 0.9, 1.0)
    # the kernel sums to ~6.5, so the top 10 % is widened to the top 1.0 of the stack
    assert near_max[4, 4] == pytest.approx(10.0)
    assert near_max[4, 5] == pytest.approx(10 * K01, rel=1e-5)
    assert near_max[6, 6] == pytest.approx(10 * K22, rel=1e-5)
    assert near_max[4, 7] == 0.0
    # the weighted inter-quartile mean ignores a lone spike
    assert weighted_histogram_filter(image, kernel, 0.25, 0.75)[4, 4] == 0.0


def reference_filter(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """The histogram filter pixel by pixel, as A1111's loop does it."""
    kernel, out = gaussian_kernel(), np.zeros_like(image)
    for y, x in np.ndindex(image.shape):
        stack = sorted(
            (image[y + dy, x + dx], kernel[dy + 2, dx + 2])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if 0 <= y + dy < image.shape[0] and 0 <= x + dx < image.shape[1]
        )
        total = sum(weight for _, weight in stack)
        start, end = total * low, total * high
        if end - start < 1:
            start, end = (start + end) / 2 - 0.5, (start + end) / 2 + 0.5
            if end > total:
                start, end = total - 1, total
            if start < 0:
                start, end = 0, 1
        value = weight_sum = bottom = 0.0
        for item, weight in stack:
            overlap = min(end, bottom + weight) - max(start, bottom)
            if overlap > 0:
                value, weight_sum = value + item * overlap, weight_sum + overlap
            bottom += weight
        out[y, x] = value / weight_sum if weight_sum else 0
    return out


@pytest.mark.parametrize("low, high", [(0.9, 1.0), (0.25, 0.75), (0.0, 0.05)])
def test_histogram_filter_matches_the_pixel_loop(low: float, high: float) -> None:
    image = np.random.RandomState(3).rand(7, 6).astype(np.float32)
    result = weighted_histogram_filter(image, gaussian_kernel(), low, high)
    assert np.allclose(result, reference_filter(image, low, high), atol=1e-6)


def test_difference_weights() -> None:
    distance = np.array([0.0, 0.5, 1.0, 1e6], dtype=np.float32)
    weights = difference_weights(DEFAULT, distance, np.ones(4, dtype=np.float32))
    # half opacity at the threshold; 1 / (1 + 2 ** 2) = 0.2 at twice it
    expected = [0.0, 0.5, 1 - float(smootherstep(np.float64(0.2))), 1.0]
    assert weights.tolist() == pytest.approx(expected, abs=1e-4)
    assert 1 - 0.2**3 * (0.2 * (6 * 0.2 - 15) + 10) == pytest.approx(0.94208)
    # full mask influence: the repainted cells always show, the kept ones hardly ever
    follow = dataclasses.replace(DEFAULT, mask_influence=1.0)
    repaint = np.array([1.0, 1.0, 0.0, 0.0], dtype=np.float32)
    weights = difference_weights(follow, np.array([0.0, 0.01, 0.01, 5.0], np.float32), repaint)
    assert weights.tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0], abs=1e-4)


def test_difference_masks_of_a_uniform_change() -> None:
    original = torch.zeros(2, 4, 4, 4)
    generated = original.clone()
    generated[1, 0] = 1.0  # image 1: every cell moved by 1, twice the threshold
    first, second = difference_masks(DEFAULT, torch.ones(1, 1, 4, 4), original, generated)
    assert first.dtype == np.uint8 and first.tolist() == [[0] * 4] * 4
    assert second.tolist() == [[240] * 4] * 4  # int(255 * 0.94208)


def test_overlays_keep_unchanged_pixels_and_show_changed_ones() -> None:
    base = source(32, 32)
    original = torch.zeros(2, 4, 4, 4)
    generated = torch.stack([original[0], torch.full((4, 4, 4), 10.0)])
    overlays = soft_overlays(DEFAULT, torch.ones(1, 1, 4, 4), original, generated, [base], 32, 32)
    result = Image.new("RGB", (32, 32), (7, 8, 9))
    assert np.array_equal(pixels(apply_overlay(result, overlays[0])), pixels(base))
    assert np.array_equal(pixels(apply_overlay(result, overlays[1])), pixels(result))


def test_overlays_with_only_masked_are_pasted_into_the_box() -> None:
    base = source(48, 48)
    original, generated = torch.zeros(1, 4, 4, 4), torch.full((1, 4, 4, 4), 10.0)
    box = (8, 16, 16, 16)
    (overlay,) = soft_overlays(
        DEFAULT, torch.ones(1, 1, 4, 4), original, generated, [base], 32, 32, box
    )
    alpha = np.array(overlay.getchannel("A"))
    assert overlay.size == (48, 48)
    assert (alpha[16:32, 8:24] == 0).all()  # the box shows the result
    alpha[16:32, 8:24] = 255
    assert (alpha == 255).all()  # the rest is the input


# -- parameters --------------------------------------------------------------------------------

SOFT = dict(
    soft_inpainting=True,
    soft_inpainting_schedule_bias=1.5,
    soft_inpainting_preservation_strength=0.75,
    soft_inpainting_transition_contrast_boost=8.0,
    soft_inpainting_mask_influence=0.25,
    soft_inpainting_difference_threshold=1.0,
    soft_inpainting_difference_contrast=2.5,
)


def test_infotext_round_trip() -> None:
    params = dataclasses.replace(GenerationParams(prompt="a cat", mask_blur=8), **SOFT)
    text = infotext_from_params(params, RunFacts(seed=1, img2img=True, masked=True))
    assert (
        "Mask blur: 8, Soft inpainting enabled: True, Soft inpainting schedule bias: 1.5, "
        "Soft inpainting preservation strength: 0.75, Soft inpainting transition contrast "
        "boost: 8, Soft inpainting mask influence: 0.25, Soft inpainting difference "
        "threshold: 1, Soft inpainting difference contrast: 2.5"
    ) in text
    parsed = params_from_infotext(text)
    assert {name: parsed.values[name] for name in SOFT} == SOFT
    assert not parsed.unknown
    defaults = GenerationParams(prompt="a cat", soft_inpainting=True)
    default_text = infotext_from_params(defaults, RunFacts(seed=1, img2img=True, masked=True))
    assert "Soft inpainting schedule bias: 1, Soft inpainting preservation strength: 0.5," in (
        default_text
    )


def test_infotext_leaves_soft_inpainting_out_when_off_or_unmasked() -> None:
    off = GenerationParams(prompt="a cat")
    on = dataclasses.replace(off, **SOFT)
    assert "Soft" not in infotext_from_params(off, RunFacts(seed=1, img2img=True, masked=True))
    assert "Soft" not in infotext_from_params(on, RunFacts(seed=1, img2img=True))


# -- end to end --------------------------------------------------------------------------------


def test_soft_inpainting_run() -> None:
    """A corner mask on a 64 px image, 2 steps. Plain inpainting keeps the input's pixels
    everywhere outside the (unblurred) mask; soft inpainting lets the result show around it
    too, where the latents changed, and keeps the input's pixels exactly only far from it."""
    image = source()
    mask = Image.new("L", (64, 64))
    mask.paste(255, (0, 0, 16, 16))
    base = request(steps=2, mask_blur=0, denoising_strength=0.9)
    (plain,) = run(base, [image], mask)
    (soft,) = run(dataclasses.replace(base, soft_inpainting=True), [image], mask)
    ring = np.ones((64, 64), dtype=bool)
    ring[:16, :16] = False
    ring[32:, :] = ring[:, 32:] = False
    assert np.array_equal(pixels(plain.image)[ring], pixels(image)[ring])
    assert (pixels(soft.image)[ring] != pixels(image)[ring]).any()
    assert (pixels(soft.image)[:16, :16] != pixels(plain.image)[:16, :16]).any()
    assert np.array_equal(pixels(soft.image)[52:, 52:], pixels(image)[52:, 52:])
    assert "Soft inpainting enabled: True" in soft.infotext
    assert "Soft inpainting" not in plain.infotext


class PoolingVAE(torch.nn.Module):
    """A stand-in VAE whose latents are the pixels averaged over 8x8 cells (plus a zero
    channel): what the conditioning blanked out shows up directly."""

    config = SimpleNamespace(scaling_factor=1.0, shift_factor=None)

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode(self, pixels: torch.Tensor) -> SimpleNamespace:
        pooled = torch.nn.functional.avg_pool2d(pixels, 8)
        latents = torch.cat([pooled, torch.zeros_like(pooled[:, :1])], dim=1)
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: latents))


def test_an_inpainting_model_sees_the_unrounded_mask_with_soft_inpainting() -> None:
    from sdtui.engine.img2img_inputs import inpainting_conditioning

    pixels = torch.full((1, 3, 16, 16), 0.8)
    grey = Image.new("L", (16, 16), 191)  # 0.749: rounds to 1
    hard = inpainting_conditioning(PoolingVAE(), pixels, grey, 1.0, (2, 2))
    soft = inpainting_conditioning(PoolingVAE(), pixels, grey, 1.0, (2, 2), rounded=False)
    assert torch.allclose(hard[:, 0], torch.ones(1, 2, 2))
    assert torch.allclose(hard[:, 1:4], torch.zeros(1, 3, 2, 2))  # blanked out entirely
    assert torch.allclose(soft[:, 0], torch.full((1, 2, 2), 191 / 255))
    assert torch.allclose(soft[:, 1:4], torch.full((1, 3, 2, 2), 0.8 * (1 - 191 / 255)))
