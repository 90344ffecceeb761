"""The runtime: the chosen device and dtype, the job worker and the model cache, together.

``Runtime.start()`` is what the app calls once at start-up (the TUI from a worker thread,
since it imports torch); it tells the plugins through the historic ``runtime_ready`` hook,
so a plugin registered later still receives the same runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdtui.runtime.device import ATTENTION, choose_device, choose_dtype, describe
from sdtui.runtime.jobs import JobQueue
from sdtui.runtime.model_cache import ModelCache

if TYPE_CHECKING:
    import torch


@dataclass
class Runtime:
    device: torch.device
    dtype: torch.dtype
    jobs: JobQueue
    models: ModelCache
    attention: str = ATTENTION

    @classmethod
    def start(
        cls,
        device: str | None = None,
        precision: str | None = None,
        plugin_host: Any = None,
        max_models_in_ram: int = 1,
    ) -> Runtime:
        """Choose device and dtype (see `sdtui.runtime.device`), start the job worker, and
        call ``plugin_host.runtime_ready(runtime)`` when a host is given. A bad device or
        precision raises `DeviceError` before any thread starts."""
        chosen = choose_device(device)
        dtype = choose_dtype(chosen, precision)
        models = ModelCache(chosen, max_in_ram=max_models_in_ram)
        runtime = cls(device=chosen, dtype=dtype, jobs=JobQueue(), models=models)
        if plugin_host is not None:
            plugin_host.runtime_ready(runtime)
        return runtime

    def describe(self, *, memory: bool = False) -> str:
        """For the status bar: "cpu · fp32", optionally with free memory."""
        return describe(self.device, self.dtype, memory=memory)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the worker (queued jobs are cancelled, the running one interrupted) and
        drop every cached model."""
        self.jobs.shutdown(wait=wait, timeout=timeout)
        self.models.unload_all()
