"""The hooks a plugin can implement.

Every `register_<kind>` hook receives a `register(obj)` callback: the plugin calls it once
per object it provides. The host validates the object (see `sdtui.registry`), rejects a
duplicate name with an error naming both plugins, and owns the registry. Each hook is
documented with a complete example in docs/plugins.md (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdtui import hookspec

Register = Callable[[Any], None]


@hookspec
def register_samplers(register: Register) -> None:
    """Register samplers: objects with `name` and `sample(model, x, sigmas, **options)`.

    `model(x, sigma)` is a denoiser returning the predicted clean sample; `sample` returns
    the final latent. Optional `aliases` (e.g. "k_euler_a") resolve to the same sampler.
    """


@hookspec
def register_schedules(register: Register) -> None:
    """Register sigma schedules ("Schedule type"): objects with `name` and
    `sigmas(steps, sigma_min, sigma_max, **options)` returning a 1-D tensor of steps+1
    sigmas ending in 0."""


@hookspec
def register_upscalers(register: Register) -> None:
    """Register image upscalers: objects with `name` and either `upscale(image, scale)`
    taking and returning a PIL image (the result is `scale` times larger), or, for a model
    that sdtui should tile, `upscale_tile(tile)` returning the tile `scale` times larger
    (`scale`: the model's native factor, an attribute; `tiled = False` asks for whole
    images). sdtui runs either through `sdtui.engine.upscalers.run_upscaler`: tiles with
    overlap, progress and interrupt checks per tile, repeated passes up to the requested
    scale, then Lanczos to the exact size."""


@hookspec
def register_face_restorers(register: Register) -> None:
    """Register face restorers: objects with `name` and `restore(image)` taking and
    returning a PIL image of the same size."""


@hookspec
def register_interrogators(register: Register) -> None:
    """Register interrogators (image -> prompt): objects with `name` and
    `interrogate(image)` returning a prompt string."""


@hookspec
def register_trainers(register: Register) -> None:
    """Register trainers: objects with `name` and `train(context, options)`, run as a
    runtime job (`context` reports progress and is checked for interrupts)."""


@hookspec
def register_scripts(register: Register) -> None:
    """Register generation scripts (A1111's Script dropdown): objects with `name`,
    `run(context, request)` and optionally `modes` (some of "txt2img", "img2img"; default
    both), `options` (`sdtui.services.script_options.ScriptOption`s) and `check(request)`
    (raise ValueError before any model loads). `request` carries the resolved params and
    the option values; `context.process(params)` generates and saves like the job,
    `context.save_grid(image, first)` writes a grid. See `sdtui.services.scripts`."""


@hookspec
def register_commands(register: Register) -> None:
    """Register `sdtui` subcommands: objects with `name`, `help`,
    `add_arguments(parser)` (an argparse parser) and `run(args) -> int`."""


@hookspec(firstresult=True)
def detect_model_family(keys: dict[str, tuple[int, ...]], metadata: dict[str, str]) -> Any:
    """Name the model family of a checkpoint from its tensor names and shapes (`keys`
    maps name -> shape) and its safetensors metadata. Return None to let the next plugin
    decide; the first non-None answer wins."""


@hookspec(historic=True)
def runtime_ready(runtime: Any) -> None:
    """Called once the runtime (device, model cache, job worker) is up. Historic: a plugin
    registered later is called at registration with the same runtime."""
