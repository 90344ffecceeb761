"""Brownian-tree noise for SDE samplers, in plain torch.

SDE samplers (DPM++ SDE, DPM++ 2M SDE, DPM++ 3M SDE) want the noise between two noise
levels to be the increment of one Brownian motion W(sigma), so that the result changes
little when the step count changes. W is built lazily as a binary tree of Brownian bridges
over [sigma_min, sigma_max]: the value at an interval's midpoint given its ends is
N((W(a) + W(b)) / 2, (b - a) / 4), drawn from a generator seeded by (seed, node), so any
W(sigma) is reproducible from the seed alone, in any query order.

This follows the idea of torchsde's BrownianTree, which A1111 uses through k-diffusion, but
it is not bit-compatible with it: reproducing A1111's SDE images exactly needs torchsde
(`pip install torchsde`) and a noise sampler built on `torchsde.BrownianTree` with
`entropy=seed` over [sigma_min, sigma_max].
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

MASK64 = (1 << 64) - 1
DEFAULT_DEPTH = 24  # bisections; the interval left is (t1 - t0) / 2**24, then linear
CACHE_SIZE = 2 * DEFAULT_DEPTH  # node draws kept per tree


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 finaliser over each value)."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (value & MASK64)) * 0xBF58476D1CE4E5B9 & MASK64
        state ^= state >> 31
        state = (state * 0x94D049BB133111EB) & MASK64
        state ^= state >> 29
    return state >> 1


class BrownianTree:
    """One Brownian motion W on [t0, t1] with W(t0) = 0, values shaped `shape`."""

    def __init__(
        self, t0: float, t1: float, shape: Sequence[int], seed: int, depth: int = DEFAULT_DEPTH
    ) -> None:
        if not t1 > t0:
            raise ValueError(f"BrownianTree needs t0 < t1, got t0={t0}, t1={t1}")
        self.t0, self.t1, self.shape, self.seed, self.depth = t0, t1, tuple(shape), seed, depth
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.w1 = self._normal(1) * (t1 - t0) ** 0.5

    def _normal(self, node: int) -> torch.Tensor:
        """The standard normal draw of a tree node (recent ones cached: consecutive
        queries share most of their path from the root)."""
        cached = self._cache.pop(node, None)
        if cached is None:
            generator = torch.Generator().manual_seed(mix_seed(self.seed, node))
            cached = torch.randn(self.shape, generator=generator, dtype=torch.float64)
        self._cache[node] = cached
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return cached

    def __call__(self, t: float) -> torch.Tensor:
        t = min(max(float(t), self.t0), self.t1)
        a, b = self.t0, self.t1
        w_a, w_b = torch.zeros(self.shape, dtype=torch.float64), self.w1
        node = 1
        for _ in range(self.depth):
            if t in (a, b):
                break
            middle = (a + b) / 2
            w_middle = (w_a + w_b) / 2 + self._normal(2 * node) * ((b - a) / 4) ** 0.5
            if t < middle:
                b, w_b, node = middle, w_middle, 2 * node
            else:
                a, w_a, node = middle, w_middle, 2 * node + 1
        if t == a:
            return w_a
        if t == b:
            return w_b
        weight = (t - a) / (b - a)
        return w_a + (w_b - w_a) * weight


class BrownianTreeNoiseSampler:
    """`noise_sampler(sigma, sigma_next)`: the standardised increment
    (W(sigma_next) - W(sigma)) / sqrt(|sigma_next - sigma|), one tree per seed.

    `seed` is an int (one tree for the whole batch) or a list with one seed per image
    (each image's noise then depends only on its own seed, as in A1111).
    """

    def __init__(
        self,
        x: torch.Tensor,
        sigma_min: float,
        sigma_max: float,
        seed: int | Sequence[int] | None = None,
    ) -> None:
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        self.batched = not isinstance(seed, int)
        seeds = list(seed) if self.batched else [seed]  # type: ignore[arg-type]
        shape = x.shape[1:] if self.batched else x.shape
        if self.batched and len(seeds) != x.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for a batch of {x.shape[0]} latents")
        t0, t1 = float(sigma_min), float(sigma_max)
        if t0 == t1:  # a one-level schedule: any non-empty interval will do
            t0, t1 = t0 / 2, t1 * 2
        self.trees = [BrownianTree(t0, t1, shape, s) for s in seeds]
        self.dtype, self.device = x.dtype, x.device

    def __call__(self, sigma: Any, sigma_next: Any) -> torch.Tensor:
        low, high = sorted((float(sigma), float(sigma_next)))
        low, high = max(low, self.trees[0].t0), min(high, self.trees[0].t1)
        if high <= low:
            raise ValueError(
                f"Brownian noise asked for sigma {float(sigma)} -> {float(sigma_next)}, "
                f"outside the tree's range [{self.trees[0].t0}, {self.trees[0].t1}]"
            )
        increments = [(tree(high) - tree(low)) / (high - low) ** 0.5 for tree in self.trees]
        noise = torch.stack(increments) if self.batched else increments[0]
        return noise.to(self.device, self.dtype)


def brownian_noise_sampler(
    x: torch.Tensor, sigmas: torch.Tensor, seed: int | Sequence[int] | None = None
) -> BrownianTreeNoiseSampler:
    """A Brownian noise sampler over the positive sigmas of a schedule."""
    positive = sigmas[sigmas > 0]
    return BrownianTreeNoiseSampler(x, float(positive.min()), float(positive.max()), seed)
