"""Switching models mid-run: what follows a model to the next one (LoRA networks, tiling),
what is restored on the way out, and the job's loads through the model cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sdtui.engine.model_switch import Checkpoint, OtherModels, named_checkpoint
from sdtui.runtime.model_cache import ModelCache
from sdtui.services.generation import ModelChoice, switch_model
from tests.model_switch_helpers import generate, tiny
from tests.test_lora_generation import named_network

LORA_WEIGHT = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"


def test_none_spellings_name_no_checkpoint() -> None:
    for value in (None, "", " ", "None", "none", "Use same checkpoint"):
        assert named_checkpoint(value) is None
    assert named_checkpoint(" fine [0123456789] ") == "fine [0123456789]"


def test_the_pass_networks_and_tiling_follow_to_the_refiner_and_are_undone() -> None:
    base, refiner = tiny("sd1", 0), tiny("sd1", 5)
    originals = [m.unet.state_dict()[LORA_WEIGHT].clone() for m in (base, refiner)]
    seen: list[tuple[bool, bool]] = []

    def check(module, *_):
        weight = module.state_dict()[LORA_WEIGHT]
        circular = {c.padding_mode for c in module.modules() if isinstance(c, torch.nn.Conv2d)}
        seen.append((not torch.equal(weight, originals[1]), circular == {"circular"}))

    handle = refiner.unet.register_forward_hook(check)
    try:
        generate(
            base,
            prompt="a fox <lora:style:1>",
            networks={"style": named_network("style", 5, "0123456789ab")},
            sampler="DDIM",
            tiling=True,
            refiner_checkpoint="r",
            refiner_switch_at=0.5,
            other_models=OtherModels(refiner=Checkpoint("r [0]", lambda: refiner)),
        )
    finally:
        handle.remove()
    assert seen == [(True, True)]  # patched and circular while it ran (its one call, at 251)
    for model, original in zip((base, refiner), originals, strict=True):
        assert torch.equal(model.unet.state_dict()[LORA_WEIGHT], original)
        modes = {c.padding_mode for c in model.vae.modules() if isinstance(c, torch.nn.Conv2d)}
        assert modes == {"zeros"}


class Fake:
    """A model that records where it was moved."""

    def __init__(self, name: str) -> None:
        self.name, self.device, self.moves = name, "cpu", []

    def to(self, device):
        self.device = device
        self.moves.append(device)
        return self


class Runtime:
    def __init__(self, max_in_ram: int) -> None:
        self.models = ModelCache("gpu", max_in_ram=max_in_ram, offload_device="cpu")
        self.dtype = torch.float32


def choice(name: str) -> ModelChoice:
    return ModelChoice(Path(f"/models/{name}.safetensors"), name)


@pytest.fixture
def fake_loader(monkeypatch):
    built: dict[str, Fake] = {}

    def load_checkpoint(path, **_):
        if path.stem == "broken":
            raise OSError("unreadable")
        built[path.stem] = Fake(path.stem)
        return built[path.stem]

    monkeypatch.setattr("sdtui.models.loader.load_checkpoint", load_checkpoint)
    return built


@pytest.mark.parametrize("max_in_ram", [0, 1])
def test_switching_never_leaves_two_models_on_the_device(fake_loader, max_in_ram) -> None:
    runtime = Runtime(max_in_ram)
    base = switch_model(runtime, None, choice("base"), None)
    assert base.device == "gpu"
    assert switch_model(runtime, None, choice("base"), None) is base  # already active
    refiner = switch_model(runtime, None, choice("refiner"), None)
    # kept in RAM (1) or dropped by the cache while the run still holds it (0): off the device
    assert (base.device, refiner.device) == ("cpu", "gpu")
    with pytest.raises(OSError, match="unreadable"):
        switch_model(runtime, None, choice("broken"), None)
    assert runtime.models.active is refiner and refiner.device == "gpu"  # put back
