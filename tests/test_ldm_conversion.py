"""LDM single-file <-> diffusers / transformers modules, checked against diffusers' loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sdtui.models.architectures import build_component, diffusers_config_folder, family_configs
from sdtui.models.families import FAMILIES, LAYOUTS, META_ARCHITECTURE, META_FAMILY
from sdtui.models.ldm_export import export_ldm_state_dict
from sdtui.models.ldm_import import CheckpointKeysError, load_components, load_ldm_safetensors
from tests.tiny_models import full_size_manifest, tiny_configs, write_tiny_checkpoint

ALL_FAMILIES = list(FAMILIES)
# Diffusers skips SD2's text projection (SD2 reads the penultimate layer, unprojected); we
# keep it so that a file round-trips.
NOT_LOADED_BY_DIFFUSERS = {("sd2", "text_encoder"): {"text_projection.weight"}}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    return {
        family_id: write_tiny_checkpoint(folder / f"{family_id}.safetensors", family_id, seed=7)
        for family_id in ALL_FAMILIES
    }


def _diffusers_pipeline(path: Path, configs: dict, family_id: str, folder: Path):
    import diffusers

    family = FAMILIES[family_id]
    index = diffusers_config_folder(configs, family, folder)
    pipeline_class = getattr(diffusers, index["_class_name"])
    if family.inpainting:
        pipeline_class = (
            diffusers.StableDiffusionXLInpaintPipeline
            if family.is_sdxl
            else diffusers.StableDiffusionInpaintPipeline
        )
    absent = {"tokenizer": None, "tokenizer_2": None}
    if not family.is_sdxl:
        absent.update(safety_checker=None, feature_extractor=None)
    return pipeline_class.from_single_file(
        str(path), config=str(folder), local_files_only=True, **absent
    )


@pytest.mark.parametrize("family_id", ALL_FAMILIES)
def test_loaded_modules_equal_diffusers_single_file_loading(
    family_id: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    ours = load_ldm_safetensors(checkpoints[family_id])
    assert ours.family.id == family_id
    for name, config in tiny_configs(family_id).items():
        assert {key: ours.configs[name].get(key) for key in config} == config, name
    pipeline = _diffusers_pipeline(checkpoints[family_id], ours.configs, family_id, tmp_path)
    for name, module in ours.modules().items():
        reference = getattr(pipeline, name)
        assert type(reference) is type(module)
        expected = reference.state_dict()
        actual = module.state_dict()
        assert actual.keys() == expected.keys(), name
        skipped = NOT_LOADED_BY_DIFFUSERS.get((ours.family.architecture, name), set())
        different = [
            key
            for key in expected
            if key not in skipped and not torch.equal(actual[key], expected[key])
        ]
        assert different == [], f"{name}: {different[:5]}"
        assert all(p.requires_grad for p in module.parameters())
    _assert_same_text_outputs(ours.modules(), pipeline)


def _assert_same_text_outputs(modules: dict, pipeline) -> None:
    """Buffers (position ids) are not in state dicts: compare what the encoders compute."""
    tokens = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407, 49407]])
    for name in ("text_encoder", "text_encoder_2"):
        if name in modules:
            with torch.no_grad():
                ours = modules[name](tokens, output_hidden_states=True).hidden_states[-2]
                theirs = getattr(pipeline, name)(tokens, output_hidden_states=True)
            torch.testing.assert_close(ours, theirs.hidden_states[-2], rtol=0, atol=0)


@pytest.mark.parametrize("family_id", ALL_FAMILIES)
def test_exporting_loaded_modules_gives_back_the_file(
    family_id: str, checkpoints: dict[str, Path]
) -> None:
    original = load_file(str(checkpoints[family_id]))
    components = load_ldm_safetensors(checkpoints[family_id])
    exported = export_ldm_state_dict(family=components.family, **components.modules())
    assert exported.keys() == original.keys()
    assert [key for key in original if not torch.equal(exported[key], original[key])] == []


def test_files_carry_sdtui_metadata(checkpoints: dict[str, Path]) -> None:
    with safe_open(str(checkpoints["sdxl"]), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata[META_FAMILY] == "sdxl"
    architecture = json.loads(metadata[META_ARCHITECTURE])
    assert architecture["unet"]["transformer_layers_per_block"] == [1, 1, 2]
    assert architecture["text_encoder_2"]["architectures"] == ["CLIPTextModelWithProjection"]


# Values the tensor shapes determine (heads and group counts are not among them).
SHAPE_FIELDS = {
    "unet": ("block_out_channels", "layers_per_block", "down_block_types", "up_block_types",
             "cross_attention_dim", "in_channels", "use_linear_projection"),
    "vae": ("block_out_channels", "layers_per_block", "latent_channels"),
    "text_encoder": ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size"),
    "text_encoder_2": ("hidden_size", "num_hidden_layers", "projection_dim"),
}  # fmt: skip


@pytest.mark.parametrize("family_id", ["sd1", "sd2", "sdxl", "sdxl-refiner"])
def test_loads_without_metadata_from_shapes(
    family_id: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    original = load_file(str(checkpoints[family_id]))
    bare = tmp_path / "bare.safetensors"
    save_file(original, str(bare))
    components = load_ldm_safetensors(bare)
    truth = tiny_configs(family_id)
    for name, fields in SHAPE_FIELDS.items():
        if name in truth:
            assert {f: components.configs[name][f] for f in fields} == {
                f: truth[name][f] for f in fields
            }, name
    if family_id.startswith("sdxl"):
        assert components.configs["unet"]["addition_time_embed_dim"] == 8
    exported = export_ldm_state_dict(family=components.family, **components.modules())
    assert all(torch.equal(exported[key], original[key]) for key in original)


@pytest.mark.parametrize(
    ("family_id", "new", "old"),
    [
        ("sd1", "cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."),
        ("sd2", "cond_stage_model.", "conditioner.embedders.0."),  # SD2-turbo's sgm prefix
    ],
)
def test_older_key_spellings_load(
    family_id: str, new: str, old: str, checkpoints: dict[str, Path]
) -> None:
    original = load_file(str(checkpoints[family_id]))
    renamed = {
        (old + key.removeprefix(new) if key.startswith(new) else key): value
        for key, value in original.items()
    }
    assert renamed.keys() != original.keys()
    components = load_components(renamed)
    assert components.family.id == family_id
    exported = export_ldm_state_dict(family=components.family, **components.modules())
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[key], original[key]) for key in original)


def test_missing_tensor_is_named(checkpoints: dict[str, Path]) -> None:
    tensors = load_file(str(checkpoints["sd1"]))
    del tensors["first_stage_model.decoder.mid.attn_1.q.weight"]
    with pytest.raises(CheckpointKeysError, match=r"vae .*missing.*mid\.attn_1\.q\.weight"):
        load_components(tensors)


def test_wrong_shape_is_named(checkpoints: dict[str, Path]) -> None:
    tensors = load_file(str(checkpoints["sd2"]))
    key = "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"
    tensors[key] = tensors[key][:-1]
    with pytest.raises(CheckpointKeysError, match=r"wrong shape.*resblocks\.1\.attn\.in_proj"):
        load_components(tensors, FAMILIES["sd2"], tiny_configs("sd2"))


def test_unexpected_tensors_are_rejected_and_known_extras_ignored(
    checkpoints: dict[str, Path],
) -> None:
    tensors = load_file(str(checkpoints["sd1"]))
    extras = {
        "alphas_cumprod": torch.ones(1000),
        "model_ema.decay": torch.tensor(0.9999),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.arange(77)[None],
    }
    loaded = load_components({**tensors, **extras}, metadata={}, configs=tiny_configs("sd1"))
    assert loaded.ignored_keys == sorted(extras)
    stray = {**tensors, "model.diffusion_model.extra_head.weight": torch.ones(2)}
    with pytest.raises(CheckpointKeysError, match="extra_head"):
        load_components(stray, configs=tiny_configs("sd1"))
    relaxed = load_components(stray, configs=tiny_configs("sd1"), strict=False)
    assert relaxed.unexpected_keys == ["model.diffusion_model.extra_head.weight"]


def test_dtype_is_applied(checkpoints: dict[str, Path]) -> None:
    components = load_ldm_safetensors(checkpoints["sd1"], dtype=torch.float16)
    dtypes = {p.dtype for module in components.modules().values() for p in module.parameters()}
    assert dtypes == {torch.float16}
    for module in components.modules().values():
        assert not any(tensor.is_meta for tensor in [*module.parameters(), *module.buffers()])


@pytest.mark.parametrize("architecture", ["sd1", "sd2", "sdxl", "sdxl-refiner"])
def test_full_size_names_match_diffusers_conversion(architecture: str) -> None:
    """Our full-size LDM names, converted by diffusers, give back every module tensor."""
    from diffusers.loaders import single_file_utils as convert

    family = FAMILIES[architecture]
    configs = family_configs(family)
    shapes = full_size_manifest(architecture)
    fake = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    for name, config in configs.items():
        with torch.device("meta"):
            module = build_component(name, config)
        expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
        prefix, layout = LAYOUTS[architecture][name]
        if layout == "unet":
            converted = convert.convert_ldm_unet_checkpoint(fake, config)
        elif layout == "vae":
            converted = convert.convert_ldm_vae_checkpoint(fake, config)
        elif layout == "clip":
            converted = convert.convert_ldm_clip_checkpoint(fake, remove_prefix=prefix)
            converted = {k.removeprefix("text_model."): v for k, v in converted.items()}
        else:
            converted = convert.convert_open_clip_checkpoint(module, fake, prefix=prefix)
            if architecture == "sd2":  # diffusers drops the last layer and the projection
                expected = {k: v for k, v in expected.items() if "layers.23." not in k}
                expected.pop("text_projection.weight")
        assert {key: tuple(value.shape) for key, value in converted.items()} == expected, name


@st.composite
def unet_configs(draw: st.DrawFn) -> dict:
    blocks = draw(st.integers(1, 3))
    attention = draw(st.lists(st.booleans(), min_size=blocks, max_size=blocks))
    text_time = draw(st.booleans())
    per_block = {"min_size": blocks, "max_size": blocks}
    config = {
        "block_out_channels": draw(st.lists(st.sampled_from([8, 16]), **per_block)),
        "layers_per_block": draw(st.integers(1, 2)),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        "transformer_layers_per_block": draw(st.lists(st.integers(1, 2), **per_block)),
        "use_linear_projection": draw(st.booleans()),
        "in_channels": draw(st.sampled_from([4, 9])),
        "cross_attention_dim": 16,
        "attention_head_dim": 2,
        "norm_num_groups": 4,
    }  # fmt: skip
    if text_time:
        config.update(
            addition_embed_type="text_time",
            addition_time_embed_dim=4,
            projection_class_embeddings_input_dim=16 + 6 * 4,
        )
    return config


@settings(deadline=None, max_examples=8)
@given(config=unet_configs())
def test_unet_names_match_diffusers_for_any_shape(config: dict) -> None:
    """Any block count, depth and attention pattern: diffusers reads our names back, and the
    shape-determined config values come back from the LDM shapes."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    from sdtui.models.ldm_shapes import infer_unet

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    tensors = export_ldm_state_dict(family=FAMILIES["sd1"], unet=unet)
    converted = convert_ldm_unet_checkpoint(tensors, dict(unet.config))
    assert {k: v.shape for k, v in converted.items()} == {
        k: v.shape for k, v in unet.state_dict().items()
    }
    shapes = {
        key.removeprefix("model.diffusion_model."): tuple(value.shape)
        for key, value in tensors.items()
    }
    inferred = infer_unet(shapes, family_configs(FAMILIES["sd1"])["unet"])
    for field in ("block_out_channels", "layers_per_block", "down_block_types", "up_block_types"):
        assert inferred[field] == config[field], field
    assert inferred["in_channels"] == config["in_channels"]
