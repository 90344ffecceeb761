"""Tiled image processing: cut an image into overlapping tiles, process each, blend back.

    grid = tile_grid(image.width, image.height, tile=192, overlap=8)
    tiles = [upscale_tile(image.crop(box)) for box in grid.boxes()]
    result = combine_tiles(grid, tiles)   # every tile k times larger -> image k times larger

This is A1111's `images.split_grid` / `combine_grid` (used by its model upscalers):

- Along each axis the tiles are spread evenly: `ceil((length - overlap) / (tile - overlap))`
  tiles, the i-th starting at `int(i * (length - tile) / (count - 1))`, the last one flush
  with the far edge. Neighbours therefore overlap by at least `overlap` pixels.
- Tiles are pasted left to right into rows, rows top to bottom. A tile after the first is
  blended in over its first `overlap` pixels (scaled by the tile function's factor k) with a
  linear ramp, uint8 weight `int(r * 255 / overlap)` for r = 0 .. overlap - 1, from the
  earlier content to the new tile; beyond the ramp the new tile wins. Rows are blended onto
  each other the same way, vertically.

Where A1111 pads a tile larger than the image with black, the tile is cut down to the
image here (one tile spans that axis), so a small image is processed whole.
For a pointwise tile function (nearest-neighbour k times), tiled and untiled results are
identical: every blend mixes equal values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of a `width` x `height` image lie (tile sizes already cut to it)."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    overlap: int
    xs: tuple[int, ...]  # left edge of each column
    ys: tuple[int, ...]  # top edge of each row

    def __len__(self) -> int:
        return len(self.xs) * len(self.ys)

    def boxes(self) -> Iterator[tuple[int, int, int, int]]:
        """Crop boxes (left, top, right, bottom), row by row."""
        for y in self.ys:
            for x in self.xs:
                yield (x, y, x + self.tile_width, y + self.tile_height)


def check_tiling(tile: int, overlap: int) -> None:
    """ValueError unless `tile` (0 = no tiling) and `overlap` make a usable grid."""
    if tile < 0 or overlap < 0:
        raise ValueError(f"tile size ({tile}) and overlap ({overlap}) must not be negative")
    if tile > 0 and overlap >= tile:
        raise ValueError(
            f"tile overlap ({overlap}) must be smaller than the tile size ({tile}); "
            "tile size 0 turns tiling off"
        )


def _starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    if tile >= length:
        return (0,)
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return tuple(min(int(i * step), length - tile) for i in range(count))


def tile_grid(width: int, height: int, tile: int, overlap: int) -> TileGrid:
    """The tiles of a `width` x `height` image; `tile` 0 means one tile, the whole image."""
    check_tiling(tile, overlap)
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot tile an empty image ({width}x{height})")
    if tile == 0:
        return TileGrid(width, height, width, height, 0, (0,), (0,))
    tile_width, tile_height = min(tile, width), min(tile, height)
    xs, ys = _starts(width, tile, overlap), _starts(height, tile, overlap)
    return TileGrid(width, height, tile_width, tile_height, overlap, xs, ys)


def _ramp(overlap: int, size: tuple[int, int], horizontal: bool) -> Image.Image:
    """A1111's blend mask: uint8 `int(r * 255 / overlap)` along the overlap."""
    values = bytes(int(r * 255 / overlap) for r in range(overlap))
    line = Image.frombytes("L", (overlap, 1) if horizontal else (1, overlap), values)
    return line.resize(size, Image.Resampling.NEAREST)


def _paste_blended(
    canvas: Image.Image, part: Image.Image, at: int, overlap: int, horizontal: bool
) -> None:
    """Paste `part` at offset `at` along one axis, ramping in over its first `overlap` px."""
    width, height = part.size
    if at == 0 or overlap == 0:
        canvas.paste(part, (at, 0) if horizontal else (0, at))
        return
    if horizontal:
        ramp = _ramp(overlap, (overlap, height), horizontal)
        canvas.paste(part.crop((0, 0, overlap, height)), (at, 0), mask=ramp)
        canvas.paste(part.crop((overlap, 0, width, height)), (at + overlap, 0))
    else:
        ramp = _ramp(overlap, (width, overlap), horizontal)
        canvas.paste(part.crop((0, 0, width, overlap)), (0, at), mask=ramp)
        canvas.paste(part.crop((0, overlap, width, height)), (0, at + overlap))


def tile_factor(grid: TileGrid, tiles: list[Image.Image]) -> int:
    """The whole-number factor k by which every processed tile is larger than its input."""
    if len(tiles) != len(grid):
        raise ValueError(f"expected {len(grid)} tiles, got {len(tiles)}")
    sizes = {tile.size for tile in tiles}
    (width, height), *others = sizes
    factor = width // grid.tile_width
    if (
        others
        or factor < 1
        or width != factor * grid.tile_width
        or height != factor * grid.tile_height
    ):
        found = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise ValueError(
            f"processed {grid.tile_width}x{grid.tile_height} tiles must all be the same "
            f"whole number of times larger; got {found}"
        )
    return factor


def combine_tiles(grid: TileGrid, tiles: list[Image.Image]) -> Image.Image:
    """Blend processed tiles (in `grid.boxes()` order) into one image, k times the grid's
    size when each tile came back k times larger."""
    k = tile_factor(grid, tiles)
    tile_height, overlap = grid.tile_height * k, grid.overlap * k
    mode = tiles[0].mode
    result = Image.new(mode, (grid.width * k, grid.height * k))
    columns = len(grid.xs)
    for row, y in enumerate(grid.ys):
        strip = Image.new(mode, (grid.width * k, tile_height))
        for column, x in enumerate(grid.xs):
            tile = tiles[row * columns + column]
            _paste_blended(strip, tile, x * k, overlap, horizontal=True)
        _paste_blended(result, strip, y * k, overlap, horizontal=False)
    return result
