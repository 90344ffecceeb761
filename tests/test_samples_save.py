"""A1111's samples_save and grid_save: off, generated images and grids are not kept in the
outputs folders but still written (to <data-dir>/sdtui/temp) so they can be shown, sent on,
or kept with Save; the before-* copies are not written at all. A folder the user names
(--out) still gets everything, and Extras saves regardless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.params.image_metadata import read_image_metadata
from sdtui.services.outputs import NameContext, OutputNaming, temporary_folder
from sdtui.services.settings import Settings
from tests.test_generate_cli import SMALL, written
from tests.tiny_models import write_tiny_checkpoint

HIRES = ["--enable-hires", "--hires-steps", "1"]


@pytest.fixture
def tiny_dirs(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return data_dirs


def settings(dirs, **values: object) -> None:
    dirs.own.mkdir(parents=True, exist_ok=True)
    (dirs.own / "settings.json").write_text(json.dumps(values), encoding="utf-8")


def files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []


def test_the_settings_choose_the_folders(data_dirs) -> None:
    settings(data_dirs, samples_save=False, grid_save=False)
    naming = Settings.load(data_dirs).output_naming("txt2img")
    assert (naming.keep_images, naming.keep_grids) == (False, False)
    temp = temporary_folder(data_dirs)
    context = NameContext(seed=1, prompt="x")
    assert naming.folder(data_dirs, "txt2img", context) == temp / "txt2img-images"
    assert naming.folder(data_dirs, "img2img", context, grid=True) == temp / "img2img-grids"
    assert temporary_folder(data_dirs) not in naming.folder(data_dirs, "extras", context).parents
    kept = OutputNaming(keep_images=True, keep_grids=False)
    assert data_dirs.outputs in kept.folder(data_dirs, "txt2img", context).parents
    assert kept.folder(data_dirs, "txt2img", context, grid=True) == temp / "txt2img-grids"


def test_off_writes_results_only_to_the_temporary_folder(tiny_dirs, capsys) -> None:
    settings(tiny_dirs, samples_save=False, grid_save=False, save_images_before_highres_fix=True)
    argv = ["generate", "--prompt", "x", "--seed", "3", "--batch-size", "2", *HIRES, *SMALL]
    assert main([*argv, "--data-dir", str(tiny_dirs.root)]) == 0
    paths = [Path(p) for p in written(capsys)]
    temp = temporary_folder(tiny_dirs)
    assert files(tiny_dirs.outputs) == []
    assert [p.name for p in files(temp / "txt2img-images")] == ["00000-3.png", "00001-4.png"]
    assert paths == files(temp / "txt2img-images")  # no before-highres-fix copies
    (grid,) = files(temp / "txt2img-grids")
    assert read_image_metadata(grid).infotext == read_image_metadata(paths[0]).infotext
    assert "Seed: 3" in read_image_metadata(paths[0]).infotext


def test_grids_alone_can_be_off(tiny_dirs, capsys) -> None:
    settings(tiny_dirs, grid_save=False)
    argv = ["generate", "--prompt", "x", "--seed", "3", "--batch-size", "2", *SMALL]
    assert main([*argv, "--data-dir", str(tiny_dirs.root)]) == 0
    assert len(files(tiny_dirs.outputs / "txt2img-images")) == 2
    assert files(tiny_dirs.outputs / "txt2img-grids") == []
    assert len(files(temporary_folder(tiny_dirs) / "txt2img-grids")) == 1


def test_a_folder_the_user_names_still_gets_the_images_and_copies(
    tiny_dirs, capsys, tmp_path: Path
) -> None:
    settings(tiny_dirs, samples_save=False, save_images_before_highres_fix=True)
    out = tmp_path / "mine"
    argv = ["generate", "--prompt", "x", "--seed", "3", *HIRES, *SMALL, "--out", str(out)]
    assert main([*argv, "--data-dir", str(tiny_dirs.root)]) == 0
    assert [p.name for p in files(out)] == ["00000-3-before-highres-fix.png", "00001-3.png"]
    assert files(temporary_folder(tiny_dirs)) == []


async def test_the_app_shows_an_unkept_result_and_save_keeps_it(tiny_dirs) -> None:
    from tests.test_tui_txt2img import SIZE, set_small
    from tests.tui_helpers import make_app, wait_ready, wait_until

    settings(tiny_dirs, samples_save=False)
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.click("#prompt TextArea")
        await pilot.press(*"a red circle")
        await set_small(pilot)
        await pilot.press("ctrl+g")
        screen = app.screen
        await wait_until(pilot, lambda: screen.job_id is None and screen.results)
        (shown,) = files(temporary_folder(tiny_dirs) / "txt2img-images")
        assert files(tiny_dirs.outputs) == []
        assert screen.query_one("#infotext").text.endswith(str(shown))
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: files(tiny_dirs.root / "log" / "images"))
        kept = [p for p in files(tiny_dirs.root / "log" / "images") if p.suffix == ".png"]
        assert len(kept) == 1 and kept[0].read_bytes() == shown.read_bytes()


def test_returned_masks_are_listed_from_the_temporary_folder(tiny_dirs, capsys, tmp_path) -> None:
    """A1111's return_mask / return_mask_composite: the inpainting copies join the results
    (after their image) without being kept; save_mask still keeps its own copy."""
    from tests.test_img2img_cli import SMALL as IMG2IMG_SMALL

    settings(tiny_dirs, return_mask=True, return_mask_composite=True, save_mask=True)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(tmp_path / "mask.png")
    argv = ["img2img", "--init", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png")]
    assert main([*argv, "--seed", "5", *IMG2IMG_SMALL, "--data-dir", str(tiny_dirs.root)]) == 0
    names = [Path(p).name for p in written(capsys)]
    assert names == ["00000-5.png", "00000-5-mask.png", "00001-5-mask-composite.png"]
    kept = [p.name for p in files(tiny_dirs.outputs)]
    assert kept == ["00000-5.png", "00001-5-mask.png"]  # the image and save_mask's copy
    temp = temporary_folder(tiny_dirs) / "img2img-images"
    shown = {p.name: p for p in files(temp)}
    assert sorted(shown) == ["00000-5-mask.png", "00001-5-mask-composite.png"]
    assert Image.open(shown["00001-5-mask-composite.png"]).mode == "RGBA"
    assert Image.open(shown["00000-5-mask.png"]).getpixel((32, 32)) == (255, 255, 255)


def test_no_returned_masks_without_a_mask_or_when_off(tiny_dirs, capsys, tmp_path) -> None:
    from tests.test_img2img_cli import SMALL as IMG2IMG_SMALL

    settings(tiny_dirs, return_mask=True)
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "in.png")
    argv = ["img2img", "--init", str(tmp_path / "in.png"), "--seed", "5", *IMG2IMG_SMALL]
    assert main([*argv, "--data-dir", str(tiny_dirs.root)]) == 0
    assert [Path(p).name for p in written(capsys)] == ["00000-5.png"]
    assert files(temporary_folder(tiny_dirs)) == []
