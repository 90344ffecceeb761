"""The UNet as the eps/v model the denoiser adapters call, with SDXL's extra conditioning
and inpainting models' image conditioning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

REFINER_AESTHETIC_SCORE = 6.0  # A1111's sdxl_refiner_high_aesthetic_score
REFINER_NEGATIVE_AESTHETIC_SCORE = 2.5  # sdxl_refiner_low_aesthetic_score


@dataclass
class UNetModel:
    """`model(x_scaled, t, context=..., pooled=..., time_ids=..., image_conditioning=...)`."""

    unet: torch.nn.Module

    def __call__(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor,
        pooled: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
        image_conditioning: torch.Tensor | None = None,
    ) -> torch.Tensor:
        parameter = next(self.unet.parameters())
        device, dtype = parameter.device, parameter.dtype
        inputs = x if image_conditioning is None else torch.cat([x, image_conditioning.to(x)], 1)
        kwargs: dict[str, Any] = {}
        if pooled is not None:
            kwargs["added_cond_kwargs"] = {
                "text_embeds": pooled.to(device, dtype),
                "time_ids": time_ids.to(device, dtype),
            }
        out = self.unet(
            inputs.to(device, dtype),
            t.to(device),
            encoder_hidden_states=context.to(device, dtype),
            **kwargs,
        ).sample
        return out.to(x.device, x.dtype)  # latents may live elsewhere than the weights


def sdxl_time_ids(
    width: int,
    height: int,
    is_uncond: torch.Tensor,
    *,
    refiner: bool = False,
    crop: tuple[int, int] = (0, 0),
    scores: tuple[float, float] = (REFINER_NEGATIVE_AESTHETIC_SCORE, REFINER_AESTHETIC_SCORE),
) -> torch.Tensor:
    """Per row: original size (h, w), crop (top, left), then the target size (base) or the
    aesthetic score (refiner: `scores` = (negative prompts', prompts'), A1111's
    sdxl_refiner_low / high_aesthetic_score), as A1111 sends."""
    low, high = scores
    rows = []
    for uncond in is_uncond.tolist():
        if refiner:
            score = low if uncond else high
            rows.append([height, width, crop[0], crop[1], score])
        else:
            rows.append([height, width, crop[0], crop[1], height, width])
    return torch.tensor(rows, dtype=torch.float32)
