"""Between the stages: encode the UNet's training images once with the trained VAE.

    cache = latent_cache(work_dir, vae, vae_step, seed, count, image_size, log)
    cache.latents [N, 4, h, w] (posterior means, unscaled), cache.specs [N, 5] (ShapeSpec
    indices), cache.scaling_factor (1 / std of the latents, as SD's 0.18215 was chosen)

The cache file remembers which VAE save, seed, count and size it was made from and is
rebuilt when any differs. The VAE's reconstruction quality on whole images is logged too:
the mean absolute error and the share of pixels whose nearest named colour survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdtui.training.shapes_dataset import make_sample, nearest_colour
from sdtui.training.train_state import LossLog, save_state

CACHE_FILE = "latents.pt"
ENCODE_BATCH = 64


@dataclass
class LatentCache:
    latents: torch.Tensor
    specs: torch.Tensor
    scaling_factor: float


def _images(seed: int, indices: range, image_size: int) -> tuple[torch.Tensor, list[Any]]:
    samples = [make_sample(seed, i, "train", image_size) for i in indices]
    array = np.stack([np.asarray(sample.image) for sample in samples])
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1
    return pixels, [sample.spec.to_indices() for sample in samples]


@torch.inference_mode()
def reconstruction_report(
    vae: Any, seed: int, image_size: int, count: int = 32
) -> dict[str, float]:
    """Mean absolute error (0-255 scale) and nearest-colour agreement on whole images."""
    pixels, _ = _images(seed + 1, range(count), image_size)
    decoded = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
    to_uint8 = lambda t: ((t + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()  # noqa: E731
    original, restored = to_uint8(pixels), to_uint8(decoded)
    agreement = (nearest_colour(original) == nearest_colour(restored)).mean()
    return {"mae": float(np.abs(original - restored).mean()), "colour_agreement": float(agreement)}


@torch.inference_mode()
def latent_cache(
    work_dir: Path,
    vae: Any,
    vae_step: int,
    seed: int,
    count: int,
    image_size: int,
    log: LossLog,
) -> LatentCache:
    path = work_dir / CACHE_FILE
    key = {"vae_step": vae_step, "seed": seed, "count": count, "image_size": image_size}
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved["key"] == key:
            return LatentCache(saved["latents"], saved["specs"], saved["scaling_factor"])
    report = reconstruction_report(vae, seed, image_size)
    log.say(f"VAE on whole images: {report}")
    log.say(f"encoding {count} training images into {path}")
    latents, specs = [], []
    for start in range(0, count, ENCODE_BATCH):
        pixels, batch_specs = _images(
            seed, range(start, min(count, start + ENCODE_BATCH)), image_size
        )
        latents.append(vae.encode(pixels).latent_dist.mode())
        specs.extend(batch_specs)
        if start // ENCODE_BATCH % 20 == 0:
            log.say(f"encoded {start + len(batch_specs)}/{count}")
    all_latents = torch.cat(latents).contiguous()
    scaling_factor = float(1 / all_latents.std())
    log.say(
        f"latents: std {all_latents.std():.4f}, channel means "
        f"{[round(float(m), 3) for m in all_latents.mean(dim=(0, 2, 3))]}, "
        f"scaling factor {scaling_factor:.5f}"
    )
    cache = LatentCache(all_latents, torch.tensor(specs, dtype=torch.int64), scaling_factor)
    state = {"key": key, "latents": cache.latents, "specs": cache.specs}
    save_state(path, {**state, "scaling_factor": scaling_factor, "report": report})
    return cache
