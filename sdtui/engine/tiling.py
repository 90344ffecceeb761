"""A1111's "Tiling": every Conv2d pads circularly, so the image wraps around seamlessly.

    padding = CircularPadding()
    padding.apply(model.unet, model.vae)   # each Conv2d's own padding mode is remembered
    ...                                    # generate
    padding.restore()                      # every layer's padding mode as it was

A1111 (`model_hijack.apply_circular`) sets `padding_mode = "circular"` on every Conv2d of the
loaded model for the job. A convolution then reads the opposite edge where it would read
zeros, so the network sees the latent as a torus: the last column of the image continues
into the first, and the last row into the first. Layers that pad by hand before a
convolution without padding (the VAE encoder's downsampling) keep their zero padding, as in
A1111.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

CIRCULAR = "circular"


class CircularPadding:
    """Circular padding on every Conv2d of some modules, undone exactly by `restore`."""

    def __init__(self) -> None:
        self._saved: list[tuple[torch.nn.Conv2d, str]] = []

    @property
    def active(self) -> bool:
        return bool(self._saved)

    def apply(self, *modules: torch.nn.Module | None) -> int:
        """Make every Conv2d of `modules` (None skipped) pad circularly; how many layers."""
        count = 0
        for module in modules:
            if module is None:
                continue
            for layer in module.modules():
                if isinstance(layer, torch.nn.Conv2d):
                    self._saved.append((layer, layer.padding_mode))
                    layer.padding_mode = CIRCULAR
                    count += 1
        return count

    def restore(self) -> None:
        """Every layer back to the padding mode it had before `apply`."""
        for layer, mode in reversed(self._saved):
            layer.padding_mode = mode
        self._saved.clear()


@contextmanager
def circular_padding(*modules: torch.nn.Module | None) -> Iterator[CircularPadding]:
    """Circular padding for the duration of a block; restored on the way out, errors
    included."""
    padding = CircularPadding()
    try:
        padding.apply(*modules)
        yield padding
    finally:
        padding.restore()
