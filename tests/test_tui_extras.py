"""The Extras tab as a user drives it: Alt+3, type a path, pick an upscaler, F5; the result
arrives with A1111's extras text; Alt+B shows the input; a batch from a folder writes
files named after the inputs; a request with nothing to do says so and runs nothing.
Expected sizes and texts are worked out by hand."""

from __future__ import annotations

import pytest

from sdtui.params.image_metadata import read_image_metadata
from sdtui.screens.extras import ExtrasScreen
from sdtui.widgets import graphics
from sdtui.widgets.file_browser import PathInput
from sdtui.widgets.graphics import Graphics
from sdtui.widgets.param_form import ParamForm
from tests.test_tui_img2img import INFOTEXT, SIZE, write_png
from tests.tui_helpers import make_app, wait_ready, wait_until


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    monkeypatch.setattr(graphics, "_current", Graphics())


def extras_app(dirs):
    """The app without a checkpoint load at start (Extras runs no Stable Diffusion model)."""
    return make_app(dirs, preload=False)


async def open_extras(pilot) -> ExtrasScreen:
    await wait_ready(pilot)
    await pilot.press("alt+3")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExtrasScreen))
    return pilot.app.screen


def status(screen: ExtrasScreen) -> str:
    return str(screen.query_one("#extras-status").render())


async def test_single_image_upscale_and_before_after(data_dirs) -> None:
    write_png(data_dirs.outputs / "cat.png", (48, 32), INFOTEXT)
    app = extras_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_extras(pilot)
        path_input = screen.query_one("#extras-path", PathInput)
        assert app.focused is path_input
        await pilot.press(*"cat.png", "enter")  # relative to the outputs folder
        await wait_until(
            pilot, lambda: "cat.png · 48×32" in str(screen.query_one("#single-info").render())
        )

        await pilot.press("f5")  # Upscaler 1 is None and no face restorer: nothing to do
        await pilot.pause()
        assert screen.job_id is None and "nothing to do" in status(screen)

        form = screen.query_one("#extras-upscale", ParamForm)
        assert "R-ESRGAN 4x+" in form.options["upscaler"]  # the registry's upscalers
        form.set_values({"upscaler": "Lanczos", "scale": 2.5})
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and screen.results)
        written = screen.results[0].path
        assert written == data_dirs.outputs / "extras-images" / "00000.png"
        metadata = read_image_metadata(written)
        assert metadata.infotext == INFOTEXT
        expected = "Postprocess upscale by: 2.5, Postprocess upscaler: Lanczos"
        assert metadata.items["extras"] == expected
        assert expected in str(screen.query_one("#extras-info").render())
        assert "1 image(s) written" in status(screen)

        await pilot.press("alt+b")  # before: the input
        assert screen.showing_before
        assert "before:" in str(screen.query_one("#extras-info").render())
        await pilot.press("alt+b")  # after again
        assert not screen.showing_before
        assert expected in str(screen.query_one("#extras-info").render())


async def test_batch_from_directory_keeps_names_and_reports_bad_files(data_dirs, tmp_path) -> None:
    folder = data_dirs.outputs / "in"
    write_png(folder / "a.png", (16, 16))
    write_png(folder / "b.png", (20, 12))
    (folder / "c.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    app = extras_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_extras(pilot)
        await pilot.press("alt+m", "alt+m")
        assert screen.mode == "directory"
        screen.query_one("#extras-upscale", ParamForm).set_values(
            {"upscaler": "Nearest", "resize_mode": "Scale to", "scale_to_width": 64,
             "scale_to_height": 64}
        )  # fmt: skip
        await pilot.click("#extras-input-dir")
        await pilot.press(*"in")  # relative to the outputs folder
        screen.query_one("#extras-output-dir").value = str(out)
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and "written" in status(screen))
        assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
        assert "2 image(s) written" in status(screen) and "c.png" in status(screen)
        assert [r.path.name for r in screen.results] == ["a.png", "b.png"]

        screen.query_one("#extras-output-dir").focus()  # writing into the inputs: refused
        await pilot.press("ctrl+u", *"in")
        assert screen.query_one("#extras-output-dir").value == "in"
        await pilot.press("f5")
        await pilot.pause()
        assert screen.job_id is None, status(screen)
        assert "overwrite" in status(screen), status(screen)


async def test_refresh_lists_upscaler_files_added_after_start(data_dirs) -> None:
    from safetensors.torch import save_file

    from tests.test_model_upscalers import tiny_compact

    app = extras_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_extras(pilot)
        form = screen.query_one("#extras-upscale", ParamForm)
        assert "my-2x" not in form.options["upscaler"]
        data_dirs.models("ESRGAN").mkdir(parents=True, exist_ok=True)
        save_file(tiny_compact(scale=2), data_dirs.models("ESRGAN") / "my-2x.safetensors")
        (data_dirs.models("ESRGAN") / "junk.pth").write_bytes(b"not a model")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "my-2x" in form.options["upscaler"])
        await wait_until(pilot, lambda: any("junk.pth" in n.message for n in app._notifications))
