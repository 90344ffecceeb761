"""A tiny model, a plugin host and a runtime for running scripts as jobs (module fixtures of
tests/test_scripts.py and tests/test_img2img_scripts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from sdtui.paths import DataDirs
from sdtui.plugins import PluginHost
from sdtui.runtime import Runtime
from sdtui.services.generation import choose_checkpoint
from tests.tiny_models import write_tiny_checkpoint


def script_env(root: Path) -> Iterator[SimpleNamespace]:
    """Yields (dirs, host, runtime, model) over a data dir in `root`; shuts down after."""
    dirs = DataDirs.resolve(root / "data")
    dirs.create()
    write_tiny_checkpoint(dirs.checkpoints / "tiny.safetensors", "sd1")
    host = PluginHost(load_entry_points=False)
    runtime = Runtime.start(device="cpu", plugin_host=host)
    try:
        yield SimpleNamespace(
            dirs=dirs, host=host, runtime=runtime, model=choose_checkpoint(dirs, None)
        )
    finally:
        runtime.shutdown()
