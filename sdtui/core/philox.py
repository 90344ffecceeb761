"""Philox4x32-10 normal noise as torch's CUDA `randn` makes it, computed on any machine.

This is the "NV" RNG source of AUTOMATIC1111's web UI: it reproduces images whose initial
noise was drawn with `torch.randn(..., device="cuda")` after `manual_seed(seed)`, on hardware
without an NVIDIA GPU.

How CUDA's randn fills a (small enough) tensor, as A1111's NV source reproduces it:

- Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
  SC'11; the counter-based generator behind curand's `curandStatePhilox4_32_10_t`).
- key = the 64-bit seed split into (low 32 bits, high 32 bits).
- element i uses the counter (offset, 0, i & 0xFFFFFFFF, i >> 32): the subsequence (element
  index) sits in the upper two counter words, the per-call offset in the lowest one. Each
  `randn` call on one generator advances the offset by one.
- Of the four 32-bit outputs, the first two (x, y) feed one Box-Muller transform and only
  its sine branch is kept: u = x * 2^-32 + 2^-33, v = y * 2pi * 2^-32 + pi * 2^-32,
  normal = sqrt(-2 ln u) * sin(v).
- A1111's port evaluates the transform in float64 with float32-rounded constants and rounds
  the result to float32 once; we do the same, so NV noise is bit-identical to A1111's.
  (CUDA itself uses float32 `logf`/`sinf`; the two agree to about 1e-6.)

The mapping holds while the element count stays below the CUDA launch's thread count
(hundreds of thousands on current GPUs, far above an SD latent); beyond it CUDA reuses
threads with other counters, and A1111's NV source (like ours) no longer matches the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PHILOX_M4x32_0 = 0xD2511F53
PHILOX_M4x32_1 = 0xCD9E8D57
PHILOX_W32_0 = 0x9E3779B9
PHILOX_W32_1 = 0xBB67AE85

_MASK32 = 0xFFFFFFFF
# float32-rounded 2^-32 and 2pi * 2^-32, the constants the Box-Muller step is defined with.
_TWO_POW32_INV = float(np.float32(2.3283064e-10))
_TWO_POW32_INV_2PI = float(np.float32(2.3283064e-10 * 6.2831855))


def philox4x32(counter: np.ndarray, key: np.ndarray, rounds: int = 10) -> np.ndarray:
    """The Philox4x32 block function on N blocks at once.

    `counter` is a (4, N) and `key` a (2, N) array of uint32 words; returns the (4, N)
    uint32 output. The inputs are not modified. The key is bumped by the Weyl constants
    between rounds (before rounds 2..`rounds`).
    """
    c0, c1, c2, c3 = (np.asarray(word, dtype=np.uint64) for word in counter)
    k0, k1 = (np.asarray(word, dtype=np.uint64) for word in key)
    for index in range(rounds):
        if index:
            k0 = (k0 + PHILOX_W32_0) & _MASK32
            k1 = (k1 + PHILOX_W32_1) & _MASK32
        product0 = c0 * PHILOX_M4x32_0  # both factors < 2^32, so no uint64 overflow
        product1 = c2 * PHILOX_M4x32_1
        c0, c1, c2, c3 = (
            (product1 >> 32) ^ c1 ^ k0,
            product1 & _MASK32,
            (product0 >> 32) ^ c3 ^ k1,
            product0 & _MASK32,
        )
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def box_muller_sin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One standard normal per pair of uint32 words (curand's Box-Muller, sine branch)."""
    u = x.astype(np.float64) * _TWO_POW32_INV + _TWO_POW32_INV / 2
    v = y.astype(np.float64) * _TWO_POW32_INV_2PI + _TWO_POW32_INV_2PI / 2
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


def seed_key(seed: int) -> tuple[int, int]:
    """The Philox key words for a seed (negative seeds wrap to 64 bits, as torch does)."""
    seed %= 1 << 64
    return seed & _MASK32, seed >> 32


def philox_randn(seed: int, offset: int, count: int) -> np.ndarray:
    """`count` float32 standard normals for `seed` at generator call number `offset`."""
    index = np.arange(count, dtype=np.uint64)
    counter = np.zeros((4, count), dtype=np.uint64)
    counter[0] = offset & _MASK32
    counter[2] = index & _MASK32
    counter[3] = index >> np.uint64(32)
    low, high = seed_key(seed)
    key = np.empty((2, count), dtype=np.uint64)
    key[0], key[1] = low, high
    words = philox4x32(counter, key)
    return box_muller_sin(words[0], words[1])


class PhiloxGenerator:
    """A seeded generator whose n-th `randn` call equals CUDA's n-th `torch.randn` call."""

    def __init__(self, seed: int, offset: int = 0) -> None:
        self.seed = int(seed)
        self.offset = int(offset)

    def randn(self, shape: Sequence[int]) -> np.ndarray:
        shape = tuple(int(size) for size in shape)
        count = int(np.prod(shape, dtype=np.int64))
        values = philox_randn(self.seed, self.offset, count)
        self.offset += 1
        return values.reshape(shape)
