"""The Settings tab as a user drives it: Alt+7, edit, Ctrl+S, errors, reload, defaults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from textual.widgets import Input, Select

from sdtui.app import SdtuiApp
from sdtui.keymap import SETTINGS_KEYS, split_keys
from sdtui.screens.settings import SettingRow, SettingsScreen
from sdtui.services.backend import Backend

SIZE = (160, 50)


def run_settings(dirs: Any, test: Callable[[Any, SdtuiApp, list], Awaitable[None]]) -> None:
    """Start the app without its backend, switch to Settings with Alt+7, run `test`."""

    async def main() -> None:
        app = SdtuiApp(Backend(dirs, device="cpu"))
        app.start_backend = False
        notes: list[tuple[str, str]] = []
        notify = app.notify

        def record(message: str, **options: Any) -> None:
            notes.append((message, options.get("severity", "information")))
            notify(message, **options)

        app.notify = record  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("alt+7")
            await pilot.pause()
            assert isinstance(app.screen, SettingsScreen)
            await test(pilot, app, notes)

    asyncio.run(main())


def control(app: SdtuiApp, name: str) -> Any:
    return app.screen.query_one(f"#setting-{name}")


def saved(dirs: Any) -> dict:
    return json.loads((dirs.own / "settings.json").read_text(encoding="utf-8"))


def test_change_clip_skip_apply_and_an_invalid_value(data_dirs) -> None:
    async def test(pilot: Any, app: SdtuiApp, notes: list) -> None:
        assert "7 Settings" in [str(label.render()) for label in app.screen.query(".tab")]
        clip_skip = control(app, "CLIP_stop_at_last_layers")
        assert isinstance(clip_skip, Input) and clip_skip.value == "1"
        clip_skip.focus()
        clip_skip.value = ""
        await pilot.press("2", "ctrl+s")
        await pilot.pause()
        assert saved(data_dirs)["CLIP_stop_at_last_layers"] == 2
        assert app.backend.settings["CLIP_stop_at_last_layers"] == 2
        assert notes[-1][1] == "information" and "Clip skip" in notes[-1][0]
        # an invalid value: an error naming the setting and its range, nothing written
        before = (data_dirs.own / "settings.json").read_bytes()
        clip_skip.value = "20"
        control(app, "eta_ddim").value = "0.5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        message, severity = notes[-1]
        assert severity == "error"
        assert "Clip skip (CLIP_stop_at_last_layers) must be between 1 and 12, got 20" in message
        assert (data_dirs.own / "settings.json").read_bytes() == before
        assert clip_skip.has_class("-invalid")
        assert not control(app, "eta_ddim").has_class("-invalid")
        assert app.backend.settings["eta_ddim"] == 0.0
        clip_skip.value = "3"
        await pilot.click("#apply")
        await pilot.pause()
        assert saved(data_dirs)["eta_ddim"] == 0.5
        assert saved(data_dirs)["CLIP_stop_at_last_layers"] == 3
        assert not clip_skip.has_class("-invalid")

    run_settings(data_dirs, test)


def test_corrupt_file_select_reload_section_defaults_and_filter(data_dirs) -> None:
    (data_dirs.own / "settings.json").write_text("{oops")

    async def test(pilot: Any, app: SdtuiApp, notes: list) -> None:
        assert any("does not parse" in text and kind == "warning" for text, kind in notes)
        rng = control(app, "randn_source")
        assert isinstance(rng, Select) and rng.value == "CPU"
        rng.value = "NV"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert saved(data_dirs)["randn_source"] == "NV"
        # run-time choices: the theme select lists Textual's themes; applying switches
        control(app, "theme").value = "nord"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.theme == "nord" and saved(data_dirs)["theme"] == "nord"
        # the file changed behind sdtui's back: Reload shows it
        (data_dirs.own / "settings.json").write_text(json.dumps({"s_noise": 0.9, "x": 1}))
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert control(app, "s_noise").value == "0.9" and rng.value == "CPU"
        assert app.backend.settings["s_noise"] == 0.9
        # section defaults fill in the focused section's defaults; Apply saves them
        control(app, "s_noise").focus()
        await pilot.press("alt+d")
        assert control(app, "s_noise").value == "1"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert saved(data_dirs)["s_noise"] == 1.0 and saved(data_dirs)["x"] == 1
        # the filter shows only matching settings and their sections
        await pilot.press("ctrl+f", *"clip")
        await pilot.pause()
        shown = [row.spec.name for row in app.screen.query(SettingRow) if row.display]
        assert shown == ["CLIP_stop_at_last_layers"]
        visible = [s for s in app.screen.query(".section") if s.display]
        assert [s.id for s in visible] == ["section-stable-diffusion"]

    run_settings(data_dirs, test)


def test_settings_keys_avoid_keys_text_fields_take() -> None:
    taken = {key for binding in Input.BINDINGS for key in split_keys(binding.key)}
    for spec in SETTINGS_KEYS:
        assert not set(split_keys(spec.keys)) & taken, spec.id


def test_the_screen_and_the_settings_import_without_torch() -> None:
    import subprocess
    import sys

    modules = "sdtui.screens.settings, sdtui.services.settings, sdtui.services.backend"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
