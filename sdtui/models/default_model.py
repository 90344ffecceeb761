"""The embedded default model, and the size a checkpoint was trained at.

sdtui ships one small checkpoint, `sdtui-shapes.safetensors` (SD1 architecture at small
widths, trained by `tools/train_default_model.py` on generated pictures of coloured shapes),
so that the app starts on a model that follows prompts when no other checkpoint exists. It is
listed only while the checkpoint folder holds none of the user's own, and can always be named
(e.g. by an infotext's "Model: sdtui-shapes").

`native_size` reads a checkpoint's training resolution from its header (the family's
default, or the `sdtui.native_size` / `modelspec.resolution` metadata) so the forms can start
at the size a model draws best: 128 for the default model, 1024 for SDXL.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdtui_config import CONFIG_DIR

DEFAULT_MODEL_NAME = "sdtui-shapes.safetensors"
DEFAULT_MODEL_DIR = CONFIG_DIR / "default_model"


def default_model_path() -> Path | None:
    """The shipped checkpoint, or None where an installation left it out."""
    path = DEFAULT_MODEL_DIR / DEFAULT_MODEL_NAME
    return path if path.is_file() else None


def is_default_model(path: str | os.PathLike[str]) -> bool:
    shipped = default_model_path()
    return shipped is not None and Path(path).resolve() == shipped.resolve()


def native_size(path: str | os.PathLike[str]) -> int | None:
    """The resolution a checkpoint was trained at, from its header alone; None where the file
    does not say (pickled `.ckpt` files are not opened for this, SD2 without metadata)."""
    from sdtui.models.checkpoint_file import CheckpointError, read_header
    from sdtui.models.families import FamilyDetectionError, detect_family

    if not str(path).lower().endswith(".safetensors"):
        return None
    try:
        header = read_header(path)
        family = detect_family(header.shapes, header.metadata)
    except (CheckpointError, FamilyDetectionError, OSError):
        return None
    return family.native_size
