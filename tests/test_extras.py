"""Extras postprocessing (sdtui.services.extras) against hand-worked A1111 expectations."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sdtui.params.extras_schema import SCALE_TO, ExtrasParams
from sdtui.registry import KINDS, Registry
from sdtui.services.extras import ExtrasTools, UpscaleCache, limit_size, postprocess
from sdtui.services.extras_job import ExtrasOptions
from sdtui.services.settings import Settings


class Flat:
    """A plain upscaler painting one colour at the requested size; counts its calls."""

    def __init__(self, name: str, colour: tuple[int, int, int]) -> None:
        self.name, self.colour, self.calls = name, colour, []

    def upscale(self, image: Image.Image, scale: float) -> Image.Image:
        self.calls.append((image.size, scale))
        return Image.new("RGB", (int(image.width * scale), int(image.height * scale)), self.colour)


class Stretch:
    """A plain upscaler that really resizes (nearest), so positions can be checked."""

    name = "Stretch"

    def upscale(self, image: Image.Image, scale: float) -> Image.Image:
        size = (int(image.width * scale), int(image.height * scale))
        return image.resize(size, resample=Image.Resampling.NEAREST)


class Inverter:
    """A face restorer stand-in: inverts the image; records what it was given."""

    def __init__(self, name: str) -> None:
        self.name, self.seen = name, []

    def restore(self, image: Image.Image, **options) -> Image.Image:
        self.seen.append((image.size, options))
        return Image.eval(image, lambda value: 255 - value)


def host_with(*objects) -> SimpleNamespace:
    upscalers, restorers = Registry(KINDS["upscalers"]), Registry(KINDS["face_restorers"])
    for obj in objects:
        (restorers if hasattr(obj, "restore") else upscalers).add(obj, "test")
    return SimpleNamespace(upscalers=upscalers, face_restorers=restorers)


def grey(width: int = 40, height: int = 30, value: int = 100) -> Image.Image:
    return Image.new("RGB", (width, height), (value, value, value))


def test_limit_size_is_a1111s():
    assert limit_size(160, 120, 100) == (100, 75)  # wide: width to the limit
    assert limit_size(120, 160, 100) == (75, 100)  # tall: height to the limit
    assert limit_size(90, 50, 100) == (90, 50)  # fits
    assert limit_size(500, 400, 0) == (500, 400)  # 0: no limit


def test_scale_by_upscales_and_writes_a1111s_extras_text():
    flat = Flat("Flat", (10, 20, 30))
    done = postprocess(
        grey(), ExtrasParams(upscaler="Flat", scale=2.0), ExtrasTools(host_with(flat))
    )
    assert done.image.size == (80, 60)
    assert flat.calls == [((40, 30), 2.0)]
    assert done.infotext == "Postprocess upscale by: 2, Postprocess upscaler: Flat"


def test_upscaler_none_skips_upscaling_entirely():
    host = host_with(Inverter("GFPGAN"))
    params = ExtrasParams(upscaler="None", scale=4.0, gfpgan_visibility=1.0)
    done = postprocess(grey(), params, ExtrasTools(host))
    assert done.image.size == (40, 30)  # A1111: Upscaler 1 None means no resize at all
    assert done.infotext == "GFPGAN visibility: 1"


def test_max_side_length_scales_to_the_limit_without_cropping():
    flat = Flat("Flat", (0, 0, 0))
    params = ExtrasParams(upscaler="Flat", scale=4.0, max_side_length=100)
    done = postprocess(grey(), params, ExtrasTools(host_with(flat)))
    # 40x30 x4 = 160x120, longer side to 100 -> 100x75, factor max(100/40, 75/30) = 2.5
    assert flat.calls == [((40, 30), 2.5)]
    assert done.image.size == (100, 75)
    assert done.info["Max side length"] == 100
    assert "Postprocess crop to" not in done.info


def test_scale_to_covers_then_crops_around_the_centre():
    source = Image.new("RGB", (40, 30), (0, 0, 0))
    source.paste((255, 0, 0), (19, 0, 21, 30))  # a red stripe in the middle columns
    params = ExtrasParams(
        upscaler="Stretch", resize_mode=SCALE_TO, scale_to_width=64, scale_to_height=64
    )
    done = postprocess(source, params, ExtrasTools(host_with(Stretch())))
    assert done.image.size == (64, 64)  # 40x30 x 64/30 = 85x64, cut to 64 wide
    red = np.nonzero(np.asarray(done.image)[32, :, 0] > 128)[0]
    assert abs((red.min() + red.max()) / 2 - 31.5) <= 1.5  # still in the middle
    assert done.infotext == (
        "Postprocess upscale to: 64x64, Postprocess crop to: 64x64, Postprocess upscaler: Stretch"
    )


def test_scale_to_without_crop_keeps_the_aspect():
    params = ExtrasParams(
        upscaler="Stretch",
        resize_mode=SCALE_TO,
        scale_to_width=64,
        scale_to_height=64,
        crop_to_fit=False,
    )
    done = postprocess(grey(), params, ExtrasTools(host_with(Stretch())))
    assert done.image.size == (85, 64)


def test_upscaler_2_is_blended_at_its_visibility():
    black, white = Flat("Black", (0, 0, 0)), Flat("White", (200, 200, 200))
    params = ExtrasParams(
        upscaler="Black", upscaler_2="White", upscaler_2_visibility=0.25, scale=2.0
    )
    done = postprocess(grey(), params, ExtrasTools(host_with(black, white)))
    assert np.asarray(done.image)[0, 0].tolist() == [50, 50, 50]
    assert done.info["Postprocess upscaler 2"] == "White"
    unused = dataclasses.replace(params, upscaler_2_visibility=0.0)
    white.calls.clear()
    postprocess(grey(), unused, ExtrasTools(host_with(Flat("Black", (0, 0, 0)), white)))
    assert white.calls == []  # visibility 0: not run


def test_the_cache_saves_upscaling_again_when_only_the_blend_changes():
    black, white = Flat("Black", (0, 0, 0)), Flat("White", (200, 200, 200))
    tools = ExtrasTools(host_with(black, white), cache=UpscaleCache(5))
    params = ExtrasParams(upscaler="Black", upscaler_2="White", upscaler_2_visibility=0.5)
    postprocess(grey(), params, tools)
    postprocess(grey(), dataclasses.replace(params, upscaler_2_visibility=0.9), tools)
    assert len(black.calls) == 1 and len(white.calls) == 1
    postprocess(grey(value=101), params, tools)  # other pixels: upscaled again
    assert len(black.calls) == 2
    tools.cache = UpscaleCache(0)  # the setting at 0: no cache
    postprocess(grey(), params, tools)
    assert len(black.calls) == 3


def test_face_restorers_blend_at_their_visibility_in_a1111s_order():
    gfpgan, codeformer = Inverter("GFPGAN"), Inverter("CodeFormer")
    stretch = Stretch()
    params = ExtrasParams(
        upscaler="Stretch",
        scale=2.0,
        gfpgan_visibility=0.5,
        codeformer_visibility=1.0,
        codeformer_weight=0.25,
    )
    done = postprocess(grey(value=100), params, ExtrasTools(host_with(stretch, gfpgan, codeformer)))
    # upscale first: both restorers see the 80x60 image; GFPGAN half-inverts 100 -> 127,
    # CodeFormer fully inverts that -> 128
    assert gfpgan.seen == [((80, 60), {})]
    assert codeformer.seen == [((80, 60), {"weight": 0.25})]
    assert np.asarray(done.image)[0, 0].tolist() == [128, 128, 128]
    assert done.infotext == (
        "Postprocess upscale by: 2, Postprocess upscaler: Stretch, GFPGAN visibility: 0.5, "
        "CodeFormer visibility: 1, CodeFormer weight: 0.25"
    )
    gfpgan.seen.clear()
    first = dataclasses.replace(params, upscale_first=False, codeformer_visibility=0.0)
    postprocess(grey(), first, ExtrasTools(host_with(stretch, gfpgan)))
    assert gfpgan.seen == [((40, 30), {})]  # faces first: the original size


def test_face_restoration_unload_offloads_each_restorer_after_use(tmp_path):
    class Offloading(Inverter):
        offloaded = 0

        def offload(self) -> None:
            self.offloaded += 1

    gfpgan = Offloading("GFPGAN")
    params = ExtrasParams(upscaler="None", gfpgan_visibility=1.0)
    postprocess(grey(), params, ExtrasTools(host_with(gfpgan)))
    assert gfpgan.offloaded == 0
    postprocess(grey(), params, ExtrasTools(host_with(gfpgan), unload_faces=True))
    assert gfpgan.offloaded == 1
    settings = Settings(tmp_path / "settings.json", tmp_path)
    settings.values["face_restoration_unload"] = True
    assert ExtrasOptions.from_settings(settings).unload_faces


def test_an_unknown_upscaler_names_the_known_ones():
    with pytest.raises(KeyError, match="Flat"):
        postprocess(
            grey(), ExtrasParams(upscaler="Nope"), ExtrasTools(host_with(Flat("Flat", (0, 0, 0))))
        )


def test_rgba_and_palette_inputs_are_processed_in_rgb():
    flat = Flat("Flat", (1, 2, 3))
    for mode in ("RGBA", "P", "L"):
        done = postprocess(
            grey().convert(mode),
            ExtrasParams(upscaler="Flat", scale=1.5),
            ExtrasTools(host_with(flat)),
        )
        assert done.image.mode == "RGB" and done.image.size == (60, 45)
