"""Stage 1: the autoencoder (AutoencoderKL), trained on crops of generated images.

    vae, done = train_vae(work_dir, size, seed, VAEOptions(steps=2000), log)

Loss: L1 plus MSE reconstruction (means over pixels; MSE punishes a wrong colour hardest)
plus a small KL term (weight per pixel, as LDM weighs its KL against a per-pixel sum), no
perceptual or adversarial loss: flat shapes need neither. Small batches and a high learning
rate learnt fastest per CPU second in trials. The VAE is fully convolutional (its one
attention sits at the lowest level), so it trains on 64 px crops, a quarter of the cost of
whole 128 px images; most crops contain the shape's centre, the rest are anywhere. Batch
`step` holds samples `step * B ... step * B + B-1` of the training split, and each step's
randomness comes from its own generator, so a resumed run repeats an uninterrupted one
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdtui.training.default_model import ModelSize, build_vae
from sdtui.training.shapes_dataset import make_sample
from sdtui.training.train_state import (
    LossLog,
    learning_rate,
    load_state,
    resume_fingerprint,
    resume_stage,
    save_stage,
    set_learning_rate,
    step_generator,
)

STATE_FILE = "vae-state.pt"
CENTRED_CROPS = 0.8  # share of crops that contain the shape's centre


@dataclass(frozen=True)
class VAEOptions:
    steps: int = 2000
    batch_size: int = 8
    crop: int = 64
    lr: float = 1e-3
    warmup: int = 50
    kl_weight: float = 1e-5
    mse_weight: float = 1.0
    save_every: int = 50

    def fingerprint(self) -> dict[str, Any]:
        return resume_fingerprint(self)


def _crop_origin(centre: float, size: int, crop: int, generator: torch.Generator) -> int:
    if torch.rand((), generator=generator) < CENTRED_CROPS:
        low = min(max(0, int(centre) - crop + 1), size - crop)
        high = min(size - crop, int(centre))
    else:
        low, high = 0, size - crop
    return int(torch.randint(low, max(low, high) + 1, (), generator=generator))


def vae_batch(seed: int, step: int, options: VAEOptions, image_size: int) -> torch.Tensor:
    """[B, 3, crop, crop] in [-1, 1]: the crops of training step `step`."""
    generator = step_generator(seed, "vae-crops", step)
    crop = min(options.crop, image_size)
    crops = []
    for index in range(step * options.batch_size, (step + 1) * options.batch_size):
        sample = make_sample(seed, index, "train", image_size)
        pixels = np.asarray(sample.image)
        left = _crop_origin(sample.centre[0], image_size, crop, generator)
        top = _crop_origin(sample.centre[1], image_size, crop, generator)
        crops.append(pixels[top : top + crop, left : left + crop])
    array = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return array / 127.5 - 1


def vae_loss(
    vae: Any, images: torch.Tensor, options: VAEOptions, generator: torch.Generator
) -> tuple[torch.Tensor, float, float]:
    """(loss, L1, KL per latent element) of one batch."""
    posterior = vae.encode(images).latent_dist
    latents = posterior.sample(generator=generator)
    reconstruction = vae.decode(latents).sample
    l1 = (reconstruction - images).abs().mean()
    kl = posterior.kl().mean()
    loss = l1 + options.kl_weight * kl / images[0].numel()
    if options.mse_weight:
        loss = loss + options.mse_weight * (reconstruction - images).pow(2).mean()
    return loss, l1.item(), kl.item() / latents[0].numel()


def train_vae(
    work_dir: Path,
    size: ModelSize,
    seed: int,
    options: VAEOptions,
    log: LossLog,
    stop_after: int | None = None,
) -> tuple[torch.nn.Module, bool]:
    """Train (or resume) the VAE up to `options.steps` (or `stop_after`); returns the VAE
    and whether the stage is complete."""
    path = work_dir / STATE_FILE
    vae = build_vae(size, seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=options.lr, betas=(0.9, 0.99))
    config = {"size": size.as_dict(), "seed": seed, "options": options.fingerprint()}
    modules = {"vae": vae}
    step = resume_stage(path, config, modules, optimizer, log, options.steps)
    last = options.steps if stop_after is None else min(options.steps, stop_after)
    vae.train()

    while step < last:
        set_learning_rate(optimizer, learning_rate(step, options.steps, options.lr, options.warmup))
        images = vae_batch(seed, step, options, size.image_size)
        generator = step_generator(seed, "vae-noise", step)
        loss, l1, kl = vae_loss(vae, images, options, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        log.add(step, options.steps, loss.item(), l1=l1, kl=kl)
        if step % options.save_every == 0 or step == last:
            save_stage(path, config, step, modules, optimizer)
    return vae.eval(), step >= options.steps


def load_trained_vae(work_dir: Path, size: ModelSize, seed: int) -> tuple[torch.nn.Module, int]:
    """The VAE of the last save and its step."""
    state = load_state(work_dir / STATE_FILE)
    if state is None:
        raise SystemExit(f"no VAE in {work_dir}: run the vae stage first")
    vae = build_vae(size, seed)
    vae.load_state_dict(state["vae"])
    return vae.eval(), int(state["step"])
