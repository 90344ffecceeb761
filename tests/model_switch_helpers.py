"""Tiny models and counters for tests of runs that switch models (hires checkpoint, refiner).

base, other = tiny("sd1", 0), tiny("sd1", 5)
with counting(base.unet, other.unet) as calls:     # forward calls per module
    images = generate(base, prompt="x", other_models=OtherModels(...))
calls[0], calls[1], calls.order                     # counts, and who ran when
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdtui.engine.options import EngineOptions
from sdtui.engine.txt2img import GeneratedImage, txt2img
from sdtui.models.loader import load_checkpoint
from sdtui.params.schema import GenerationParams
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from tests.tiny_models import write_tiny_checkpoint

SMALL = dict(width=64, height=64, steps=4, seed=21, variation_seed=0, sampler="Euler")


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


@cache
def tiny_path(family: str, seed: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sdtui-switch-"))
    return write_tiny_checkpoint(folder / f"{family}-{seed}.safetensors", family, seed=seed)


@cache
def tiny(family: str, seed: int = 0) -> Any:
    """A loaded tiny model, one object per (family, seed) for the whole session."""
    return load_checkpoint(tiny_path(family, seed))


def generate(model: Any, **changes: Any) -> list[GeneratedImage]:
    """txt2img at 64 px with 4 Euler steps unless `changes` say otherwise; keyword
    arguments txt2img takes (other_models, context, ...) are passed on."""
    engine = {
        k: changes.pop(k)
        for k in ("other_models", "context", "hires_refiner_pass", "model_facts", "networks")
        if k in changes
    }
    params = resolve(dataclasses.replace(GenerationParams(), **{**SMALL, **changes}))
    host_ = host()
    options = EngineOptions(
        samplers=host_.samplers, schedules=host_.schedules, upscalers=host_.upscalers, **engine
    )
    return txt2img(model, params, options)


def pixels(result: GeneratedImage) -> np.ndarray:
    return np.asarray(result.image).astype(np.int16)


class Calls(dict):
    """Forward calls per module index; `order` lists the index of every call in turn."""

    def __init__(self, count: int) -> None:
        super().__init__({index: 0 for index in range(count)})
        self.order: list[int] = []


@contextmanager
def counting(*modules: torch.nn.Module) -> Iterator[Calls]:
    calls = Calls(len(modules))
    handles = []
    for index, module in enumerate(modules):

        def hook(*_: Any, index: int = index) -> None:
            calls[index] += 1
            calls.order.append(index)

        handles.append(module.register_forward_hook(hook))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


class Loads:
    """Loaders that record which model was asked for, in order."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def loader(self, name: str, model: Any) -> Any:
        def load() -> Any:
            self.order.append(name)
            return model

        return load
