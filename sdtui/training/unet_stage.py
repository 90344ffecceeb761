"""Stage 3: the UNet (and, unless frozen, the text encoder), on the cached latents.

    unet, text_encoder, done = train_unet(work_dir, size, seed, UNetOptions(), cache, log)

Stable Diffusion's objective exactly as the samplers expect it: SD's discrete schedule
(scaled-linear betas 0.00085..0.012, 1000 steps), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
at a uniform integer t, eps-prediction, the text encoder's last hidden state after its final
norm (what sdtui feeds the UNet at clip skip 1) over captions tokenized as the prompt path
does (BOS, text, EOS, EOS padding to 77). A share of captions is empty, so the model learns
the unconditional prediction classifier-free guidance needs. The MSE is weighted by
min-SNR-gamma (min(SNR, gamma) / SNR), which speeds convergence without changing the target.
Each step draws its latents, captions, noise and timesteps from its own generator; an
exponential moving average of the trained models is kept and is what gets exported. The text
encoder starts from the text stage's (sdtui.training.text_stage) when there is one, and
learns at a tenth of the UNet's rate (`text_lr_scale`; 0 freezes it, as SD freezes CLIP).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdtui.core.discrete import alphas_cumprod_from_betas, scaled_linear_betas
from sdtui.models.tokenizer import get_tokenizer
from sdtui.training.default_model import ModelSize, build_models
from sdtui.training.latent_cache import LatentCache
from sdtui.training.shapes_dataset import ShapeSpec, caption, position_caption
from sdtui.training.train_state import (
    LossLog,
    learning_rate,
    load_state,
    resume_fingerprint,
    resume_stage,
    save_stage,
    set_learning_rate,
    step_generator,
    update_ema,
)

STATE_FILE = "unet-state.pt"


@dataclass(frozen=True)
class UNetOptions:
    steps: int = 4000
    batch_size: int = 32
    lr: float = 5e-4
    warmup: int = 100
    uncond_share: float = 0.1
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.998
    save_every: int = 50
    # multi-resolution noise (see `training_noise`) from this step on; 0 strength: plain noise.
    # Plain noise first: a run with pyramid noise (0.8) from step 0 learnt the background
    # (100%) but drew mushy shapes in the wrong colour (23%) after 4000 steps; plain noise
    # then 1000 pyramid steps (the shipped model) got 97% background and 98% colour.
    pyramid_noise: float = 0.7
    pyramid_noise_from: int = 3000
    # > 1: multiply the loss of high-noise samples by 1/SNR, capped here (see diffusion_loss)
    high_noise_weight: float = 1.0
    # this share of each batch draws its timesteps from [high_t_from, 1000) instead of
    # [0, 1000): where x_t no longer shows where the shape is, so only the caption can say
    high_t_share: float = 0.0
    high_t_from: int = 850
    # those samples' x_t is pure noise, as a sampler's first step sees it (see diffusion_loss)
    high_t_blind: bool = False
    # this share of the captions names only the position ("top left", "at the bottom"): in a
    # toy run (a blob at the captioned grid cell from pure noise) the text path learnt the
    # position words only with such captions in the mix
    position_caption_share: float = 0.0
    # the text encoder's learning rate relative to the UNet's (0 freezes it, as SD freezes
    # CLIP). After the text stage, frozen (0) and 0.1 both learnt every held-in attribute but
    # shape; 0.1 also drew the held-out colour x shape pairs in their colour (100%, not 58%)
    text_lr_scale: float = 0.1

    def fingerprint(self) -> dict[str, Any]:
        """Not the noise phase either: a run may be continued with another noise."""
        phases = (
            "pyramid_noise",
            "pyramid_noise_from",
            "high_noise_weight",
            "high_t_share",
            "high_t_from",
            "high_t_blind",
            "position_caption_share",
        )
        return resume_fingerprint(self, *phases)


def training_noise(shape: torch.Size, generator: torch.Generator, discount: float) -> torch.Tensor:
    """Gaussian noise, plus (discount > 0) coarser noise at 1/2, 1/4, ... of the size down to
    1x1, weighted discount^level, then scaled back to unit variance per sample.

    Plain noise leaves an image's lowest frequencies (its mean colour, where a shape sits)
    visible through x_t even at the last timestep, so a model learns to read them from the
    noise instead of the prompt; at sampling time the noise is pure, and the background
    follows the seed. Coarse noise hides them, so they have to come from the text (offset /
    pyramid noise). The schedule, the prediction type and every sampler stay as in SD."""
    noise = torch.randn(shape, generator=generator)
    if discount <= 0:
        return noise
    batch, channels, height, width = shape
    level, size = 1, min(height, width)
    while size > 1:
        size = max(1, size // 2)
        coarse = torch.randn((batch, channels, size, size), generator=generator)
        upsampled = torch.nn.functional.interpolate(coarse, (height, width), mode="bilinear")
        noise = noise + discount**level * upsampled
        level += 1
    return noise / noise.std(dim=(1, 2, 3), keepdim=True)


def step_captions(
    seed: int, step: int, specs: torch.Tensor, uncond_share: float, position_share: float = 0.0
) -> list[str]:
    """The captions of one step's samples ("" for the unconditional share; the position
    alone for `position_share` of the others)."""
    captions = []
    for position, indices in enumerate(specs.tolist()):
        rng = random.Random(f"caption:{seed}:{step}:{position}")
        empty = rng.random() < uncond_share
        spec = ShapeSpec.from_indices(indices)
        if empty:
            captions.append("")
        elif position_share and rng.random() < position_share:
            captions.append(position_caption(spec, rng))
        else:
            captions.append(caption(spec, rng))
    return captions


def token_ids(captions: list[str]) -> torch.Tensor:
    tokenizer = get_tokenizer()
    return torch.tensor([tokenizer.tokenize(text) for text in captions])


def sample_timesteps(
    count: int, total: int, generator: torch.Generator, high_share: float = 0.0, high_from: int = 0
) -> torch.Tensor:
    """Uniform integer timesteps in [0, total), the first round(count * high_share) of them
    in [high_from, total) instead."""
    timesteps = torch.randint(0, total, (count,), generator=generator)
    high = round(count * high_share)
    if high:
        timesteps[:high] = torch.randint(high_from, total, (high,), generator=generator)
    return timesteps


def loss_weights(snr: torch.Tensor, gamma: float, high_noise_weight: float = 1.0) -> torch.Tensor:
    """Per-sample weights of the eps MSE: min-SNR-gamma, times min(1/SNR, high_noise_weight)
    where SNR < 1 if high_noise_weight > 1."""
    weights = torch.clamp(snr, max=gamma) / snr
    if high_noise_weight > 1:
        weights = weights * torch.clamp(1 / snr, min=1.0, max=high_noise_weight)
    return weights


def diffusion_loss(
    unet: Any,
    text_encoder: Any,
    x0: torch.Tensor,
    ids: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    gamma: float,
    generator: torch.Generator,
    pyramid_discount: float = 0.0,
    high_noise_weight: float = 1.0,
    high_t_share: float = 0.0,
    high_t_from: int = 0,
    high_t_blind: bool = False,
) -> torch.Tensor:
    """Min-SNR-weighted eps-prediction MSE of one batch of scaled latents.

    With `high_noise_weight` > 1, samples with SNR < 1 weigh min(1/SNR, high_noise_weight)
    times more. An eps error is sqrt(SNR) times the clean image's error, so at high noise
    the eps loss barely notices a wrong layout (a shape in the wrong place costs ~0.1% of
    the loss at t=999): the model learns to take layout from whatever the noise suggests
    rather than from the prompt. 1/SNR turns those samples' loss into the clean image's."""
    timesteps = sample_timesteps(
        x0.shape[0], len(alphas_cumprod), generator, high_t_share, high_t_from
    )
    noise = training_noise(x0.shape, generator, pyramid_discount)
    abar = alphas_cumprod[timesteps].reshape(-1, 1, 1, 1)
    noisy = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    if high_t_blind and high_t_share > 0:
        # the high-timestep share sees no trace of its image: x_t = sqrt(1 - abar) * noise,
        # the eps target still (x_t - sqrt(abar) x0) / sqrt(1 - abar), so only the caption
        # can say where the shape is; a sampler's first step is exactly this
        blind = round(x0.shape[0] * high_t_share)
        noisy[:blind] = (1 - abar[:blind]).sqrt() * noise[:blind]
        noise = noise.clone()
        noise[:blind] = noise[:blind] - (abar[:blind] / (1 - abar[:blind])).sqrt() * x0[:blind]
    context = text_encoder(input_ids=ids).last_hidden_state
    predicted = unet(noisy, timesteps, encoder_hidden_states=context).sample
    weights = loss_weights(abar.flatten() / (1 - abar.flatten()), gamma, high_noise_weight)
    per_sample = (predicted - noise).pow(2).mean(dim=(1, 2, 3))
    return (weights * per_sample).mean()


def train_unet(
    work_dir: Path,
    size: ModelSize,
    seed: int,
    options: UNetOptions,
    cache: LatentCache,
    log: LossLog,
    stop_after: int | None = None,
    pretrained_text: tuple[torch.nn.Module, int] | None = None,
) -> tuple[torch.nn.Module, torch.nn.Module, bool]:
    """Train (or resume) up to `options.steps` (or `stop_after`); returns the averaged UNet
    and text encoder and whether the stage is complete. `pretrained_text` (the text stage's
    encoder and step) is where a fresh run's text encoder starts."""
    path = work_dir / STATE_FILE
    modules = build_models(size, seed)
    unet, text_encoder = modules["unet"], modules["text_encoder"]
    if pretrained_text is not None:
        text_encoder.load_state_dict(pretrained_text[0].state_dict())
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    frozen_text = options.text_lr_scale == 0
    text_encoder.requires_grad_(not frozen_text)
    groups: list[dict[str, Any]] = [{"params": list(unet.parameters())}]
    if not frozen_text:
        groups.append(
            {"params": list(text_encoder.parameters()), "lr_scale": options.text_lr_scale}
        )
    parameters = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=options.lr, betas=(0.9, 0.99), weight_decay=0.01)
    config = {
        "size": size.as_dict(),
        "seed": seed,
        "options": options.fingerprint(),
        "scaling_factor": cache.scaling_factor,
        "latents": len(cache.latents),
        "text_stage_step": None if pretrained_text is None else pretrained_text[1],
    }
    modules = {
        "unet": unet,
        "text_encoder": text_encoder,
        "ema_unet": ema_unet,
        "ema_text_encoder": ema_text,
    }
    step = resume_stage(path, config, modules, optimizer, log, options.steps)
    alphas_cumprod = alphas_cumprod_from_betas(scaled_linear_betas()).float()
    last = options.steps if stop_after is None else min(options.steps, stop_after)
    unet.train()
    text_encoder.train()

    while step < last:
        lr = learning_rate(step, options.steps, options.lr, options.warmup)
        set_learning_rate(optimizer, lr)
        generator = step_generator(seed, "unet", step)
        picks = torch.randint(0, len(cache.latents), (options.batch_size,), generator=generator)
        x0 = cache.latents[picks] * cache.scaling_factor
        ids = token_ids(
            step_captions(
                seed,
                step,
                cache.specs[picks],
                options.uncond_share,
                options.position_caption_share,
            )
        )
        discount = options.pyramid_noise if step >= options.pyramid_noise_from else 0.0
        loss = diffusion_loss(
            unet,
            text_encoder,
            x0,
            ids,
            alphas_cumprod,
            options.min_snr_gamma,
            generator,
            discount,
            options.high_noise_weight,
            options.high_t_share,
            options.high_t_from,
            options.high_t_blind,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        update_ema(ema_unet, unet, step, options.ema_decay)
        if not frozen_text:
            update_ema(ema_text, text_encoder, step, options.ema_decay)
        step += 1
        log.add(step, options.steps, loss.item(), lr=lr)
        if step % options.save_every == 0 or step == last:
            save_stage(path, config, step, modules, optimizer)
    return ema_unet, ema_text, step >= options.steps


def load_trained_unet(
    work_dir: Path, size: ModelSize, seed: int
) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    """The averaged UNet and text encoder of the last save, and its step."""
    state = load_state(work_dir / STATE_FILE)
    if state is None:
        raise SystemExit(f"no UNet in {work_dir}: run the unet stage first")
    modules = build_models(size, seed)
    modules["unet"].load_state_dict(state["ema_unet"])
    modules["text_encoder"].load_state_dict(state["ema_text_encoder"])
    return modules["unet"].eval(), modules["text_encoder"].eval(), int(state["step"])
