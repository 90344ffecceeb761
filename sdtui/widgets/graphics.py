"""How images are drawn in this terminal: Kitty graphics, Sixel or coloured half-blocks.

    mode = prepare_graphics(args.graphics)   # once, before App.run(); "auto" detects
    current_graphics()                       # Graphics(mode="kitty", cell_width=9, ...)

textual-image answers these questions by querying the terminal (cell size in pixels, Sixel and
Kitty support), which is impossible once Textual runs (its input thread takes the replies), so
`sdtui start` calls `prepare_graphics` before `App.run()` and every `ImageView` reads the
result. Without that call (Pilot tests, the bench) images are half-blocks on 10x20-pixel cells.

Precedence: an explicit mode (`--graphics` or the setting) wins; with "auto" or None the
`SDTUI_GRAPHICS` environment variable decides (tests and the tmux smoke run force
half-blocks with it); otherwise a terminal is asked, and pipes and other non-terminals get
half-blocks without being asked anything.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

GRAPHICS_MODES = ("auto", "kitty", "sixel", "halfblock")
ENV_VAR = "SDTUI_GRAPHICS"
DEFAULT_CELL_PIXELS = (10, 20)  # what textual-image assumes when the terminal does not say


@dataclass(frozen=True)
class Graphics:
    """The concrete drawing mode and the size of a terminal cell in pixels."""

    mode: str = "halfblock"
    cell_width: int = DEFAULT_CELL_PIXELS[0]
    cell_height: int = DEFAULT_CELL_PIXELS[1]

    @property
    def cell_pixels(self) -> tuple[int, int]:
        return self.cell_width, self.cell_height


_current = Graphics()


def check_mode(mode: str) -> str:
    """`mode` itself when it is one of GRAPHICS_MODES; a ValueError listing them otherwise."""
    if mode not in GRAPHICS_MODES:
        raise ValueError(f"unknown graphics mode {mode!r}; known: {', '.join(GRAPHICS_MODES)}")
    return mode


def current_graphics() -> Graphics:
    """What `prepare_graphics` chose (half-blocks on 10x20 cells if it was never called)."""
    return _current


def prepare_graphics(mode: str | None = "auto") -> str:
    """Choose how images are drawn; call once before the app runs. Returns the concrete mode.

    `mode` is one of GRAPHICS_MODES ("auto" or None: `SDTUI_GRAPHICS`, else what
    textual-image detects, half-blocks when stdout is not a terminal). Kitty and Sixel fall
    back to half-blocks when textual-image cannot be set up for this terminal. An unknown
    mode, here or in `SDTUI_GRAPHICS`, raises ValueError listing the modes.
    """
    global _current
    requested = check_mode(mode or "auto")
    if requested == "auto":
        requested = check_mode(os.environ.get(ENV_VAR) or "auto")
    on_terminal = _stdout_is_terminal()
    if requested == "auto":
        requested = _detect() if on_terminal else "halfblock"
    if requested != "halfblock" and not _load_textual_image(requested):
        requested = "halfblock"
    _current = Graphics(requested, *_cell_pixels(on_terminal))
    return requested


def _stdout_is_terminal() -> bool:
    stdout = sys.__stdout__
    try:
        return stdout is not None and stdout.isatty()
    except ValueError:  # closed
        return False


def _cell_pixels(on_terminal: bool) -> tuple[int, int]:
    """The cell size textual-image measured (ioctl, or an escape sequence), else 10x20."""
    if not on_terminal and not os.environ.get("TEXTUAL_CELL_WIDTH"):
        return DEFAULT_CELL_PIXELS
    try:
        from textual_image._terminal import get_cell_size

        size = get_cell_size()
    except Exception as error:  # a terminal that does not answer, stdin not a terminal, ...
        logger.debug("cell size unknown (%s); assuming %s", error, DEFAULT_CELL_PIXELS)
        return DEFAULT_CELL_PIXELS
    if size.width <= 0 or size.height <= 0:
        return DEFAULT_CELL_PIXELS
    return size.width, size.height


def _detect() -> str:
    """Ask the terminal through textual-image (Sixel first, then Kitty, as it prefers)."""
    try:
        from textual_image.renderable import Image, SixelImage, TGPImage
    except Exception as error:  # termios errors when stdin is not a terminal, ...
        logger.debug("graphics detection failed (%s); using half-blocks", error)
        return "halfblock"
    if Image is SixelImage:
        return "sixel"
    if Image is TGPImage:
        return "kitty"
    return "halfblock"


def _load_textual_image(mode: str) -> bool:
    """Import what `mode` draws with now, while the terminal can still answer queries."""
    module = "textual_image.widget.sixel" if mode == "sixel" else "textual_image.renderable.tgp"
    try:
        importlib.import_module(module)  # the widget package measures the cell size on import
    except Exception as error:
        logger.warning("cannot draw %s images here (%s); using half-blocks", mode, error)
        return False
    return True
