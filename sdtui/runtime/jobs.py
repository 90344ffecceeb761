"""The job queue: one worker thread owns the device and runs jobs one after another.

Why a thread and not a process:

- CUDA out-of-memory is an ordinary exception in-process: the worker catches it, reports
  it, frees the cache and runs the next job; the loaded models stay loaded.
- Tensors, PIL previews and loaded models need no serialization between worker and UI.
- CUDA cannot be used in a forked child, so a worker process would need ``spawn`` and a
  second torch import (seconds of start-up and a second copy of every loaded model).
- The API is message-based (submit a function, receive events), so a process backend can
  replace this one later without changing its callers.

The honest cost: a *host* out-of-memory kill (the kernel's OOM killer) or a crash inside a
native library takes the whole application down with the thread; a separate process would
survive that. Python-level errors, including CUDA OOM, never kill the worker.

Events are small frozen dataclasses carrying the job id. They are delivered to listeners in
order on a separate event thread ("sdtui-events"), never on the thread that called
`submit`/`cancel` and never on the worker itself: a listener that blocks (Textual's
``call_from_thread`` waits for the UI) does not slow the denoising loop, and the UI thread
may call `submit` without being called back re-entrantly. When listeners fall behind, a
`Progress` or `Preview` superseded by a newer one of the same job is dropped.

A job is ``fn(context)``. It calls ``context.check()`` at safe points (every step): that
raises `JobInterrupted` after `interrupt()` and `ImageSkipped` after `skip()`. Images
passed to ``context.add_result`` are kept whatever happens later. How the job ends decides
its final event: return -> `Finished`; `JobInterrupted` -> `Interrupted` (with the kept
results); an uncaught `ImageSkipped` -> `Finished` with result None; any other exception ->
`Failed` (``out_of_memory`` set for CUDA/MPS/host OOM, after which memory is freed).

Neither this module nor what it imports imports torch (the TUI imports it at start-up);
freeing memory after an OOM looks torch up in ``sys.modules``.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdtui.runtime.device import free_device_memory
from sdtui.runtime.job_context import ImageSkipped, JobContext, JobInterrupted
from sdtui.runtime.job_events import (
    Cancelled,
    Failed,
    Finished,
    Interrupted,
    JobEvent,
    Preview,
    Progress,
    Queued,
    ResultAdded,
    Started,
    coalesce,
)

log = logging.getLogger(__name__)
Listener = Callable[[JobEvent], None]

__all__ = [
    "Cancelled",
    "Failed",
    "Finished",
    "ImageSkipped",
    "Interrupted",
    "JobContext",
    "JobEvent",
    "JobHandle",
    "JobInterrupted",
    "JobQueue",
    "JobState",
    "Preview",
    "Progress",
    "Queued",
    "ResultAdded",
    "Started",
    "is_out_of_memory",
]


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


_FINAL_STATES: dict[type, JobState] = {
    Finished: JobState.FINISHED,
    Failed: JobState.FAILED,
    Interrupted: JobState.INTERRUPTED,
    Cancelled: JobState.CANCELLED,
}


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's OutOfMemoryError (CUDA), "out of memory" runtime errors (CUDA, MPS),
    a CPU allocator failure, and Python's MemoryError."""
    if isinstance(error, MemoryError):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(error).__mro__):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )


@dataclass(eq=False)
class JobHandle:
    """What `submit` returns: the job's id, state and outcome."""

    id: int
    name: str
    kind: str
    state: JobState = JobState.QUEUED
    final: JobEvent | None = None
    _results: list[Any] = field(default_factory=list, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _fn: Callable[[JobContext], Any] | None = field(default=None, repr=False)
    _queue: JobQueue | None = field(default=None, repr=False)

    @property
    def result(self) -> Any:
        """The job's return value once it finished (None before, or if it did not)."""
        return getattr(self.final, "result", None)

    @property
    def results(self) -> tuple[Any, ...]:
        """Every item the job passed to `add_result` so far."""
        return tuple(self._results)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> JobEvent:
        """Block until the job ends and return its final event; TimeoutError otherwise."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} ({self.name}) still {self.state.value}")
        assert self.final is not None
        return self.final

    def cancel(self) -> bool:
        """Cancel if queued, interrupt if running; False if already over."""
        return self._queue.cancel(self.id) if self._queue else False


class JobQueue:
    """One worker thread running submitted jobs in order; see the module docstring."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, coalesce_events: bool = True
    ) -> None:
        self.clock = clock
        self.coalesce_events = coalesce_events
        self._cond = threading.Condition()
        self._pending: deque[JobHandle] = deque()
        self._current: JobContext | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        self._listeners: list[Listener] = []
        self._events = threading.Condition()
        self._buffer: list[JobEvent] = []
        self._emitted = self._delivered = 0
        self._events_closed = False
        self._worker = threading.Thread(target=self._work, name="sdtui-worker", daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch, name="sdtui-events", daemon=True)
        self._worker.start()
        self._dispatcher.start()

    # -- submitting and stopping ---------------------------------------------------------

    def submit(self, fn: Callable[[JobContext], Any], *, name: str, kind: str = "job") -> JobHandle:
        """Queue ``fn(context)`` to run on the worker thread after the jobs before it."""
        with self._cond:
            if self._stopping:
                raise RuntimeError(f"cannot submit {name!r}: the job queue is shut down")
            handle = JobHandle(next(self._ids), name, kind, _fn=fn, _queue=self)
            self._emit(Queued(handle.id, name, kind, len(self._pending)))
            self._pending.append(handle)
            self._cond.notify_all()
        return handle

    def interrupt(self) -> bool:
        """Stop the running job at its next `check()`, keeping its results. False if idle."""
        with self._cond:
            if self._current is None:
                return False
            self._current._interrupt.set()
            return True

    def skip(self) -> bool:
        """Abandon the running job's current image at its next `check()`. False if idle."""
        with self._cond:
            if self._current is None:
                return False
            self._current._skip.set()
            return True

    def cancel(self, job_id: int) -> bool:
        """Remove a queued job (it gets `Cancelled`) or interrupt it if it is running.
        False if no such job is queued or running."""
        with self._cond:
            for handle in self._pending:
                if handle.id == job_id:
                    self._pending.remove(handle)
                    self._cancel_locked(handle)
                    return True
            if self._current is not None and self._current.job_id == job_id:
                self._current._interrupt.set()
                return True
        return False

    def cancel_queued(self) -> list[int]:
        """Cancel every job that has not started; returns their ids."""
        with self._cond:
            cancelled = [handle.id for handle in self._pending]
            while self._pending:
                self._cancel_locked(self._pending.popleft())
        return cancelled

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Refuse new jobs, cancel queued ones, interrupt the running one; with `wait`,
        join the threads (a job that never calls `check()` is waited for up to `timeout`).
        Called from a job or a listener it does not wait, since it would wait for itself.
        """
        with self._cond:
            self._stopping = True
            while self._pending:
                self._cancel_locked(self._pending.popleft())
            if self._current is not None:
                self._current._interrupt.set()
            self._cond.notify_all()
        own_threads = (self._worker, self._dispatcher)
        if wait and threading.current_thread() not in own_threads:  # a job/listener can't wait
            for thread in own_threads:
                thread.join(timeout)

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- looking -------------------------------------------------------------------------

    @property
    def running(self) -> int | None:
        """The id of the running job, or None."""
        current = self._current
        return current.job_id if current else None

    def queued(self) -> list[int]:
        """Ids of the jobs waiting to run, next first."""
        with self._cond:
            return [handle.id for handle in self._pending]

    @property
    def alive(self) -> bool:
        return self._worker.is_alive()

    # -- listeners -----------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` for every later event, on the event thread. Returns a
        function that removes it."""
        with self._events:
            self._listeners.append(listener)

        def remove() -> None:
            with self._events:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def join_events(self, timeout: float | None = None) -> bool:
        """Wait until listeners have received every event emitted so far (False on
        timeout, or when called from a listener, which would wait for itself)."""
        if threading.current_thread() is self._dispatcher:
            return False
        with self._events:
            target = self._emitted
            return self._events.wait_for(lambda: self._delivered >= target, timeout)

    # -- internals -----------------------------------------------------------------------

    def _emit(self, event: JobEvent) -> None:
        with self._events:
            self._buffer.append(event)
            self._emitted += 1
            self._events.notify_all()

    def _cancel_locked(self, handle: JobHandle) -> None:
        handle._fn = None
        self._finish(handle, Cancelled(handle.id))

    def _finish(self, handle: JobHandle, event: JobEvent) -> None:
        handle.final = event
        handle.state = _FINAL_STATES[type(event)]
        self._emit(event)
        handle._done.set()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    break
                handle = self._pending.popleft()
                self._current = context = JobContext(handle, self)
                handle.state = JobState.RUNNING
                self._emit(Started(handle.id, handle.name, handle.kind))
            try:
                self._run(handle, context)
            except BaseException:  # a bug of ours; the worker must survive it
                log.exception("job %s: internal error in the job queue", handle.id)
            finally:
                with self._cond:
                    self._current = None
        with self._events:
            self._events_closed = True
            self._events.notify_all()

    def _run(self, handle: JobHandle, context: JobContext) -> None:
        fn, handle._fn = handle._fn, None
        out_of_memory = False
        try:
            value = fn(context)  # type: ignore[misc]
        except JobInterrupted:
            final: JobEvent = Interrupted(handle.id, handle.results)
        except ImageSkipped:
            final = Finished(handle.id, None, handle.results)
        except BaseException as error:
            out_of_memory = is_out_of_memory(error)
            message = f"{type(error).__name__}: {error}"
            details = "".join(traceback.format_exception(error))
            final = Failed(handle.id, message, out_of_memory, details, handle.results)
        else:
            final = Finished(handle.id, value, handle.results)
            del value
        del fn
        if out_of_memory:  # the exception and its frames are gone: free what they held
            free_device_memory()
        with self._cond:
            self._finish(handle, final)

    def _dispatch(self) -> None:
        while True:
            with self._events:
                self._events.wait_for(lambda: self._buffer or self._events_closed)
                if not self._buffer:
                    return
                batch, self._buffer = self._buffer, []
                listeners = list(self._listeners)
            for event in coalesce(batch) if self.coalesce_events else batch:
                for listener in listeners:
                    try:
                        listener(event)
                    except Exception:
                        log.exception("event listener %r failed on %r", listener, event)
            with self._events:
                self._delivered += len(batch)
                self._events.notify_all()
