"""An idle app stays quiet: the cursor stops blinking after a while without input, and a
status bar change repaints only the status bar."""

from __future__ import annotations

from textual.widgets import Input

from sdtui.widgets.cursor_blink import CursorBlinkTimeout
from sdtui.widgets.prompt_box import PromptBox
from tests.tui_helpers import make_app, wait_until

SIZE = (160, 50)


def quiet_app(dirs):
    app = make_app(dirs)
    app.start_backend = False
    return app


async def test_the_cursor_stops_blinking_when_idle_and_blinks_again_on_input(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        app.cursor_blink_timeout = CursorBlinkTimeout(app, timeout=0.3)
        area = app.screen.query_one("#prompt", PromptBox).text_area
        assert app.focused is area and area.cursor_blink
        await wait_until(pilot, lambda: not area.cursor_blink, timeout=30)
        assert area._cursor_visible  # stopped with the cursor on, not hidden
        assert not area.blink_timer._active.is_set()  # its timer no longer wakes the app
        await pilot.press("a")
        assert area.cursor_blink and area.text == "a"
        # stopped again later, and a click also brings it back
        await wait_until(pilot, lambda: not area.cursor_blink, timeout=30)
        await pilot.click(area)
        assert area.cursor_blink


async def test_a_field_focused_later_stops_too_and_the_first_one_is_restored(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        app.cursor_blink_timeout = CursorBlinkTimeout(app, timeout=0.3)
        area = app.screen.query_one("#prompt", PromptBox).text_area
        await wait_until(pilot, lambda: not area.cursor_blink, timeout=30)
        steps = app.screen.query_one("#param-steps", Input)
        steps.focus()  # no key: a focus change alone counts as activity
        await pilot.pause()
        assert area.cursor_blink  # the field it stopped blinks again when focused later
        await wait_until(pilot, lambda: not steps.cursor_blink, timeout=30)
        assert steps._cursor_visible


async def test_a_status_change_repaints_only_the_status_bar(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        compositor = screen._compositor
        full_frames, layouts = [], []
        render_full = compositor.render_full_update
        refresh_layout = screen._refresh_layout
        compositor.render_full_update = lambda **k: (full_frames.append(1), render_full(**k))[1]
        screen._refresh_layout = lambda *a, **k: (layouts.append(1), refresh_layout(*a, **k))[1]
        bar = screen.query_one("StatusBar")
        for memory in ("cpu · fp32 · 1.0/2.0 GiB free", "cpu · fp32 · 1.5/2.0 GiB free"):
            app.memory_text = memory
            await wait_until(pilot, lambda memory=memory: memory in str(bar.render()))
            await pilot.pause()
        app.job_text = "step 3/20"
        await wait_until(pilot, lambda: "step 3/20" in str(bar.render()))
        await pilot.pause()
        assert full_frames == [] and layouts == []  # partial updates of one line only
