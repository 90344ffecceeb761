"""The txt2img tab: prompts, the schema's controls, generate / interrupt / skip, results.

Everything but what is txt2img's own is `GenerationScreen` (`sdtui.screens.generation`):
here are the groups of controls in A1111's order (checkpoint, sampler, size and batch, seed
with its extras, hires fix with its prompts, advanced sampler parameters) and the request,
queued with `Backend.submit_txt2img`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.widget import Widget

from sdtui.keymap import TXT2IMG_KEYS, bindings
from sdtui.params.schema import GenerationParams
from sdtui.screens.generation import GenerationScreen, Group, lazy
from sdtui.widgets.param_form import ParamForm

GROUPS: tuple[Group, ...] = (
    # (title, fields, collapsed); "" = always visible
    ("", ("model", "vae"), False),
    ("", ("sampler", "schedule", "steps", "cfg_scale"), False),
    ("", ("width", "height", "batch_count", "batch_size"), False),
    ("", ("seed",), False),
    (
        "Seed extras",
        (
            "variation_seed",
            "variation_strength",
            "seed_resize_from_width",
            "seed_resize_from_height",
        ),
        True,
    ),
    (
        "Hires. fix",
        (
            "enable_hires",
            "hires_upscaler",
            "hires_steps",
            "denoising_strength",
            "hires_scale",
            "hires_resize_width",
            "hires_resize_height",
            "hires_sampler",
            "hires_schedule",
        ),
        True,
    ),
    (
        "Advanced",
        (
            "clip_skip",
            "emphasis",
            "rng",
            "ensd",
            "eta",
            "eta_ddim",
            "s_churn",
            "s_tmin",
            "s_tmax",
            "s_noise",
            "sigma_min",
            "sigma_max",
            "rho",
        ),
        True,
    ),
)
PROMPT_FIELDS = ("prompt", "negative_prompt")
HIRES_PROMPT_FIELDS = ("hires_prompt", "hires_negative_prompt")


class Txt2ImgScreen(GenerationScreen):
    TAB_ID = "txt2img"
    BINDINGS: ClassVar = bindings(TXT2IMG_KEYS)
    GROUPS = GROUPS

    def group_extras(self, group: Group) -> Iterable[Widget]:
        title, _names, collapsed = group
        if title != "Hires. fix":
            return ()
        hires_form = ParamForm(list(HIRES_PROMPT_FIELDS), self.defaults, id="group-hires-p")
        self.forms.append(hires_form)
        return (lazy(hires_form, collapsed),)

    def adjust_values(self, values: dict[str, Any]) -> None:
        for name in HIRES_PROMPT_FIELDS:
            values[name] = values.get(name) or None

    def prepare(self, params: GenerationParams) -> GenerationParams:
        return self.app.backend.prepare(params)

    def submit(self, params: GenerationParams) -> Any:
        handle, _job = self.app.backend.submit_txt2img(params, **self.script_inputs)
        return handle
