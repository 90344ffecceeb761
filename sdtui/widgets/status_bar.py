"""The status bar: checkpoint and hash, VAE, device and free memory, queue, job progress."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from sdtui.services.backend import BackendStatus


def status_text(status: BackendStatus, job: str | None, memory: str | None) -> str:
    """One line, most important first: what the runtime is doing, then the model."""
    parts = []
    if status.phase != "ready" or status.message != "ready":
        parts.append(status.message)
    if job:
        parts.append(job)
    if status.checkpoint:
        model = status.checkpoint
        if status.checkpoint_hash:
            model += f" [{status.checkpoint_hash}]"
        parts.append(model)
    if status.vae:
        parts.append(f"VAE: {status.vae}")
    parts.append(memory or status.device or "device: starting")
    parts.append(f"queue: {status.queue_length}")
    return " │ ".join(parts)


class StatusBar(Static):
    """Renders the app's `status`, `job_text` and `memory_text` (kept current by the app)."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $boost; color: $text-muted; padding: 0 1; }
    """

    text: reactive[str] = reactive("")

    def on_mount(self) -> None:
        for name in ("status", "job_text", "memory_text"):
            self.watch(self.app, name, self._changed, init=False)
        self._changed()

    def _changed(self, *_: object) -> None:
        app = self.app
        text = status_text(
            getattr(app, "status", BackendStatus()),
            getattr(app, "job_text", None),
            getattr(app, "memory_text", None),
        )
        if text != self.text:
            self.text = text
            # one line of fixed size: no layout pass, which would repaint the whole screen
            self.update(text, layout=False)
