"""LoRA files in the data dir and in generation: names, aliases, hashes, txt2img and the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sdtui.cli import main
from sdtui.engine.options import EngineOptions
from sdtui.engine.txt2img import txt2img
from sdtui.models.checkpoint_file import CheckpointError
from sdtui.models.loader import load_checkpoint
from sdtui.models.networks import (
    LoraNotFoundError,
    discover_loras,
    find_lora,
    load_loras,
    load_network,
    lora_hashes_infotext,
)
from sdtui.params.image_metadata import read_image_metadata
from sdtui.params.schema import GenerationParams
from sdtui.plugins import PluginHost
from tests.tiny_models import write_tiny_checkpoint

ATTENTION = "down_blocks_0_attentions_0_transformer_blocks_0_attn{}_to_{}"


def lora_tensors(seed: int = 0, strength: float = 1.0) -> dict[str, torch.Tensor]:
    """A kohya LoRA for the tiny SD1 model: every attention projection of the first block,
    and the text encoder's first MLP."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for attn in (1, 2):
        context = 16 if attn == 1 else 32  # self attention: the block's width; cross: text
        for proj, width_in in (("q", 16), ("k", context), ("v", context)):
            name = "lora_unet_" + ATTENTION.format(attn, proj)
            tensors[f"{name}.lora_up.weight"] = torch.randn(16, 4, generator=generator) * strength
            tensors[f"{name}.lora_down.weight"] = torch.randn(4, width_in, generator=generator)
            tensors[f"{name}.alpha"] = torch.tensor(4.0)
    te = "lora_te_text_model_encoder_layers_0_mlp_fc1"
    tensors[f"{te}.lora_up.weight"] = torch.randn(64, 2, generator=generator) * strength
    tensors[f"{te}.lora_down.weight"] = torch.randn(2, 32, generator=generator)
    return tensors


def addnet_by_hand(path: Path) -> str:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + length :]).hexdigest()[:12]


# ---------------------------------------------------------------------------- library


def test_discovery_names_aliases_and_errors(data_dirs) -> None:
    folder = data_dirs.lora / "styles"
    folder.mkdir()
    save_file(lora_tensors(1), str(folder / "Add Detail.safetensors"), {"ss_output_name": "det"})
    save_file(lora_tensors(2), str(data_dirs.lora / "grain.safetensors"), {"ss_output_name": "x"})
    save_file(lora_tensors(3), str(data_dirs.lora / "other.safetensors"), {"ss_output_name": "x"})
    torch.save(lora_tensors(4), data_dirs.lora / "old.pt")
    (data_dirs.lora / "notes.txt").write_text("not a network")
    loras = discover_loras(data_dirs)
    assert sorted(lora.name for lora in loras) == ["Add Detail", "grain", "old", "other"]
    assert find_lora(loras, "Add Detail").path == folder / "Add Detail.safetensors"
    assert find_lora(loras, "det").name == "Add Detail"  # ss_output_name
    with pytest.raises(LoraNotFoundError, match="no LoRA named 'x'"):
        find_lora(loras, "x")  # an alias two files claim belongs to neither
    with pytest.raises(LoraNotFoundError, match=r"'Add Detial'.*close names: Add Detail"):
        find_lora(loras, "Add Detial", data_dirs.lora)
    with pytest.raises(LoraNotFoundError, match="there are no LoRA files"):
        find_lora([], "grain")
    networks = load_loras(data_dirs, ["det", "old"])
    assert networks["det"].short_hash == addnet_by_hand(folder / "Add Detail.safetensors")
    old_sha = hashlib.sha256((data_dirs.lora / "old.pt").read_bytes()).hexdigest()
    assert networks["old"].short_hash == old_sha[:12]  # not safetensors: whole-file sha256
    assert networks["old"].name == "old" and len(networks["old"].modules) == 7


def test_a_file_without_lora_tensors_is_refused(tmp_path) -> None:
    save_file({"model.weight": torch.zeros(2)}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(CheckpointError, match="no LoRA tensors"):
        load_network(tmp_path / "odd.safetensors")


def test_hashes_infotext_drops_colons_and_commas() -> None:
    text = lora_hashes_infotext({"a:b": "0123456789ab", "c,d": "ba9876543210", "e": None})
    assert text == "ab: 0123456789ab, cd: ba9876543210"


# ---------------------------------------------------------------------------- txt2img


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


@cache
def tiny_model():
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sdtui-lora-"))
    return load_checkpoint(write_tiny_checkpoint(folder / "tiny.safetensors", "sd1"))


def generate(prompt: str, networks=None, context=None, **changes):
    params = GenerationParams(
        prompt=prompt, width=64, height=64, steps=2, seed=3, variation_seed=0, rng="CPU"
    )
    params = dataclasses.replace(params, **changes)
    options = EngineOptions(
        samplers=host().samplers,
        schedules=host().schedules,
        networks=networks,
        upscalers=host().upscalers,
        context=context,
    )
    return txt2img(tiny_model(), params, options)


def state(model) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value.clone()
        for name in ("unet", "text_encoder")
        for key, value in getattr(model, name).state_dict().items()
    }


def named_network(name: str, seed: int, short_hash: str):
    from sdtui.models.networks import network_from_tensors

    network = network_from_tensors(name, lora_tensors(seed))
    network.short_hash = short_hash
    return network


def test_txt2img_applies_the_prompts_lora_and_restores_the_model() -> None:
    model = tiny_model()
    before = state(model)
    networks = {"style": named_network("style", 5, "0123456789ab")}
    (plain,) = generate("a cat")
    (zero,) = generate("a cat <lora:style:0>", networks)
    (styled,) = generate("a cat <lora:style:1>", networks)
    (te_only,) = generate("a cat <lora:style:1:0>", networks)
    # a tag is no text for the encoder: multiplier 0 is the plain image, bit for bit
    assert np.array_equal(np.asarray(zero.image), np.asarray(plain.image))
    assert not np.array_equal(np.asarray(styled.image), np.asarray(plain.image))
    assert not np.array_equal(np.asarray(te_only.image), np.asarray(plain.image))
    assert styled.infotext.startswith("a cat <lora:style:1>\n")  # the prompt keeps its tag
    assert 'Lora hashes: "style: 0123456789ab"' in styled.infotext
    assert "Lora hashes" not in plain.infotext
    after = state(model)
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_hires_pass_uses_the_hires_prompts_networks() -> None:
    networks = {
        "first": named_network("first", 6, "aaaaaaaaaaaa"),
        "second": named_network("second", 7, "bbbbbbbbbbbb"),
    }
    hires = dict(enable_hires=True, hires_scale=1.5, hires_steps=1, hires_upscaler="Latent")
    (same,) = generate("a dog <lora:first:1>", networks, **hires)
    (other,) = generate(
        "a dog <lora:first:1>", networks, hires_prompt="a dog <lora:second:1>", **hires
    )
    assert 'Lora hashes: "first: aaaaaaaaaaaa"' in same.infotext
    assert 'Lora hashes: "first: aaaaaaaaaaaa, second: bbbbbbbbbbbb"' in other.infotext
    assert not np.array_equal(np.asarray(same.image), np.asarray(other.image))


class StopAfterOneStep:
    def __init__(self) -> None:
        self.calls = 0

    def check(self) -> None:
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt("stop")

    def progress(self, *args, **kwargs) -> None:
        pass


def test_an_interrupted_run_leaves_the_weights_as_loaded() -> None:
    model = tiny_model()
    before = state(model)
    networks = {"style": named_network("style", 8, "0123456789ab")}
    with pytest.raises(KeyboardInterrupt):
        generate("a cat <lora:style:1>", networks, context=StopAfterOneStep())
    after = state(model)
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_a_tag_for_a_network_not_given_is_an_error() -> None:
    with pytest.raises(ValueError, match="LoRA 'missing' is asked for but not loaded"):
        generate("a cat <lora:missing:1>", {})


# ---------------------------------------------------------------------------- CLI

SMALL = ["--steps", "2", "--width", "64", "--height", "64", "--device", "cpu", "--seed", "4"]


def test_generate_with_a_lora_file(data_dirs, capsys) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    lora = data_dirs.lora / "sub" / "paint.safetensors"
    lora.parent.mkdir()
    save_file({k: v.half() for k, v in lora_tensors(9).items()}, str(lora))  # as kohya saves
    root = ["--data-dir", str(data_dirs.root)]
    prompt = "a fox <lora:paint:0.8:1>"
    assert main(["generate", "--prompt", prompt, *SMALL, *root]) == 0
    (path,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    infotext = read_image_metadata(path).infotext
    assert infotext.startswith(prompt + "\n")
    assert f'Lora hashes: "paint: {addnet_by_hand(lora)}"' in infotext
    assert main(["generate", "--prompt", "a fox <lora:pain:1>", *SMALL, *root]) != 0
    assert "no LoRA named 'pain'" in capsys.readouterr().err
