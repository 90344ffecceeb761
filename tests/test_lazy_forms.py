"""Collapsed groups of the txt2img form are mounted after the first frame; a form works
(values, choices) before it is mounted and shows them once it is."""

from __future__ import annotations

from textual.app import App
from textual.lazy import Lazy
from textual.widgets import Collapsible, Select
from textual.widgets._select import SelectOverlay

from sdtui.params.schema import GenerationParams
from sdtui.screens.txt2img import Txt2ImgScreen
from sdtui.widgets.param_form import ParamForm
from sdtui.widgets.script_form import ScriptPanel
from tests.tui_helpers import make_app, wait_until

NAMES = ["enable_hires", "hires_steps", "hires_upscaler", "hires_sampler"]


def fill(form: ParamForm) -> None:
    form.set_choices({"hires_upscaler": ["Latent", "R-ESRGAN 4x+"], "hires_sampler": ["Euler"]})
    form.set_values({"enable_hires": True, "hires_steps": 7, "hires_sampler": "Euler a"})


def listed(select: Select) -> list[str]:
    return [str(option.prompt) for option in select.query_one(SelectOverlay).options]


async def test_a_form_filled_before_it_is_mounted_matches_one_filled_after() -> None:
    app = App()
    async with app.run_test() as pilot:
        early, late = ParamForm(NAMES, GenerationParams()), ParamForm(NAMES, GenerationParams())
        fill(early)  # not mounted yet, as a collapsed group's form right after start-up
        assert early.values()["hires_sampler"] == "Euler a"
        await app.mount(early, late)
        await pilot.pause()
        fill(late)
        await pilot.pause()
        assert early.values() == late.values()
        assert early.values()["hires_steps"] == 7 and early.values()["enable_hires"] is True
        for name in ("hires_upscaler", "hires_sampler"):
            assert listed(early.controls[name]) == listed(late.controls[name])
        assert "Euler a" in listed(early.controls["hires_sampler"])
        assert "R-ESRGAN 4x+" in listed(early.controls["hires_upscaler"])


async def test_collapsed_groups_arrive_after_the_first_frame(data_dirs, monkeypatch) -> None:
    placeholders: list[int] = []
    on_mount = Txt2ImgScreen.on_mount

    def counting_on_mount(screen: Txt2ImgScreen) -> None:
        on_mount(screen)
        placeholders.append(len(screen.query(Lazy)))

    monkeypatch.setattr(Txt2ImgScreen, "on_mount", counting_on_mount)
    app = make_app(data_dirs)
    app.start_backend = False
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: not screen.query(Lazy))
        assert placeholders == [5]  # seed extras, hires (two forms), advanced, script
        for collapsible in screen.query(Collapsible):
            if collapsible.title == "Script":
                assert collapsible.query(ScriptPanel)
            elif collapsible.title != "Styles":
                assert collapsible.query(ParamForm), collapsible.title
        params = screen.current_params()
        defaults = GenerationParams()
        for name in ("variation_seed", "enable_hires", "hires_upscaler", "hires_steps"):
            assert getattr(params, name) == getattr(defaults, name), name
