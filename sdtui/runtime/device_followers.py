"""Plugin model wrappers that run where the runtime runs its models.

    FOLLOWERS = DeviceFollowers()          # one per plugin module
    self.device = FOLLOWERS.join(self)     # in a wrapper's __init__: the current device
    FOLLOWERS.runtime_ready(runtime)       # from the plugin's `runtime_ready` hook

The `runtime_ready` hook is given the runtime but no plugin host, so a plugin keeps its
wrappers here (weakly: an unregistered wrapper goes away) and moves them all when a runtime
comes up; a wrapper made later starts on that runtime's device. One device per process.
No torch import at module level.
"""

from __future__ import annotations

import weakref
from typing import Any


class DeviceFollowers:
    def __init__(self) -> None:
        self.device: str | None = None  # the last runtime's device; None: the CPU
        self._members: weakref.WeakSet[Any] = weakref.WeakSet()

    def join(self, member: Any) -> str | None:
        """Follow the runtime from now on; returns the device to start on."""
        self._members.add(member)
        return self.device

    def runtime_ready(self, runtime: Any) -> None:
        self.device = str(runtime.device)
        for member in list(self._members):
            member.device = self.device

    def __iter__(self) -> Any:
        return iter(list(self._members))


def on_device(model: Any, device: str | None) -> Any:
    """A spandrel descriptor (or anything with `.device` and `.to`) on `device` (None: the
    CPU), moved only when it is elsewhere."""
    import torch

    wanted = torch.device(device or "cpu")
    return model if model.device == wanted else model.to(wanted)
