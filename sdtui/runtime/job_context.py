"""What a running job sees: `JobContext` (progress, previews, results, interrupt and skip).

A job calls ``context.check()`` at safe points (every denoising step). It raises
`JobInterrupted` once `JobQueue.interrupt()` was called and `ImageSkipped` once
`JobQueue.skip()` was; `for_each` and `skippable` turn a skip into "go to the next image".
it/s and ETA are computed here from timestamps, not by the job.

No torch import: the TUI imports this through `sdtui.runtime.jobs`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdtui.runtime.job_events import Preview, Progress, ResultAdded

if TYPE_CHECKING:
    from sdtui.runtime.jobs import JobHandle, JobQueue


class JobInterrupted(Exception):
    """Raised by `JobContext.check` after `interrupt()`: the job stops, results are kept."""


class ImageSkipped(Exception):
    """Raised by `JobContext.check` after `skip()`: abandon this image, go to the next."""


@dataclass
class _RateMeter:
    """Seconds per step, smoothed with an exponential moving average over step deltas.

    A step that goes backwards (the next image of a batch starts at 0) restarts the
    timing baseline but keeps the rate, since the next image runs at the same speed."""

    clock: Callable[[], float]
    smoothing: float = 0.3
    seconds_per_step: float | None = None
    _last: tuple[float, int] | None = None

    def update(self, step: int, total: int) -> tuple[float | None, float | None]:
        now = self.clock()
        if self._last is not None and step > self._last[1]:
            sample = (now - self._last[0]) / (step - self._last[1])
            old = self.seconds_per_step
            self.seconds_per_step = sample if old is None else old + self.smoothing * (sample - old)
        self._last = (now, step)
        rate = self.seconds_per_step
        if not rate:
            return None, None
        return 1.0 / rate, max(total - step, 0) * rate


class JobContext:
    """Handed to a job function: report progress, previews and results; check for stop."""

    def __init__(self, handle: JobHandle, queue: JobQueue) -> None:
        self.job_id = handle.id
        self.name = handle.name
        self.kind = handle.kind
        self._handle = handle
        self._queue = queue
        self._interrupt = threading.Event()
        self._skip = threading.Event()
        self._meter = _RateMeter(queue.clock)

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    @property
    def skip_requested(self) -> bool:
        return self._skip.is_set()

    def check(self) -> None:
        """Raise JobInterrupted or ImageSkipped if the user asked for it (interrupt wins)."""
        if self._interrupt.is_set():
            raise JobInterrupted(f"job {self.job_id} interrupted")
        if self._skip.is_set():
            raise ImageSkipped(f"job {self.job_id}: image skipped")

    def progress(self, step: int, total: int, *, text: str | None = None) -> None:
        it_per_s, eta_s = self._meter.update(step, total)
        self._queue._emit(Progress(self.job_id, step, total, it_per_s, eta_s, text))

    def preview(self, image: Any) -> None:
        self._queue._emit(Preview(self.job_id, image))

    def add_result(self, item: Any) -> None:
        """Keep a finished item (an image): it survives a later interrupt or failure."""
        self._handle._results.append(item)
        self._queue._emit(ResultAdded(self.job_id, item))

    @property
    def results(self) -> tuple[Any, ...]:
        return self._handle.results

    def skippable(self) -> _Skippable:
        """``with context.skippable(): ...`` ends the block quietly when skip is requested
        inside it, and clears the request so the next image runs."""
        return _Skippable(self._skip)

    def for_each(self, items: Iterable[Any], make: Callable[[Any], Any]) -> list[Any]:
        """Run ``make(item)`` for each item (e.g. each image of a batch). A skip abandons
        only the current item; an interrupt stops the loop (JobInterrupted propagates).
        Non-None returns are kept with `add_result` and returned."""
        made = []
        for item in items:
            self._skip.clear()  # a skip pressed between images does not skip the next one
            self.check()
            with self.skippable():
                value = make(item)
                if value is not None:
                    self.add_result(value)
                    made.append(value)
        return made


class _Skippable:
    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, tb: Any) -> bool:
        if kind is not None and issubclass(kind, ImageSkipped):
            self._flag.clear()
            return True
        return False
