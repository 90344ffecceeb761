"""A1111's "Restore faces" in txt2img / img2img: the setting, the engine step, the infotext
and the service's checks (restorer stand-ins; the real GFPGAN / CodeFormer are tested in
test_face_restorers.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.schema import GenerationParams
from sdtui.params.settings_schema import SETTINGS
from sdtui.params.validate import resolve
from sdtui.registry import KINDS, Registry
from sdtui.services.face_restoration import face_restorer
from sdtui.services.generation import job_settings
from tests.test_txt2img import run


def invert(image: Image.Image) -> Image.Image:
    return Image.eval(image, lambda value: 255 - value)


def test_the_setting_supplies_the_default_and_the_infotext_names_the_model():
    assert SETTINGS["face_restoration"].default is False
    assert resolve(GenerationParams()).restore_faces is False
    assert resolve(GenerationParams(), {"face_restoration": True}).restore_faces is True
    params = GenerationParams(prompt="a face", restore_faces=True, steps=5)
    text = infotext_from_params(params, RunFacts(seed=3, face_restoration="CodeFormer"))
    assert "Seed: 3, Face restoration: CodeFormer, Size: 512x512" in text  # A1111's order
    assert params_from_infotext(text).values["restore_faces"] is True
    assert "Face restoration" not in infotext_from_params(
        GenerationParams(restore_faces=False), RunFacts(seed=3, face_restoration="CodeFormer")
    )
    # A1111 writes the restorer's name; any name means it was on
    pasted = "x\nSteps: 20, Seed: 1, Face restoration: GFPGAN, Size: 512x512"
    assert params_from_infotext(pasted).values["restore_faces"] is True


def test_the_engine_restores_every_image_of_the_batch_and_says_so():
    plain = run(GenerationParams(prompt="a face", batch_size=2))
    calls = []

    def restorer(image):
        calls.append(image.size)
        return invert(image)

    restored = run(
        GenerationParams(prompt="a face", batch_size=2, restore_faces=True),
        face_restorer=restorer,
        face_restoration_model="Inverter",
    )
    assert calls == [(64, 64), (64, 64)]
    for before, after in zip(plain, restored, strict=True):
        assert np.array_equal(255 - np.asarray(before.image), np.asarray(after.image))
        assert "Face restoration: Inverter" in after.infotext
        assert "Face restoration" not in before.infotext


def test_restore_faces_without_a_restorer_is_an_error():
    with pytest.raises(ValueError, match="no face restorer"):
        run(GenerationParams(prompt="a face", restore_faces=True))


class Recorder:
    def __init__(self, name: str, problem: str | None = None) -> None:
        self.name, self.problem, self.options = name, problem, []

    def restore(self, image, **options):
        self.options.append(options)
        return image

    def unavailable(self):
        return self.problem


def host_with(*restorers) -> SimpleNamespace:
    registry = Registry(KINDS["face_restorers"])
    for restorer in restorers:
        registry.add(restorer, "test")
    return SimpleNamespace(face_restorers=registry)


def test_the_service_checks_the_restorer_before_anything_runs():
    codeformer = Recorder("CodeFormer")
    run_it = face_restorer(host_with(codeformer), "codeformer", 0.25)
    run_it(Image.new("RGB", (8, 8)))
    assert codeformer.options == [{"weight": 0.25}]  # the code_former_weight setting
    gfpgan = Recorder("GFPGAN")
    face_restorer(host_with(gfpgan), "GFPGAN", 0.25)(Image.new("RGB", (8, 8)))
    assert gfpgan.options == [{}]
    missing = Recorder("GFPGAN", "put GFPGANv1.4.pth into models/GFPGAN")
    with pytest.raises(ValueError, match=r"Restore faces: put GFPGANv1\.4\.pth into models/GFPGAN"):
        face_restorer(host_with(missing), "GFPGAN", 0.5)
    with pytest.raises(ValueError, match="Restore faces: unknown face restorer 'Nope'"):
        face_restorer(host_with(gfpgan), "Nope", 0.5)


def test_the_builtin_restorers_without_weights_say_where_to_put_them(data_dirs):
    from sdtui_plugins.builtin.face_restorers import configure_face_restorers

    from sdtui.plugins import PluginHost

    host = PluginHost(load_entry_points=False)
    configure_face_restorers(data_dirs)
    with pytest.raises(ValueError, match="Codeformer"):
        face_restorer(host, "CodeFormer", 0.5)


def test_job_settings_carry_the_face_settings():
    values = {
        "ESRGAN_tile": 64,
        "ESRGAN_tile_overlap": 4,
        "face_restoration_model": "GFPGAN",
        "code_former_weight": 0.3,
    }
    assert job_settings(values) == {
        "upscaler_tile": 64,
        "upscaler_tile_overlap": 4,
        "face_restoration_model": "GFPGAN",
        "code_former_weight": 0.3,
    }
