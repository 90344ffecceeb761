"""A1111's Loopback (`scripts/loopback.py`): img2img again and again, each loop's output
the next loop's input.

    sdtui img2img --init photo.png --prompt "a castle" --denoising-strength 0.75 \
        --script loopback --script-arg loops=4 --script-arg final_denoising_strength=0.3

Loop 0 runs at the request's denoising strength d0; loop i at
d0 + (final - d0) * curve(i / (loops - 1)), where curve(t) is t (Linear), sin(t * pi / 2)
(Aggressive: most of the change early) or 1 - cos(t * pi / 2) (Lazy: most of it late); one
loop runs at d0. Every loop makes one image (A1111 sets batch size 1 and ignores the
request's); batch count n repeats the whole chain n times from the original input. The seed
goes up by one for every image, across chains too. After the first loop the masked content
becomes "original" (a mask, if any, stays). Each image is saved as usual, with A1111's
`Final denoising strength` and `Denoising curve` in its infotext; the grid, in one row, of
every loop (one chain) or of each chain's last image (several) goes to the grids folder
with the first image's infotext. An interrupt keeps the images made; a skip ends the chain.
With colour correction on (the img2img_color_correction setting), every loop's colours are
matched to the original input's, not to the previous loop's, as A1111 does.

"Append interrogated prompt at each iteration" (CLIP / DeepBooru) is not offered: sdtui has
no interrogators yet.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sdtui.services.script_options import ScriptOption

CURVES = ("Aggressive", "Linear", "Lazy")


def denoising_strength(loop: int, loops: int, initial: float, final: float, curve: str) -> float:
    """A1111's strength for loop `loop` (0-based) of `loops`."""
    if loops == 1:
        return initial
    progress = loop / (loops - 1)
    if curve == "Aggressive":
        shape = math.sin(progress * math.pi * 0.5)
    elif curve == "Lazy":
        shape = 1 - math.cos(progress * math.pi * 0.5)
    else:
        shape = progress
    return initial + (final - initial) * shape


class Loopback:
    """img2img repeated, each output the next input, the denoising strength moving along a
    curve to the final value."""

    name = "Loopback"
    aliases = ("loopback",)
    modes = ("img2img",)
    options = (
        ScriptOption("loops", "Loops", int, 4, minimum=1, maximum=32),
        ScriptOption(
            "final_denoising_strength", "Final denoising strength", float, 0.5, minimum=0, maximum=1
        ),
        ScriptOption("denoising_curve", "Denoising strength curve", str, "Linear", choices=CURVES),
    )

    def chain(self, request: Any, chain: int = 0) -> list[Any]:
        """The parameters of each loop of chain `chain` (seeds counted on across chains)."""
        options, params = request.options, request.params
        loops = options["loops"]
        runs = []
        for loop in range(loops):
            strength = denoising_strength(
                loop,
                loops,
                params.denoising_strength,
                options["final_denoising_strength"],
                options["denoising_curve"],
            )
            changes: dict[str, Any] = {
                "denoising_strength": strength,
                "seed": params.seed + chain * loops + loop,
                "batch_size": 1,
                "batch_count": 1,
            }
            if loop > 0:
                changes["inpainting_fill"] = "original"
            runs.append(dataclasses.replace(params, **changes))
        return runs

    def run(self, context: Any, request: Any) -> None:
        from sdtui.engine.images import image_grid
        from sdtui.services.scripts import infotext_with

        chains = [self.chain(request, n) for n in range(request.params.batch_count)]
        context.plan([params for runs in chains for params in runs])
        extra = {
            "Final denoising strength": request.options["final_denoising_strength"],
            "Denoising curve": request.options["denoising_curve"],
        }
        references = {}
        if request.params.img2img_color_correction:  # every loop matches the first input
            references["color_references"] = [context.job.init_images[0]]
        history: list[Any] = []
        for runs in chains:
            image, last = None, None
            for params in runs:
                inputs = {"init_images": [image]} if image is not None else {}
                made = context.process(params, save=False, **inputs, **references)
                if not made:  # skipped: this chain ends
                    last = None
                    break
                last = context.save_image(
                    made[0].image, made[0], infotext=infotext_with(made[0].infotext, extra)
                )
                image = last.image
                if len(chains) == 1:
                    history.append(last)
            if len(chains) > 1 and last is not None:
                history.append(last)
        if len(history) > 1:
            grid = image_grid([result.image for result in history], 1, rows=1)
            context.save_grid(grid, history[0])
