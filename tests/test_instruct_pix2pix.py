"""instruct-pix2pix ("edit") checkpoints: detection, A1111's three-branch guidance with the
Image CFG Scale (against a stand-in UNet with hand-computed outputs), the infotext, and one
img2img run on a tiny 8-channel model."""

from __future__ import annotations

import dataclasses
import tempfile
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sdtui.engine.edit_model import combine_edit
from sdtui.engine.images import to_tensor
from sdtui.engine.img2img import img2img
from sdtui.engine.options import EngineOptions
from sdtui.engine.sampling import CFGDenoiser
from sdtui.engine.txt2img import txt2img
from sdtui.models.families import FamilyDetectionError, detect_family
from sdtui.models.loader import load_checkpoint
from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.schema import GenerationParams, img2img_defaults, spec
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from tests.tiny_models import full_size_manifest, write_tiny_checkpoint

UNET_INPUT = "model.diffusion_model.input_blocks.0.0.weight"

# -- detection -------------------------------------------------------------------------------


def test_full_size_8_channel_sd1_is_instruct_pix2pix_as_diffusers_says() -> None:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    shapes = full_size_manifest("sd1-pix2pix")
    assert shapes[UNET_INPUT] == (320, 8, 3, 3)
    family = detect_family(shapes, {})
    assert (family.id, family.in_channels, family.edit, family.inpainting) == (
        "sd1-pix2pix", 8, True, False,
    )  # fmt: skip
    fake = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    assert infer_diffusers_model_type(fake) == "instruct-pix2pix"
    assert not detect_family(full_size_manifest("sd1"), {}).edit


def test_8_channel_sd2_is_still_refused_by_name() -> None:
    shapes = dict(full_size_manifest("sd2"))
    shapes[UNET_INPUT] = (320, 8, 3, 3)  # A1111 has no SD2 instruct-pix2pix config either
    with pytest.raises(FamilyDetectionError, match=r"8 input channels.*instruct-pix2pix.*SD1"):
        detect_family(shapes, {})


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


@cache
def tiny_edit_path() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sdtui-pix2pix-"))
    return write_tiny_checkpoint(folder / "tiny-pix2pix.safetensors", "sd1-pix2pix")


@cache
def tiny_edit_model() -> Any:
    return load_checkpoint(tiny_edit_path())


def test_tiny_8_channel_checkpoint_is_detected_and_loads_as_instruct_pix2pix() -> None:
    from safetensors import safe_open

    with safe_open(str(tiny_edit_path()), "pt") as file:  # the shapes alone, no metadata
        shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}  # noqa: SIM118
    assert shapes[UNET_INPUT][1] == 8
    assert detect_family(shapes, {}).id == "sd1-pix2pix"
    model = tiny_edit_model()
    assert model.family.id == "sd1-pix2pix"
    assert model.unet.config.in_channels == 8


# -- guidance against a stand-in UNet --------------------------------------------------------

A, B = 1.0, 10.0  # the stand-in: D(x; c, m) = x + A * c + B * m
PROMPT, NEGATIVE, IMAGE = 2.0, 0.5, 0.3  # context values and the image conditioning's value


def stand_in(x: torch.Tensor, sigma: torch.Tensor, **inputs: Any) -> torch.Tensor:
    context = inputs["context"].mean(dim=(1, 2)).reshape(-1, 1, 1, 1)
    image = inputs["image_conditioning"].mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1)
    return x + A * context + B * image


def conditions(tokens: int = 77, uncond_tokens: int = 77, groups: Any = None):
    groups = groups or [[(0, 1.0)], [(1, 1.0)]]
    rows = sum(len(group) for group in groups)
    cond = SimpleNamespace(context=torch.full((rows, tokens, 4), PROMPT), pooled=None)
    uncond = SimpleNamespace(context=torch.full((2, uncond_tokens, 4), NEGATIVE), pooled=None)
    return lambda step: (groups, cond, uncond)


def extra_inputs(images: torch.Tensor, is_uncond: torch.Tensor) -> dict[str, Any]:
    return {"image_conditioning": torch.full((len(images), 4, 2, 2), IMAGE)}


def guided(cfg: float, image_cfg: float | None, **changes: Any) -> CFGDenoiser:
    denoiser = CFGDenoiser(stand_in, conditions(**changes), cfg, extra_inputs)
    denoiser.image_cfg_scale = image_cfg
    return denoiser


X = torch.arange(2 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 4, 2, 2) / 10


def test_three_branches_combine_as_a1111() -> None:
    # cond = x + 2 + 3, img_cond = x + 0.5 + 3, uncond = x + 0.5 (zero image):
    # x + 0.5 + 7 * 1.5 + 1.5 * 3 = x + 15.5
    denoiser = guided(7.0, 1.5)
    denoised = denoiser(X, torch.tensor(1.0))
    assert torch.allclose(denoised, X + 15.5)
    assert torch.allclose(denoiser.last_uncond_denoised, X + 0.5)
    assert denoiser.step == 1


def test_prompts_of_another_length_run_in_two_batches_with_the_same_result() -> None:
    denoised = guided(7.0, 1.5, tokens=154)(X, torch.tensor(1.0))
    assert torch.allclose(denoised, X + 15.5)


def test_image_cfg_scale_changes_the_result_linearly() -> None:
    low = guided(7.0, 0.5)(X, torch.tensor(1.0))  # x + 0.5 + 10.5 + 0.5 * 3
    high = guided(7.0, 2.5)(X, torch.tensor(1.0))  # x + 0.5 + 10.5 + 2.5 * 3
    assert torch.allclose(low, X + 12.5) and torch.allclose(high, X + 18.5)


def test_cfg_1_and_image_cfg_1_give_the_prompt_and_image_branch() -> None:
    # image cfg 1: A1111's ordinary guidance, the image given to both branches
    assert torch.allclose(guided(1.0, 1.0)(X, torch.tensor(1.0)), X + PROMPT + B * IMAGE)
    generator = torch.Generator().manual_seed(0)
    cond, img_cond, uncond = torch.randn(3, 2, 4, 8, 8, generator=generator)
    assert torch.allclose(combine_edit(cond, img_cond, uncond, 1.0, 1.0), cond, atol=1e-6)
    # image cfg 0 drops the image entirely: uncond + cfg * (cond - img_cond)
    assert torch.allclose(
        combine_edit(cond, img_cond, uncond, 3.0, 0.0), uncond + 3 * (cond - img_cond)
    )


def test_and_is_refused_unless_image_cfg_is_1() -> None:
    groups = [[(0, 0.5), (1, 0.5)], [(2, 1.0)]]
    with pytest.raises(ValueError, match="AND is not supported"):
        guided(7.0, 1.5, groups=groups)(X, torch.tensor(1.0))
    guided(7.0, 1.0, groups=groups)(X, torch.tensor(1.0))  # ordinary guidance allows it


def test_other_models_keep_two_branches() -> None:
    calls: list[int] = []

    def counting(x: torch.Tensor, sigma: torch.Tensor, **inputs: Any) -> torch.Tensor:
        calls.append(len(x))
        return stand_in(x, sigma, **inputs)

    denoiser = CFGDenoiser(counting, conditions(), 7.0, extra_inputs)  # image_cfg_scale unset
    assert torch.allclose(denoiser(X, torch.tensor(1.0)), X + 0.5 + 3.0 + 7 * 1.5)
    assert calls == [4]


# -- parameter and infotext ------------------------------------------------------------------


def test_parameter_is_a1111s_slider() -> None:
    field = spec("image_cfg_scale")
    assert (field.label, field.infotext) == ("Image CFG Scale", "Image CFG scale")
    assert (field.minimum, field.maximum, field.step) == (0.0, 3.0, 0.05)
    assert GenerationParams().image_cfg_scale == 1.5


def test_infotext_writes_image_cfg_scale_only_when_an_edit_model_ran() -> None:
    params = resolve(dataclasses.replace(img2img_defaults(), prompt="make it snow", seed=5,
                                         image_cfg_scale=1.25))  # fmt: skip
    edit = infotext_from_params(params, RunFacts(seed=5, img2img=True, edit_model=True))
    assert "CFG scale: 7, Image CFG scale: 1.25, Seed: 5," in edit
    assert params_from_infotext(edit).values["image_cfg_scale"] == 1.25
    plain = infotext_from_params(params, RunFacts(seed=5, img2img=True))
    assert "Image CFG scale" not in plain
    a1111 = "x\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Image CFG scale: 1.5, Seed: 1"
    assert params_from_infotext(a1111).values["image_cfg_scale"] == 1.5


def test_xyz_axis_is_img2img_only() -> None:
    from sdtui_plugins.builtin.scripts.xyz_axes import find_axis

    from sdtui.services.script_options import ScriptError

    axis = find_axis("Image CFG Scale", "img2img")
    values = axis.values("1, 1.5", img2img_defaults())
    assert values == [1.0, 1.5]
    assert axis.apply(img2img_defaults(), 1.0, values).image_cfg_scale == 1.0
    with pytest.raises(ScriptError, match="img2img only"):
        find_axis("Image CFG Scale", "txt2img")


# -- end to end on the tiny 8-channel model --------------------------------------------------


def source() -> Image.Image:
    values = np.random.RandomState(3).randint(0, 256, (64, 64, 3), dtype=np.uint8)
    return Image.fromarray(values, "RGB")


def test_img2img_feeds_the_unscaled_image_and_zeros_to_the_unet() -> None:
    model = tiny_edit_model()
    image = source()
    with torch.no_grad():  # the oracle: diffusers' own encoder, mode, no scaling factor
        expected = model.vae.encode(to_tensor(image)[None]).latent_dist.mode()
    seen: list[torch.Tensor] = []
    hook = model.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    options = EngineOptions(samplers=host().samplers, schedules=host().schedules)
    base = dict(prompt="make it red", width=64, height=64, steps=2, sampler="Euler", seed=7)
    results = []
    try:
        for image_cfg in (1.5, 1.0):
            params = resolve(dataclasses.replace(img2img_defaults(), **base,
                                                 image_cfg_scale=image_cfg))  # fmt: skip
            results.append(img2img(model, params, options, [image])[0])
            if image_cfg == 1.5:
                first = seen[0]
                assert first.shape == (3, 8, 8, 8)  # prompt, negative + image, negative + zeros
                assert torch.allclose(first[0, 4:], expected[0], atol=1e-5)
                assert torch.allclose(first[1, 4:], expected[0], atol=1e-5)
                assert torch.count_nonzero(first[2, 4:]) == 0
                seen.clear()
        assert seen[0].shape == (2, 8, 8, 8)  # Image CFG Scale 1: ordinary guidance
        assert torch.allclose(seen[0][1, 4:], expected[0], atol=1e-5)
    finally:
        hook.remove()
    assert "Image CFG scale: 1.5," in results[0].infotext
    assert "Image CFG scale: 1," in results[1].infotext
    assert "Conditional mask weight" not in results[0].infotext
    assert not np.array_equal(np.asarray(results[0].image), np.asarray(results[1].image))


def test_txt2img_refuses_an_edit_model_clearly() -> None:
    options = EngineOptions(samplers=host().samplers, schedules=host().schedules)
    params = resolve(GenerationParams(prompt="x", width=64, height=64, steps=1, seed=1))
    with pytest.raises(ValueError, match="instruct-pix2pix checkpoints edit an image"):
        txt2img(tiny_edit_model(), params, options)
