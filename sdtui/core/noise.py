"""Latent noise exactly as AUTOMATIC1111 makes it, so an A1111 infotext reproduces.

The rules (A1111 `modules/rng.py`, `modules/processing.py`):

- Seeds: -1 means random in [0, 4294967294). Image i of a generation gets seed + i, except
  with a variation strength > 0, where every image keeps the seed and only the variation
  seed (subseed) counts up: subseed + i.
- RNG source ("RNG" in the infotext, absent = "GPU"): "CPU" draws with a CPU torch generator
  (the same on every machine), "GPU" with a generator on the CUDA device (on CPU-only or MPS
  machines A1111 falls back to the CPU generator), "NV" with a Philox port of CUDA's randn
  that reproduces GPU-made images anywhere (`sdtui.core.philox`).
- Every image has its own generator seeded with its seed; its first draw is the image's
  initial noise, so an image never depends on its batch size or position.
- Variation: with strength > 0, noise = slerp(strength, noise(seed), noise(subseed)).
- "Resize seed from" W x H: the noise (and variation noise) is drawn at that size (in latent
  units, size // 8) and pasted centred into noise of the real size from the same seed.
- Later draws (ancestral / stochastic sampler steps) continue each image's generator; with an
  eta noise seed delta (ENSD) they come instead from a fresh generator seeded seed + ENSD.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from sdtui.core.philox import PhiloxGenerator

RNG_SOURCES = ("GPU", "CPU", "NV")
DEFAULT_RNG_SOURCE = "CPU"
A1111_DEFAULT_RNG_SOURCE = "GPU"  # what an infotext without an "RNG" key means
SEED_RANGE_END = 4294967294  # random seeds are drawn from [0, SEED_RANGE_END)
LATENT_SCALE = 8  # pixels per latent cell, used to turn "Seed resize from" into latent units
SLERP_PARALLEL_THRESHOLD = 0.9995  # mean cosine above which A1111 falls back to lerp

Shape = tuple[int, ...]
DeviceLike = torch.device | str


def resolve_seed(seed: int | str | None, rng: random.Random | None = None) -> int:
    """A1111's `get_fixed_seed`: -1, None, "" or a non-number become a random seed."""
    if isinstance(seed, str):
        try:
            seed = int(seed)
        except ValueError:
            seed = -1
    if seed is None or seed == -1:
        return (rng or random).randrange(SEED_RANGE_END)
    return int(seed)


def image_seeds(
    seed: int, subseed: int, count: int, subseed_strength: float = 0.0
) -> tuple[list[int], list[int]]:
    """Per-image (seeds, subseeds) for `count` images of one generation (resolved seeds)."""
    step = 1 if subseed_strength == 0 else 0
    seeds = [int(seed) + index * step for index in range(count)]
    subseeds = [int(subseed) + index for index in range(count)]
    return seeds, subseeds


def normalize_source(source: str) -> str:
    name = str(source).strip().upper()
    if name not in RNG_SOURCES:
        raise ValueError(f"unknown RNG source {source!r}; valid: {', '.join(RNG_SOURCES)}")
    return name


class NoiseGenerator:
    """One seeded stream of float32 standard normals; each `randn` call continues it."""

    def __init__(
        self, seed: int, source: str = DEFAULT_RNG_SOURCE, device: DeviceLike = "cpu"
    ) -> None:
        self.seed = int(seed)
        self.source = normalize_source(source)
        self.device = torch.device(device)
        if self.source == "NV":
            self._philox = PhiloxGenerator(self.seed)
            return
        self._draw_device = _draw_device(self.source, self.device)
        self._torch = torch.Generator(self._draw_device).manual_seed(self.seed)

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        shape = tuple(int(size) for size in shape)
        if self.source == "NV":
            values = torch.from_numpy(self._philox.randn(shape))
        else:
            values = torch.randn(
                shape, generator=self._torch, device=self._draw_device, dtype=torch.float32
            )
        return values.to(self.device)


def _draw_device(source: str, device: torch.device) -> torch.device:
    """Where torch draws: the CPU, except "GPU" on an accelerator other than MPS."""
    if source == "GPU" and device.type not in ("cpu", "mps"):
        return device
    return torch.device("cpu")


def seeded_randn(
    seed: int, shape: Sequence[int], source: str = DEFAULT_RNG_SOURCE, device: DeviceLike = "cpu"
) -> torch.Tensor:
    """The first draw of a fresh generator for `seed` (A1111's `randn(seed, shape)`)."""
    return NoiseGenerator(seed, source, device).randn(shape)


def slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's variation-seed slerp of two per-image noise tensors (C, H, W).

    The interpolation runs along dim 1: every (channel, column) vector of `low` is rotated
    towards the matching vector of `high` by the angle between them. When the vectors are
    nearly parallel on average (mean cosine > 0.9995) A1111 returns `low * t + high * (1 - t)`
    instead; the weights look swapped but the two inputs are then almost equal (seed ==
    subseed), and it is kept as is so such images reproduce.
    """
    low_unit = low / torch.linalg.vector_norm(low, dim=1, keepdim=True)
    high_unit = high / torch.linalg.vector_norm(high, dim=1, keepdim=True)
    dot = (low_unit * high_unit).sum(1)
    if dot.mean() > SLERP_PARALLEL_THRESHOLD:
        return low * t + high * (1 - t)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    low_weight = (torch.sin((1.0 - t) * omega) / sin_omega).unsqueeze(1)
    high_weight = (torch.sin(t * omega) / sin_omega).unsqueeze(1)
    return low_weight * low + high_weight * high


def _paste_span(target: int, source: int) -> tuple[int, int, int]:
    """(target start, source start, length) of A1111's centred paste along one axis.

    offset = (target - source) // 2 (floor). A larger target gets the whole source at the
    offset; a smaller one gets the source cropped by -offset cells on both sides (so with an
    odd difference the last target cell keeps the background).
    """
    offset = (target - source) // 2
    if offset >= 0:
        return offset, 0, source
    return 0, -offset, source + 2 * offset


def paste_centered(background: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`noise` (C, h, w) pasted centred into a copy of `background` (C, H, W)."""
    result = background.clone()
    top, src_top, height = _paste_span(background.shape[1], noise.shape[1])
    left, src_left, width = _paste_span(background.shape[2], noise.shape[2])
    result[:, top : top + height, left : left + width] = noise[
        :, src_top : src_top + height, src_left : src_left + width
    ]
    return result


def resize_shape(shape: Sequence[int], seed_resize_from: tuple[int, int]) -> Shape:
    """The per-image shape noise is drawn at: `shape`, or (C, h // 8, w // 8) when resizing."""
    shape = tuple(int(size) for size in shape)
    width, height = (int(value) for value in seed_resize_from)
    if width <= 0 or height <= 0:
        return shape
    if len(shape) != 3:
        raise ValueError(f"seed resize needs a (C, H, W) latent shape, got {shape}")
    return (shape[0], height // LATENT_SCALE, width // LATENT_SCALE)


def _initial_noise(
    generator: NoiseGenerator,
    shape: Shape,
    subseed: int | None,
    subseed_strength: float,
    seed_resize_from: tuple[int, int],
) -> torch.Tensor:
    """One image's initial noise; consumes exactly one draw of `generator`."""
    source, device = generator.source, generator.device
    draw_shape = resize_shape(shape, seed_resize_from)
    resized = draw_shape != shape
    subnoise = None
    if subseed is not None and subseed_strength != 0:
        subnoise = seeded_randn(subseed, draw_shape, source, device)
    if resized:
        noise = seeded_randn(generator.seed, draw_shape, source, device)
    else:
        noise = generator.randn(shape)
    if subnoise is not None:
        noise = slerp(subseed_strength, noise, subnoise)
    if resized:
        noise = paste_centered(generator.randn(shape), noise)
    return noise


def image_noise(
    shape: Sequence[int],
    seed: int,
    subseed: int = -1,
    subseed_strength: float = 0.0,
    seed_resize_from: tuple[int, int] = (0, 0),
    source: str = DEFAULT_RNG_SOURCE,
    device: DeviceLike = "cpu",
) -> torch.Tensor:
    """The initial noise (float32, `shape` = one image's latent shape) for one image.

    `seed` and, when `subseed_strength` != 0, `subseed` must be resolved (`resolve_seed`).
    `seed_resize_from` is (width, height) in pixels; (0, 0) means off.
    """
    _check_resolved(seed, "seed")
    if subseed_strength != 0:
        _check_resolved(subseed, "variation seed")
    shape = tuple(int(size) for size in shape)
    generator = NoiseGenerator(seed, source, device)
    return _initial_noise(generator, shape, subseed, subseed_strength, seed_resize_from)


def _check_resolved(seed: int, name: str) -> None:
    if seed == -1:
        raise ValueError(f"{name} is -1 (random); resolve it with resolve_seed() first")


class ImageRNG:
    """Per-image noise streams for one batch (A1111's `ImageRNG`).

    `first()` returns the stacked initial noise (B, *shape); `next()` the next draw of every
    image's stream for stochastic sampler steps (and `first()` if that has not run yet).
    `noise_sampler(sigma, sigma_next)` is `next()` with k-diffusion's noise-sampler signature.
    With `ensd` != 0 the draws after the initial noise come from generators seeded
    seed + ensd (A1111 applies this whatever the sampler; its infotext names ENSD only for
    samplers that use the extra noise).
    """

    def __init__(
        self,
        shape: Sequence[int],
        seeds: Sequence[int],
        subseeds: Sequence[int] | None = None,
        subseed_strength: float = 0.0,
        seed_resize_from: tuple[int, int] = (0, 0),
        source: str = DEFAULT_RNG_SOURCE,
        device: DeviceLike = "cpu",
        ensd: int = 0,
    ) -> None:
        self.shape = tuple(int(size) for size in shape)
        self.seeds = [int(seed) for seed in seeds]
        for seed in self.seeds:
            _check_resolved(seed, "seed")
        self.subseeds = None if subseeds is None else [int(seed) for seed in subseeds]
        self.subseed_strength = float(subseed_strength)
        self.seed_resize_from = (int(seed_resize_from[0]), int(seed_resize_from[1]))
        self.source = normalize_source(source)
        self.device = torch.device(device)
        self.ensd = int(ensd)
        self._generators: list[NoiseGenerator] | None = None

    def _subseed(self, index: int) -> int | None:
        if self.subseeds is None:
            return None
        return self.subseeds[index] if index < len(self.subseeds) else 0

    def first(self) -> torch.Tensor:
        """Initial noise for every image; (re)starts every image's stream."""
        generators = [NoiseGenerator(seed, self.source, self.device) for seed in self.seeds]
        noises = [
            _initial_noise(
                generator,
                self.shape,
                self._subseed(index),
                self.subseed_strength,
                self.seed_resize_from,
            )
            for index, generator in enumerate(generators)
        ]
        if self.ensd:
            generators = [
                NoiseGenerator(seed + self.ensd, self.source, self.device) for seed in self.seeds
            ]
        self._generators = generators
        return torch.stack(noises)

    def next(self) -> torch.Tensor:
        if self._generators is None:
            return self.first()
        return torch.stack([generator.randn(self.shape) for generator in self._generators])

    def noise_sampler(self, sigma: object = None, sigma_next: object = None) -> torch.Tensor:
        return self.next()
