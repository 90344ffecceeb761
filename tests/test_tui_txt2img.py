"""The app as a user drives it: tabs, help, typing a prompt and generating on a tiny model."""

from __future__ import annotations

import pytest
from textual.widgets import Input, ProgressBar, Static

from sdtui.models import default_model
from sdtui.params.image_metadata import read_image_metadata
from sdtui.screens.help import HelpScreen
from sdtui.screens.txt2img import Txt2ImgScreen
from sdtui.widgets.prompt_box import PromptBox
from tests.tiny_models import write_tiny_checkpoint
from tests.tui_helpers import make_app, wait_ready, wait_until

SIZE = (160, 50)


@pytest.fixture
def tiny_dirs(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return data_dirs


def field(app, name: str) -> Input:
    return app.screen.query_one(f"#param-{name.replace('_', '-')}")


async def set_small(pilot, steps: int = 2) -> None:
    app = pilot.app
    field(app, "steps").value = str(steps)
    field(app, "width").value = "64"
    field(app, "height").value = "64"
    field(app, "seed").value = "7"
    await pilot.pause()


def pngs(dirs) -> list:
    return sorted((dirs.outputs / "txt2img-images").rglob("*.png"))


async def test_first_frame_without_the_backend(data_dirs) -> None:
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, Txt2ImgScreen)
        tabs = [str(label.render()) for label in app.screen.query(".tab")]
        assert tabs[:3] == ["1 txt2img", "2 img2img", "3 Extras"]
        assert "5 Checkpoint Merger" not in tabs  # not built
        await pilot.press("f5")  # generating before start-up finished: a message, no crash
        await pilot.pause()
        assert app.screen.job_id is None


async def test_no_checkpoints_says_where_to_put_them(data_dirs, monkeypatch) -> None:
    monkeypatch.setattr(default_model, "default_model_path", lambda: None)
    app = make_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.backend.status.phase != "starting")
        assert str(data_dirs.checkpoints) in app.backend.status.message
        bar = app.screen.query_one("StatusBar", Static)
        await wait_until(pilot, lambda: "no checkpoints" in str(bar.render()))


async def test_help_lists_the_screens_bindings(data_dirs) -> None:
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        assert {"txt2img.generate", "txt2img.interrupt", "app.help"} <= ids
        await pilot.press("escape")
        assert isinstance(app.screen, Txt2ImgScreen)


async def test_missing_tab_is_a_message(data_dirs) -> None:
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+5")
        await pilot.pause()
        assert isinstance(app.screen, Txt2ImgScreen)
        assert any(
            "Checkpoint Merger tab is not in this version" in n.message for n in app._notifications
        )


async def test_type_a_prompt_and_generate(tiny_dirs) -> None:
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert app.backend.status.checkpoint == "tiny"
        await pilot.click("#prompt TextArea")
        await pilot.press(*"a red circle")
        await set_small(pilot)
        await pilot.press("ctrl+g")
        screen = app.screen
        await wait_until(pilot, lambda: screen.job_id is None and screen.results)
        files = pngs(tiny_dirs)
        assert [path.name for path in files] == ["00000-7.png"]
        infotext = read_image_metadata(files[0]).infotext
        assert infotext.startswith("a red circle\nSteps: 2, Sampler: DPM++ 2M")
        assert "Seed: 7, Size: 64x64, Model hash: " in infotext
        assert screen.query_one("#infotext").text.startswith(infotext)
        assert "done · 1 image(s)" in str(screen.query_one("#progress-text", Static).render())
        # reuse the seed of the selected image after a random one
        await pilot.press("ctrl+r")
        assert field(app, "seed").value == "-1"
        await pilot.press("ctrl+l")
        assert field(app, "seed").value == "7"


async def test_bad_parameters_are_reported_and_nothing_is_written(tiny_dirs) -> None:
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await set_small(pilot)
        field(app, "width").value = "65"
        await pilot.press("f5")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("Width must be a multiple of 8, got 65" in m for m in messages)
        assert app.screen.job_id is None and pngs(tiny_dirs) == []


async def test_interrupt_keeps_finished_images(tiny_dirs) -> None:
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await set_small(pilot, steps=150)
        field(app, "batch_count").value = "50"
        await pilot.press("f5")
        screen = app.screen
        bar = screen.query_one("#progress", ProgressBar)
        await wait_until(pilot, lambda: (bar.progress or 0) >= 1)
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.job_id is None)
        assert "interrupted" in str(screen.query_one("#progress-text", Static).render())
        assert len(pngs(tiny_dirs)) == len(screen.results) < 50


async def test_read_params_from_a_pasted_infotext(data_dirs) -> None:
    app = make_app(data_dirs)
    app.start_backend = False
    infotext = (
        "a blue square, (sky:1.2)\nNegative prompt: blurry\n"
        "Steps: 31, Sampler: Euler a, Schedule type: Karras, CFG scale: 4.5, Seed: 1234, "
        "Size: 640x384, Clip skip: 2"
    )
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#prompt", PromptBox).text = infotext
        await pilot.press("alt+v")
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#prompt", PromptBox).text == "a blue square, (sky:1.2)"
        assert screen.query_one("#negative-prompt", PromptBox).text == "blurry"
        params = screen.current_params()
        assert (params.steps, params.sampler, params.schedule) == (31, "Euler a", "Karras")
        assert (params.cfg_scale, params.seed, params.width, params.height) == (4.5, 1234, 640, 384)
        assert params.clip_skip == 2
        await pilot.press("ctrl+s")  # swap width and height
        assert (screen.current_params().width, screen.current_params().height) == (384, 640)


async def test_alt_digit_switches_tabs_even_from_the_prompt(data_dirs) -> None:
    """Terminals send Alt+4 as ESC 4, which Textual reads as "¢" (macOS Option+4)."""
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#prompt TextArea")
        await pilot.press("cent_sign")
        await pilot.pause()
        assert app.current_mode == "pnginfo"
        await pilot.press("alt+1")
        await pilot.pause()
        assert app.current_mode == "txt2img"
        assert app.screen.query_one("#prompt", PromptBox).text == ""


async def test_a_user_keymap_remaps_generate(data_dirs) -> None:
    (data_dirs.own / "keymap.yaml").write_text("txt2img.generate: f9\n")
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")  # no longer bound
        await pilot.pause()
        assert not app._notifications
        await pilot.press("f9")
        await pilot.pause()
        assert [n.title for n in app._notifications] == ["Not ready yet"]
        await pilot.press("f1")
        rows = {row[2]: row[0] for row in app.screen.rows}
        assert rows["txt2img.generate"] == "f9"


async def test_a_keymap_with_clashes_is_refused_with_a_warning(data_dirs) -> None:
    (data_dirs.own / "keymap.yaml").write_text("txt2img.skip: f5\n")
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("f5: txt2img.generate and txt2img.skip" in m for m in messages)
        await pilot.press("f5")  # the default keys still work
        await pilot.pause()
        assert any(n.title == "Not ready yet" for n in app._notifications)


async def test_quitting_at_the_first_frame_is_clean(data_dirs) -> None:
    """Ctrl+Q before the collapsed groups have mounted: no MountError, exit code 0."""
    from sdtui.app import SdtuiApp
    from sdtui.services.backend import Backend

    class QuitAtOnce(SdtuiApp):
        def on_ready(self) -> None:
            self.exit()

    app = QuitAtOnce(Backend(data_dirs, device="cpu"))
    app.start_backend = False
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
    assert app.return_code == 0
