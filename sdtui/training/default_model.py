"""The embedded default model: a small Stable Diffusion 1 with the real topology.

    size = ModelSize()                            # widths of the shipped model
    modules = build_models(size, seed=0)          # {"unet", "vae", "text_encoder"}
    export_checkpoint(path, **modules, info={...})  # path.safetensors (fp16) + path.yaml

SD1's components at smaller widths: an AutoencoderKL with 4 latent channels and 4 levels
(factor 8), a UNet2DConditionModel with cross-attention on the 8x8 and 4x4 levels and in the
mid block (the 16x16 level is plain ResNet blocks, which keeps a training step cheap on a
CPU), and a CLIP text transformer over the real 49,408-token vocabulary with 77 positions.
Group norms use fewer groups than SD (4-8 channels per group): flat-colour images need the
channels of a group to carry colour, which one or two channels per group normalise away.

The file is an ordinary SD1 single-file checkpoint in the LDM key layout, written by
`sdtui.models.ldm_export`; its `sdtui.architecture` metadata holds every config value (heads,
groups, text width, the VAE scaling factor measured on the training latents), so sdtui's
loader rebuilds exactly these modules. The `.yaml` beside it is an A1111 v1-inference config
with these widths (eps-prediction, SD's schedule); LDM's FrozenCLIPEmbedder cannot build a
text encoder this narrow, so only sdtui (or diffusers with the metadata configs) loads it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdtui.core.discrete import SD_BETA_END, SD_BETA_START, SD_TIMESTEPS
from sdtui.models.architectures import build_component, shipped_config
from sdtui.models.families import FAMILIES, Family
from sdtui.models.ldm_export import save_ldm_safetensors
from sdtui.training.shapes_dataset import NATIVE_SIZE

META_TRAINING = "sdtui.training"
LATENT_FACTOR = 8


@dataclass(frozen=True)
class ModelSize:
    """Widths of the small SD1 (the defaults are the shipped model's)."""

    vae_channels: tuple[int, ...] = (16, 32, 64, 64)
    vae_groups: int = 4
    unet_channels: tuple[int, ...] = (32, 64, 128)
    unet_attention: tuple[bool, ...] = (False, True, True)
    unet_heads: int = 4
    unet_groups: int = 8
    text_width: int = 64
    text_layers: int = 4
    text_heads: int = 4
    image_size: int = NATIVE_SIZE

    def as_dict(self) -> dict[str, Any]:
        return {key: list(v) if isinstance(v, tuple) else v for key, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSize:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# A model small enough for tests: every kind of block, 64 px images, 8x8 latents.
TINY_SIZE = ModelSize(
    vae_channels=(8, 8, 16, 16),
    vae_groups=4,
    unet_channels=(16, 32),
    unet_attention=(False, True),
    unet_heads=2,
    unet_groups=4,
    text_width=16,
    text_layers=1,
    text_heads=2,
    image_size=64,
)


def family(size: ModelSize = ModelSize()) -> Family:
    """SD1, eps-prediction, at this model's native size."""
    return dataclasses.replace(FAMILIES["sd1"], native_size=size.image_size)


def component_configs(size: ModelSize) -> dict[str, dict[str, Any]]:
    """Full diffusers / transformers configs: SD1's shipped ones with these widths."""
    unet = shipped_config("sd1", "unet")
    levels = len(size.unet_channels)
    unet.update(
        block_out_channels=list(size.unet_channels),
        layers_per_block=1,
        down_block_types=[
            "CrossAttnDownBlock2D" if attention else "DownBlock2D"
            for attention in size.unet_attention
        ],
        up_block_types=[
            "CrossAttnUpBlock2D" if attention else "UpBlock2D"
            for attention in reversed(size.unet_attention)
        ],
        attention_head_dim=size.unet_heads,
        norm_num_groups=size.unet_groups,
        cross_attention_dim=size.text_width,
        sample_size=size.image_size // LATENT_FACTOR,
    )
    if len(size.unet_attention) != levels:
        raise ValueError("unet_attention needs one flag per UNet level")
    vae = shipped_config("sd1", "vae")
    if len(size.vae_channels) != 4:
        raise ValueError("the VAE needs 4 levels (3 downsamplings: factor 8)")
    vae.update(
        block_out_channels=list(size.vae_channels),
        layers_per_block=1,
        norm_num_groups=size.vae_groups,
        sample_size=size.image_size,
        scaling_factor=1.0,  # measured on the training latents before the UNet stage
    )
    text = shipped_config("sd1", "text_encoder")
    text.update(
        hidden_size=size.text_width,
        intermediate_size=4 * size.text_width,
        num_hidden_layers=size.text_layers,
        num_attention_heads=size.text_heads,
        projection_dim=size.text_width,
    )
    return {"unet": unet, "vae": vae, "text_encoder": text}


def build_models(size: ModelSize, seed: int) -> dict[str, torch.nn.Module]:
    """Freshly initialised modules (diffusers' / transformers' own initialisation, seeded)."""
    modules = {}
    for index, (name, config) in enumerate(component_configs(size).items()):
        torch.manual_seed(seed * 1000 + index)
        modules[name] = build_component(name, config).train()
    return modules


def build_vae(size: ModelSize, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed * 1000 + 1)
    return build_component("vae", component_configs(size)["vae"]).train()


def build_text_encoder(size: ModelSize, seed: int) -> torch.nn.Module:
    """The text encoder alone, initialised exactly as `build_models` initialises it."""
    torch.manual_seed(seed * 1000 + 2)
    return build_component("text_encoder", component_configs(size)["text_encoder"]).train()


def set_scaling_factor(vae: Any, scaling_factor: float) -> None:
    vae.register_to_config(scaling_factor=float(scaling_factor))


def export_checkpoint(
    path: str | Path,
    *,
    unet: torch.nn.Module,
    vae: torch.nn.Module,
    text_encoder: torch.nn.Module,
    size: ModelSize,
    info: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write `path` (.safetensors, LDM layout, sdtui metadata) and its A1111 `.yaml`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {META_TRAINING: json.dumps(dict(info or {}), sort_keys=True)}
    temporary = path.with_name(path.name + ".tmp")
    save_ldm_safetensors(
        temporary,
        family(size),
        metadata=extra,
        dtype=dtype,
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
    )
    temporary.replace(path)
    path.with_suffix(".yaml").write_text(ldm_yaml(size, float(vae.config.scaling_factor)))
    return path


def _multipliers(widths: tuple[int, ...]) -> list[int]:
    if any(width % widths[0] for width in widths):
        raise ValueError(f"widths {widths} are not multiples of the first")
    return [width // widths[0] for width in widths]


def ldm_yaml(size: ModelSize, scaling_factor: float) -> str:
    """An A1111 / LDM v1-inference config describing this model."""
    attention = [2**level for level, on in enumerate(size.unet_attention) if on]
    return f"""\
# sdtui's default model: SD1 architecture at small widths (see the checkpoint's
# sdtui.architecture metadata). Its text encoder is a CLIP transformer {size.text_width} wide
# with {size.text_layers} layers over CLIP's vocabulary, which LDM's FrozenCLIPEmbedder cannot
# build; everything else follows ldm's v1-inference.yaml.
model:
  base_learning_rate: 1.0e-04
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: {SD_BETA_START}
    linear_end: {SD_BETA_END}
    num_timesteps_cond: 1
    log_every_t: 200
    timesteps: {SD_TIMESTEPS}
    first_stage_key: "jpg"
    cond_stage_key: "txt"
    image_size: {size.image_size // LATENT_FACTOR}
    channels: 4
    cond_stage_trainable: false
    conditioning_key: crossattn
    monitor: val/loss_simple_ema
    scale_factor: {scaling_factor:.6f}
    use_ema: False

    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        image_size: {size.image_size // LATENT_FACTOR}
        in_channels: 4
        out_channels: 4
        model_channels: {size.unet_channels[0]}
        attention_resolutions: {attention}
        num_res_blocks: 1
        channel_mult: {_multipliers(size.unet_channels)}
        num_heads: {size.unet_heads}
        use_spatial_transformer: True
        transformer_depth: 1
        context_dim: {size.text_width}
        use_checkpoint: True
        legacy: False

    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        monitor: val/rec_loss
        ddconfig:
          double_z: true
          z_channels: 4
          resolution: {size.image_size}
          in_channels: 3
          out_ch: 3
          ch: {size.vae_channels[0]}
          ch_mult: {_multipliers(size.vae_channels)}
          num_res_blocks: 1
          attn_resolutions: []
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity

    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
"""
