"""The Textual app: A1111's tabs as screens, the backend started off the UI thread.

    SdtuiApp(Backend(dirs)).run()

The first frame paints before torch is imported: `Backend.start()` (plugins, runtime,
default model) runs in a worker thread, and its events arrive as `BackendEvent` messages
(`post_message` is thread-safe) that the app hands to every tab screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen

from sdtui.keymap import APP_KEYS, KEYMAP_FILE, KeymapError, bindings, clashes, load_keymap
from sdtui.services.backend import Backend, BackendStatus
from sdtui.widgets.cursor_blink import CursorBlinkTimeout
from sdtui.widgets.tab_bar import A1111_TABS, Tab

MEMORY_REFRESH_S = 3.0


def _txt2img() -> Screen:
    from sdtui.screens.txt2img import Txt2ImgScreen

    return Txt2ImgScreen()


def _img2img() -> Screen:
    from sdtui.screens.img2img import Img2ImgScreen

    return Img2ImgScreen()


def _extras() -> Screen:
    from sdtui.screens.extras import ExtrasScreen

    return ExtrasScreen()


def _pnginfo() -> Screen:
    from sdtui.screens.pnginfo import PngInfoScreen

    return PngInfoScreen()


def _settings() -> Screen:
    from sdtui.screens.settings import SettingsScreen

    return SettingsScreen()


# Tabs whose screen exists; the others are left out of the tab bar and the palette.
SCREENS = {
    "txt2img": _txt2img,
    "img2img": _img2img,
    "extras": _extras,
    "pnginfo": _pnginfo,
    "settings": _settings,
}


@dataclass
class BackendEvent(Message):
    event: Any


class SdtuiApp(App[None]):
    TITLE = "sdtui"
    CSS = """
    #body { height: 1fr; }
    """
    BINDINGS: ClassVar = bindings(APP_KEYS)
    MODES: ClassVar = dict(SCREENS)
    DEFAULT_MODE: ClassVar[str] = "txt2img"

    # repaint=False: the status bar watches these; an App reactive that repaints would
    # repaint the whole screen (a full frame to the terminal) on every change
    status: reactive[BackendStatus] = reactive(BackendStatus, always_update=True, repaint=False)
    job_text: reactive[str | None] = reactive(None, repaint=False)
    memory_text: reactive[str | None] = reactive(None, repaint=False)

    def __init__(self, backend: Backend, *, start_backend: bool = True) -> None:
        super().__init__()
        self.backend = backend
        self.start_backend = start_backend
        self.tabs: list[Tab] = [tab for tab in A1111_TABS if tab.id in SCREENS]
        self.tab_screens: list[Any] = []
        self._keymap_problem: str | None = None
        self.cursor_blink_timeout: CursorBlinkTimeout | None = None
        try:
            keymap = load_keymap(backend.dirs.own / KEYMAP_FILE)
            problems = clashes(keymap)
            if problems:
                raise KeymapError(f"{KEYMAP_FILE}: keys bound twice: {'; '.join(problems)}")
        except KeymapError as error:
            keymap, self._keymap_problem = {}, str(error)
        self.set_keymap(keymap)

    def on_mount(self) -> None:
        self.backend.add_listener(lambda event: self.post_message(BackendEvent(event)))
        if self._keymap_problem:
            self.notify(f"{self._keymap_problem} — using the default keys", severity="warning")
        settings = self.backend.user_settings
        for warning in settings.warnings:
            self.notify(warning, title="Settings", severity="warning", timeout=10)
        theme = settings["theme"]
        if theme and theme in self.available_themes:
            self.theme = theme
        self.set_interval(MEMORY_REFRESH_S, self._refresh_memory)
        self.cursor_blink_timeout = CursorBlinkTimeout(self)

    def on_ready(self) -> None:
        # after the first frame: torch's import would hold the GIL while the UI composes
        if self.start_backend:
            self.run_worker(self.backend.start, thread=True, name="backend start")

    async def on_event(self, event: events.Event) -> None:
        if self.cursor_blink_timeout is not None and isinstance(event, _INPUT_EVENTS):
            self.cursor_blink_timeout.activity()
        # Tab keys win over text fields: Alt+N comes from most terminals as a character
        # ("¢" for Alt+4) that a focused prompt would otherwise type (see sdtui.keymap).
        if isinstance(event, events.Key) and not event.is_forwarded:
            tab_id = self._tab_keys().get(event.key)
            if tab_id is not None:
                event.stop()
                self.action_switch_tab(tab_id)
                return
        await super().on_event(event)

    def _tab_keys(self) -> dict[str, str]:
        keys = {}
        for key, bindings_for_key in self._bindings.key_to_bindings.items():
            for binding in bindings_for_key:
                if binding.action.startswith("switch_tab("):
                    keys[key] = binding.action.split("'")[1]
        return keys

    def on_backend_event(self, message: BackendEvent) -> None:
        from sdtui.runtime.job_events import FINAL_EVENTS, Progress

        event = message.event
        if isinstance(event, BackendStatus):
            self.status = event
            self._refresh_memory()
        elif isinstance(event, Progress):
            self.job_text = _progress_text(event)
        elif isinstance(event, FINAL_EVENTS):
            self.job_text = None
        for screen in list(self.tab_screens):
            screen.on_backend_event(event)

    def _refresh_memory(self) -> None:
        if self.backend.runtime is not None:
            self.run_worker(self._read_memory, thread=True, exclusive=True, group="memory")

    def _read_memory(self) -> None:
        text = self.backend.memory()
        self.call_from_thread(setattr, self, "memory_text", text)

    # -- actions ---------------------------------------------------------------------------

    def action_switch_tab(self, tab_id: str) -> None:
        if tab_id in SCREENS:
            self.switch_mode(tab_id)
            return
        label = next((tab.label for tab in A1111_TABS if tab.id == tab_id), tab_id)
        self.notify(f"The {label} tab is not in this version of sdtui yet.")

    def action_help(self) -> None:
        from sdtui.screens.help import HelpScreen, binding_rows

        if isinstance(self.screen, Screen) and self.screen.is_modal:
            return
        self.push_screen(HelpScreen(binding_rows(self.screen), self.screen.__class__.__name__))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for tab in self.tabs:
            yield SystemCommand(
                f"Tab: {tab.label}",
                f"Switch to the {tab.label} tab (Alt+{tab.number})",
                lambda tab_id=tab.id: self.action_switch_tab(tab_id),
            )
        yield SystemCommand("Help: keys", "Every key of this screen (F1)", self.action_help)
        commands = getattr(screen, "palette_commands", None)
        if commands is not None:
            yield from commands()

    async def action_quit(self) -> None:
        self.backend.interrupt()
        self.exit()

    def on_unmount(self) -> None:
        self.backend.shutdown()


# what counts as the user doing something (the cursor blinks again); focus changes, too
_INPUT_EVENTS = (events.Key, events.MouseDown, events.Paste, events.DescendantFocus)


def _progress_text(event: Any) -> str:
    text = f"{event.text} " if event.text else ""
    text += f"{event.step}/{event.total}"
    if event.it_per_s:
        speed = event.it_per_s
        text += f" · {speed:.2f} it/s" if speed >= 1 else f" · {1 / speed:.2f} s/it"
    if event.eta_s is not None:
        minutes, seconds = divmod(int(event.eta_s + 0.5), 60)
        text += f" · ETA {minutes}:{seconds:02d}"
    return text
