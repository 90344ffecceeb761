"""Face detection (`sdtui.faces.mtcnn`) and alignment (`sdtui.faces.alignment`) for the
built-in face restorers. This package module stays light (no torch): it only finds the
detector's weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

WEIGHTS_PACKAGE = "facenet_pytorch"  # its wheel ships MTCNN's weights in data/
WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")


class FaceDetectorError(RuntimeError):
    """The face detector's weights are missing or unreadable."""


def detector_weights_folder() -> Path:
    """The `data` folder of the installed facenet-pytorch wheel, found without importing
    the package (its `__init__` imports much more than we need)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "data"
        if all((folder / name).is_file() for name in WEIGHT_FILES):
            return folder
    raise FaceDetectorError(
        "the face detector's weights are missing: install the facenet-pytorch package "
        "(pip install facenet-pytorch), whose wheel ships them in facenet_pytorch/data"
    )
