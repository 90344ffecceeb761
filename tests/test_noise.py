"""Noise follows A1111: seeds per image, variation slerp, seed resize, ENSD, RNG sources."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.core.noise import (
    SEED_RANGE_END,
    ImageRNG,
    NoiseGenerator,
    image_noise,
    image_seeds,
    paste_centered,
    resolve_seed,
    seeded_randn,
    slerp,
)
from sdtui.core.philox import PhiloxGenerator, philox4x32

SHAPE = (4, 8, 8)
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# --- CPU source -------------------------------------------------------------------------


def test_cpu_source_is_a_seeded_cpu_torch_generator():
    expected = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1234))
    assert torch.equal(image_noise(SHAPE, 1234, source="CPU"), expected)


def test_cpu_source_matches_published_torch_values():
    # torch.manual_seed(0); torch.randn(3) -> tensor([1.5410, -0.2934, -2.1788]), the values
    # printed in PyTorch's own examples (e.g. torch.distributions docstrings).
    values = seeded_randn(0, (3,), "CPU")
    torch.testing.assert_close(values, torch.tensor([1.5410, -0.2934, -2.1788]), atol=1e-4, rtol=0)


def test_gpu_source_without_a_gpu_draws_on_the_cpu():
    # A1111 on a CPU-only (or MPS) machine: the "GPU" generator is the CPU one.
    assert torch.equal(image_noise(SHAPE, 77, source="GPU"), image_noise(SHAPE, 77, source="CPU"))


@pytest.mark.parametrize("source", ["CPU", "GPU", "NV"])
def test_deterministic_and_seed_dependent(source):
    first = image_noise(SHAPE, 42, source=source)
    assert first.dtype == torch.float32 and first.shape == SHAPE
    assert torch.equal(first, image_noise(SHAPE, 42, source=source))
    assert not torch.allclose(first, image_noise(SHAPE, 43, source=source))


def test_source_names_are_checked():
    assert torch.equal(image_noise(SHAPE, 1, source="nv"), image_noise(SHAPE, 1, source="NV"))
    with pytest.raises(ValueError, match="GPU, CPU, NV"):
        image_noise(SHAPE, 1, source="TPU")


# --- seeds ------------------------------------------------------------------------------


def test_batch_seeds_count_up_unless_variation():
    assert image_seeds(100, 7, 4) == ([100, 101, 102, 103], [7, 8, 9, 10])
    assert image_seeds(100, 7, 3, subseed_strength=0.3) == ([100, 100, 100], [7, 8, 9])


def test_resolve_seed_draws_from_a1111_range():
    class Recorder:
        def randrange(self, stop):
            self.stop = stop
            return stop - 1

    recorder = Recorder()
    assert resolve_seed(-1, rng=recorder) == 4294967293
    assert recorder.stop == SEED_RANGE_END == 4294967294

    rng = random.Random(5)
    drawn = [resolve_seed(-1, rng=rng) for _ in range(20)]
    assert len(set(drawn)) == 20
    assert all(0 <= seed < SEED_RANGE_END for seed in drawn)
    assert resolve_seed(None, rng=random.Random(1)) == random.Random(1).randrange(SEED_RANGE_END)
    assert 0 <= resolve_seed("", rng=rng) < SEED_RANGE_END
    assert 0 <= resolve_seed("not a number", rng=rng) < SEED_RANGE_END
    assert resolve_seed("123") == 123
    assert resolve_seed(5) == 5


def test_unresolved_seeds_are_rejected():
    with pytest.raises(ValueError, match="resolve_seed"):
        image_noise(SHAPE, -1)
    with pytest.raises(ValueError, match="variation seed"):
        image_noise(SHAPE, 3, subseed=-1, subseed_strength=0.5)
    with pytest.raises(ValueError, match="resolve_seed"):
        ImageRNG(SHAPE, [1, -1])


# --- batches ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_image_in_a_batch_equals_the_image_alone(source):
    seeds, subseeds = image_seeds(500, 900, 4)
    batch = ImageRNG(SHAPE, seeds, subseeds, source=source).first()
    assert batch.shape == (4, *SHAPE)
    for index, seed in enumerate(seeds):
        assert torch.equal(batch[index], image_noise(SHAPE, seed, source=source))


def test_batch_position_and_size_do_not_change_an_image():
    rng_four = ImageRNG(SHAPE, [10, 11, 12, 13])
    rng_alone = ImageRNG(SHAPE, [12])
    rng_reversed = ImageRNG(SHAPE, [13, 12, 11, 10])
    assert torch.equal(rng_four.first()[2], rng_alone.first()[0])
    assert torch.equal(rng_reversed.first()[1], rng_alone.first()[0])
    # the per-step noise of an image is its own stream too
    rng_alone.first()
    assert torch.equal(rng_four.next()[2], rng_alone.next()[0])
    assert torch.equal(rng_reversed.next()[1], nth_draw(12, 2))


def nth_draw(seed: int, draw: int) -> torch.Tensor:
    """The `draw`-th (1-based) CPU draw of `seed`'s stream."""
    generator = NoiseGenerator(seed)
    for _ in range(draw - 1):
        generator.randn(SHAPE)
    return generator.randn(SHAPE)


def test_variation_batch_shares_the_seed_and_varies_the_subseed():
    seeds, subseeds = image_seeds(8, 20, 3, subseed_strength=0.4)
    batch = ImageRNG(SHAPE, seeds, subseeds, subseed_strength=0.4).first()
    for index in range(3):
        expected = image_noise(SHAPE, 8, subseed=20 + index, subseed_strength=0.4)
        assert torch.equal(batch[index], expected)
    assert not torch.allclose(batch[0], batch[1])


# --- variation seed (slerp) -------------------------------------------------------------


def _reference_slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> np.ndarray:
    """Slerp of every (channel, column) vector along H, in float64, one vector at a time."""
    low64, high64 = low.double().numpy(), high.double().numpy()
    out = np.empty_like(low64)
    for channel in range(low64.shape[0]):
        for column in range(low64.shape[2]):
            a, b = low64[channel, :, column], high64[channel, :, column]
            omega = math.acos(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
            out[channel, :, column] = (
                math.sin((1 - t) * omega) * a + math.sin(t * omega) * b
            ) / math.sin(omega)
    return out


def test_slerp_matches_a_per_vector_reference():
    low, high = seeded_randn(1, (4, 16, 8)), seeded_randn(2, (4, 16, 8))
    got = slerp(0.3, low, high)
    np.testing.assert_allclose(got.double().numpy(), _reference_slerp(0.3, low, high), atol=2e-5)


def test_variation_strength_endpoints_and_variance():
    shape = (4, 64, 64)
    base = image_noise(shape, 11)
    sub = image_noise(shape, 99)
    assert torch.equal(image_noise(shape, 11, subseed=99, subseed_strength=0.0), base)
    assert torch.equal(image_noise(shape, 11, subseed=99, subseed_strength=1.0), sub)
    middle = image_noise(shape, 11, subseed=99, subseed_strength=0.5)
    assert 0.95 < middle.std().item() < 1.05
    assert not torch.allclose(middle, base) and not torch.allclose(middle, sub)


def test_slerp_falls_back_to_a1111_lerp_for_parallel_noise():
    low = seeded_randn(3, SHAPE)
    high = low * 1.001
    assert torch.equal(slerp(0.25, low, high), low * 0.25 + high * (1 - 0.25))
    same = image_noise(SHAPE, 3, subseed=3, subseed_strength=0.7)
    torch.testing.assert_close(same, image_noise(SHAPE, 3), atol=1e-6, rtol=0)


# --- seed resize ------------------------------------------------------------------------


def test_resize_to_a_larger_target_pastes_the_from_noise_centred():
    # from 64x48 px = (4, 6, 8) latent, into (4, 10, 12): offsets dy = 2, dx = 2
    out = image_noise((4, 10, 12), 31, seed_resize_from=(64, 48))
    small = seeded_randn(31, (4, 6, 8))
    background = seeded_randn(31, (4, 10, 12))
    assert torch.equal(out[:, 2:8, 2:10], small)
    mask = torch.ones(10, 12, dtype=torch.bool)
    mask[2:8, 2:10] = False
    assert torch.equal(out[:, mask], background[:, mask])


def test_resize_to_a_smaller_target_crops_both_sides():
    # from 72x56 px = (4, 7, 9) latent, into (4, 6, 6):
    # dx = (6 - 9) // 2 = -2 -> source columns 2..6 to target 0..4, target column 5 untouched
    # dy = (6 - 7) // 2 = -1 -> source rows 1..5 to target 0..4, target row 5 untouched
    out = image_noise((4, 6, 6), 31, seed_resize_from=(72, 56))
    large = seeded_randn(31, (4, 7, 9))
    background = seeded_randn(31, (4, 6, 6))
    assert torch.equal(out[:, 0:5, 0:5], large[:, 1:6, 2:7])
    assert torch.equal(out[:, 5, :], background[:, 5, :])
    assert torch.equal(out[:, :, 5], background[:, :, 5])


def test_resize_with_variation_slerps_at_the_from_size():
    out = image_noise((4, 10, 12), 5, subseed=6, subseed_strength=0.5, seed_resize_from=(64, 48))
    mixed = slerp(0.5, seeded_randn(5, (4, 6, 8)), seeded_randn(6, (4, 6, 8)))
    assert torch.equal(out[:, 2:8, 2:10], mixed)


def test_resize_off_or_same_size_changes_nothing():
    plain = image_noise((4, 6, 8), 9)
    assert torch.equal(image_noise((4, 6, 8), 9, seed_resize_from=(64, 48)), plain)
    assert torch.equal(image_noise((4, 6, 8), 9, seed_resize_from=(64, 0)), plain)
    assert torch.equal(image_noise((4, 6, 8), 9, seed_resize_from=(0, 48)), plain)


@settings(deadline=None, max_examples=40)
@given(
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    from_height=st.integers(1, 9),
    from_width=st.integers(1, 9),
)
def test_paste_maps_every_cell_by_the_centred_rule(height, width, from_height, from_width):
    background = torch.arange(height * width, dtype=torch.float32).reshape(1, height, width)
    noise = -1 - torch.arange(from_height * from_width, dtype=torch.float32)
    out = paste_centered(background, noise.reshape(1, from_height, from_width))
    dy, dx = (height - from_height) // 2, (width - from_width) // 2
    crop_y, crop_x = max(-dy, 0), max(-dx, 0)
    for y in range(height):
        for x in range(width):
            sy, sx = y - dy, x - dx
            inside = crop_y <= sy < from_height - crop_y and crop_x <= sx < from_width - crop_x
            expected = -1 - (sy * from_width + sx) if inside else y * width + x
            assert out[0, y, x].item() == expected


# --- ENSD and later draws ---------------------------------------------------------------


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_ensd_changes_only_the_later_draws(source):
    seeds = [40, 41]
    plain = ImageRNG(SHAPE, seeds, source=source)
    delta = ImageRNG(SHAPE, seeds, source=source, ensd=31337)
    assert torch.equal(plain.first(), delta.first())
    later_plain, later_delta = plain.next(), delta.next()
    for index, seed in enumerate(seeds):
        continued = NoiseGenerator(seed, source)
        continued.randn(SHAPE)
        assert torch.equal(later_plain[index], continued.randn(SHAPE))
        assert torch.equal(later_delta[index], seeded_randn(seed + 31337, SHAPE, source))
    assert not torch.allclose(later_plain, later_delta)


def test_next_before_first_is_the_initial_noise_and_noise_sampler_continues():
    rng = ImageRNG(SHAPE, [70])
    initial = rng.next()
    assert torch.equal(initial[0], image_noise(SHAPE, 70))
    step = rng.noise_sampler(torch.tensor(2.0), torch.tensor(1.0))
    assert torch.equal(step[0], nth_draw(70, 2))
    assert torch.equal(rng.first(), initial)  # first() restarts the streams


# --- NV (Philox) ------------------------------------------------------------------------

# Random123 known-answer vectors (DEShawResearch/random123, tests/kat_vectors):
# "philox4x32 10 <counter x4> <key x2>  <output x4>"
PHILOX_KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), PHILOX_KAT)
def test_philox_block_matches_random123_known_answers(counter, key, expected):
    out = philox4x32(np.array(counter, np.uint32)[:, None], np.array(key, np.uint32)[:, None])
    assert [int(word) for word in out[:, 0]] == expected


def test_nv_matches_cuda_randn_printed_in_a1111():
    # CUDA torch.randn((3, 4)) after manual_seed(0), as printed in the docstring of A1111's
    # modules/rng_philox.py. CUDA evaluates sin with the __sincosf intrinsic; A1111's (and
    # our) port in float64, so the two agree to a few 1e-7.
    cuda = [
        [-0.92466259, -0.42534415, -2.6438457, 0.14518388],
        [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
        [-1.07454231, -0.36314407, -1.67105067, 2.26550497],
    ]
    got = PhiloxGenerator(0).randn((3, 4))
    np.testing.assert_allclose(got, np.array(cuda), atol=1e-6, rtol=0)


def _philox_scalar(seed: int, offset: int, index: int) -> float:
    """One NV normal, written out with Python ints and floats (an independent oracle)."""
    ctr = [offset, 0, index & 0xFFFFFFFF, index >> 32]
    key = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF]
    for round_index in range(10):
        if round_index:
            key = [(key[0] + 0x9E3779B9) & 0xFFFFFFFF, (key[1] + 0xBB67AE85) & 0xFFFFFFFF]
        a, b = 0xD2511F53 * ctr[0], 0xCD9E8D57 * ctr[2]
        ctr = [(b >> 32) ^ ctr[1] ^ key[0], b & 0xFFFFFFFF, (a >> 32) ^ ctr[3] ^ key[1]]
        ctr.append(a & 0xFFFFFFFF)
    inv = float(np.float32(2.3283064e-10))
    inv_2pi = float(np.float32(2.3283064e-10 * 6.2831855))
    u = ctr[0] * inv + inv / 2
    v = ctr[1] * inv_2pi + inv_2pi / 2
    return float(np.float32(math.sqrt(-2.0 * math.log(u)) * math.sin(v)))


@pytest.mark.parametrize("seed", [0, 1, 4294967293, 2**32 + 5])
def test_nv_matches_scalar_oracle_across_draws(seed):
    generator = PhiloxGenerator(seed)
    for offset in range(2):
        got = generator.randn((2, 3, 4)).ravel()
        want = [_philox_scalar(seed, offset, index) for index in range(24)]
        np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-7)


def test_nv_noise_is_standard_normal_and_uses_the_high_seed_word():
    values = PhiloxGenerator(123).randn((4, 64, 64))
    assert abs(values.mean()) < 0.03 and abs(values.std() - 1) < 0.03
    assert not np.allclose(PhiloxGenerator(5).randn((8,)), PhiloxGenerator(2**32 + 5).randn((8,)))


@cuda_only
@pytest.mark.parametrize("seed", [0, 12345, 4294967293])
def test_nv_and_gpu_match_cuda_randn(seed):
    shape = (4, 64, 64)
    cuda = torch.Generator("cuda").manual_seed(seed)
    first = torch.randn(shape, generator=cuda, device="cuda").cpu()
    second = torch.randn(shape, generator=cuda, device="cuda").cpu()
    rng = ImageRNG(shape, [seed], source="NV")
    torch.testing.assert_close(rng.first()[0], first, atol=2e-5, rtol=0)
    torch.testing.assert_close(rng.next()[0], second, atol=2e-5, rtol=0)
    gpu = image_noise(shape, seed, source="GPU", device="cuda").cpu()
    assert torch.equal(gpu, first)
