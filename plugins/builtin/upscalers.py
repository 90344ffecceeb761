"""A1111's simple upscalers: None, Lanczos and Nearest, through `register_upscalers`.

`upscale(image, scale)` returns the image `scale` times larger (rounded down to whole
pixels, as A1111's `int(width * scale)`). "None" is A1111's do-nothing upscaler: the final
resize to the exact target (Lanczos) happens in `sdtui.engine.upscalers.run_upscaler` and
`sdtui.engine.upscale.resize_to`. Model upscalers (ESRGAN, Real-ESRGAN, ...) register
through the same hook with `upscale_tile` and a native `scale`, and sdtui tiles for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sdtui import hookimpl


@dataclass(frozen=True)
class ResampleUpscaler:
    name: str
    resample: str | None  # a PIL.Image.Resampling member name; None returns the image as is
    scale: float = 1.0  # nominal scale for lists (A1111 shows it for model upscalers)

    def upscale(self, image: Any, scale: float) -> Any:
        if self.resample is None:
            return image
        from PIL import Image

        size = (int(image.width * scale), int(image.height * scale))
        return image.resize(size, resample=getattr(Image.Resampling, self.resample))


UPSCALERS = (
    ResampleUpscaler("None", None),
    ResampleUpscaler("Lanczos", "LANCZOS"),
    ResampleUpscaler("Nearest", "NEAREST"),
)


@hookimpl
def register_upscalers(register) -> None:
    for upscaler in UPSCALERS:
        register(upscaler)
