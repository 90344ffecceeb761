"""Keep the active model on the device and a few recent ones in CPU RAM.

``cache.get(key, loader)`` returns the model for `key`, making it the active one: it is
moved to the device, the previously active model is moved to CPU RAM, and the least
recently used models beyond ``max_in_ram`` are dropped (every reference the cache holds is
deleted, then ``gc.collect()`` and, with CUDA, ``torch.cuda.empty_cache()``). A model is
anything with ``.to(device)``: a torch module or a small container of modules; ``.to`` may
return the moved object or None (then the object itself is kept).

Order of work when switching: build the new model (``loader()``, usually on the CPU) first
-- if that raises, nothing has changed -- then move the old active model off the device,
evict, and move the new one on, so two models never sit on the device together. If moving
the new model to the device fails (out of memory), it is dropped, no model is active, and
the error propagates; the models in RAM stay.

All methods are thread-safe (one re-entrant lock, held while a model loads so two callers
asking for the same key do not build it twice). `active_key` and `active` are read without
the lock, so a status bar never waits for a load; while a switch is under way they are None.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sdtui.runtime.device import free_device_memory

OFFLOAD_DEVICE = "cpu"


def move(model: Any, device: Any) -> Any:
    """``model.to(device)``, keeping `model` itself when ``.to`` returns None."""
    moved = model.to(device)
    return model if moved is None else moved


class ModelCache:
    """The active model on `device`, up to `max_in_ram` others in RAM (LRU)."""

    def __init__(
        self, device: Any, max_in_ram: int = 1, *, offload_device: Any = OFFLOAD_DEVICE
    ) -> None:
        if max_in_ram < 0:
            raise ValueError(f"max_in_ram must be 0 or more, not {max_in_ram}")
        self.device = device
        self.max_in_ram = max_in_ram
        self.offload_device = offload_device
        self._lock = threading.RLock()
        self._active_key: Hashable | None = None
        self._active: Any = None
        self._in_ram: OrderedDict[Hashable, Any] = OrderedDict()  # most recent last

    # -- looking -------------------------------------------------------------------------

    @property
    def active_key(self) -> Hashable | None:
        return self._active_key

    @property
    def active(self) -> Any:
        """The model on the device, or None."""
        return self._active

    def keys(self) -> list[Hashable]:
        """Every cached key: the active one first, then RAM from most recently used."""
        with self._lock:
            keys = [] if self._active_key is None else [self._active_key]
            return keys + list(reversed(self._in_ram))

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key == self._active_key or key in self._in_ram

    def __len__(self) -> int:
        return len(self.keys())

    # -- using ---------------------------------------------------------------------------

    def get(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """The model for `key` on the device, from the cache or built by ``loader()``."""
        if key is None:
            raise ValueError("a model's cache key cannot be None")
        with self._lock:
            if self._active_key is not None and key == self._active_key:
                return self._active
            model = self._in_ram.pop(key, None)
            if model is None:
                model = loader()
                if model is None:
                    raise ValueError(f"the loader for model {key!r} returned None")
            if self._offload_active() | self._evict():
                free_device_memory()
            try:
                model = move(model, self.device)
            except BaseException:
                del model
                free_device_memory()
                raise
            self._active_key, self._active = key, model
            return model

    def unload(self, key: Hashable) -> bool:
        """Drop `key` from the cache (device or RAM) and free its memory; False if absent."""
        with self._lock:
            if key == self._active_key and self._active_key is not None:
                self._active_key = self._active = None
            elif self._in_ram.pop(key, None) is None:
                return False
            free_device_memory()
            return True

    def unload_all(self) -> None:
        """Drop every model and free their memory."""
        with self._lock:
            self._active_key = self._active = None
            self._in_ram.clear()
            free_device_memory()

    # -- internals -----------------------------------------------------------------------

    def _offload_active(self) -> bool:
        """Move the active model to RAM (or drop it when max_in_ram is 0); True if dropped."""
        if self._active_key is None:
            return False
        key, model = self._active_key, self._active
        self._active_key = self._active = None
        if self.max_in_ram == 0:
            return True
        self._in_ram[key] = move(model, self.offload_device)
        return False

    def _evict(self) -> bool:
        """Drop the least recently used models beyond max_in_ram; True if any was."""
        evicted = False
        while len(self._in_ram) > self.max_in_ram:
            self._in_ram.popitem(last=False)
            evicted = True
        return evicted
