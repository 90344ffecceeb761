"""What the tiled img2img scripts (Poor man's outpainting, SD upscale) share: A1111's
`images.split_grid` with the request's width x height as the tile, and one img2img run per
tile (or batch of tiles).

    grid = request_grid(image.width, image.height, params.width, params.height, overlap)
    run = tile_run(params, grid, seed)              # the parameters of one tile's img2img
    tile = fit_tile(result.image, grid)             # back to the tile's size
    combined = combine_tiles(grid, tiles)           # A1111's combine_grid

A tile is the request's width x height, cut down to the image where the image is smaller
(A1111 pads such a tile with black instead); a cut tile runs at its size rounded up to a
multiple of 8 and its result is resized back (Lanczos).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sdtui.core.tiles import TileGrid, tile_grid
from sdtui.services.script_options import ScriptError


def check_overlap(script: str, label: str, overlap: int, width: int, height: int) -> None:
    """A1111's split_grid divides by tile - overlap: refuse an overlap that is not smaller
    than the tile (the request's width and height)."""
    if overlap >= min(width, height):
        raise ScriptError(
            f"{script}: {label} ({overlap}) must be smaller than the tile, the request's "
            f"width and height ({width}x{height})"
        )


def request_grid(
    width: int, height: int, tile_width: int, tile_height: int, overlap: int
) -> TileGrid:
    """The tiles of a `width` x `height` image, `tile_width` x `tile_height` each (A1111's
    split_grid: spread evenly, the last flush with the far edge)."""
    across = tile_grid(width, height, tile_width, overlap)
    down = tile_grid(width, height, tile_height, overlap)
    return TileGrid(
        width,
        height,
        min(tile_width, width),
        min(tile_height, height),
        overlap,
        across.xs,
        down.ys,
    )


def multiple_of_8(length: int) -> int:
    return -(-length // 8) * 8


def tile_run(params: Any, grid: TileGrid, seed: int, batch_size: int = 1) -> Any:
    """`params` for one img2img run of `batch_size` tiles of `grid`, seed `seed`."""
    return dataclasses.replace(
        params,
        width=multiple_of_8(grid.tile_width),
        height=multiple_of_8(grid.tile_height),
        seed=seed,
        batch_size=batch_size,
        batch_count=1,
        resize_mode="Just resize",
    )


def fit_tile(image: Any, grid: TileGrid) -> Any:
    """A tile's result at the tile's size (it differs for a tile cut to the image)."""
    from PIL import Image

    size = (grid.tile_width, grid.tile_height)
    if image.size == size:
        return image
    return image.resize(size, resample=Image.Resampling.LANCZOS)
