"""`sdtui generate --show`: images printed inline, as 24-bit half-blocks or through term-image."""

from __future__ import annotations

import io
import re
import sys
import types

import pytest
from PIL import Image

from sdtui.cli import build_parser
from sdtui.cli import show as show_module
from sdtui.cli.show import halfblock_text, show_image
from sdtui.plugins import get_host

ANSI_CELL = re.compile(r"\x1b\[38;2;(\d+);(\d+);(\d+);48;2;(\d+);(\d+);(\d+)m(▀+)")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def decoded(text: str) -> list[list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Each line as a list of cells (upper RGB, lower RGB), read back from the ANSI codes."""
    rows = []
    for line in text.splitlines():
        assert line.endswith("\x1b[0m")
        cells = []
        for match in ANSI_CELL.finditer(line):
            numbers = tuple(int(value) for value in match.groups()[:6])
            cells += [(numbers[:3], numbers[3:])] * len(match.group(7))
        rows.append(cells)
    return rows


def test_a_known_image_in_exact_codes() -> None:
    image = Image.new("RGB", (2, 2), (255, 0, 0))
    image.putpixel((0, 1), (0, 0, 255))
    image.putpixel((1, 1), (0, 128, 0))
    # One line: cell 1 red over blue, cell 2 red over green; colours reset at the end.
    assert halfblock_text(image, columns=2) == (
        "\x1b[38;2;255;0;0;48;2;0;0;255m▀\x1b[38;2;255;0;0;48;2;0;128;0m▀\x1b[0m\n"
    )


def test_equal_neighbours_share_one_colour_code() -> None:
    text = halfblock_text(Image.new("RGB", (8, 4), (10, 20, 30)), columns=8)
    assert text.count("\x1b[38;2") == 2 and text.count("▀") == 16  # 2 lines of 8 cells


def test_size_follows_width_limit_and_aspect_ratio() -> None:
    square = halfblock_text(Image.new("RGB", (512, 512), (1, 2, 3)), columns=64)
    assert [len(row) for row in decoded(square)] == [64] * 32  # 64x64 half-block pixels
    wide = halfblock_text(Image.new("RGB", (768, 512), (1, 2, 3)), columns=64)
    assert [len(row) for row in decoded(wide)] == [64] * 21  # 64 x 42.7 pixels
    narrow = halfblock_text(Image.new("RGB", (512, 512), (1, 2, 3)), columns=20)
    assert len(decoded(narrow)) == 10


def test_stripes_come_back_upper_and_lower() -> None:
    image = Image.new("RGB", (4, 4), (200, 0, 0))
    image.paste((0, 0, 200), (0, 1, 4, 2))
    image.paste((0, 0, 200), (0, 3, 4, 4))
    assert decoded(halfblock_text(image, columns=4)) == [[((200, 0, 0), (0, 0, 200))] * 4] * 2


def test_transparent_pixels_are_black() -> None:
    rows = decoded(halfblock_text(Image.new("RGBA", (2, 2), (255, 255, 255, 0)), columns=2))
    assert rows == [[((0, 0, 0), (0, 0, 0))] * 2]


def test_show_image_from_a_png_to_a_pipe(tmp_path) -> None:
    path = tmp_path / "00001-42.png"
    Image.new("RGB", (128, 64), (0, 255, 0)).save(path)
    out = io.StringIO()
    assert show_image(path, out) == "halfblock"
    rows = decoded(out.getvalue())
    assert [len(row) for row in rows] == [64] * 16
    assert {cell for row in rows for cell in row} == {((0, 255, 0), (0, 255, 0))}


def test_on_a_terminal_the_width_is_capped_by_the_terminal(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    monkeypatch.setattr(show_module, "term_image_available", lambda: False)
    out = FakeTerminal()
    assert show_image(Image.new("RGB", (100, 100), (9, 9, 9)), out) == "halfblock"
    assert [len(row) for row in decoded(out.getvalue())] == [30] * 15


def test_term_image_draws_when_installed_and_on_a_terminal(monkeypatch) -> None:
    made = []

    def auto_image(image, *, width=None, height=None):
        made.append((image.size, width))
        return "<term-image drawing>"

    package = types.ModuleType("term_image")
    module = types.ModuleType("term_image.image")
    module.AutoImage = auto_image
    package.image = module
    monkeypatch.setitem(sys.modules, "term_image", package)
    monkeypatch.setitem(sys.modules, "term_image.image", module)
    monkeypatch.setenv("COLUMNS", "100")
    out = FakeTerminal()
    assert show_image(Image.new("RGB", (32, 32)), out) == "term-image"
    assert made == [((32, 32), 64)]
    assert out.getvalue().startswith("<term-image drawing>")
    pipe = io.StringIO()  # not a terminal: our own half-blocks even with term-image
    assert show_image(Image.new("RGB", (32, 32)), pipe) == "halfblock"


def test_term_image_failing_falls_back_to_half_blocks(monkeypatch, capsys) -> None:
    def broken(image, **sizes):
        raise RuntimeError("unsupported terminal")

    module = types.ModuleType("term_image.image")
    module.AutoImage = broken
    monkeypatch.setitem(sys.modules, "term_image", types.ModuleType("term_image"))
    monkeypatch.setitem(sys.modules, "term_image.image", module)
    out = FakeTerminal()
    assert show_image(Image.new("RGB", (8, 8), (1, 1, 1)), out) == "halfblock"
    assert "term-image failed" in capsys.readouterr().err
    assert decoded(out.getvalue())


@pytest.mark.parametrize(("argv", "expected"), [([], False), (["--show"], True)])
def test_generate_has_a_show_flag(argv, expected) -> None:
    args = build_parser(get_host()).parse_args(["generate", "--prompt", "a cat", *argv])
    assert args.show is expected
