"""Loading a checkpoint file into ready modules: the one entry point the runtime calls.

    model = load_checkpoint(path, device="cuda", dtype=torch.float16, vae=vae_path)
    model.unet, model.vae, model.text_encoder, model.text_encoder_2, model.family

Steps: read the header (names, shapes, metadata: no tensor data), name the family through
the `detect_model_family` hook (plugins first, then the built-in rules), settle what the
tensors cannot say (SD2 eps vs v: `sdtui.prediction_type` metadata, an A1111-style
`name.yaml` beside the file, else A1111's one-step test), read the tensors straight into
the target dtype and device, build the modules on the meta device and hand them the
tensors, and swap in a separate VAE file if one is chosen. Every failure is one
`CheckpointError` naming the file and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sdtui.models.checkpoint_file import CheckpointError, load_state_dict, read_header
from sdtui.models.families import (
    LAYOUTS,
    Family,
    FamilyDetectionError,
    detect_family,
    prediction_type_from_ldm_yaml,
)
from sdtui.models.ldm_import import CheckpointKeysError, Components, load_component, load_components

VAE_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
EXPECTED_CHECKPOINT = "a Stable Diffusion checkpoint (SD1.x, SD2.x, SDXL; .safetensors or .ckpt)"
EXPECTED_VAE = "a VAE (.safetensors, .pt or .ckpt in the original LDM layout)"


@dataclass
class LoadedModel:
    """A loaded checkpoint: its modules, family and where they came from."""

    path: Path
    family: Family
    components: Components
    metadata: dict[str, str] = field(default_factory=dict)
    vae_path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32

    @property
    def unet(self) -> Any:
        return self.components.unet

    @property
    def vae(self) -> Any:
        return self.components.vae

    @property
    def text_encoder(self) -> Any:
        return self.components.text_encoder

    @property
    def text_encoder_2(self) -> Any:
        return self.components.text_encoder_2

    def to(self, device: str | torch.device) -> LoadedModel:
        """Move every module (what the model cache calls); returns self."""
        for module in self.components.modules().values():
            module.to(device)
        self.device = torch.device(device)
        return self


def detect(
    shapes: dict[str, tuple[int, ...]], metadata: dict[str, str], plugin_host: Any = None
) -> Family:
    """The family through the plugins' `detect_model_family` (a third-party plugin may know
    an architecture we do not), else the built-in rules, whose error says what was wrong."""
    if plugin_host is not None:
        answer = plugin_host.first_result("detect_model_family", keys=shapes, metadata=metadata)
        if isinstance(answer, Family):
            return answer
    return detect_family(shapes, metadata)


def resolve_prediction_type(
    family: Family, config_yaml: Path | None, components: Components | None = None
) -> Family:
    """Settle SD2's eps vs v: the A1111 yaml beside the file, else the one-step test."""
    if "prediction_type" not in family.unresolved:
        return family
    if config_yaml is not None and config_yaml.is_file():
        return family.resolved(prediction_type_from_ldm_yaml(config_yaml.read_text()))
    if components is not None and components.unet is not None:
        return family.resolved("v_prediction" if probe_v_prediction(components.unet) else "epsilon")
    return family


@torch.no_grad()
def probe_v_prediction(unet: torch.nn.Module) -> bool:
    """A1111's one-step test for SD2: at t=999 with a constant input and context, an
    eps-model's output minus the input averages above -1, a v-model's below."""
    parameter = next(unet.parameters())
    width = unet.config.cross_attention_dim
    x = torch.full((1, 4, 8, 8), 0.5, device=parameter.device, dtype=parameter.dtype)
    context = torch.full((1, 2, width), 0.5, device=parameter.device, dtype=parameter.dtype)
    timestep = torch.tensor([999], device=parameter.device)
    out = unet(x, timestep, encoder_hidden_states=context).sample
    return float((out.float() - x.float()).mean()) < -1


def load_checkpoint(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    vae: str | Path | None = None,
    config_yaml: str | Path | None = None,
    plugin_host: Any = None,
) -> LoadedModel:
    """Load a single-file checkpoint (and optionally a separate VAE) onto `device`."""
    path = Path(path)
    yaml_path = Path(config_yaml) if config_yaml else path.with_suffix(".yaml")
    header = read_header(path, expected=EXPECTED_CHECKPOINT)
    try:
        family = detect(header.shapes, header.metadata, plugin_host)
        family = resolve_prediction_type(family, yaml_path)
        tensors, metadata = load_state_dict(path, device, dtype=dtype, expected=EXPECTED_CHECKPOINT)
        components = load_components(tensors, family, metadata=metadata)
        del tensors
        components.family = resolve_prediction_type(family, None, components)
    except (FamilyDetectionError, CheckpointKeysError) as error:
        raise CheckpointError(path, str(error), EXPECTED_CHECKPOINT) from None
    model = LoadedModel(
        path, components.family, components, metadata, device=torch.device(device), dtype=dtype
    )
    if vae is not None:
        swap_vae(model, Path(vae))
    return model


def swap_vae(model: LoadedModel, vae_path: Path | None) -> None:
    """Replace the model's VAE by one from a file (None: no file to load, keep the VAE).

    A1111 VAE files hold the first-stage model's own keys (`encoder.*`, `decoder.*`, ...);
    files that still carry the `first_stage_model.` prefix work too."""
    if vae_path is None:
        return
    tensors, _ = load_state_dict(vae_path, model.device, dtype=model.dtype, expected=EXPECTED_VAE)
    prefix = LAYOUTS[model.family.architecture]["vae"][0]
    prefixed = {
        (key if key.startswith(prefix) else prefix + key): tensor
        for key, tensor in tensors.items()
        if key.removeprefix(prefix).startswith(VAE_PARTS)
    }
    if not prefixed:
        found = ", ".join(sorted({key.split(".", 1)[0] for key in tensors})[:6])
        raise CheckpointError(vae_path, f"no VAE tensors (top-level names: {found})", EXPECTED_VAE)
    try:
        vae, _ = load_component("vae", prefixed, model.family, model.components.configs["vae"])
    except CheckpointKeysError as error:
        raise CheckpointError(vae_path, str(error), EXPECTED_VAE) from None
    model.components = replace(model.components, vae=vae)
    model.vae_path = vae_path
