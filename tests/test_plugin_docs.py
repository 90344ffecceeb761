"""Every hookspec has a docstring, a section in docs/plugins.md with a complete example, and
a check here that runs that example. A new hook without all three fails this file."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest
from PIL import Image

from sdtui import hookspecs
from tests.plugin_helpers import empty_host, module_from_source

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def hookspec_names() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "sdtui_spec")
    ]


def examples_for(hook: str) -> list[str]:
    """Every python example of the hook's section, in order (each a complete plugin)."""
    text = DOCS.read_text()
    section = re.search(rf"^## {hook}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"docs/plugins.md has no section '## {hook}'"
    code = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    assert code, f"the '## {hook}' section of docs/plugins.md has no python example"
    return code


def example_for(hook: str) -> str:
    return examples_for(hook)[0]


def registered(hook: str, source: str | None = None):
    host = empty_host()
    module = module_from_source(f"example_{hook}", source or example_for(hook))
    assert host.add_plugin(module, name=f"example_{hook}"), host.failures
    kind = hook.removeprefix("register_")
    (obj,) = list(host.registries[kind])
    return host, module, obj


class FakeContext:
    def __init__(self) -> None:
        self.steps: list[tuple[int, int]] = []

    def check(self) -> None:
        pass

    def progress(self, step: int, total: int, **_: object) -> None:
        self.steps.append((step, total))


def check_samplers(hook: str) -> None:
    import torch

    _, _, sampler = registered(hook)
    x = torch.randn(2, 4, 8, 8) * 10
    sigmas = torch.tensor([10.0, 5.0, 1.0, 0.0])
    out = sampler.sample(lambda x, sigma: torch.zeros_like(x), x, sigmas)
    assert out.shape == x.shape
    assert torch.allclose(out, torch.zeros_like(x), atol=1e-5)  # denoiser says "all zero"


def check_schedules(hook: str) -> None:
    _, _, schedule = registered(hook)
    sigmas = schedule.sigmas(5, 0.03, 14.6)
    assert len(sigmas) == 6 and float(sigmas[-1]) == 0 and float(sigmas[0]) == pytest.approx(14.6)


def check_upscalers(hook: str) -> None:
    from sdtui.engine.upscalers import is_tiled, run_upscaler

    examples = examples_for(hook)
    assert len(examples) == 2  # a plain upscaler and a tiled one
    image = Image.effect_noise((8, 6), 64).convert("RGB")
    for source in examples:
        _, _, upscaler = registered(hook, source)
        context = FakeContext()
        out = run_upscaler(upscaler, image, 2, tile=4, overlap=1, progress=context.progress)
        assert out.size == (16, 12)
        if is_tiled(upscaler):  # 8x6 in 4 px tiles overlapping by 1: 3 x 2 tiles
            assert context.steps == [(n, 6) for n in range(1, 7)]
            assert out.tobytes() == image.resize((16, 12), Image.Resampling.NEAREST).tobytes()
        else:
            assert upscaler.upscale(image, 2).size == (16, 12) and context.steps == [(1, 1)]


def check_face_restorers(hook: str) -> None:
    _, _, restorer = registered(hook)
    assert restorer.restore(Image.new("RGB", (16, 16))).size == (16, 16)


def check_interrogators(hook: str) -> None:
    _, _, interrogator = registered(hook)
    assert interrogator.interrogate(Image.new("RGB", (8, 8), "white")) == "a bright picture"


def check_trainers(hook: str) -> None:
    _, _, trainer = registered(hook)
    context = FakeContext()
    assert trainer.train(context, {"steps": 3}) == {"steps": 3}
    assert context.steps == [(1, 3), (2, 3), (3, 3)]


class FakeScriptContext(FakeContext):
    """What `ScriptContext` offers, recording the runs and grids instead of generating."""

    def __init__(self) -> None:
        super().__init__()
        self.planned: list = []
        self.runs: list = []
        self.grids: list = []

    def plan(self, runs: list) -> None:
        self.planned = list(runs)

    def process(self, params, **inputs: object) -> list:
        from types import SimpleNamespace

        self.runs.append(params)
        image = Image.new("RGB", (8, 8), (len(self.runs) * 40, 0, 0))
        return [SimpleNamespace(image=image, params=params, infotext=f"seed {params.seed}")]

    def save_grid(self, image, first, *, infotext=None, basename: str = "grid") -> Path:
        self.grids.append((image, first, infotext, basename))
        return Path(f"{basename}-0000.png")


def check_scripts(hook: str) -> None:
    import dataclasses

    from sdtui.params.schema import GenerationParams
    from sdtui.services.script_options import ScriptError, parse_script_args, resolve_options
    from sdtui.services.scripts import ScriptRequest, check_request

    host, _, script = registered(hook)
    options = resolve_options(script, parse_script_args(script, ["Images=2"]))
    request = ScriptRequest(GenerationParams(prompt="x", seed=10), options, "txt2img", host)
    check_request(script, request)
    context = FakeScriptContext()
    made = script.run(context, request)
    assert [params.seed for params in context.runs] == [10, 11] == [p.seed for p in context.planned]
    ((grid, first, infotext, basename),) = context.grids
    assert grid.size == (16, 8) and first is made[0] and infotext is None
    assert basename == "seed_sweep"
    assert grid.getpixel((12, 4)) == (80, 0, 0)  # the second image on the right
    with pytest.raises(ScriptError, match="batch size 1"):
        batched = dataclasses.replace(request.params, batch_size=2)
        check_request(script, dataclasses.replace(request, params=batched))


def check_commands(hook: str, capsys: pytest.CaptureFixture[str] | None = None) -> None:
    from sdtui.cli import build_parser

    host, _, command = registered(hook)
    args = build_parser(host).parse_args(["hello", "--who", "docs"])
    assert isinstance(args, argparse.Namespace) and args.command == "hello"
    assert command.run(args) == 0


def check_detect_model_family(hook: str) -> None:
    host = empty_host()
    host.add_plugin(module_from_source("example", example_for(hook)), name="example")
    metadata = {"modelspec.architecture": "example/tiny"}
    assert host.first_result("detect_model_family", keys={}, metadata=metadata) == "example-tiny"
    assert host.first_result("detect_model_family", keys={}, metadata={}) is None


def check_runtime_ready(hook: str) -> None:
    host = empty_host()
    module = module_from_source("example", example_for(hook))
    host.add_plugin(module, name="example")
    runtime = object()
    host.runtime_ready(runtime)
    assert module.seen == [runtime]


HOOK_CHECKS = {
    "register_samplers": check_samplers,
    "register_schedules": check_schedules,
    "register_upscalers": check_upscalers,
    "register_face_restorers": check_face_restorers,
    "register_interrogators": check_interrogators,
    "register_trainers": check_trainers,
    "register_scripts": check_scripts,
    "register_commands": check_commands,
    "detect_model_family": check_detect_model_family,
    "runtime_ready": check_runtime_ready,
}


def test_every_hookspec_has_a_check_here() -> None:
    assert sorted(HOOK_CHECKS) == sorted(hookspec_names())


@pytest.mark.parametrize("hook", hookspec_names())
def test_hookspec_is_documented_and_its_example_works(hook: str) -> None:
    assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"{hook} has no docstring"
    HOOK_CHECKS[hook](hook)
