"""Images printed inline in the terminal, for `sdtui generate --show`.

    show_image(Path("outputs/.../00001-42.png"))   # -> "term-image" or "halfblock"
    halfblock_text(pil_image, columns=64)           # the text itself, 24-bit ANSI colours

With term-image installed (the `preview` extra: `pip install 'sdtui[preview]'`) and stdout a
terminal, term-image draws the image in the best style the terminal has (Kitty or iTerm2
graphics, else coloured blocks). Otherwise, and always when stdout is not a terminal (a pipe,
a file, tests), sdtui prints the image itself as coloured half-block characters ("▀" with the
upper pixel as foreground and the lower as background, 24-bit colour). Either way the image is
at most 64 columns wide, or the terminal's width when that is less.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

from PIL import Image

from sdtui.widgets.halfblock import UPPER_HALF_BLOCK, cell_colours, fit_cells, halfblock_cells, runs

MAX_COLUMNS = 64
MAX_ROWS = 64
HALF_BLOCK_CELL = (1, 2)  # a character cell is about twice as tall as wide
RESET = "\x1b[0m"


def output_columns(out: TextIO) -> int:
    """How wide an image may be: 64 columns, or the terminal's width when that is less."""
    columns = shutil.get_terminal_size((80, 24)).columns if _is_terminal(out) else MAX_COLUMNS
    return max(1, min(MAX_COLUMNS, columns))


def halfblock_text(image: Image.Image, columns: int = MAX_COLUMNS, rows: int = MAX_ROWS) -> str:
    """The image within `columns` x `rows` cells as lines of "▀" in 24-bit ANSI colours."""
    cells = fit_cells(image.size, (columns, rows), HALF_BLOCK_CELL)
    lines = []
    for row in halfblock_cells(image, cells):
        parts = []
        for cell, count in runs(row):
            (red, green, blue), (red2, green2, blue2) = cell_colours(cell)
            colour = f"\x1b[38;2;{red};{green};{blue};48;2;{red2};{green2};{blue2}m"
            parts.append(colour + UPPER_HALF_BLOCK * count)
        lines.append("".join(parts) + RESET + "\n")
    return "".join(lines)


def show_image(source: Path | Image.Image, out: TextIO | None = None) -> str:
    """Print the image to `out` (stdout); returns how: "term-image" or "halfblock"."""
    out = out if out is not None else sys.stdout
    image = Image.open(source) if isinstance(source, Path) else source
    columns = output_columns(out)
    if _is_terminal(out) and _draw_with_term_image(image, columns, out):
        return "term-image"
    out.write(halfblock_text(image, columns))
    out.flush()
    return "halfblock"


def term_image_available() -> bool:
    try:
        import term_image.image  # noqa: F401
    except ImportError:
        return False
    return True


def _draw_with_term_image(image: Image.Image, columns: int, out: TextIO) -> bool:
    """term-image's best style for this terminal; False when it is missing or fails."""
    if not term_image_available():
        return False
    from term_image.image import AutoImage

    try:
        drawing = AutoImage(image, width=columns)
        out.write(f"{drawing}{RESET}\n")
    except Exception as error:  # a terminal term-image cannot work with
        print(f"sdtui: term-image failed ({error}); using half-blocks", file=sys.stderr)
        return False
    out.flush()
    return True


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
