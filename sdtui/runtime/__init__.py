"""The runtime layer: device and dtype, the job worker that owns the device, the model cache.

Importing this package (or `sdtui.runtime.jobs`) does not import torch: `Runtime` and the
device helpers are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdtui.runtime.runtime import Runtime

__all__ = ["Runtime"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from sdtui.runtime.runtime import Runtime

        return Runtime
    raise AttributeError(f"module 'sdtui.runtime' has no attribute {name!r}")
