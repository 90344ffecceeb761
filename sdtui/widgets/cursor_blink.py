"""The text cursor stops blinking after a while without input, as GTK's cursor-blink-timeout.

A blinking cursor repaints its line twice a second, which over SSH is a write to the
terminal twice a second for as long as the app sits idle (most of its life, while the user
looks at images or waits for the GPU). After `timeout` seconds without a key press, paste or
click, the focused field's cursor stays on, solid; the next input makes it blink again.

    blink = CursorBlinkTimeout(app)      # in App.on_mount
    blink.activity()                     # on every key / paste / click / focus change
"""

from __future__ import annotations

import time
import weakref
from typing import Any

CURSOR_BLINK_TIMEOUT_S = 10.0  # GTK's default gtk-cursor-blink-timeout


class CursorBlinkTimeout:
    def __init__(
        self, app: Any, timeout: float = CURSOR_BLINK_TIMEOUT_S, clock: Any = time.monotonic
    ) -> None:
        self.app = app
        self.timeout = timeout
        self.clock = clock
        self.last_input = clock()
        self._timer: Any = None
        self._stopped: weakref.ref[Any] | None = None  # the widget whose blink was stopped
        self._schedule(timeout)

    def activity(self) -> None:
        """Input happened: blink again where it was stopped, and start counting anew."""
        self.last_input = self.clock()
        stopped = self._stopped() if self._stopped is not None else None
        self._stopped = None
        if stopped is not None and stopped.is_mounted:
            stopped.cursor_blink = True
        if self._timer is None:
            self._schedule(self.timeout)

    def _schedule(self, delay: float) -> None:
        # one one-shot timer at a time (not one per key): when it fires early, it waits on
        self._timer = self.app.set_timer(delay, self._check, name="cursor blink timeout")

    def _check(self) -> None:
        self._timer = None
        remaining = self.last_input + self.timeout - self.clock()
        if remaining > 0:
            self._schedule(remaining)
            return
        focused = self.app.focused
        if focused is not None and getattr(focused, "cursor_blink", False):
            focused.cursor_blink = False  # Input / TextArea: the cursor stays on, solid
            self._stopped = weakref.ref(focused)
