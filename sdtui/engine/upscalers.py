"""Running a registered upscaler, plain or tiled: `run_upscaler`.

Two protocols (see `register_upscalers` in docs/plugins.md):

- plain: `upscale(image, scale)` returns the image `scale` times larger;
- tiled: `upscale_tile(tile)` runs the model once over a tile and returns it `scale` times
  larger, where `scale` is the upscaler's native factor (an attribute: 4 for a 4x model).
  sdtui cuts the image into tiles (`sdtui.core.tiles`, unless the upscaler says
  `tiled = False`), reports each tile to `progress(done, total)` and calls `check()` (which
  raises to stop) before each one. An object with both methods is run tiled.

For a tiled upscaler this is A1111's `Upscaler.upscale` loop: run the model again while the
image is smaller than the requested size, at most three passes (at scale 1, one pass, so a
1x model still runs), stopping early if a pass leaves the size unchanged. Either way the
result is then resized with Lanczos to exactly `int(width * scale)` x `int(height * scale)`.
(A1111 rounds that size down to a multiple of 8; sdtui keeps the plugin contract's size.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from sdtui.core.tiles import check_tiling, combine_tiles, tile_grid

MAX_PASSES = 3
DEFAULT_TILE = 192  # A1111's ESRGAN_tile setting
DEFAULT_OVERLAP = 8  # A1111's ESRGAN_tile_overlap setting

Progress = Callable[[int, int], None]
Check = Callable[[], None]


def is_tiled(upscaler: Any) -> bool:
    """Whether the upscaler speaks the tiled protocol (`upscale_tile` + native `scale`)."""
    return callable(getattr(upscaler, "upscale_tile", None))


def target_size(image: Image.Image, scale: float) -> tuple[int, int]:
    """The size `run_upscaler` returns: `scale` times the image, rounded down."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"upscale factor must be a number > 0, got {scale!r}")
    if not math.isfinite(scale):
        raise ValueError(f"upscale factor must be finite, got {scale!r}")
    size = (int(image.width * scale), int(image.height * scale))
    if min(size) < 1:
        raise ValueError(
            f"upscale factor {scale} makes a {image.width}x{image.height} image {size[0]}x{size[1]}"
        )
    return size


def run_upscaler(
    upscaler: Any,
    image: Image.Image,
    scale: float,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Progress | None = None,
    check: Check | None = None,
) -> Image.Image:
    """`image` upscaled `scale` times by a registered upscaler (`tile` 0: no tiling)."""
    target = target_size(image, scale)
    check_tiling(tile, overlap)
    if is_tiled(upscaler):
        native = float(getattr(upscaler, "scale", 1) or 1)
        if not getattr(upscaler, "tiled", True):
            tile = 0
        passes = _Passes(target, scale, native, tile, overlap)
        image = _model_passes(upscaler, image, passes, progress, check)
    else:
        if check is not None:
            check()
        image = upscaler.upscale(image, scale)
        if progress is not None:
            progress(1, 1)
    if image.size != target:
        image = image.resize(target, resample=Image.Resampling.LANCZOS)
    return image


@dataclass(frozen=True)
class _Passes:
    """A1111's pass loop for a model with a native factor, towards `target`."""

    target: tuple[int, int]
    scale: float  # the requested factor
    native: float  # what one pass of the model does
    tile: int
    overlap: int

    def wanted(self, size: tuple[int, int], index: int) -> bool:
        """Whether pass `index` runs: the image does not cover the target yet (at scale 1
        the model still runs once)."""
        covered = size[0] >= self.target[0] and size[1] >= self.target[1]
        return not covered or (index == 0 and self.scale == 1)

    def tiles_left(self, size: tuple[int, int], first: int) -> int:
        """Tiles of passes `first`.. if each pass grows the image by `native`."""
        count = 0
        for index in range(first, MAX_PASSES):
            if not self.wanted(size, index):
                break
            count += len(tile_grid(size[0], size[1], self.tile, self.overlap))
            grown = (int(size[0] * self.native), int(size[1] * self.native))
            if grown == size:
                break
            size = grown
        return count


def _model_passes(
    upscaler: Any,
    image: Image.Image,
    passes: _Passes,
    progress: Progress | None,
    check: Check | None,
) -> Image.Image:
    done = 0
    for index in range(MAX_PASSES):
        if not passes.wanted(image.size, index):
            break
        total = done + passes.tiles_left(image.size, index)
        grid = tile_grid(image.width, image.height, passes.tile, passes.overlap)
        tiles = []
        for box in grid.boxes():
            if check is not None:
                check()
            tiles.append(_upscale_tile(upscaler, image.crop(box)))
            done += 1
            if progress is not None:
                progress(done, max(total, done))
        try:
            upscaled = combine_tiles(grid, tiles)
        except ValueError as error:
            raise ValueError(f"upscaler {upscaler.name!r}: {error}") from None
        if upscaled.size == image.size:
            return upscaled
        image = upscaled
    return image


def _upscale_tile(upscaler: Any, tile: Image.Image) -> Image.Image:
    result = upscaler.upscale_tile(tile)
    if not isinstance(result, Image.Image):
        raise TypeError(
            f"upscaler {upscaler.name!r}: upscale_tile returned {type(result).__name__}, "
            "not a PIL image"
        )
    return result
