"""The Extras tab's parameters (A1111's postprocessing), declared once like the generation
parameters: the Extras screen's controls, `sdtui upscale`'s flags and validation derive
from these `Spec`s.

Defaults are A1111's Extras tab: Upscaler 1 and 2 "None" (Upscaler 1 "None" skips the
upscale step, as in A1111), Resize 4, "Scale to" 512x512 with "Crop to fit". A1111 switches
GFPGAN and CodeFormer on with an accordion; here a visibility of 0 is "off" (A1111's older
sliders, and what the accordion's off state does), so nothing runs that was not asked for.
The `extras` PNG chunk is written by `sdtui.services.extras`, which adds its keys as A1111
adds them (which ones depends on what ran), so the fields carry no infotext key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdtui.params.schema import Spec, param

UPSCALE = "upscale"
FACES = "face restoration"

SCALE_BY = "Scale by"
SCALE_TO = "Scale to"
RESIZE_MODES = (SCALE_BY, SCALE_TO)


@dataclass(frozen=True)
class ExtrasParams:
    """One Extras request (applied to every input image)."""

    resize_mode: str = param(
        SCALE_BY,
        Spec(
            "Resize mode",
            "Scale by a factor, or scale to a size (A1111's two tabs).",
            UPSCALE,
            choices=RESIZE_MODES,
        ),
    )
    scale: float = param(
        4.0,
        Spec(
            "Resize",
            "Scale by this factor.",
            UPSCALE,
            minimum=1.0,
            maximum=8.0,
            step=0.05,
        ),
    )
    max_side_length: int = param(
        0,
        Spec(
            "Max side length",
            "Scale by: limit the longer side to this many pixels (0: no limit).",
            UPSCALE,
            minimum=0,
            maximum=16384,
            step=1,
        ),
    )
    scale_to_width: int = param(
        512,
        Spec(
            "Width",
            "Scale to: the width in pixels.",
            UPSCALE,
            minimum=64,
            maximum=8192,
            step=8,
        ),
    )
    scale_to_height: int = param(
        512,
        Spec(
            "Height",
            "Scale to: the height in pixels.",
            UPSCALE,
            minimum=64,
            maximum=8192,
            step=8,
        ),
    )
    crop_to_fit: bool = param(
        True,
        Spec(
            "Crop to fit",
            "Scale to: cover the size and cut the overhang (centred); off: keep the aspect.",
            UPSCALE,
        ),
    )
    upscaler: str = param(
        "None",
        Spec(
            "Upscaler 1",
            "The upscaler; None skips upscaling.",
            UPSCALE,
            choices="upscalers",
        ),
    )
    upscaler_2: str = param(
        "None",
        Spec(
            "Upscaler 2",
            "A second upscaler blended over the first.",
            UPSCALE,
            choices="upscalers",
        ),
    )
    upscaler_2_visibility: float = param(
        0.0,
        Spec(
            "Upscaler 2 visibility",
            "How much of Upscaler 2's result to blend in (0: none).",
            UPSCALE,
            minimum=0.0,
            maximum=1.0,
            step=0.001,
        ),
    )
    gfpgan_visibility: float = param(
        0.0,
        Spec(
            "GFPGAN visibility",
            "Restore faces with GFPGAN, blended at this strength (0: off).",
            FACES,
            minimum=0.0,
            maximum=1.0,
            step=0.001,
        ),
    )
    codeformer_visibility: float = param(
        0.0,
        Spec(
            "CodeFormer visibility",
            "Restore faces with CodeFormer, blended at this strength (0: off).",
            FACES,
            minimum=0.0,
            maximum=1.0,
            step=0.001,
        ),
    )
    codeformer_weight: float = param(
        0.0,
        Spec(
            "CodeFormer weight",
            "0 = maximum effect, 1 = minimum effect.",
            FACES,
            minimum=0.0,
            maximum=1.0,
            step=0.001,
        ),
    )
    upscale_first: bool = param(
        True,
        Spec(
            "Upscale before restoring faces",
            "A1111's default order: upscale, then GFPGAN, then CodeFormer; off: faces first.",
            UPSCALE,
        ),
    )

    @property
    def upscales(self) -> bool:
        return self.upscaler != "None"

    @property
    def restores_faces(self) -> bool:
        return self.gfpgan_visibility > 0 or self.codeformer_visibility > 0

    @property
    def does_anything(self) -> bool:
        return self.upscales or self.restores_faces
