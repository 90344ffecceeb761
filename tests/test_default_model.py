"""The embedded default model: it loads through the normal loader, sdtui starts on it when
the checkpoint folder is empty, and it draws what the prompt names (measured from pixels)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.models.default_model import default_model_path, native_size
from sdtui.models.discovery import discover_checkpoints
from sdtui.params.image_metadata import read_image_metadata
from sdtui.training.measure import measure

PROMPT = "a large red circle on a blue background, centre"
SEED = ["--seed", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def shipped() -> Path:
    path = default_model_path()
    assert path is not None, "config/default_model/sdtui-shapes.safetensors is missing"
    return path


def test_loads_through_the_normal_loader(shipped: Path) -> None:
    from sdtui.models.loader import load_checkpoint

    model = load_checkpoint(shipped)
    assert model.family.id == "sd1" and model.family.prediction_type == "epsilon"
    assert native_size(shipped) == 128
    assert model.unet.config.in_channels == 4 and model.unet.config.cross_attention_dim == 64
    assert model.vae.config.latent_channels == 4
    assert shipped.stat().st_size < 25 * 2**20


def generate(data_dirs, tmp_path: Path, *extra: str, prompt: str = PROMPT) -> Path:
    out = tmp_path / "out"
    argv = ["generate", "--prompt", prompt, *SEED, "--out", str(out), *extra]
    assert main([*argv, "--data-dir", str(data_dirs.root)]) == 0
    (path,) = sorted(out.glob("*.png"))
    return path


def test_an_empty_data_dir_generates_what_the_prompt_says(data_dirs, tmp_path, capsys) -> None:
    assert [info.embedded for info in discover_checkpoints(data_dirs)] == [True]
    path = generate(data_dirs, tmp_path)
    image = Image.open(path)
    assert image.size == (128, 128)  # the model's native size, not 512
    seen = measure(image)
    assert (seen.background, seen.colour, seen.position) == ("blue", "red", "centre")
    infotext = read_image_metadata(path).infotext or ""
    assert "Model: sdtui-shapes" in infotext and "Size: 128x128" in infotext
    first = path.read_bytes()
    again = generate(data_dirs, tmp_path / "again")
    assert again.read_bytes() == first  # same seed and parameters: the same PNG bytes


@pytest.mark.parametrize("position", ["top left", "bottom right", "left"])
def test_the_prompt_not_the_seed_says_where_the_shape_goes(
    data_dirs, tmp_path: Path, position: str
) -> None:
    prompt = f"a small yellow square on a purple background, {position}"
    seen = measure(Image.open(generate(data_dirs, tmp_path, prompt=prompt)))
    assert (seen.background, seen.colour, seen.position) == ("purple", "yellow", position)


async def test_the_app_starts_on_it_at_its_native_size(data_dirs, tmp_path) -> None:
    from tests.tui_helpers import make_app, wait_until

    app = make_app(data_dirs, preload=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.backend.status.phase != "starting")
        assert app.backend.status.checkpoint == "sdtui-shapes"
        screen = app.screen
        await wait_until(pilot, lambda: screen.current_params().width == 128)
        assert screen.current_params().height == 128
        assert screen.current_params().model == "sdtui-shapes.safetensors"


async def test_a_size_the_user_chose_is_kept(data_dirs) -> None:
    from tests.tui_helpers import make_app

    app = make_app(data_dirs, preload=False)
    app.start_backend = False
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        form = next(form for form in screen.forms if "width" in form.controls)
        form.set_values({"width": 320})
        screen.follow_native_size(128)  # then the default model is loaded
        await pilot.pause()
        assert (screen.current_params().width, screen.current_params().height) == (320, 512)
