"""Layout snapshots of the screens (half-block images; backend not started, so the status
bar reads "starting"). Update after an intended change: pytest tests/test_snapshots.py
--snapshot-update, then look at the SVGs in tests/__snapshots__/."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from sdtui.app import SdtuiApp
from sdtui.paths import DataDirs
from sdtui.services.backend import Backend

# a fixed path: PNG Info's tree and Settings show it
DATA = Path(tempfile.gettempdir()) / "sdtui-snapshot-data"
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
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    for screen in pilot.app.screen_stack:
        for widget in screen.query("*"):
            if hasattr(widget, "cursor_blink"):
                widget.cursor_blink = False  # a blinking cursor is on or off at random
        if not screen.is_modal:
            screen.set_focus(None)  # no cursor at all: it may be in either blink phase
    await pilot.pause()


def test_txt2img(snap_compare, app) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
