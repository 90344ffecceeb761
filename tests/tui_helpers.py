"""Running the app headless in tests: a backend on a data dir, waiting for jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from sdtui.app import SdtuiApp
from sdtui.services.backend import Backend


def make_app(dirs: Any, **backend_options: Any) -> SdtuiApp:
    return SdtuiApp(Backend(dirs, device="cpu", **backend_options))


async def wait_until(pilot: Any, condition: Any, timeout: float = 120.0) -> None:
    """Let the app run until `condition()` holds (the backend works on other threads)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.05)


async def wait_ready(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.backend.status.phase != "starting")
    assert app.backend.ready, app.backend.status
    # the default model's load job finishes before anything else runs
    await wait_until(pilot, lambda: app.backend.runtime.jobs.running is None)
