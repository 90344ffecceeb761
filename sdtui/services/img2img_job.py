"""img2img and inpainting as a runtime job: `Txt2ImgJob` with init images and a mask.

    job = Img2ImgJob(runtime, host, dirs, params, model, init_images=[image], mask=mask)
    runtime.jobs.submit(job, name="img2img", kind="img2img")

Everything but the engine call is txt2img's job: the checkpoint and VAE through the model
cache, LoRA and embeddings, the refiner, saving each image as soon as it exists (into
`outputs/img2img-images/<date>/` and `img2img-grids`, A1111's folders and names) with its
infotext, and the grid. With the naming's `init_images_folder` (A1111's save_init_img) each
init image is saved there as `<md5>.png` and the infotext names it ("Init image hash").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sdtui.params.schema import GenerationParams
from sdtui.services.generation import Txt2ImgJob
from sdtui.services.outputs import save_init_image

INPUTS = ("init_images", "mask", "color_references")


@dataclass
class Img2ImgJob(Txt2ImgJob):
    """Callable job: `runtime.jobs.submit(job, name="img2img")`."""

    kind: ClassVar[str] = "img2img"
    init_images: list[Any] = field(default_factory=list)  # PIL images
    mask: Any = None  # a PIL image, white = repaint; None: img2img
    resize_upscaler: str | None = None  # A1111's "Upscaler for img2img"; None: Lanczos

    def _generate(
        self, loaded: Any, params: GenerationParams, options: Any, **inputs: Any
    ) -> list[Any]:
        """img2img of `inputs`' `init_images` and `mask` (default: the job's; a script may
        pass others, e.g. loopback's previous result, and `color_references`, what colour
        correction matches)."""
        from sdtui.engine.img2img import img2img

        unknown = set(inputs) - set(INPUTS)
        if unknown:
            raise TypeError(f"img2img inputs are {', '.join(INPUTS)}, got {', '.join(unknown)}")
        upscaler = None
        if self.resize_upscaler and self.resize_upscaler != "None":
            upscaler = self.plugin_host.upscalers.get(self.resize_upscaler)
        init_images = inputs.get("init_images", self.init_images)
        mask = inputs.get("mask", self.mask)
        digest = None
        if self.naming.init_images_folder is not None:  # A1111: the hash of the last one
            for image in init_images:
                digest = save_init_image(image, self.naming.init_images_folder)
        options = dataclasses.replace(options, img2img_upscaler=upscaler, init_image_hash=digest)
        references = inputs.get("color_references")
        return img2img(loaded, params, options, init_images, mask, color_references=references)
