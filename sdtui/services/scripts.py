"""Generation scripts (A1111's Script dropdown) running inside a txt2img or img2img job.

A script is an object registered through the `register_scripts` hook with

- `name`: A1111's title ("X/Y/Z plot"); optional `aliases` ("xyz");
- `modes`: the tabs it works in, a subset of ("txt2img", "img2img"); default both;
- `options`: a tuple of `ScriptOption` (sdtui.services.script_options): what the CLI's
  `--script-arg key=value` sets and a form would show;
- optional `check(request)`: raise ValueError (e.g. `ScriptError`) for a request it cannot
  run. Called before any model is loaded: the CLI exits with code 2 and nothing is written;
- `run(context, request)`: does the work through `context`, a `ScriptContext`.

`request` is a `ScriptRequest`: the request's parameters (resolved: seeds drawn, sampler
names canonical; styles are applied by each `process` call, as A1111 applies them inside
`process_images`), the script's option values (every option, defaults filled in), the
mode, the plugin host (samplers, schedules, upscalers) and the data dirs.

`context.process(params)` is the job's own engine call with other parameters: the same
model cache, samplers, LoRA, embeddings, previews, interrupt and skip; each image is saved
as usual with its own infotext, and the `GeneratedImage`s come back. A `params.model` that
differs from the request's switches checkpoint for that call; -1 seeds are drawn. img2img
scripts may pass `init_images=` / `mask=` (default: the job's). `context.save_grid(image,
first)` writes a grid to the *-grids folder with the infotext of `first` (a
GeneratedImage) unless `infotext=` says otherwise; `context.save_image(image, first)`
writes an image the script made from unsaved runs (`process(params, save=False)`, e.g. a
tiled upscale) into the images folder the same way. `context.plan(runs)` announces the
runs' parameters so progress counts steps over the whole script. An interrupt stops the
script where it is (images saved so far are kept); a skip abandons the current batch and
`process` returns what was made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.params.infotext import format_value, quote
from sdtui.params.schema import GenerationParams
from sdtui.params.validate import resolve_seed
from sdtui.services.script_options import (
    ScriptError,
    find_option,
    parse_script_args,
    resolve_options,
    script_modes,
)

__all__ = [
    "ScriptContext",
    "ScriptError",
    "ScriptRequest",
    "check_request",
    "find_script",
    "infotext_with",
    "pasted_script",
    "prepare_script",
    "run_script",
    "validate_params",
]


@dataclass(frozen=True)
class ScriptRequest:
    params: GenerationParams
    options: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "txt2img"
    host: Any = None
    dirs: Any = None  # sdtui.paths.DataDirs
    random_seed: bool = False  # the user asked for seed -1 (A1111's "Keep -1 for seeds")


def find_script(host: Any, name: str, mode: str) -> Any:
    """The registered script called `name` (or an alias, any case) that works in `mode`."""
    script = host.scripts.get(name)  # UnknownNameError lists the known ones
    if mode not in script_modes(script):
        raise ScriptError(
            f"script {script.name!r} works in {' and '.join(script_modes(script))}, not {mode}"
        )
    return script


SCRIPT_KEY = "Script"  # the infotext key naming the script that made an image (A1111's)


def pasted_script(
    host: Any, mode: str, pairs: Mapping[str, str]
) -> tuple[Any, dict[str, Any]] | None:
    """A1111's paste of a script's infotext: the script `pairs["Script"]` names, with the
    option values that the other keys carry by option label ("X Type", "X Values": what
    X/Y/Z plot writes into its grid); None when no script is named. Keys that are no
    option (e.g. "Fixed X Values") are ignored. ScriptError (UnknownNameError) when the
    script is unknown, not for `mode`, or a value is bad."""
    name = (pairs.get(SCRIPT_KEY) or "").strip()
    if not name:
        return None
    script = find_script(host, name, mode)
    given = {}
    for key, value in pairs.items():
        if key == SCRIPT_KEY:
            continue
        try:
            given[find_option(script, key).name] = value
        except ScriptError:
            continue
    return script, resolve_options(script, given)


def prepare_script(host: Any, name: str, mode: str, pairs: Sequence[str]) -> tuple[Any, dict]:
    """The script and its option values from `--script NAME --script-arg k=v ...`,
    checked: an unknown script, option or bad value raises before anything runs."""
    script = find_script(host, name, mode)
    given = parse_script_args(script, pairs)
    return script, resolve_options(script, given)


def check_request(script: Any, request: ScriptRequest) -> None:
    if request.mode not in script_modes(script):
        raise ScriptError(f"script {script.name!r} does not work in {request.mode}")
    check = getattr(script, "check", None)
    if callable(check):
        check(request)


def validate_params(params: GenerationParams, host: Any) -> None:
    """The schema's checks of parameters a script made (sampler, schedule and upscaler
    names from the registries); ParameterError lists every problem."""
    from sdtui.params.validate import validate
    from sdtui.services.requests import registry_choices

    choices = registry_choices(host)
    if not params.hires_sampler:
        choices.pop("hires_sampler")
    validate(params, choices)


def infotext_with(infotext: str, values: Mapping[str, Any]) -> str:
    """`infotext` with more `key: value` pairs (None values skipped) before `Version`, as
    A1111 adds a script's `extra_generation_params` (e.g. `Script: X/Y/Z plot`)."""
    pairs = [f"{k}: {quote(format_value(v))}" for k, v in values.items() if v is not None]
    if not pairs:
        return infotext
    head, newline, last = infotext.rpartition("\n")
    at = last.find(", Version: ")
    if at < 0:
        last = ", ".join([last, *pairs]) if last else ", ".join(pairs)
    else:
        last = ", ".join([last[:at], *pairs]) + last[at:]
    return f"{head}{newline}{last}"


class ScriptProgress:
    """The job context as a script's runs see it: steps count on across passes and runs
    (`planned`: the whole script's steps, when the script said), everything else is the
    job context's."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self.planned = 0
        self.label: str | None = None
        self._done = 0
        self._step = 0
        self._total = 0

    def progress(self, step: int, total: int, *, text: str | None = None) -> None:
        if step < self._step or (step == self._step and step > 0):  # a new pass began
            self._done += self._total
        self._step, self._total = step, total
        overall = max(self.planned, self._done + total)
        self._context.progress(self._done + step, overall, text=text or self.label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class ScriptContext:
    """What `script.run(context, request)` generates through; see the module doc."""

    def __init__(self, job: Any, job_context: Any, request: ScriptRequest) -> None:
        self.job = job
        self.job_context = job_context
        self.request = request
        self.images: list[Any] = []  # every GeneratedImage made so far
        self.grids: list[Path] = []
        self._progress = ScriptProgress(job_context)
        self._runs = 0
        self._planned_runs: int | None = None
        self._models: dict[str, Any] = {}

    @property
    def params(self) -> GenerationParams:
        return self.request.params

    @property
    def options(self) -> Mapping[str, Any]:
        return self.request.options

    @property
    def mode(self) -> str:
        return self.request.mode

    def check(self) -> None:
        """Raise JobInterrupted if the user interrupted. A skip between runs is left for
        the next run, whose current batch it abandons."""
        if getattr(self.job_context, "interrupted", True):
            self.job_context.check()

    @staticmethod
    def random_seed() -> int:
        return resolve_seed(-1)

    def steps_of(self, params: GenerationParams) -> int:
        """About how many sampling steps one `process(params)` call runs."""
        from sdtui.engine.upscale import img2img_steps

        if self.mode == "img2img":
            strength = params.denoising_strength
            _, t_enc = img2img_steps(params.steps, strength, bool(params.img2img_fix_steps))
            return params.batch_count * (t_enc + 1 if strength > 0 else 0)
        hires = (params.hires_steps or params.steps) if params.enable_hires else 0
        return params.batch_count * (params.steps + hires)

    def plan(self, runs: Sequence[GenerationParams]) -> None:
        """The parameters of every `process` call to come (progress over the script)."""
        self._planned_runs = len(runs)
        self._progress.planned = sum(self.steps_of(params) for params in runs)

    def process(
        self,
        params: GenerationParams,
        *,
        save: bool = True,
        out_dir: Path | None = None,
        **inputs: Any,
    ) -> list[Any]:
        """Generate with `params` as the job would; each image is saved (unless `save` is
        False) into the usual folder or `out_dir`. `inputs`: img2img's `init_images` and
        `mask` (default: the job's)."""
        self.check()  # an interrupt between runs stops the script
        if params.seed < 0:
            params = dataclasses.replace(params, seed=self.random_seed())
        if params.variation_seed < 0:
            params = dataclasses.replace(params, variation_seed=self.random_seed())
        self._runs += 1
        of = f"/{self._planned_runs}" if self._planned_runs else ""
        self._progress.label = f"{self.job.script.name} {self._runs}{of}"
        results = self.job.process(
            params,
            self._progress,
            model=self._model_for(params),
            save=save,
            out_dir=out_dir,
            **inputs,
        )
        self.images.extend(results)
        return results

    def _model_for(self, params: GenerationParams) -> Any:
        """None (the job's model), or the checkpoint a changed `params.model` names."""
        if not params.model or params.model == self.request.params.model:
            return None
        if params.model not in self._models:
            from sdtui.services.generation import choose_checkpoint

            self._models[params.model] = choose_checkpoint(self.job.dirs, params.model)
        return self._models[params.model]

    def save_grid(
        self, image: Any, first: Any, *, infotext: str | None = None, basename: str = "grid"
    ) -> Path:
        """Write a grid into the grids folder (`basename-NNNN.png`); its infotext is
        `first`'s (a GeneratedImage: A1111's grids carry their first image's) or `infotext`."""
        saved = self.job.save_grid(
            image, first, self.job_context, infotext=infotext, basename=basename
        )
        self.job.saved.append(saved)  # listed with the images (the CLI prints it)
        self.grids.append(saved.path)
        return saved.path

    def save_image(self, image: Any, first: Any, *, infotext: str | None = None) -> Any:
        """Write an image the script made (from unsaved `process(..., save=False)` runs: an
        outpainted or tiled upscale) into the images folder, as a generated image, with the
        infotext of `first` (a GeneratedImage) or `infotext`. Returns its GeneratedImage."""
        text = first.infotext if infotext is None else infotext
        result = dataclasses.replace(first, image=image, infotext=text)
        self.job._save(result, self.job._facts_used, self.job_context)
        self.images.append(result)
        return result


def request_for(job: Any) -> ScriptRequest:
    return ScriptRequest(
        params=job.params,
        options=resolve_options(job.script, job.script_args),
        mode=job.kind,
        host=job.plugin_host,
        dirs=job.dirs,
        random_seed=job.random_seed,
    )


def run_script(job: Any, job_context: Any) -> list[Any]:
    """Run `job.script` as the job: check the request (nothing loaded yet), then the
    script. Returns the job's saved images and grids."""
    request = request_for(job)
    check_request(job.script, request)
    context = ScriptContext(job, job_context, request)
    job.script.run(context, request)
    if context.images:
        job.remember(context.images[-1])
    return job.saved
