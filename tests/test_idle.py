"""An idle app stays quiet: the cursor stops blinking after a while without input, and a
status bar change repaints only the status bar."""

from __future__ import annotations

from textual.lazy import Lazy
from textual.widgets import Input

from sdtui.widgets.cursor_blink import CursorBlinkTimeout
from sdtui.widgets.prompt_box import PromptBox
from tests.tui_helpers import make_app, wait_until

SIZE = (160, 50)


def quiet_app(dirs):
    app = make_app(dirs)
    app.start_backend = False
    return app


class ManualClock:
    """The timeout's notion of time moves only when the test says so: a slow machine that
    takes longer than the timeout to handle a key press cannot stop the cursor early."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def blink_timeout(app) -> ManualClock:
    clock = ManualClock()
    started = app.cursor_blink_timeout._timer  # the app's own, on the real clock
    if started is not None:
        started.stop()
    app.cursor_blink_timeout = CursorBlinkTimeout(app, timeout=0.3, clock=clock)
    return clock


async def test_the_cursor_stops_blinking_when_idle_and_blinks_again_on_input(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        clock = blink_timeout(app)
        area = app.screen.query_one("#prompt", PromptBox).text_area
        assert app.focused is area and area.cursor_blink
        clock.now += 1
        await wait_until(pilot, lambda: not area.cursor_blink, timeout=30)
        assert area._cursor_visible  # stopped with the cursor on, not hidden
        assert not area.blink_timer._active.is_set()  # its timer no longer wakes the app
        await pilot.press("a")
        assert area.cursor_blink and area.text == "a"
        # stopped again later, and a click also brings it back
        clock.now += 1
        await wait_until(pilot, lambda: not area.cursor_blink, timeout=30)
        await pilot.click(area)
        assert area.cursor_blink


async def test_a_field_focused_later_stops_too_and_the_first_one_is_restored(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        clock = blink_timeout(app)
        area = app.screen.query_one("#prompt", PromptBox).text_area
        clock.now += 1
        await wait_until(pilot, lambda: not area.cursor_blink, timeout=30)
        steps = app.screen.query_one("#param-steps", Input)
        steps.focus()  # no key: a focus change alone counts as activity
        await pilot.pause()
        assert area.cursor_blink  # the field it stopped blinks again when focused later
        clock.now += 1
        await wait_until(pilot, lambda: not steps.cursor_blink, timeout=30)
        assert steps._cursor_visible


async def test_a_status_change_repaints_only_the_status_bar(data_dirs) -> None:
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        compositor = screen._compositor
        full_frames, layouts = [], []
        render_full = compositor.render_full_update
        refresh_layout = screen._refresh_layout
        compositor.render_full_update = lambda **k: (full_frames.append(1), render_full(**k))[1]
        screen._refresh_layout = lambda *a, **k: (layouts.append(1), refresh_layout(*a, **k))[1]
        # start from a settled screen: the collapsed groups mount after the first frame and
        # the footer recomposes once its bindings are known (later on a loaded machine)
        await wait_until(pilot, lambda: not screen.query(Lazy))
        quiet = 0
        while quiet < 5:
            seen = len(full_frames) + len(layouts)
            await pilot.pause(0.05)
            quiet = quiet + 1 if len(full_frames) + len(layouts) == seen else 0
        full_frames.clear()
        layouts.clear()
        bar = screen.query_one("StatusBar")
        for memory in ("cpu · fp32 · 1.0/2.0 GiB free", "cpu · fp32 · 1.5/2.0 GiB free"):
            app.memory_text = memory
            await wait_until(pilot, lambda memory=memory: memory in str(bar.render()))
            await pilot.pause()
        app.job_text = "step 3/20"
        await wait_until(pilot, lambda: "step 3/20" in str(bar.render()))
        await pilot.pause()
        assert full_frames == [] and layouts == []  # partial updates of one line only
