"""Model family detection on full-size key/shape manifests (built on the meta device)."""

from __future__ import annotations

import json

import pytest
import torch

from sdtui.models.architectures import family_configs, resolve_configs
from sdtui.models.families import (
    FAMILIES,
    META_ARCHITECTURE,
    META_FAMILY,
    META_NATIVE_SIZE,
    META_PREDICTION_TYPE,
    FamilyDetectionError,
    detect_family,
    prediction_type_from_ldm_yaml,
)
from tests.tiny_models import full_size_manifest

# What diffusers' own single-file loader calls each family (an independent oracle).
DIFFUSERS_MODEL_TYPE = {
    "sd1": "v1",
    "sd1-inpaint": "inpainting",
    "sd1-pix2pix": "instruct-pix2pix",
    "sd2": "v2",
    "sd2-inpaint": "inpainting_v2",
    "sdxl": "xl_base",
    "sdxl-inpaint": "xl_inpaint",
    "sdxl-refiner": "xl_refiner",
}


@pytest.mark.parametrize("family_id", list(FAMILIES))
def test_detects_full_size_family_from_shapes(family_id: str) -> None:
    shapes = full_size_manifest(family_id)
    family = detect_family(shapes, {})
    assert family.id == family_id
    channels = 9 if family_id.endswith("inpaint") else 8 if family_id.endswith("pix2pix") else 4
    assert family.in_channels == channels


@pytest.mark.parametrize("family_id", list(FAMILIES))
def test_diffusers_agrees_with_the_manifest(family_id: str) -> None:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    shapes = full_size_manifest(family_id)
    fake = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    assert infer_diffusers_model_type(fake) == DIFFUSERS_MODEL_TYPE[family_id]


def test_full_size_manifests_have_the_real_key_counts() -> None:
    # Real files add 1 (`position_ids`, SD1) or 2 (`position_ids`, `logit_scale`, SDXL).
    assert len(full_size_manifest("sd1")) == 1130
    assert len(full_size_manifest("sdxl")) == 2513
    shapes = full_size_manifest("sdxl")
    assert shapes["conditioner.embedders.1.model.text_projection"] == (1280, 1280)
    assert shapes["model.diffusion_model.label_emb.0.0.weight"] == (1280, 2816)
    assert shapes["first_stage_model.encoder.mid.attn_1.q.weight"] == (512, 512, 1, 1)
    sd2 = full_size_manifest("sd2")
    assert sd2["cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight"] == (
        3072,
        1024,
    )


@pytest.mark.parametrize("family_id", list(FAMILIES))
def test_configs_resolved_from_full_size_shapes_are_the_shipped_ones(family_id: str) -> None:
    family = FAMILIES[family_id]
    shapes = full_size_manifest(family_id)
    assert resolve_configs(family, shapes, {}) == family_configs(family)


def test_sd2_prediction_type_is_unresolved_without_metadata() -> None:
    family = detect_family(full_size_manifest("sd2"), {})
    assert family.prediction_type is None and family.native_size is None
    assert family.unresolved == ("prediction_type", "native_size")
    assert family.resolved(prediction_type="v").native_size == 768
    assert family.resolved(prediction_type="epsilon").native_size == 512


@pytest.mark.parametrize(
    ("metadata", "prediction", "size"),
    [
        ({META_PREDICTION_TYPE: "v_prediction"}, "v_prediction", 768),
        ({META_PREDICTION_TYPE: "epsilon"}, "epsilon", 512),
        ({META_PREDICTION_TYPE: "v", META_NATIVE_SIZE: "512x512"}, "v_prediction", 512),
        (
            {"modelspec.prediction_type": "v", "modelspec.resolution": "768x768"},
            "v_prediction",
            768,
        ),
    ],
)
def test_sd2_prediction_type_from_metadata(metadata, prediction, size) -> None:
    family = detect_family(full_size_manifest("sd2"), metadata)
    assert (family.id, family.prediction_type, family.native_size) == ("sd2", prediction, size)
    assert family.unresolved == ()


def test_v_pred_key_marks_sdxl_v_prediction() -> None:
    shapes = {**full_size_manifest("sdxl"), "v_pred": ()}
    assert detect_family(shapes, {}).prediction_type == "v_prediction"


def test_unet_only_files_are_detected_by_context_width() -> None:
    for family_id in ("sd1", "sd2", "sdxl", "sdxl-refiner", "sdxl-inpaint"):
        unet_only = {
            key: shape
            for key, shape in full_size_manifest(family_id).items()
            if key.startswith("model.diffusion_model.")
        }
        assert detect_family(unet_only, {}).id == family_id


def test_unknown_keys_give_an_error_naming_what_was_expected() -> None:
    with pytest.raises(FamilyDetectionError) as error:
        detect_family({"lora_unet_down.weight": (4, 4), "alpha": ()}, {})
    message = str(error.value)
    assert "model.diffusion_model." in message and "conditioner.embedders" in message
    assert "lora_unet_down" in message


def test_unsupported_input_channels_are_named() -> None:
    shapes = dict(full_size_manifest("sd2"))  # instruct-pix2pix exists for SD1 only
    shapes["model.diffusion_model.input_blocks.0.0.weight"] = (320, 8, 3, 3)
    with pytest.raises(FamilyDetectionError, match=r"8 input channels.*instruct-pix2pix"):
        detect_family(shapes, {})


def test_metadata_family_must_agree_with_the_tensors() -> None:
    with pytest.raises(FamilyDetectionError, match=r"'sdxl'.*'sd1'"):
        detect_family(full_size_manifest("sd1"), {META_FAMILY: "sdxl"})
    assert detect_family(full_size_manifest("sd1"), {META_FAMILY: "sd1"}).id == "sd1"


def test_bad_prediction_type_lists_valid_values() -> None:
    with pytest.raises(FamilyDetectionError, match="epsilon, v_prediction"):
        detect_family(full_size_manifest("sd2"), {META_PREDICTION_TYPE: "sample"})


def test_architecture_metadata_overrides_shipped_values() -> None:
    family = FAMILIES["sd1"]
    metadata = {META_ARCHITECTURE: json.dumps({"unet": {"upcast_attention": True}})}
    configs = resolve_configs(family, full_size_manifest("sd1"), metadata)
    assert configs["unet"]["upcast_attention"] is True
    with pytest.raises(FamilyDetectionError, match="must map components"):
        resolve_configs(family, full_size_manifest("sd1"), {META_ARCHITECTURE: '{"clip": {}}'})


def test_prediction_type_from_a1111_yaml() -> None:
    v_yaml = "model:\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n  params:\n"
    v_yaml += '    parameterization: "v"\n    linear_start: 0.00085\n'
    assert prediction_type_from_ldm_yaml(v_yaml) == "v_prediction"
    assert prediction_type_from_ldm_yaml("model:\n  params:\n    linear_start: 0.00085\n") == (
        "epsilon"
    )


def test_builtin_plugin_answers_the_hook() -> None:
    from sdtui.plugins import PluginHost

    host = PluginHost(builtins=("sdtui_plugins.builtin.model_families",), load_entry_points=False)
    family = host.first_result("detect_model_family", keys=full_size_manifest("sdxl"), metadata={})
    assert family is not None and family.id == "sdxl"
    assert host.first_result("detect_model_family", keys={"x": (1,)}, metadata={}) is None
    assert host.failures == []
