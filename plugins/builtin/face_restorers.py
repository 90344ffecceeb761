"""Face restoration with GFPGAN and CodeFormer, through `register_face_restorers`.

    restorer = host.face_restorers.get("CodeFormer")  # case-insensitive
    restorer.unavailable()                   # None, or why restore() would fail (for the UI)
    image = restorer.restore(image, weight=0.5)  # same size; weight: CodeFormer only

Registered always, under A1111's names. Each finds its faces with MTCNN
(`sdtui.faces.mtcnn`), aligns each to the 512 x 512 FFHQ template
(`sdtui.faces.alignment`), runs the model on the crop and pastes the result back with a
feathered mask; an image without a face comes back unchanged.

The weights are the user's files, where A1111 keeps them: in `models/GFPGAN` the first
file whose name contains "GFPGAN" (GFPGANv1.4.pth), in `models/Codeformer` the first whose
name contains "codeformer" (codeformer-v0.1.0.pth); .pth, .pt or .safetensors, found in
sub-folders too. spandrel loads GFPGAN, spandrel-extra-arches CodeFormer (its code is under
CodeFormer's S-Lab License 1.0: non-commercial use). Without a file, `restore` raises
FaceRestorerError saying which file goes where and where to get it; `unavailable()` returns
the same message without raising.

The plugin hook knows no data dir, so whoever knows it (the CLI's `command_setup`, the
Backend's start) calls `configure_face_restorers(dirs)`; before that the default data dir
(`DataDirs.resolve()`) is searched. Registering costs nothing: torch imports and the model
loads on the first `restore`. The models run in fp32 on the runtime's device
(`runtime_ready`; the CPU until a runtime is up), the detector on the CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui import hookimpl
from sdtui.paths import DataDirs
from sdtui.runtime.device_followers import DeviceFollowers, on_device

if TYPE_CHECKING:
    from PIL import Image

EXTENSIONS = (".pth", ".pt", ".safetensors")
DEFAULT_CODEFORMER_WEIGHT = 0.5  # A1111's code_former_weight setting


class FaceRestorerError(RuntimeError):
    """A face restorer cannot run: its weights (or the detector's) are missing or are not
    its model; the message says what to do."""


@dataclass(frozen=True)
class FaceModel:
    name: str  # A1111's name
    folder: str  # under models/
    architecture: str  # spandrel's architecture id
    marker: str  # what A1111 looks for in the file name (case-insensitively)
    file_name: str  # the file A1111 downloads
    url: str  # where A1111 downloads it from


GFPGAN = FaceModel(
    "GFPGAN",
    "GFPGAN",
    "GFPGAN",
    "gfpgan",
    "GFPGANv1.4.pth",
    "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth",
)
CODEFORMER = FaceModel(
    "CodeFormer",
    "Codeformer",
    "CodeFormer",
    "codeformer",
    "codeformer-v0.1.0.pth",
    "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",
)

FOLLOWERS = DeviceFollowers()  # every model wrapper of this plugin (runtime_ready)
_data_dirs: DataDirs | None = None  # the last configure_face_restorers call's


class SpandrelFaceRestorer:
    """GFPGAN or CodeFormer from the user's models folder; loads on first use."""

    def __init__(self, spec: FaceModel) -> None:
        self.spec = spec
        self.name = spec.name
        self.device: str | None = FOLLOWERS.join(self)  # None: the CPU
        self.dirs: DataDirs | None = _data_dirs  # None: the default data dir
        self._model: Any = None
        self._model_path: Path | None = None
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return (self.dirs or DataDirs.resolve()).models(self.spec.folder)

    def use_data_dirs(self, dirs: DataDirs) -> None:
        if dirs.models(self.spec.folder) != self.folder:
            self.unload()
        self.dirs = dirs

    def weights_path(self) -> Path | None:
        """A1111's choice: the first file (by path) whose name contains the marker."""
        if not self.folder.is_dir():
            return None
        found = [
            path
            for path in self.folder.rglob("*")
            if path.suffix.lower() in EXTENSIONS
            and self.spec.marker in path.name.casefold()
            and path.is_file()
        ]
        return min(found, key=lambda path: str(path).casefold(), default=None)

    def missing_message(self) -> str:
        spec = self.spec
        return (
            f"{spec.name} needs its model file: put {spec.file_name} (any .pth or "
            f".safetensors file whose name contains {spec.marker!r}) in {self.folder}; "
            f"download it from {spec.url}"
        )

    def unavailable(self) -> str | None:
        """Why `restore` cannot run (a missing model or detector), or None; never raises
        and loads nothing."""
        from sdtui.faces import FaceDetectorError, detector_weights_folder

        try:
            if self.weights_path() is None:
                return self.missing_message()
            detector_weights_folder()
        except (FaceDetectorError, OSError) as error:
            return f"{self.name}: {error}"
        return None

    def _registry(self) -> Any:
        """spandrel's registry with the architecture this restorer needs."""
        return None  # spandrel's main registry

    def model(self) -> Any:
        """The loaded spandrel descriptor, in eval mode on `device`."""

        from sdtui.models.upscaler_files import UnusableModelError, load_state_dict, spandrel_load

        path = self.weights_path()
        if path is None:
            raise FaceRestorerError(self.missing_message())
        registry = self._registry()
        with self._lock:
            if self._model is None or self._model_path != path:
                self._model = None
                try:
                    model = spandrel_load(load_state_dict(path), registry=registry)
                except UnusableModelError as error:
                    raise FaceRestorerError(f"{self.name}: {path}: {error}") from None
                except Exception as error:
                    raise FaceRestorerError(f"{self.name}: cannot read {path}: {error}") from None
                found = model.architecture.id
                if found != self.spec.architecture:
                    raise FaceRestorerError(
                        f"{self.name}: {path} is a {found} model, not {self.spec.architecture}; "
                        f"put {self.spec.file_name} there (from {self.spec.url})"
                    )
                self._model, self._model_path = model.eval(), path
            self._model = on_device(self._model, self.device)
            return self._model

    def unload(self) -> None:
        with self._lock:
            self._model = self._model_path = None

    def offload(self) -> None:
        """A1111's face_restoration_unload: the loaded network to the CPU (RAM); the next
        `restore` moves it back to `device`."""
        with self._lock:
            if self._model is not None:
                self._model = on_device(self._model, None)

    def network(self, weight: float) -> Callable[[Any], Any]:
        """The model as a function of a (1, 3, 512, 512) RGB tensor in [-1, 1] on `device`,
        returning the same. `weight` is CodeFormer's fidelity."""
        net = self.model().model
        return lambda crop: net(crop, return_rgb=False)[0]

    def restore(self, image: Image.Image, weight: float | None = None) -> Image.Image:
        """`image` (PIL) with every face restored, the same size and mode; unchanged when it
        has no face. `weight`: CodeFormer's "Weight (0 = maximum effect, 1 = minimum
        effect)", default 0.5; ignored by GFPGAN."""
        from sdtui.faces import FaceDetectorError
        from sdtui.faces.alignment import (
            paste_face,
            similarity_transform,
            template_points,
            warp_face,
        )
        from sdtui.faces.mtcnn import detect_faces

        weight = DEFAULT_CODEFORMER_WEIGHT if weight is None else float(weight)
        if not 0 <= weight <= 1:
            raise ValueError(f"{self.name}: weight {weight} is not between 0 and 1")
        run = self.network(weight)  # a missing model is an error even without faces
        try:
            faces = detect_faces(image)
        except FaceDetectorError as error:
            raise FaceRestorerError(f"{self.name}: {error}") from None
        if not faces:
            return image.copy()
        result = image.convert("RGB")
        for face in faces:
            matrix = similarity_transform(face.landmarks, template_points())
            restored = self._run(run, warp_face(result, matrix))
            result = paste_face(result, restored, matrix)
        if image.mode == "RGBA":
            result.putalpha(image.getchannel("A"))
        elif image.mode != "RGB":
            result = result.convert(image.mode)
        return result

    def _run(self, run: Callable[[Any], Any], crop: Image.Image) -> Image.Image:
        import numpy as np
        import torch
        from PIL import Image

        pixels = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 127.5 - 1)
        device = torch.device(self.device or "cpu")
        with torch.inference_mode():
            output = run(pixels.permute(2, 0, 1)[None].to(device))[0]
        output = ((output.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return Image.fromarray(output.permute(1, 2, 0).cpu().numpy())


class CodeFormerRestorer(SpandrelFaceRestorer):
    """CodeFormer: its architecture comes from spandrel-extra-arches."""

    def _registry(self) -> Any:
        from spandrel import MAIN_REGISTRY, ArchRegistry

        try:
            from spandrel_extra_arches import EXTRA_REGISTRY
        except ImportError as error:
            raise FaceRestorerError(
                f"{self.name} needs the spandrel-extra-arches package ({error})"
            ) from None
        registry = ArchRegistry()
        registry.add(*MAIN_REGISTRY, *EXTRA_REGISTRY, ignore_duplicates=True)
        return registry

    def network(self, weight: float) -> Callable[[Any], Any]:
        net = self.model().model
        return lambda crop: net(crop, weight=weight, adain=True)[0]


def configure_face_restorers(dirs: DataDirs) -> None:
    """Search `dirs`' models folders for the restorers' weights (the hook knows no data
    dir): for the restorers already made and those made later."""
    global _data_dirs
    _data_dirs = dirs
    for restorer in FOLLOWERS:
        restorer.use_data_dirs(dirs)


@hookimpl
def runtime_ready(runtime: Any) -> None:
    """Run the restorers where the runtime runs the models; the weights move on next use."""
    FOLLOWERS.runtime_ready(runtime)


@hookimpl
def register_face_restorers(register: Any) -> None:
    register(SpandrelFaceRestorer(GFPGAN))
    register(CodeFormerRestorer(CODEFORMER))
