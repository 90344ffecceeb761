"""The contract every registered upscaler keeps when run through `run_upscaler`, and the
tiling underneath it (A1111's split_grid / combine_grid)."""

from __future__ import annotations

import itertools
import random
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sdtui import hookimpl
from sdtui.core.tiles import combine_tiles, tile_grid
from sdtui.engine.upscale import resize_to
from sdtui.engine.upscalers import run_upscaler
from sdtui.plugins import DEFAULT_PLUGINS, PluginHost
from sdtui.registry import RegistrationError
from tests.plugin_helpers import empty_host

NEAREST = Image.Resampling.NEAREST
LANCZOS = Image.Resampling.LANCZOS


class NearestTiles:
    """A tiled fake whose "model" is nearest-neighbour `factor` times: a pointwise
    operation, so cutting the image into tiles cannot change the result."""

    def __init__(self, factor: int = 2, *, tiled: bool = True, name: str = "") -> None:
        self.name = name or f"Fake Nearest x{factor}"
        self.scale = factor
        self.tiled = tiled
        self.calls: list[tuple[int, int]] = []

    def upscale_tile(self, tile: Image.Image) -> Image.Image:
        self.calls.append(tile.size)
        return tile.resize((tile.width * self.scale, tile.height * self.scale), NEAREST)


class Fill:
    """A 1x tiled fake that paints its n-th tile in the n-th value (not pointwise)."""

    name = "Fake Fill"
    scale = 1

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def upscale_tile(self, tile: Image.Image) -> Image.Image:
        return Image.new(tile.mode, tile.size, self.values.pop(0))


class RoundingPlain:
    """A plain upscaler that rounds where the contract floors (as the docs' example does)."""

    name = "Fake Rounding"

    def upscale(self, image: Image.Image, scale: float) -> Image.Image:
        return image.resize((round(image.width * scale), round(image.height * scale)), NEAREST)


def host_with_fakes() -> PluginHost:
    # the model upscalers run real networks (and cache weights in the data dir): they have
    # their own tests of size, progress and tiling in tests/test_model_upscalers.py
    builtins = [name for name in DEFAULT_PLUGINS if not name.endswith(".model_upscalers")]
    host = PluginHost(builtins=builtins, load_entry_points=False)

    @hookimpl
    def register_upscalers(register: Any) -> None:
        register(NearestTiles(2))
        register(NearestTiles(4))
        register(NearestTiles(2, tiled=False, name="Fake Nearest x2 untiled"))
        register(RoundingPlain())

    assert host.add_plugin(
        types.SimpleNamespace(register_upscalers=register_upscalers), name="fakes"
    )
    return host


HOST = host_with_fakes()
NAMES = HOST.upscalers.names()


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    channels = len(mode)
    data = random.Random(seed).randbytes(width * height * channels)
    return Image.frombytes(mode, (width, height), data)


class Stop(Exception):
    pass


class Recorder:
    """progress + check callbacks; check raises Stop on call number `stop_at`."""

    def __init__(self, stop_at: int = 0) -> None:
        self.steps: list[tuple[int, int]] = []
        self.checks = 0
        self.stop_at = stop_at

    def progress(self, done: int, total: int) -> None:
        self.steps.append((done, total))

    def check(self) -> None:
        self.checks += 1
        if self.checks == self.stop_at:
            raise Stop


# -- every registered upscaler -------------------------------------------------------------


def test_the_builtins_and_the_fakes_are_registered() -> None:
    assert {"None", "Lanczos", "Nearest", "Fake Nearest x2", "Fake Nearest x4"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("scale", "size"), [(1, (20, 12)), (1.5, (30, 18)), (2, (40, 24)), (4, (80, 48))]
)
def test_output_size(name: str, scale: float, size: tuple[int, int]) -> None:
    out = run_upscaler(HOST.upscalers.get(name), noise(20, 12), scale, tile=8, overlap=2)
    assert out.size == size and out.mode == "RGB"


@pytest.mark.parametrize("name", NAMES)
def test_progress_counts_up_to_its_total(name: str) -> None:
    recorder = Recorder()
    run_upscaler(HOST.upscalers.get(name), noise(20, 12), 2, tile=8, overlap=2, **vars_of(recorder))
    total = len(recorder.steps)
    assert total >= 1 and recorder.steps == [(n, total) for n in range(1, total + 1)]
    assert recorder.checks == total


@pytest.mark.parametrize("name", NAMES)
def test_a_raising_check_stops_it(name: str) -> None:
    with pytest.raises(Stop):
        run_upscaler(HOST.upscalers.get(name), noise(20, 12), 2, **vars_of(Recorder(stop_at=1)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf"), True, "2"])
def test_a_bad_scale_is_a_value_error(name: str, scale: Any) -> None:
    with pytest.raises(ValueError, match="upscale factor"):
        run_upscaler(HOST.upscalers.get(name), noise(8, 8), scale)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("tile", "overlap"), [(4, 8), (8, 8), (8, -1), (-1, 0)])
def test_bad_tiling_is_a_value_error(name: str, tile: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        run_upscaler(HOST.upscalers.get(name), noise(8, 8), 2, tile=tile, overlap=overlap)


def test_a_scale_that_leaves_no_pixel_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="makes a 8x8 image 0x0"):
        run_upscaler(HOST.upscalers.get("Lanczos"), noise(8, 8), 0.1)


def vars_of(recorder: Recorder) -> dict[str, Any]:
    return {"progress": recorder.progress, "check": recorder.check}


# -- the seam oracle: a pointwise tile function tiled == untiled ------------------------


@pytest.mark.parametrize(
    ("size", "tile", "overlap"),
    [
        ((32, 16), 8, 0),  # tiles divide the image, no overlap
        ((32, 16), 16, 4),
        ((30, 17), 8, 2),  # tiles that do not divide it
        ((21, 13), 7, 3),
        ((9, 40), 10, 4),  # one axis smaller than a tile
        ((20, 12), 0, 0),  # tiling off
    ],
)
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_tiled_nearest_equals_nearest_of_the_whole_image(
    size: tuple[int, int], tile: int, overlap: int, mode: str
) -> None:
    image = noise(*size, mode=mode, seed=sum(size))
    out = run_upscaler(NearestTiles(2), image, 2, tile=tile, overlap=overlap)
    assert out.mode == mode
    assert out.tobytes() == image.resize((size[0] * 2, size[1] * 2), NEAREST).tobytes()


def test_a_3x_model_tiles_without_seams_too() -> None:
    image = noise(23, 14)
    out = run_upscaler(NearestTiles(3), image, 3, tile=9, overlap=3)
    assert out.tobytes() == image.resize((69, 42), NEAREST).tobytes()


def test_a_2x_model_asked_for_4x_runs_twice_and_counts_both_passes() -> None:
    # 20x12 in 8 px tiles overlapping by 2: 3 x 2 tiles; then 40x24: 7 x 4 tiles.
    image, model, recorder = noise(20, 12), NearestTiles(2), Recorder()
    out = run_upscaler(model, image, 4, tile=8, overlap=2, **vars_of(recorder))
    assert out.tobytes() == image.resize((80, 48), NEAREST).tobytes()
    assert len(model.calls) == 6 + 28
    assert recorder.steps == [(n, 34) for n in range(1, 35)]


def test_a_4x_model_asked_for_2x_runs_once_then_lanczos_down() -> None:
    image, model = noise(20, 12), NearestTiles(4)
    out = run_upscaler(model, image, 2, tile=8, overlap=2)
    expected = image.resize((80, 48), NEAREST).resize((40, 24), LANCZOS)
    assert out.tobytes() == expected.tobytes() and len(model.calls) == 6


def test_a_2x_model_asked_for_3x_runs_twice_then_lanczos_down() -> None:
    image, model = noise(10, 6), NearestTiles(2)
    out = run_upscaler(model, image, 3, tile=0, overlap=0)
    expected = image.resize((40, 24), NEAREST).resize((30, 18), LANCZOS)
    assert out.tobytes() == expected.tobytes() and model.calls == [(10, 6), (20, 12)]


def test_passes_stop_at_three() -> None:
    image, model = noise(4, 4), NearestTiles(2)
    out = run_upscaler(model, image, 16, tile=0, overlap=0)
    assert model.calls == [(4, 4), (8, 8), (16, 16)]
    assert out.tobytes() == image.resize((32, 32), NEAREST).resize((64, 64), LANCZOS).tobytes()


def test_a_1x_model_runs_once_at_scale_1_and_a_stuck_size_stops_the_passes() -> None:
    image = noise(12, 4, "L")
    assert run_upscaler(Fill(7, 7), image, 1, tile=8, overlap=4).getextrema() == (7, 7)
    model = NearestTiles(1)
    out = run_upscaler(model, image, 2, tile=0, overlap=0)  # 1x then same size: Lanczos
    assert model.calls == [(12, 4)] and out.tobytes() == image.resize((24, 8), LANCZOS).tobytes()


def test_untiled_models_get_the_whole_image_each_pass() -> None:
    model = NearestTiles(2, tiled=False)
    run_upscaler(model, noise(30, 20), 4, tile=8, overlap=2)
    assert model.calls == [(30, 20), (60, 40)]


def test_check_runs_before_each_tile_and_a_raise_stops_between_tiles() -> None:
    model, recorder = NearestTiles(2), Recorder(stop_at=4)
    with pytest.raises(Stop):
        run_upscaler(model, noise(20, 12), 2, tile=8, overlap=2, **vars_of(recorder))
    assert len(model.calls) == 3 and recorder.steps == [(1, 6), (2, 6), (3, 6)]


# -- blending: a linear ramp over the overlap, A1111's tile positions ------------------------


def test_overlaps_blend_with_a_linear_ramp_left_to_right() -> None:
    # 12 px wide in 8 px tiles overlapping by 4: tiles at x = 0 and 4; the second ramps in
    # over x = 4..7 with weights 0, 63, 127, 191 (of 255), then wins.
    out = run_upscaler(Fill(0, 200), Image.new("L", (12, 1)), 1, tile=8, overlap=4)
    expected = [0, 0, 0, 0, 0, 49, 100, 150, 200, 200, 200, 200]
    assert [abs(a - b) <= 1 for a, b in zip(out.tobytes(), expected, strict=True)] == [True] * 12


def test_overlaps_blend_with_a_linear_ramp_top_to_bottom() -> None:
    out = run_upscaler(Fill(200, 0), Image.new("L", (1, 12)), 1, tile=8, overlap=4)
    expected = [200, 200, 200, 200, 200, 151, 100, 50, 0, 0, 0, 0]
    assert [abs(a - b) <= 1 for a, b in zip(out.tobytes(), expected, strict=True)] == [True] * 12


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "starts"),
    [
        (20, 8, 2, (0, 6, 12)),  # ceil(18 / 6) = 3 tiles, 6 px apart
        (21, 8, 2, (0, 4, 8, 13)),  # ceil(19 / 6) = 4 tiles, 13 / 3 px apart, last flush
        (12, 8, 2, (0, 4)),
        (8, 8, 2, (0,)),
        (5, 8, 2, (0,)),  # smaller than a tile: one tile, cut to the image
    ],
)
def test_tile_positions_are_a1111s(
    length: int, tile: int, overlap: int, starts: tuple[int, ...]
) -> None:
    grid = tile_grid(length, 3, tile, overlap)
    assert grid.xs == starts and grid.tile_width == min(tile, length)
    assert grid.ys == (0,) and grid.tile_height == 3 and len(grid) == len(starts)


@settings(deadline=None, max_examples=60)
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    tile=st.integers(0, 20),
    overlap=st.integers(0, 19),
    factor=st.integers(1, 3),
)
def test_any_grid_covers_the_image_and_recombines_pointwise_tiles_exactly(
    width: int, height: int, tile: int, overlap: int, factor: int
) -> None:
    overlap = min(overlap, max(tile - 1, 0))
    grid = tile_grid(width, height, tile, overlap)
    covered = set()
    for left, top, right, bottom in grid.boxes():
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        covered |= {(x, y) for x in range(left, right) for y in range(top, bottom)}
    assert len(covered) == width * height
    for starts in (grid.xs, grid.ys):  # neighbours overlap by at least `overlap`
        assert all(0 < b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    image = noise(width, height, seed=width * 41 + height)
    size = (width * factor, height * factor)
    tiles = [
        image.crop(box).resize(((box[2] - box[0]) * factor, (box[3] - box[1]) * factor), NEAREST)
        for box in grid.boxes()
    ]
    assert combine_tiles(grid, tiles).tobytes() == image.resize(size, NEAREST).tobytes()


# -- bad upscalers ----------------------------------------------------------------------


def test_tiles_of_a_fractional_factor_are_refused_naming_the_upscaler() -> None:
    class OffByOne(NearestTiles):
        def upscale_tile(self, tile: Image.Image) -> Image.Image:
            return tile.resize((tile.width * 2 + 1, tile.height * 2), NEAREST)

    with pytest.raises(ValueError, match=r"'Fake Nearest x2'.*same whole number of times"):
        run_upscaler(OffByOne(2), noise(20, 12), 2, tile=8, overlap=2)


def test_a_tile_function_returning_no_image_is_a_type_error() -> None:
    class Broken(NearestTiles):
        def upscale_tile(self, tile: Image.Image) -> Any:
            return tile.tobytes()

    with pytest.raises(TypeError, match="returned bytes, not a PIL image"):
        run_upscaler(Broken(2), noise(8, 8), 2)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (types.SimpleNamespace(name="t", upscale_tile=lambda tile: tile), "native `scale`"),
        (types.SimpleNamespace(name="t", upscale_tile=lambda t: t, scale=0.5), "number >= 1"),
        (types.SimpleNamespace(name="t", upscale_tile=lambda t: t, scale="4"), "number >= 1"),
        (types.SimpleNamespace(name="t"), "lacks callable `upscale` (or `upscale_tile`"),
    ],
)
def test_the_registry_refuses_upscalers_without_a_protocol(obj: Any, message: str) -> None:
    host = empty_host()
    plugin = types.SimpleNamespace(register_upscalers=hookimpl(lambda register: register(obj)))
    host.add_plugin(plugin, name="bad")
    assert message in host.failures[0].error


def test_a_tiled_only_upscaler_registers() -> None:
    host = empty_host()
    register_upscalers = hookimpl(lambda register: register(NearestTiles(4)))
    plugin = types.SimpleNamespace(register_upscalers=register_upscalers)
    assert host.add_plugin(plugin, name="p") and host.upscalers.get("fake nearest x4").scale == 4


def test_registering_a_plain_upscaler_with_no_upscale_raises_registration_error() -> None:
    with pytest.raises(RegistrationError, match="'x'"):
        empty_host().upscalers.add(types.SimpleNamespace(name="x"), plugin="p")


# -- plain upscalers and hires fix --------------------------------------------------------


def test_a_plain_upscaler_is_called_once_and_its_size_is_made_exact() -> None:
    out = run_upscaler(RoundingPlain(), noise(7, 5), 1.5)  # round: 10x8; contract: 10x7
    assert out.size == (10, 7)


def test_hires_resize_runs_a_tiled_model_and_checks_between_tiles() -> None:
    image, model, recorder = noise(16, 16), NearestTiles(2), Recorder()
    out = resize_to(image, 40, 40, model, tile=8, overlap=2, **vars_of(recorder))
    expected = image.resize((64, 64), NEAREST).resize((40, 40), LANCZOS)
    assert out.tobytes() == expected.tobytes()
    # 16x16 in 8 px tiles overlapping by 2: 3 x 3; then 32x32: 5 x 5
    assert recorder.checks == 9 + 25 and recorder.steps[-1] == (34, 34)


def test_hires_resize_with_builtins_is_unchanged() -> None:
    image = noise(16, 12)
    lanczos = HOST.upscalers.get("Lanczos")
    assert resize_to(image, 32, 24, lanczos).tobytes() == image.resize((32, 24), LANCZOS).tobytes()
    nearest = resize_to(image, 40, 24, HOST.upscalers.get("Nearest"))  # 2.5x then 40x24
    expected = image.resize((40, 30), NEAREST).resize((40, 24), LANCZOS)
    assert nearest.tobytes() == expected.tobytes()
