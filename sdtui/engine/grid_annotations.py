"""A1111's grid legends: labels above the columns and left of the rows of an image grid.

    grid = image_grid(cells, batch_size=1, rows=len(ys))
    grid = draw_grid_annotations(grid, 64, 64, [[GridAnnotation("Steps: 1")], ...],
                                 [[GridAnnotation("CFG: 7")], ...], margin=4)

As A1111's `modules/images.py`: the font size is (cell width + cell height) // 25, lines
are word-wrapped to the cell width (columns) or to three quarters of a cell width (the left
band, present only when some row label has text), a line still too wide is drawn smaller,
an inactive label (a prompt matrix part that is off) is grey and struck through, black text
on white, `margin` pixels between cells. The font is Pillow's bundled one at that size
(A1111 uses Roboto), so label pixels differ from A1111's while the layout rule is the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

ACTIVE = (0, 0, 0)  # A1111's grid_text_active_color
INACTIVE = (153, 153, 153)  # grid_text_inactive_color
BACKGROUND = (255, 255, 255)  # grid_background_color


@dataclass
class GridAnnotation:
    text: str = ""
    is_active: bool = True
    size: tuple[int, int] = (0, 0)
    allowed_width: float = 0


@cache
def get_font(size: int) -> Any:
    return ImageFont.load_default(size=max(1, size))


def _wrap(drawing: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> list[str]:
    lines = [""]
    for word in text.split():
        line = f"{lines[-1]} {word}".strip()
        if drawing.textlength(line, font=font) <= width:
            lines[-1] = line
        else:
            lines.append(word)
    return lines


def _measure(texts: list[list[GridAnnotation]], allowed: list[float], font: Any) -> None:
    """Wrap every label to its allowed width (in place) and record each line's size."""
    drawing = ImageDraw.Draw(Image.new("RGB", (1, 1), BACKGROUND))
    for lines, allowed_width in zip(texts, allowed, strict=True):
        items = list(lines)
        lines.clear()
        for item in items:
            wrapped = _wrap(drawing, item.text, font, allowed_width)
            lines.extend(GridAnnotation(text, item.is_active) for text in wrapped)
        for line in lines:
            box = drawing.multiline_textbbox((0, 0), line.text, font=font)
            line.size = (box[2] - box[0], box[3] - box[1])
            line.allowed_width = allowed_width


def _draw_texts(
    drawing: ImageDraw.ImageDraw,
    x: float,
    y: float,
    lines: list[GridAnnotation],
    fontsize: int,
    spacing: int,
) -> None:
    for line in lines:
        size = fontsize
        font = get_font(size)
        while drawing.textlength(line.text, font=font) > line.allowed_width and size > 1:
            size -= 1
            font = get_font(size)
        colour = ACTIVE if line.is_active else INACTIVE
        drawing.multiline_text(
            (x, y + line.size[1] / 2),
            line.text,
            font=font,
            fill=colour,
            anchor="mm",
            align="center",
        )
        if not line.is_active:
            half_w, half_h = line.size[0] // 2, line.size[1] // 2
            drawing.line((x - half_w, y + half_h, x + half_w, y + half_h), fill=INACTIVE, width=4)
        y += line.size[1] + spacing


def draw_grid_annotations(
    image: Image.Image,
    width: int,
    height: int,
    hor_texts: Sequence[Sequence[GridAnnotation]],
    ver_texts: Sequence[Sequence[GridAnnotation]],
    margin: int = 0,
) -> Image.Image:
    """`image`: a grid of `width` x `height` cells; one label list per column
    (`hor_texts`) and per row (`ver_texts`). Returns a larger image with the legend."""
    columns, rows = image.width // width, image.height // height
    if columns != len(hor_texts) or rows != len(ver_texts):
        raise ValueError(
            f"a {columns}x{rows} grid needs {columns} column and {rows} row labels, "
            f"got {len(hor_texts)} and {len(ver_texts)}"
        )
    hor = [[GridAnnotation(a.text, a.is_active) for a in labels] for labels in hor_texts]
    ver = [[GridAnnotation(a.text, a.is_active) for a in labels] for labels in ver_texts]
    fontsize = (width + height) // 25
    spacing = fontsize // 2
    font = get_font(fontsize)
    pad_left = 0 if sum(len(a.text) for labels in ver for a in labels) == 0 else width * 3 // 4
    _measure(hor + ver, [width] * len(hor) + [pad_left] * len(ver), font)
    hor_heights = [sum(a.size[1] + spacing for a in labels) - spacing for labels in hor]
    ver_heights = [
        sum(a.size[1] + spacing for a in labels) - spacing * len(labels) for labels in ver
    ]
    pad_top = 0 if sum(hor_heights) == 0 else max(hor_heights) + spacing * 2

    result = Image.new(
        "RGB",
        (
            image.width + pad_left + margin * (columns - 1),
            image.height + pad_top + margin * (rows - 1),
        ),
        BACKGROUND,
    )
    for row in range(rows):
        for column in range(columns):
            cell = image.crop(
                (width * column, height * row, width * (column + 1), height * (row + 1))
            )
            result.paste(
                cell, (pad_left + (width + margin) * column, pad_top + (height + margin) * row)
            )
    drawing = ImageDraw.Draw(result)
    for column in range(columns):
        x = pad_left + (width + margin) * column + width / 2
        y = pad_top / 2 - hor_heights[column] / 2
        _draw_texts(drawing, x, y, hor[column], fontsize, spacing)
    for row in range(rows):
        x = pad_left / 2
        y = pad_top + (height + margin) * row + height / 2 - ver_heights[row] / 2
        _draw_texts(drawing, x, y, ver[row], fontsize, spacing)
    return result


def draw_prompt_matrix(
    image: Image.Image, width: int, height: int, parts: Sequence[str], margin: int = 0
) -> Image.Image:
    """A1111's prompt matrix legend: the first half of the variable parts over the columns,
    the rest down the rows, each drawn grey and struck through where it is off."""
    prompts = list(parts[1:])
    boundary = math.ceil(len(prompts) / 2)
    horizontal, vertical = prompts[:boundary], prompts[boundary:]
    hor_texts = [
        [GridAnnotation(x, is_active=bool(pos & (1 << i))) for i, x in enumerate(horizontal)]
        for pos in range(1 << len(horizontal))
    ]
    ver_texts = [
        [GridAnnotation(x, is_active=bool(pos & (1 << i))) for i, x in enumerate(vertical)]
        for pos in range(1 << len(vertical))
    ]
    return draw_grid_annotations(image, width, height, hor_texts, ver_texts, margin)
