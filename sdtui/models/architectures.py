"""Architecture configs (shipped JSON, shapes, metadata) and building modules from them.

Shipped configs live in `config/models/<architecture>/<component>/config.json` (installed as
`sdtui_config`), laid out like a diffusers pipeline folder (`model_index.json`,
`scheduler/scheduler_config.json`); `diffusers_config_folder` writes such a folder for
resolved configs, which diffusers' `from_single_file(config=...)` loads offline (the tests do;
pass `tokenizer=None`, as no tokenizer files ship here). They describe the full-size models;
`resolve_configs` fits them to a checkpoint: widths, depths and channels come from the tensor
shapes (so small custom or test models load), and what shapes cannot say (attention heads,
group-norm groups, the VAE scaling factor of a custom model) comes from the
`sdtui.architecture` metadata JSON, else from the shipped config, else from a rule for real
models (CLIP heads have 64 channels; SD1's UNet has 8 heads, SD2's and SDXL's have 64 channels
each). The SD2 text encoder is loaded with all 24 layers and its projection, so a file
round-trips; SD2 reads the penultimate layer (diffusers instead builds 23 layers and drops the
projection: a full-size SD2 folder here does not suit diffusers' loader).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import torch
from sdtui_config import CONFIG_DIR

from sdtui.models.families import (
    LAYOUTS,
    META_ARCHITECTURE,
    Family,
    FamilyDetectionError,
    canonical_shapes,
)
from sdtui.models.ldm_shapes import infer_component

MODELS_CONFIG_DIR = CONFIG_DIR / "models"
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def config_dir(architecture: str) -> Path:
    path = MODELS_CONFIG_DIR / architecture
    if not path.is_dir():
        known = ", ".join(sorted(p.name for p in MODELS_CONFIG_DIR.iterdir() if p.is_dir()))
        raise FileNotFoundError(
            f"no shipped configs for {architecture!r} in {path}; known: {known}"
        )
    return path


@cache
def _read_json(path: Path) -> str:
    return path.read_text()


def shipped_config(architecture: str, component: str) -> dict[str, Any]:
    """The full-size config of one component (a fresh dict each call)."""
    path = config_dir(architecture) / component / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{architecture} has no {component} config ({path})")
    return json.loads(_read_json(path))


def family_configs(family: Family) -> dict[str, dict[str, Any]]:
    """Full-size configs for every component of a family (9 input channels for inpainting,
    8 for instruct-pix2pix)."""
    configs = {name: shipped_config(family.architecture, name) for name in family.components}
    configs["unet"]["in_channels"] = family.in_channels
    return configs


def architecture_metadata(metadata: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    text = metadata.get(META_ARCHITECTURE)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"metadata {META_ARCHITECTURE} is not valid JSON: {error}"
        raise FamilyDetectionError(message) from None
    if not isinstance(value, dict) or not set(value) <= set(COMPONENTS):
        raise FamilyDetectionError(
            f"metadata {META_ARCHITECTURE} must map components ({', '.join(COMPONENTS)}) to "
            f"config dicts; got keys {sorted(value) if isinstance(value, dict) else value!r}"
        )
    return value


def resolve_configs(
    family: Family, shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Configs for the components present in a checkpoint: shipped, fitted to the shapes,
    then overridden by the `sdtui.architecture` metadata."""
    overrides = architecture_metadata(metadata)
    shapes = canonical_shapes(shapes)
    configs: dict[str, dict[str, Any]] = {}
    for name, (prefix, layout) in LAYOUTS[family.architecture].items():
        if not any(key.startswith(prefix) for key in shapes):
            continue
        config = shipped_config(family.architecture, name)
        config.update(infer_component(layout, shapes, prefix, config))
        config.update(overrides.get(name, {}))
        configs[name] = config
    if "unet" in configs and "text_encoder_2" in configs:
        _fit_addition_embedding(configs, family, overrides.get("unet", {}))
    return configs


def _fit_addition_embedding(
    configs: dict[str, dict[str, Any]], family: Family, unet_override: Mapping[str, Any]
) -> None:
    """SDXL: the UNet's added embedding takes the pooled text (projection width) plus
    6 (base) or 5 (refiner) time ids, each embedded in `addition_time_embed_dim` channels."""
    unet = configs["unet"]
    width = unet.get("projection_class_embeddings_input_dim")
    if width is None or "addition_time_embed_dim" in unet_override:
        return
    pooled = configs["text_encoder_2"]["projection_dim"]
    time_ids = 5 if family.architecture == "sdxl-refiner" else 6
    if (width - pooled) % time_ids == 0 and width > pooled:
        unet["addition_time_embed_dim"] = (width - pooled) // time_ids


def diffusers_config_folder(
    configs: Mapping[str, Mapping[str, Any]], family: Family, path: Path
) -> dict[str, Any]:
    """Write a diffusers pipeline folder (model_index.json, scheduler and component configs)
    for these configs, e.g. for diffusers' `from_single_file(config=path)`. No tokenizer."""
    source = config_dir(family.architecture)
    index = json.loads((source / "model_index.json").read_text())
    scheduler = json.loads((source / "scheduler" / "scheduler_config.json").read_text())
    if family.prediction_type:
        scheduler["prediction_type"] = family.prediction_type
    files = {"model_index.json": index, "scheduler/scheduler_config.json": scheduler, **configs}
    for name, config in files.items():
        target = path / (name if name.endswith(".json") else f"{name}/config.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(dict(config), indent=2, sort_keys=True))
    return index


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Build modules with parameters on the `meta` device (no memory, no random init cost);
    buffers stay real. Load weights afterwards with `load_state_dict(..., assign=True)`."""
    register = torch.nn.Module.register_parameter

    def register_on_meta(module: torch.nn.Module, name: str, param: Any) -> None:
        register(module, name, param)
        if param is not None and param.device.type != "meta":
            param_class = type(module._parameters[name])
            meta = param_class(param.to("meta"), requires_grad=param.requires_grad)
            module._parameters[name] = meta

    torch.nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register  # type: ignore[method-assign]


def build_component(name: str, config: Mapping[str, Any]) -> torch.nn.Module:
    """A diffusers / transformers module for a component config (weights uninitialised by
    callers that wrap this in `parameters_on_meta()` or `torch.device("meta")`)."""
    if name == "unet":
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel.from_config(dict(config))
    if name == "vae":
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_config(dict(config))
    if name in ("text_encoder", "text_encoder_2"):
        return _build_text_encoder(config)
    raise ValueError(f"unknown component {name!r}; known: {', '.join(COMPONENTS)}")


def _build_text_encoder(config: Mapping[str, Any]) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    classes = {
        "CLIPTextModel": CLIPTextModel,
        "CLIPTextModelWithProjection": CLIPTextModelWithProjection,
    }
    class_name = (config.get("architectures") or ["CLIPTextModel"])[0]
    if class_name not in classes:
        raise ValueError(f"unknown text encoder class {class_name!r}; known: {', '.join(classes)}")
    values = {key: value for key, value in config.items() if not key.startswith("_")}
    model = classes[class_name](CLIPTextConfig(**values))
    return model.eval()
