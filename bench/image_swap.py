"""Swapping the image of an ImageView: time per swap of a 512x512 image, per graphics mode.

    .venv/bin/python bench/image_swap.py [--swaps 20] [--size 120x40] [--modes halfblock,...]

Runs a headless app (App.run_test) whose only widget is an ImageView, and sets a new
512x512 photo (distinct objects, so no drawing comes from the cache) `--swaps` times per
mode. Columns (medians, ms). Wall times: "set" the assignment alone; "blocked" the longest
stall of the app's event loop between the assignment and the new image painted (what a user
feels when typing); "shown" until the app, on its own refresh timer, paints the canvas with
the new drawing (Kitty and Sixel encode in a worker thread, so the app is free before that).
CPU times, which a loaded machine barely changes: "ui cpu" of the event-loop thread from the
assignment to the repaint (the swap's cost to the app), "harness" the same steps without a
swap (included in "ui cpu"), and "all cpu" of the whole process (worker threads included).
The machine reference line times a fixed Python loop, to compare numbers across machines.
Kitty PNGs are queued as for a terminal (the headless driver drops them). Cells are 10x20
pixels, as without a terminal. Goal: a swap well under 100 ms; the "/100" columns are the
ratios to it. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from PIL import Image

GOAL_MS = 100.0
COLUMNS = ("set", "blocked", "shown", "ui cpu", "harness", "all cpu", "ui cpu/100", "shown/100")
PHOTO = Path(__import__("textual_image").__file__).parent / "gracehopper.jpg"


def _tinted(image: Image.Image, index: int) -> Image.Image:
    red, green, blue = image.split()
    return Image.merge("RGB", (red.point(lambda v: min(255, v + index)), green, blue))


def distinct_photos(count: int) -> list[Image.Image]:
    """`count` different 512x512 RGB photos (one picture, its red channel shifted a little)."""
    source = Image.open(PHOTO).convert("RGB")
    side = min(source.size)
    base = source.crop((0, 0, side, side)).resize((512, 512), Image.Resampling.LANCZOS)
    return [_tinted(base, index * 3) for index in range(count)]


async def measure(mode: str, size: tuple[int, int], swaps: int) -> dict[str, float]:
    from textual.app import App, ComposeResult

    from sdtui.widgets.image_view import ImageView, prepare_graphics

    prepare_graphics(mode)

    class SwapApp(App):
        def compose(self) -> ComposeResult:
            yield ImageView()

    images = distinct_photos(2 * swaps + 1)
    app = SwapApp()
    async with app.run_test(size=size) as pilot:
        view = app.query_one(ImageView)
        view.image = images[0]
        await pilot.pause()
        paints = PaintSpy(view.canvas)
        times: dict[str, list[float]] = {name: [] for name in ("set", "blocked", "shown")}
        for image in images[1 : swaps + 1]:  # wall times, with a ticker watching the loop
            await pilot.pause()
            meter = StallMeter()
            await asyncio.sleep(0.005)  # the ticker runs before the swap
            old_drawing = view.canvas.drawing
            started = time.perf_counter()
            view.image = image
            times["set"].append(time.perf_counter() - started)
            while (painted := paints.first_after(started, old_drawing)) is None:
                await asyncio.sleep(0.001)  # the app paints on its own timer
            times["shown"].append(painted - started)
            times["blocked"].append(await meter.stop())
        for name in ("ui", "all", "harness"):
            times[name] = []
        for image in images[swaps + 1 :]:  # CPU times, no ticker
            for swap in (False, True):
                await pilot.pause()
                ui_started, all_started = time.thread_time(), time.process_time()
                if swap:
                    view.image = image
                await app.workers.wait_for_complete()
                await pilot.pause()
                ui = time.thread_time() - ui_started
                times["ui" if swap else "harness"].append(ui)
                if swap:
                    times["all"].append(time.process_time() - all_started)
        cells = view.cells
    result = {name: 1000 * statistics.median(values) for name, values in times.items()}
    return {"cells": f"{cells[0]}x{cells[1]}", **result}


class PaintSpy:
    """Records when the canvas is painted, and with which drawing."""

    def __init__(self, canvas: Any) -> None:
        self.paints: list[tuple[float, Any]] = []
        render_lines = canvas.render_lines

        def spy(crop: Any) -> Any:
            lines = render_lines(crop)
            self.paints.append((time.perf_counter(), canvas.drawing))
            return lines

        canvas.render_lines = spy

    def first_after(self, started: float, old_drawing: Any) -> float | None:
        for when, drawing in self.paints:
            if when > started and drawing is not None and drawing is not old_drawing:
                return when
        return None


class StallMeter:
    """The longest time the event loop did not run a 1 ms ticker (what a user would feel)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest, last = max(self.longest, now - last), now

    async def stop(self) -> float:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.longest


def reference_ms() -> float:
    """CPU time of a fixed pure-Python loop, to compare machines' numbers (best of 5)."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        sum(len((index, index + 1)) for index in range(200_000))
        best = min(best, time.process_time() - started)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--size", default="120x40", help="terminal columns x rows")
    parser.add_argument("--modes", default="halfblock,kitty,sixel")
    args = parser.parse_args()
    columns, rows = (int(part) for part in args.size.split("x"))
    print(f"512x512 image swaps in a {columns}x{rows} headless app, median of {args.swaps} (ms)")
    print(f"machine reference (a fixed Python loop, CPU): {reference_ms():.1f} ms")
    print(f"{'mode':<10} {'cells':>6}" + "".join(f" {column:>10}" for column in COLUMNS))
    for mode in args.modes.split(","):
        result = asyncio.run(measure(mode, (columns, rows), args.swaps))
        numbers = [result[key] for key in ("set", "blocked", "shown", "ui", "harness", "all")]
        ratios = [result["ui"] / GOAL_MS, result["shown"] / GOAL_MS]
        print(
            f"{mode:<10} {result['cells']:>6}"
            + "".join(f" {value:10.1f}" for value in numbers)
            + "".join(f" {value:10.2f}" for value in ratios)
        )


if __name__ == "__main__":
    main()
