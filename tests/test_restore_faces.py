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
from sdtui.services.generation import RunSettings
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
    values = params_from_infotext(pasted).values
    assert values["restore_faces"] is True
    assert values["face_restoration_model"] == "GFPGAN"  # the restorer A1111 ran
    assert (
        "face_restoration_model"
        not in params_from_infotext(pasted.replace("GFPGAN", "True")).values
    )
    off = params_from_infotext(pasted.replace("GFPGAN", "False")).values
    assert off["restore_faces"] is False and "face_restoration_model" not in off
    assert resolve(GenerationParams()).face_restoration_model == "CodeFormer"  # the setting's
    assert (
        resolve(GenerationParams(), {"face_restoration_model": "GFPGAN"}).face_restoration_model
        == "GFPGAN"
    )


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


def test_a_copy_before_face_restoration_goes_out_first_with_the_same_infotext():
    plain = run(GenerationParams(prompt="a face", batch_size=2))
    events = []
    restored = run(
        GenerationParams(prompt="a face", batch_size=2, restore_faces=True),
        face_restorer=invert,
        face_restoration_model="Inverter",
        keep_copies=frozenset({"face restoration"}),
        on_intermediate=lambda result, suffix: events.append(("copy", result, suffix)),
        on_image=lambda result: events.append(("image", result, "")),
    )
    kinds = [(kind, suffix) for kind, _, suffix in events]
    assert kinds == [("copy", "-before-face-restoration"), ("image", "")] * 2
    copies = [result for kind, result, _ in events if kind == "copy"]
    for before, copy, after in zip(plain, copies, restored, strict=True):
        assert np.array_equal(np.asarray(copy.image), np.asarray(before.image))
        assert copy.infotext == after.infotext and copy.index == after.index


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


def test_run_settings_carry_the_settings_a_job_runs_with():
    from sdtui.engine.refiner import HIRES_REFINER_PASSES
    from sdtui.params.settings_schema import HIRES_REFINER_PASSES as LISTED

    assert LISTED == HIRES_REFINER_PASSES
    values = {name: setting.default for name, setting in SETTINGS.items()}
    values.update(
        ESRGAN_tile=64, ESRGAN_tile_overlap=4, face_restoration_model="GFPGAN",
        code_former_weight=0.3, face_restoration_unload=True,
        save_images_before_face_restoration=True, sdxl_crop_top=16, sdxl_crop_left=8,
        sdxl_refiner_low_aesthetic_score=2.0, hires_fix_refiner_pass="both passes",
        comma_padding_backtrack=5,
    )  # fmt: skip
    assert RunSettings.from_settings(values) == RunSettings(  # the restorer is a parameter
        upscaler_tile=64,
        upscaler_tile_overlap=4,
        code_former_weight=0.3,
        face_restoration_unload=True,
        keep_copies=frozenset({"face restoration"}),
        sdxl_crop=(16, 8),
        refiner_aesthetic=(2.0, 6.0),
        hires_refiner_pass="both passes",
        comma_backtrack=5,
    )
    defaults = {name: setting.default for name, setting in SETTINGS.items()}
    assert RunSettings.from_settings(defaults) == RunSettings()  # the same defaults


class Offloading(Recorder):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.events: list[str] = []

    def restore(self, image, **options):
        self.events.append("restore")
        return super().restore(image, **options)

    def offload(self):
        self.events.append("offload")


def test_face_restoration_unload_offloads_after_every_image():
    image = Image.new("RGB", (8, 8))
    kept = Offloading("GFPGAN")
    face_restorer(host_with(kept), "GFPGAN", 0.5)(image)
    assert kept.events == ["restore"]
    unloaded = Offloading("CodeFormer")
    restore = face_restorer(host_with(unloaded), "CodeFormer", 0.5, unload=True)
    restore(image)
    restore(image)
    assert unloaded.events == ["restore", "offload", "restore", "offload"]
    # a plugin restorer without offload() is simply not offloaded
    face_restorer(host_with(Recorder("Plain")), "Plain", 0.5, unload=True)(image)


def test_the_builtin_restorer_offloads_its_network_to_the_cpu(data_dirs):
    import torch
    from sdtui_plugins.builtin.face_restorers import GFPGAN, SpandrelFaceRestorer

    moves = []

    class Network:
        def __init__(self, device: str) -> None:
            self.device = torch.device(device)  # spandrel descriptors report a torch.device

        def to(self, device):
            moves.append(str(device))
            return Network(device.type)

    restorer = SpandrelFaceRestorer(GFPGAN)
    restorer.offload()  # nothing loaded: nothing to move
    restorer._model = Network("cuda")
    restorer.offload()
    assert moves == ["cpu"] and restorer._model.device.type == "cpu"
    restorer.offload()  # already in RAM
    assert moves == ["cpu"]
