"""The events a job produces, as the UI receives them. Small, frozen, torch-free.

Every event carries ``job_id``. A job's events come in this order: `Queued`, then either
`Cancelled` (removed before it ran) or `Started`, any number of `Progress`, `Preview` and
`ResultAdded`, and exactly one of `Finished`, `Failed`, `Interrupted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobEvent:
    job_id: int


@dataclass(frozen=True)
class Queued(JobEvent):
    name: str
    kind: str
    position: int  # jobs ahead of it when it was queued (0 = next to run)


@dataclass(frozen=True)
class Started(JobEvent):
    name: str
    kind: str


@dataclass(frozen=True)
class Progress(JobEvent):
    step: int
    total: int
    it_per_s: float | None  # None until two steps have been timed
    eta_s: float | None  # seconds left for this run of `total` steps
    text: str | None = None


@dataclass(frozen=True)
class Preview(JobEvent):
    image: Any


@dataclass(frozen=True)
class ResultAdded(JobEvent):
    """An item (an image) the job finished and kept; it will also be in the final event."""

    item: Any


@dataclass(frozen=True)
class Finished(JobEvent):
    result: Any
    results: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Failed(JobEvent):
    error_message: str
    out_of_memory: bool
    traceback: str
    results: tuple[Any, ...] = ()  # items finished before the failure


@dataclass(frozen=True)
class Interrupted(JobEvent):
    results: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Cancelled(JobEvent):
    pass


FINAL_EVENTS = (Finished, Failed, Interrupted, Cancelled)
_SUPERSEDABLE = (Progress, Preview)


def coalesce(events: list[JobEvent]) -> list[JobEvent]:
    """Drop each Progress/Preview followed later in `events` by one of the same type and
    job; everything else is kept, in order."""
    seen: set[tuple[type, int]] = set()
    kept = []
    for event in reversed(events):
        if isinstance(event, _SUPERSEDABLE):
            key = (type(event), event.job_id)
            if key in seen:
                continue
            seen.add(key)
        kept.append(event)
    kept.reverse()
    return kept
