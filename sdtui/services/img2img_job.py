"""img2img and inpainting as a runtime job: `Txt2ImgJob` with init images and a mask.

    job = Img2ImgJob(runtime, host, dirs, params, model, init_images=[image], mask=mask)
    runtime.jobs.submit(job, name="img2img", kind="img2img")

Everything but the engine call is txt2img's job: the checkpoint and VAE through the model
cache, LoRA and embeddings, the refiner, saving each image as soon as it exists (into
`outputs/img2img-images/<date>/` and `img2img-grids`, A1111's folders and names) with its
infotext, and the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from sdtui.services.generation import Txt2ImgJob


@dataclass
class Img2ImgJob(Txt2ImgJob):
    """Callable job: `runtime.jobs.submit(job, name="img2img")`."""

    kind: ClassVar[str] = "img2img"
    init_images: list[Any] = field(default_factory=list)  # PIL images
    mask: Any = None  # a PIL image, white = repaint; None: img2img
    resize_upscaler: str | None = None  # A1111's "Upscaler for img2img"; None: Lanczos

    def _generate(self, loaded: Any, options: dict[str, Any]) -> list[Any]:
        from sdtui.engine.img2img import img2img

        upscaler = None
        if self.resize_upscaler and self.resize_upscaler != "None":
            upscaler = self.plugin_host.upscalers.get(self.resize_upscaler)
        return img2img(
            loaded, self.params, self.init_images, self.mask, resize_upscaler=upscaler, **options
        )
