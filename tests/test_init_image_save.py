"""A1111's save_init_img: each img2img init image saved as `<md5 of image.tobytes()>.png`
in outdir_init_images, and "Init image hash: <md5>" in the infotext (the last input's, for
every image of the run), between ENSD and RNG."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.schema import img2img_defaults
from sdtui.params.settings_schema import SETTINGS
from sdtui.params.validate import resolve
from sdtui.services.img2img_job import Img2ImgJob
from sdtui.services.outputs import OutputNaming, save_init_image


def picture(seed: int, mode: str = "RGB") -> Image.Image:
    values = np.random.default_rng(seed).integers(0, 256, (8, 12, len(mode)), dtype=np.uint8)
    return Image.fromarray(values, mode)


def test_settings_are_a1111s() -> None:
    assert SETTINGS["save_init_img"].default is False
    assert SETTINGS["outdir_init_images"].default == "outputs/init-images"


def test_the_file_is_named_by_the_md5_of_the_pixels(tmp_path: Path) -> None:
    image = picture(1, "RGBA")
    image.info["parameters"] = "a cat\nSteps: 20"
    digest = save_init_image(image, tmp_path / "init-images")
    assert digest == hashlib.md5(np.asarray(image).tobytes()).hexdigest()
    (saved,) = (tmp_path / "init-images").iterdir()
    assert saved.name == f"{digest}.png"
    with Image.open(saved) as reread:
        assert reread.mode == "RGBA"
        assert np.array_equal(np.asarray(reread), np.asarray(image))
        assert reread.info["parameters"] == "a cat\nSteps: 20"  # A1111's existing_info
    assert save_init_image(image, tmp_path / "init-images") == digest  # same name again
    assert len(list((tmp_path / "init-images").iterdir())) == 1


def job(tmp_path: Path, images: list[Image.Image], folder: Path | None) -> Img2ImgJob:
    return Img2ImgJob(
        runtime=None, plugin_host=None, dirs=None, params=img2img_defaults(), model=None,
        naming=OutputNaming(init_images_folder=folder), init_images=images,
    )  # fmt: skip


def fake_engine(monkeypatch) -> list[Any]:
    calls: list[Any] = []

    def engine(model: Any, params: Any, options: Any, init_images: Any, mask: Any, **kw: Any):
        calls.append((options, kw))
        return []

    monkeypatch.setattr("sdtui.engine.img2img.img2img", engine)
    return calls


def test_the_job_saves_every_input_and_names_the_last(tmp_path: Path, monkeypatch) -> None:
    calls = fake_engine(monkeypatch)
    folder = tmp_path / "outputs" / "init-images"
    images = [picture(2), picture(3)]
    options = _options()
    job(tmp_path, images, folder)._generate(None, img2img_defaults(), options)
    digests = [hashlib.md5(image.tobytes()).hexdigest() for image in images]
    assert sorted(path.name for path in folder.iterdir()) == sorted(f"{d}.png" for d in digests)
    assert calls[0][0].init_image_hash == digests[-1]
    # a script's inputs are saved too (A1111 saves each run's init images)
    job(tmp_path, images, folder)._generate(
        None, img2img_defaults(), options, init_images=[picture(4)]
    )
    assert calls[1][0].init_image_hash == hashlib.md5(picture(4).tobytes()).hexdigest()


def test_off_saves_nothing(tmp_path: Path, monkeypatch) -> None:
    calls = fake_engine(monkeypatch)
    job(tmp_path, [picture(2)], None)._generate(None, img2img_defaults(), _options())
    assert calls[0][0].init_image_hash is None
    assert list(tmp_path.iterdir()) == []


def _options() -> Any:
    from sdtui.engine.options import EngineOptions

    return EngineOptions(samplers=None, schedules=None)


def test_infotext_names_the_hash_between_ensd_and_rng() -> None:
    params = dataclasses.replace(
        resolve(img2img_defaults()), prompt="a cat", sampler="Euler a", ensd=31337, rng="CPU"
    )
    digest = "0123456789abcdef0123456789abcdef"
    facts = RunFacts(seed=1, img2img=True, uses_ensd=True, init_image_hash=digest)
    text = infotext_from_params(params, facts)
    assert f"ENSD: 31337, Init image hash: {digest}, RNG: CPU" in text
    assert params_from_infotext(text).info["Init image hash"] == digest
    assert "Init image hash" not in infotext_from_params(params, RunFacts(seed=1, img2img=True))


def test_the_settings_turn_it_on(tmp_path: Path) -> None:
    from sdtui.paths import DataDirs
    from sdtui.services.settings import Settings

    dirs = DataDirs.resolve(tmp_path)
    dirs.create()
    settings = Settings.load(dirs)
    assert settings.output_naming("img2img").init_images_folder is None
    settings.values["save_init_img"] = True
    folder = settings.output_naming("img2img").init_images_folder
    assert folder == dirs.root / "outputs" / "init-images"
