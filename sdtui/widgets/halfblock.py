"""Fitting an image into terminal cells, and its colours as half-block cells.

    fit_cells((1024, 512), (40, 20), (10, 20))   # -> (40, 10): the 2:1 image, 2:1 on screen
    rows = halfblock_cells(image, (40, 10))       # 10 rows of 40 cells (upper, lower pixel)

A half-block cell is the character "▀" with the upper pixel as foreground colour and the lower
one as background, so a cell shows two pixels stacked. Shared by the `ImageView` widget and
`sdtui generate --show`; PIL and numpy only (no Textual), so the CLI imports it cheaply.
"""

from __future__ import annotations

from itertools import groupby

from PIL import Image

UPPER_HALF_BLOCK = "▀"

Rgb = tuple[int, int, int]
CellColours = tuple[Rgb, Rgb]  # (upper pixel, lower pixel)

_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def fit_cells(
    image_size: tuple[int, int], max_cells: tuple[int, int], cell_pixels: tuple[int, int]
) -> tuple[int, int]:
    """The most (columns, rows) within `max_cells` that show the image at its aspect ratio.

    `cell_pixels` is the terminal's cell size in pixels, so a square image takes twice as many
    columns as rows on the usual 1:2 cells. (0, 0) when either has no area.
    """
    width, height = image_size
    max_columns, max_rows = max_cells
    if min(width, height, max_columns, max_rows) <= 0:
        return 0, 0
    cell_width, cell_height = cell_pixels
    scale = min(max_columns * cell_width / width, max_rows * cell_height / height)
    columns = min(max_columns, max(1, round(width * scale / cell_width)))
    rows = min(max_rows, max(1, round(height * scale / cell_height)))
    return columns, rows


def to_rgb(image: Image.Image, background: Rgb = (0, 0, 0)) -> Image.Image:
    """An 8-bit RGB copy: transparency over `background`, 16-bit and float scaled to 0-255."""
    if image.mode in _HIGH_DEPTH_MODES:
        image = _to_eight_bits(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, background)
        flat.paste(image, mask=image.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _to_eight_bits(image: Image.Image) -> Image.Image:
    """Greyscale of 16-bit / 32-bit / float pixels, stretched from their own 0..max to 0..255."""
    image = image.convert("F")
    _, high = image.getextrema()
    scale = 255.0 / max(float(high), 1.0)
    return image.point(lambda value: value * scale).convert("L")  # L clips below 0


def resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` at `size`: averaged when shrinking, sharp pixels when enlarging twice or more."""
    if image.size == size:
        return image
    if size[0] >= 2 * image.width and size[1] >= 2 * image.height:
        return image.resize(size, Image.Resampling.NEAREST)
    if size[0] <= image.width and size[1] <= image.height:
        return image.resize(size, Image.Resampling.BOX, reducing_gap=3.0)
    return image.resize(size, Image.Resampling.BILINEAR)


def halfblock_cells(
    image: Image.Image, cells: tuple[int, int], background: Rgb = (0, 0, 0)
) -> list[list[int]]:
    """Rows of cells for `image` drawn on `cells` (columns, rows) half-block cells.

    Each cell is one int, its upper and lower pixel packed as 0xRRGGBB_rrggbb (see
    `cell_colours`): ints compare and hash fast, and a photo has thousands of cells.
    """
    import numpy as np

    columns, rows = cells
    if columns <= 0 or rows <= 0:
        return []
    picture = to_rgb(resized(_small_mode(image), (columns, 2 * rows)), background)
    pixels = np.asarray(picture, dtype=np.uint64)
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    return ((packed[0::2] << 24) | packed[1::2]).tolist()


def cell_colours(cell: int) -> CellColours:
    """(upper, lower) RGB of a packed cell."""
    return _rgb(cell >> 24), _rgb(cell & 0xFFFFFF)


def _rgb(value: int) -> Rgb:
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def runs(row: list[int]) -> list[tuple[int, int]]:
    """Consecutive equal cells of a row merged: [(cell, count), ...]."""
    return [(cell, len(list(group))) for cell, group in groupby(row)]


def _small_mode(image: Image.Image) -> Image.Image:
    """A mode PIL resizes well: palettes and high depths become RGB(A) / L first."""
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode in _HIGH_DEPTH_MODES:
        return _to_eight_bits(image)
    has_alpha = "transparency" in image.info or image.mode in ("PA", "RGBa", "La")
    return image.convert("RGBA" if has_alpha else "RGB")
