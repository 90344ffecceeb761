"""sdtui: an AUTOMATIC1111-class Stable Diffusion studio for the terminal.

Plugins import `hookimpl` from here::

    from sdtui import hookimpl

    @hookimpl
    def register_upscalers(register):
        register(MyUpscaler())

This module stays light: importing it must not import torch.
"""

from importlib import metadata as _metadata

import pluggy

PROJECT_NAME = "sdtui"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

try:
    __version__ = _metadata.version(PROJECT_NAME)
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
