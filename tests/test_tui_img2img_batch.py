"""The img2img tab's Batch sub-tab as a user drives it: Alt+M to it, type the folders (Tab
completes), tick a PNG info field, F5, and the outputs arrive in the results strip and the
output folder, with a message naming the file that failed. Expected names and prompts are
written here by hand."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox

from sdtui.params.codec import params_from_infotext
from sdtui.params.image_metadata import read_image_metadata
from sdtui.widgets import graphics
from sdtui.widgets.file_browser import PathInput
from sdtui.widgets.graphics import Graphics
from sdtui.widgets.img2img_batch import BatchPanel
from tests.test_tui_img2img import SIZE, field, messages, open_img2img, quiet_app, write_png
from tests.tiny_models import write_tiny_checkpoint
from tests.tui_helpers import make_app, wait_ready, wait_until

FOX = "a red fox\nSteps: 7, Sampler: Euler, CFG scale: 4, Seed: 11, Size: 64x64"


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    monkeypatch.setattr(graphics, "_current", Graphics())


async def to_batch(pilot):
    screen = await open_img2img(pilot)
    for _ in range(5):  # img2img -> sketch -> inpaint -> inpaint sketch -> upload -> batch
        await pilot.press("alt+m")
    await pilot.pause()
    assert screen.image_input.mode == "batch"
    return screen


async def test_batch_sub_tab_shows_its_fields_and_refuses_a_missing_folder(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_img2img(pilot)
        panel = screen.query_one(BatchPanel)
        assert not panel.display and screen.query_one("#init-row").display
        screen = await to_batch(pilot)
        assert panel.display and not screen.query_one("#init-row").display
        with pytest.raises(ValueError, match="type the input folder"):
            panel.spec(None)
        panel.set_folder("input", "nowhere")
        with pytest.raises(ValueError, match=r"input folder .*/nowhere: no such folder"):
            panel.spec(None)
        await pilot.press("alt+m")
        assert screen.image_input.mode == "img2img"


async def test_batch_runs_a_folder_into_the_results(data_dirs) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    source = data_dirs.outputs / "batch-in"
    write_png(source / "a.png", (64, 64), FOX)
    write_png(source / "b.png", (64, 64))
    (source / "bad.png").write_text("not an image")
    app = make_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = await to_batch(pilot)
        folder = screen.query_one("#batch-input-dir", PathInput)
        folder.focus()
        await pilot.press(*"batch-i")
        await wait_until(pilot, lambda: folder.suggestion == "batch-in/")
        await pilot.press("tab")  # completes the folder's name
        assert folder.value == "batch-in/"
        screen.query_one("#batch-output-dir", PathInput).value = "batch-out"
        await pilot.click("#batch-png-prompt")
        assert screen.query_one("#batch-png-prompt", Checkbox).value
        for name, value in (("steps", 1), ("width", 64), ("height", 64), ("seed", 5)):
            field(app, name).value = str(value)
        screen.prompt_box().text = "painting"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and len(screen.results) == 2)
        out = data_dirs.outputs / "batch-out"
        assert [saved.path for saved in screen.results] == [
            out / "00000-a.png",
            out / "00001-b.png",
        ]
        fox = params_from_infotext(read_image_metadata(out / "00000-a.png").infotext).values
        assert (fox["prompt"], fox["seed"], fox["steps"]) == ("painting a red fox", 5, 1)
        plain = params_from_infotext(read_image_metadata(out / "00001-b.png").infotext).values
        assert plain["prompt"] == "painting"
        await wait_until(pilot, lambda: "img2img batch" in messages(app))
        text = messages(app)
        assert "2 done (2 images written), 1 failed: bad.png: not an image sdtui can" in text
