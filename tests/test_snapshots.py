"""Layout snapshots of the screens (half-block images; backend not started, so the status
bar reads "starting"). Update after an intended change: pytest tests/test_snapshots.py
--snapshot-update, then look at the SVGs in tests/__snapshots__/.

Stable run to run: everything happens in `run_before` (no `press`, which snap_compare sends
after it, to a screen whose new cursors would then blink at random), the focus is set
explicitly, every cursor stops blinking, and nothing shows a date or a random temporary
path."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from textual.widgets import DirectoryTree
from textual.worker import WorkerCancelled

from sdtui.app import SdtuiApp
from sdtui.paths import DataDirs
from sdtui.services.backend import Backend

# a fixed path, whatever TMPDIR says: PNG Info and Settings show it
DATA = Path("/tmp") / "sdtui-snapshot-data"
SIZE = (140, 44)


@pytest.fixture
def app(monkeypatch) -> SdtuiApp:
    shutil.rmtree(DATA, ignore_errors=True)
    dirs = DataDirs.resolve(DATA)
    dirs.create()
    monkeypatch.setenv("SDTUI_GRAPHICS", "halfblock")
    app = SdtuiApp(Backend(dirs, device="cpu"))
    app.start_backend = False
    return app


async def settle(pilot) -> None:
    pilot.app.cursor_blink_timeout = None  # no blink timeout: `cursor_blink` is set here, for good
    await pilot.pause()
    for tree in pilot.app.screen.query(DirectoryTree):
        await tree._load_queue.join()  # the folders it was asked to list are listed
    for worker in list(pilot.app.workers):
        if worker.group != "_loader":  # a DirectoryTree's loader waits for work forever
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
    for screen in pilot.app.screen_stack:
        for widget in screen.query("*"):
            if hasattr(widget, "cursor_blink"):
                widget.cursor_blink = False  # a blinking cursor is on or off at random
        if not screen.is_modal:
            screen.set_focus(None)  # no cursor at all: it may be in either blink phase
    await pilot.pause()


def test_txt2img(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


async def _help(pilot) -> None:
    app = pilot.app
    app.screen.prompt_box().focus()  # as after start-up: F1 lists the prompt's keys first
    await pilot.pause()
    app.action_help()
    await pilot.pause()
    await settle(pilot)
    await app.workers.wait_for_complete()
    await pilot.wait_for_scheduled_animations()


def test_help(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_help)


# a made-up A1111 infotext, written by hand
INFOTEXT = (
    "a red circle on a blue square, (sharp:1.2)\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
    "Size: 64x48, Model hash: 0123456789, Model: tiny, Version: v1.10.1"
)


def _picture(path: Path) -> Path:
    """A fixed 64x48 PNG: a red disc on blue, with the infotext in its `parameters` chunk."""
    image = Image.new("RGB", (64, 48), (30, 60, 200))
    for y in range(48):
        for x in range(64):
            if (x - 32) ** 2 + (y - 24) ** 2 < 18**2:
                image.putpixel((x, y), (220, 40, 30))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", INFOTEXT)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, pnginfo=info)
    return path


async def _pnginfo(pilot) -> None:
    from sdtui.widgets.file_browser import PathInput

    app = pilot.app
    picture = _picture(app.backend.dirs.outputs / "txt2img-images" / "00001-1234.png")
    await app.switch_mode("pnginfo")
    await pilot.pause()
    screen = app.screen
    screen.query_one("#path", PathInput).value = "txt2img-images/00001-1234.png"
    await screen.open_image(picture)
    await settle(pilot)
    await pilot.wait_for_scheduled_animations()


def test_pnginfo(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_pnginfo)


async def _settings(pilot) -> None:
    await pilot.app.switch_mode("settings")
    await pilot.pause()
    await settle(pilot)
    await pilot.wait_for_scheduled_animations()


def test_settings(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_settings)


async def _img2img(pilot) -> None:
    from sdtui.screens.send_to import infotext_values

    app = pilot.app
    picture = _picture(app.backend.dirs.outputs / "txt2img-images" / "00001-1234.png")
    await app.switch_mode("img2img")
    await pilot.pause()
    screen = app.screen
    with Image.open(picture) as image:  # as "send to inpaint" from txt2img's results
        screen.receive(image.convert("RGB"), infotext_values(INFOTEXT), "inpaint", "00001.png")
    canvas = screen.image_input.canvas
    canvas.document.fill_rect((8, 8), (27, 23))  # a masked box, as the rectangle key makes
    canvas.refresh()
    await settle(pilot)
    await pilot.wait_for_scheduled_animations()


def test_img2img(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_img2img)


async def _extras(pilot) -> None:
    app = pilot.app
    picture = _picture(app.backend.dirs.outputs / "txt2img-images" / "00001-1234.png")
    await app.switch_mode("extras")
    await pilot.pause()
    app.screen.receive(picture)  # as "send to extras" from txt2img's results
    await settle(pilot)
    await settle(pilot)  # the shown picture's render may start a worker after the first
    await pilot.wait_for_scheduled_animations()


def test_extras(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_extras)
