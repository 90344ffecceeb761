"""A1111's ESRGAN_tile / ESRGAN_tile_overlap reach every upscaler the engine runs: hires fix,
img2img's resize of its inputs, and the SD upscale script; from the settings through the
backend's jobs. A counting tiled upscaler (x2) says how many tiles it was given; the
expected counts are A1111's split_grid by hand: a 64 px side in 32 px tiles overlapping by
8 needs ceil((64 - 8) / (32 - 8)) = 3 tiles, so 9 in all; tile 0 (or a tile as large as
the image, as the default 192 is here) is one tile."""

from __future__ import annotations

import dataclasses
import types
from functools import cache
from typing import Any

import pytest
from PIL import Image

from sdtui import hookimpl
from sdtui.engine.img2img import img2img
from sdtui.engine.options import EngineOptions
from sdtui.engine.txt2img import txt2img
from sdtui.models.loader import load_checkpoint
from sdtui.params.schema import GenerationParams, img2img_defaults
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from sdtui.runtime.job_events import Finished
from sdtui.services.backend import Backend
from sdtui.services.generation import RunSettings
from sdtui.services.settings import Settings
from tests.tiny_models import write_tiny_checkpoint

NAME = "Counting x2"
TILED = 9  # 3 x 3 tiles of 32 px over 64 px, overlap 8 (see above)


class CountingTiles:
    """A tiled x2 upscaler that counts the tiles it runs (nearest-neighbour)."""

    name = NAME
    scale = 2

    def __init__(self) -> None:
        self.tiles: list[tuple[int, int]] = []

    def upscale_tile(self, tile: Image.Image) -> Image.Image:
        self.tiles.append(tile.size)
        return tile.resize((tile.width * 2, tile.height * 2), Image.Resampling.NEAREST)


def host_with(upscaler: CountingTiles) -> PluginHost:
    host = PluginHost(load_entry_points=False)
    plugin = types.SimpleNamespace(register_upscalers=hookimpl(lambda register: register(upscaler)))
    assert host.add_plugin(plugin, name="counting")
    return host


@cache
def tiny() -> Any:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="sdtui-tiling-"))
    return load_checkpoint(write_tiny_checkpoint(folder / "sd1.safetensors", "sd1"))


def hires_request(**changes: Any) -> GenerationParams:
    base = dict(
        prompt="x", width=64, height=64, steps=1, seed=5, variation_seed=0, enable_hires=True,
        hires_upscaler=NAME, hires_steps=1, denoising_strength=0.5,
    )  # fmt: skip
    return resolve(dataclasses.replace(GenerationParams(), **{**base, **changes}))


@pytest.mark.parametrize(("tile", "tiles"), [(32, TILED), (0, 1), (192, 1)])
def test_hires_fix_upscales_in_the_options_tiles(tile: int, tiles: int) -> None:
    upscaler = CountingTiles()
    host = host_with(upscaler)
    options = EngineOptions(
        host.samplers, host.schedules, host.upscalers, upscaler_tile=tile, upscaler_tile_overlap=8
    )
    (result,) = txt2img(tiny(), hires_request(), options)
    assert result.image.size == (128, 128)
    assert len(upscaler.tiles) == tiles
    if tile:
        assert set(upscaler.tiles) == {(min(tile, 64), min(tile, 64))}


def test_img2img_resizes_its_inputs_in_the_options_tiles() -> None:
    counts = []
    for tile in (16, 0):
        upscaler = CountingTiles()
        host = host_with(upscaler)
        options = EngineOptions(
            host.samplers, host.schedules, img2img_upscaler=upscaler, upscaler_tile=tile,
            upscaler_tile_overlap=4,
        )  # fmt: skip
        base = dict(prompt="x", width=64, height=64, steps=2, seed=5, variation_seed=0)
        params = resolve(dataclasses.replace(img2img_defaults(), **base))
        (result,) = img2img(tiny(), params, options, [Image.new("RGB", (32, 32), "red")])
        assert result.image.size == (64, 64)
        counts.append(len(upscaler.tiles))
    # 32 px in 16 px tiles overlapping by 4: ceil((32 - 4) / (16 - 4)) = 3 per side
    assert counts == [9, 1]


def test_the_settings_reach_the_engine_through_the_backend(data_dirs) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    settings = Settings.load(data_dirs)
    tiling = RunSettings.from_settings(settings)
    assert (tiling.upscaler_tile, tiling.upscaler_tile_overlap) == (192, 8)
    assert settings.update({"ESRGAN_tile": 32, "ESRGAN_tile_overlap": 8}) == []
    upscaler = CountingTiles()
    backend = Backend(data_dirs, device="cpu", host_factory=lambda: host_with(upscaler))
    backend.start()
    try:
        params = dataclasses.replace(hires_request(), model=None)
        handle, job = backend.submit_txt2img(backend.prepare(params))
        assert job.run_settings == RunSettings.from_settings(settings)
        assert (job.run_settings.upscaler_tile, job.run_settings.upscaler_tile_overlap) == (32, 8)
        assert isinstance(handle.wait(), Finished)
    finally:
        backend.shutdown()
    assert len(upscaler.tiles) == TILED
    assert len(job.saved) == 1 and job.saved[0].path.is_file()


def test_sd_upscale_runs_its_upscaler_in_the_jobs_tiles(tmp_path) -> None:
    from sdtui.paths import DataDirs
    from sdtui.runtime import Runtime
    from sdtui.services.generation import choose_checkpoint
    from sdtui.services.img2img_job import Img2ImgJob
    from sdtui.services.requests import prepare_img2img

    dirs = DataDirs.resolve(tmp_path / "data")
    dirs.create()
    write_tiny_checkpoint(dirs.checkpoints / "tiny.safetensors", "sd1")
    upscaler = CountingTiles()
    host = host_with(upscaler)
    base = dict(prompt="a cat", steps=1, width=64, height=64, seed=7)
    params = prepare_img2img(dataclasses.replace(img2img_defaults(), **base), host)
    runtime = Runtime.start(device="cpu", plugin_host=host)
    try:
        job = Img2ImgJob(
            runtime, host, dirs, params, choose_checkpoint(dirs, None),
            init_images=[Image.new("RGB", (64, 64), "red")],
            script=host.scripts.get("SD upscale"), script_args={"upscaler": NAME, "overlap": 0},
            run_settings=RunSettings(upscaler_tile=32, upscaler_tile_overlap=8),
        )  # fmt: skip
        assert isinstance(runtime.jobs.submit(job, name="sd", kind="img2img").wait(), Finished)
    finally:
        runtime.shutdown()
    assert len(upscaler.tiles) == TILED
    (saved,) = job.saved
    assert Image.open(saved.path).size == (128, 128)
