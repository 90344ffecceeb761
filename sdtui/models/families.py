"""Stable Diffusion model families and their detection from a checkpoint's keys and shapes.

A single-file checkpoint in the original LDM/CompVis layout says which family it is through
its key names (which text encoders it carries, where) and a few shapes (the UNet's input
channels: 4, 9 for inpainting, 8 for instruct-pix2pix, which A1111 knows for SD1 only).
`detect_family(shapes, metadata)` reads only names and shapes (a safetensors header is
enough) and returns a `Family`.

What shapes cannot say comes from safetensors metadata keys that sdtui writes and reads:

    sdtui.family           family id ("sd1", "sd2-inpaint", ...); checked against the keys
    sdtui.prediction_type  "epsilon" or "v_prediction" ("eps" and "v" are accepted too)
    sdtui.native_size      the training resolution, "768" or "768x768"
    sdtui.architecture     JSON {"unet": {...}, "vae": {...}, "text_encoder": {...},
                           "text_encoder_2": {...}}: diffusers / transformers config values
                           that override the shipped ones (heads, group norm, custom widths);
                           read by `sdtui.models.architectures.resolve_configs`

Kohya's model-spec keys `modelspec.prediction_type` ("epsilon" / "v") and
`modelspec.resolution` ("1024x1024") are read as a fallback, and a tensor named `v_pred`
(written by some SDXL v-prediction fine-tunes) means v-prediction.

SD2 is the one family whose prediction type shapes cannot give: SD 2.x-base (512, epsilon)
and SD 2.x-768-v (768, v-prediction) have identical tensors. Without metadata the returned
family has `prediction_type=None` and `native_size=None` (see `Family.unresolved`). The loader
must then resolve it, in A1111's order (TODO for the loader, not done here):

1. a `<checkpoint name>.yaml` beside the file: `prediction_type_from_ldm_yaml(text)` reads it
   (`model.params.parameterization: "v"` means v-prediction; absent means epsilon);
2. A1111's one-step test (`is_using_v_parameterization_for_sd2`): run the UNet once on a
   fixed input at a high timestep and see whether the output behaves like eps or v;

then `family.resolved(prediction_type=...)`, which also fills the native size.

This module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

META_FAMILY = "sdtui.family"
META_PREDICTION_TYPE = "sdtui.prediction_type"
META_NATIVE_SIZE = "sdtui.native_size"
META_ARCHITECTURE = "sdtui.architecture"

PREDICTION_TYPES = ("epsilon", "v_prediction")
_PREDICTION_ALIASES = {"epsilon": "epsilon", "eps": "epsilon", "v": "v_prediction"}
_PREDICTION_ALIASES["v_prediction"] = "v_prediction"

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
UNET_INPUT_KEY = UNET_PREFIX + "input_blocks.0.0.weight"

# Where each component lives in a single-file checkpoint, per architecture:
# component -> (key prefix, key layout). Layouts: "unet", "vae", "clip" (transformers
# CLIPTextModel under `<prefix>text_model.`), "open_clip" (OpenCLIP's own naming).
LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "sd1": {
        "unet": (UNET_PREFIX, "unet"),
        "vae": (VAE_PREFIX, "vae"),
        "text_encoder": ("cond_stage_model.transformer.", "clip"),
    },
    "sd2": {
        "unet": (UNET_PREFIX, "unet"),
        "vae": (VAE_PREFIX, "vae"),
        "text_encoder": ("cond_stage_model.model.", "open_clip"),
    },
    "sdxl": {
        "unet": (UNET_PREFIX, "unet"),
        "vae": (VAE_PREFIX, "vae"),
        "text_encoder": ("conditioner.embedders.0.transformer.", "clip"),
        "text_encoder_2": ("conditioner.embedders.1.model.", "open_clip"),
    },
    "sdxl-refiner": {
        "unet": (UNET_PREFIX, "unet"),
        "vae": (VAE_PREFIX, "vae"),
        "text_encoder_2": ("conditioner.embedders.0.model.", "open_clip"),
    },
}


class FamilyDetectionError(ValueError):
    """The keys do not describe a Stable Diffusion family sdtui knows."""


@dataclass(frozen=True)
class Family:
    """A model family. `architecture` names the shipped configs in config/models/<name>/.

    `prediction_type` and `native_size` are None where the checkpoint did not say and the
    family has no single answer (SD2); see `unresolved`.
    """

    id: str
    label: str
    architecture: str
    in_channels: int = 4
    prediction_type: str | None = "epsilon"
    native_size: int | None = 512

    @property
    def inpainting(self) -> bool:
        return self.in_channels == 9

    @property
    def edit(self) -> bool:
        """An instruct-pix2pix model (A1111's `cond_stage_key: edit`): the image to edit's
        latents are its 4 more input channels."""
        return self.in_channels == 8

    @property
    def is_sdxl(self) -> bool:
        return self.architecture.startswith("sdxl")

    @property
    def components(self) -> tuple[str, ...]:
        """Component names in this family's checkpoints, e.g. ("unet", "vae", "text_encoder")."""
        return tuple(LAYOUTS[self.architecture])

    @property
    def unresolved(self) -> tuple[str, ...]:
        """Fields the checkpoint could not tell, for the loader to resolve (yaml, probe)."""
        names = ("prediction_type", "native_size")
        return tuple(name for name in names if getattr(self, name) is None)

    def resolved(
        self, prediction_type: str | None = None, native_size: int | None = None
    ) -> Family:
        """A copy with the given values; SD2's native size follows its prediction type."""
        prediction = normalize_prediction_type(prediction_type) or self.prediction_type
        size = native_size or self.native_size
        if size is None and self.architecture == "sd2" and prediction is not None:
            size = 768 if prediction == "v_prediction" else 512
        return replace(self, prediction_type=prediction, native_size=size)


FAMILIES: dict[str, Family] = {
    family.id: family
    for family in (
        Family("sd1", "SD1.x", "sd1"),
        Family("sd1-inpaint", "SD1.x inpainting", "sd1", in_channels=9),
        Family("sd1-pix2pix", "SD1.x instruct-pix2pix", "sd1", in_channels=8),
        Family("sd2", "SD2.x", "sd2", prediction_type=None, native_size=None),
        Family("sd2-inpaint", "SD2.x inpainting", "sd2", in_channels=9),
        Family("sdxl", "SDXL", "sdxl", native_size=1024),
        Family("sdxl-refiner", "SDXL refiner", "sdxl-refiner", native_size=1024),
        Family("sdxl-inpaint", "SDXL inpainting", "sdxl", in_channels=9, native_size=1024),
    )
}


def get_family(family_id: str) -> Family:
    """The family with this id; the error lists the known ids."""
    try:
        return FAMILIES[family_id]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise FamilyDetectionError(f"unknown model family {family_id!r}; known: {known}") from None


def normalize_prediction_type(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return _PREDICTION_ALIASES[value.strip().lower()]
    except KeyError:
        valid = ", ".join(PREDICTION_TYPES)
        raise FamilyDetectionError(f"unknown prediction type {value!r}; valid: {valid}") from None


def _has_prefix(shapes: Mapping[str, object], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in shapes)


def _architecture_from_text_encoders(shapes: Mapping[str, object]) -> str | None:
    if _has_prefix(shapes, "conditioner.embedders.1.model."):
        return "sdxl"
    if _has_prefix(shapes, "conditioner.embedders.0.model."):
        return "sdxl-refiner"
    if _has_prefix(shapes, "cond_stage_model.model."):
        return "sd2"
    if _has_prefix(shapes, "cond_stage_model.transformer."):
        return "sd1"
    return None


def _architecture_from_unet(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """Full-size UNets without text encoders: SDXL's label embedding, else the context width."""
    label = shapes.get(UNET_PREFIX + "label_emb.0.0.weight")
    if label is not None:
        return {2816: "sdxl", 2560: "sdxl-refiner"}.get(label[-1])
    for key, shape in shapes.items():
        if key.startswith(UNET_PREFIX) and key.endswith("attn2.to_k.weight"):
            return {768: "sd1", 1024: "sd2"}.get(shape[-1])
    return None


def _no_model_error(shapes: Mapping[str, object]) -> FamilyDetectionError:
    prefixes = sorted({key.split(".", 1)[0] for key in shapes})[:8]
    return FamilyDetectionError(
        "not a Stable Diffusion checkpoint sdtui knows: expected a UNet under "
        f"'{UNET_PREFIX}' and text encoders under 'cond_stage_model.transformer.' (SD1), "
        "'cond_stage_model.model.' (SD2) or 'conditioner.embedders.N.' (SDXL); "
        f"found {len(shapes)} tensors with top-level names {prefixes or 'none'}"
    )


def _family_for(architecture: str, in_channels: int) -> Family:
    if in_channels == 4:
        return FAMILIES[architecture]
    if in_channels == 9 and f"{architecture}-inpaint" in FAMILIES:
        return FAMILIES[f"{architecture}-inpaint"]
    if in_channels == 8 and f"{architecture}-pix2pix" in FAMILIES:
        return FAMILIES[f"{architecture}-pix2pix"]
    hint = (
        " (8 channels is instruct-pix2pix, which exists for SD1 only)" if in_channels == 8 else ""
    )
    raise FamilyDetectionError(
        f"unsupported {architecture} UNet with {in_channels} input channels{hint}; supported: "
        "4 (text-to-image), 9 (inpainting: SD1, SD2, SDXL base) and 8 (instruct-pix2pix: SD1)"
    )


# Older spellings of the same tensors, as A1111 renames them on load: SD1 files written by
# transformers before the `text_model.` level, and SD2-turbo's sgm-style text encoder prefix.
_OLD_CLIP_PREFIXES = tuple(
    f"cond_stage_model.transformer.{part}."
    for part in ("embeddings", "encoder", "final_layer_norm")
)


def key_renames(keys: Iterable[str]) -> dict[str, str]:
    """Old key -> canonical key for the tensors of a checkpoint that use an older spelling."""
    keys = list(keys)
    renames = {
        key: key.replace(
            "cond_stage_model.transformer.", "cond_stage_model.transformer.text_model.", 1
        )
        for key in keys
        if key.startswith(_OLD_CLIP_PREFIXES)
    }
    sgm_sd2 = (
        any(key.startswith("conditioner.embedders.0.model.") for key in keys)
        and not any(key.startswith("conditioner.embedders.1.") for key in keys)
        and any(key.startswith(UNET_PREFIX) for key in keys)
        and UNET_PREFIX + "label_emb.0.0.weight" not in keys
    )
    if sgm_sd2:  # SD2-turbo: an SD2 UNet (no SDXL label embedding) with sgm's prefix
        for key in keys:
            if key.startswith("conditioner.embedders.0."):
                renames[key] = "cond_stage_model." + key.removeprefix("conditioner.embedders.0.")
    return renames


def canonical_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    renames = key_renames(shapes)
    return {renames.get(key, key): shape for key, shape in shapes.items()}


def detect_family(shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str]) -> Family:
    """The family of a checkpoint from its tensor names -> shapes and safetensors metadata.
    Older key spellings (`key_renames`) are read as their canonical names."""
    shapes = canonical_shapes(shapes)
    architecture = _architecture_from_text_encoders(shapes)
    if architecture is None and _has_prefix(shapes, UNET_PREFIX):
        architecture = _architecture_from_unet(shapes)
    declared = metadata.get(META_FAMILY)
    if architecture is None and declared and _has_prefix(shapes, UNET_PREFIX):
        architecture = get_family(declared).architecture
    if architecture is None:
        raise _no_model_error(shapes)
    unet_input = shapes.get(UNET_INPUT_KEY)
    in_channels = unet_input[1] if unet_input is not None and len(unet_input) == 4 else 4
    family = _family_for(architecture, in_channels)
    if declared and declared != family.id:
        raise FamilyDetectionError(
            f"metadata {META_FAMILY}={declared!r} disagrees with the tensors, which look like "
            f"{family.id!r} ({family.label})"
        )
    return _apply_metadata(family, shapes, metadata)


def _parse_size(value: str | None) -> int | None:
    if not value:
        return None
    try:
        sizes = [int(part) for part in value.lower().replace(" ", "").split("x")]
    except ValueError:
        message = f"bad native size {value!r}; expected e.g. '768' or '768x768'"
        raise FamilyDetectionError(message) from None
    return max(sizes)


def _apply_metadata(
    family: Family, shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str]
) -> Family:
    prediction = normalize_prediction_type(
        metadata.get(META_PREDICTION_TYPE) or metadata.get("modelspec.prediction_type")
    )
    if prediction is None and "v_pred" in shapes:
        prediction = "v_prediction"
    size = _parse_size(metadata.get(META_NATIVE_SIZE) or metadata.get("modelspec.resolution"))
    return family.resolved(prediction_type=prediction, native_size=size)


def prediction_type_from_ldm_yaml(text: str) -> str:
    """The prediction type an A1111 `name.yaml` (an LDM config) declares."""
    import yaml

    config = yaml.safe_load(text) or {}
    params = (config.get("model") or {}).get("params") or {}
    return "v_prediction" if params.get("parameterization") == "v" else "epsilon"
